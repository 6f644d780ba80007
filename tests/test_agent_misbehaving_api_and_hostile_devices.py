"""The agent against a misbehaving API and a hostile device: what the sender keeps and what it
dead-letters (redirects, 404, 413, 503, problem JSON, replies that are not the API's), and where a
device's credentials may go (snapshot URIs naming another host or port, Basic over plain HTTP).

Real local HTTP servers on 127.0.0.1 and the simulator's cameras; nothing leaves the machine.
"""

from __future__ import annotations

import base64
import contextlib
import datetime as dt
import json
import os
import threading
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest

import simulator.onvif as sim_onvif
from edge_agent.devices.addresses import DeviceAddresses
from edge_agent.devices.errors import AuthRefused, BadAnswer
from edge_agent.devices.onvif_client import OnvifPool, warm_wsdl
from edge_agent.devices.snapshot import fetch_snapshot
from edge_agent.metrics import Metrics
from edge_agent.observe import DeviceWork, Judge
from edge_agent.outbox import Outbox, health_key
from edge_agent.probes import ProbeSettings
from edge_agent.probes import rtsp as rtsp_probe
from edge_agent.probes.installer import run as run_installer
from edge_agent.sender import ApiUnavailable, Sender
from edge_agent.settings import AgentSettings
from simulator.devices import Simulator
from tianwang.protocol import OnvifEndpoint, ProbeRequest
from tianwang.protocol.agents import Assignment, CommandResult, OnvifCredentials
from tianwang.protocol.ingest import HealthItem

T0 = dt.datetime(2025, 1, 1, tzinfo=dt.UTC)
DEV = "44030400001320000001"
DEV2 = "44030400001320000002"
PROBLEM = "application/problem+json"


def _jpeg() -> bytes:
    import cv2
    import numpy as np

    ok, buf = cv2.imencode(".jpg", np.full((48, 64, 3), 128, np.uint8))
    assert ok
    return buf.tobytes()


JPEG = _jpeg()

# -- a tiny scriptable HTTP server --------------------------------------------------------------


@dataclass
class Seen:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes


Answer = tuple[int, dict[str, str], bytes]


@dataclass
class Server:
    respond: Callable[[Seen], Answer]
    seen: list[Seen] = field(default_factory=list)
    port: int = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"


@pytest.fixture
def http_server() -> Iterator[Callable[[Callable[[Seen], Answer]], Server]]:
    started: list[ThreadingHTTPServer] = []

    def start(respond: Callable[[Seen], Answer]) -> Server:
        srv = Server(respond)

        class Handler(BaseHTTPRequestHandler):
            def _any(self) -> None:
                n = int(self.headers.get("content-length") or 0)
                seen = Seen(
                    self.command,
                    self.path,
                    {k.lower(): v for k, v in self.headers.items()},
                    self.rfile.read(n),
                )
                srv.seen.append(seen)
                status, headers, body = srv.respond(seen)
                self.send_response(status)
                for k, v in headers.items():
                    self.send_header(k, v)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            do_GET = do_POST = do_PUT = _any

            def log_message(self, *args: Any) -> None:
                pass

        httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        srv.port = httpd.server_address[1]
        threading.Thread(target=httpd.serve_forever, daemon=True).start()
        started.append(httpd)
        return srv

    yield start
    for httpd in started:
        httpd.shutdown()
        httpd.server_close()


def problem(status: int, detail: str, errors: list[dict[str, str]] | None = None) -> Answer:
    body: dict[str, Any] = {
        "type": "urn:tianwang:problem:validation",
        "title": "x",
        "status": status,
        "detail": detail,
    }
    if errors:
        body["errors"] = errors
    return status, {"Content-Type": PROBLEM}, json.dumps(body).encode()


def reply(accepted: int, duplicates: int = 0, rejected: list[dict[str, Any]] | None = None) -> Answer:
    body = {"accepted": accepted, "duplicates": duplicates, "rejected": rejected or []}
    return 200, {"Content-Type": "application/json"}, json.dumps(body).encode()


# -- the sender ---------------------------------------------------------------------------------


def settings(central: str, tmp: Path, **over: Any) -> AgentSettings:
    base: dict[str, Any] = {"central": central, "token": "tw_" + "x" * 20, "outbox": tmp / "o.db"}
    base.update(over)
    return AgentSettings(**base)


@pytest.fixture
async def clients() -> AsyncIterator[httpx.AsyncClient]:
    """The client for presigned PUTs (no token), shared by the senders of a test."""
    put = httpx.AsyncClient(timeout=5, trust_env=False)
    yield put
    await put.aclose()


def sender_for(srv: Server, tmp: Path, clients: httpx.AsyncClient, **over: Any) -> Sender:
    s = settings(srv.url, tmp, **over)
    api = httpx.AsyncClient(base_url=s.central, timeout=5, trust_env=False)  # closed by _close_senders
    box = Outbox(s.outbox)
    sender = Sender(s, box, Metrics(), api, clients)
    _opened.append(sender)
    return sender


_opened: list[Sender] = []


@pytest.fixture(autouse=True)
async def _close_senders() -> AsyncIterator[None]:
    yield
    while _opened:
        snd = _opened.pop()
        await snd.api.aclose()
        snd.outbox.close()


def add_health(box: Outbox, n: int, device: str = DEV) -> None:
    for i in range(n):
        ts = T0 + dt.timedelta(seconds=i)
        box.add_health(
            HealthItem(key=health_key("edge-1", device, ts), device_id=device, ts=ts, reachable=True)
        )


def add_snapshot(box: Outbox, i: int, device: str = DEV) -> None:
    import hashlib

    ts = T0 + dt.timedelta(seconds=i)
    box.add_snapshot(
        "edge-1", device, ts, JPEG, sha256=hashlib.sha256(JPEG).hexdigest(), width=64, height=48, quality=None
    )


def dead_count(box: Outbox) -> int:
    return len(box.dead())


def unexpected(sender: Sender, kind: str, status: int) -> float:
    v = sender.metrics.registry.get_sample_value(
        "tianwang_agent_unexpected_answers_total", {"kind": kind, "status": str(status)}
    )
    return v or 0.0


UNEXPECTED: list[tuple[str, Answer]] = [
    ("308 redirect to https", (308, {"Location": "https://tianwang.example/api/v1/ingest/health"}, b"")),
    ("404 html page", (404, {"Content-Type": "text/html"}, b"<h1>Not Found</h1>")),
    ("405", (405, {"Content-Type": "text/plain"}, b"method not allowed")),
    ("409", (409, {"Content-Type": "text/plain"}, b"conflict")),
    ("413 at one item", (413, {"Content-Type": "text/html"}, b"<h1>413 Request Entity Too Large</h1>")),
    ("503", problem(503, "the store is unavailable")),
    ("401 token", (401, {"Content-Type": PROBLEM}, b'{"title":"x","status":401}')),
    ("403 token", (403, {"Content-Type": PROBLEM}, b'{"title":"x","status":403}')),
    ("400 from a proxy", (400, {"Content-Type": "text/html"}, b"<h1>Bad Request</h1>")),
    ("422 that is not problem JSON", (422, {"Content-Type": "application/json"}, b'{"detail":"x"}')),
    ("200 html portal", (200, {"Content-Type": "text/html"}, b"<html>login</html>")),
    ("200 json about nothing", reply(0)),
]


@pytest.mark.parametrize(("name", "answer"), UNEXPECTED, ids=[n for n, _ in UNEXPECTED])
async def test_an_unexpected_answer_keeps_the_whole_batch(
    http_server: Any, tmp_path: Path, clients: Any, name: str, answer: Answer
) -> None:
    srv = http_server(lambda _seen: answer)
    sender = sender_for(srv, tmp_path, clients, batch_size=1 if "413" in name else 500)
    add_health(sender.outbox, 3)
    with pytest.raises(ApiUnavailable):
        await sender.drain_once()
    assert sender.outbox.depth()["health"] == 3, name
    assert dead_count(sender.outbox) == 0, name
    assert srv.seen and srv.seen[0].path == "/api/v1/ingest/health"
    assert unexpected(sender, "health", answer[0]) == 1
    # and the kind now backs off instead of hammering the API
    assert "health" in sender._gate


async def test_413_halves_the_batch_until_it_passes_and_nothing_is_lost(
    http_server: Any, tmp_path: Path, clients: Any
) -> None:
    got: list[str] = []

    def respond(seen: Seen) -> Answer:
        items = json.loads(seen.body)["items"]
        if len(items) > 3:  # a proxy's body limit
            return 413, {"Content-Type": "text/html"}, b"<h1>413</h1>"
        got.extend(i["key"] for i in items)
        return reply(len(items))

    srv = http_server(respond)
    sender = sender_for(srv, tmp_path, clients, batch_size=16)
    add_health(sender.outbox, 10)
    for _ in range(20):
        if not sender.outbox.items:
            break
        with contextlib.suppress(ApiUnavailable):
            await sender.drain_once()
    assert sender.outbox.items == 0 and dead_count(sender.outbox) == 0
    assert len(set(got)) == 10
    assert sender.limits["health"] == 2  # 16 → 8 → 4 → 2
    assert unexpected(sender, "health", 413) == 3


async def test_api_validation_problem_dead_letters_only_the_items_it_names(
    http_server: Any, tmp_path: Path, clients: Any
) -> None:
    answers = [
        problem(422, "bad items", [{"field": "items.1.ts", "message": "naive time"}]),
        reply(2),
        problem(422, "the request has invalid fields", [{"field": "body", "message": "not a list"}]),
    ]
    srv = http_server(lambda _seen: answers.pop(0))
    sender = sender_for(srv, tmp_path, clients)
    add_health(sender.outbox, 3)
    assert await sender.drain_once() == 1  # item 1 dead, the other two kept for the next round
    assert dead_count(sender.outbox) == 1 and sender.outbox.depth()["health"] == 2
    assert "naive time" in sender.outbox.dead()[0]["reason"]
    assert await sender.drain_once() == 2
    assert sender.outbox.items == 0
    # a problem that names no item refuses the whole request: all of it is dead
    add_health(sender.outbox, 2, device=DEV2)
    assert await sender.drain_once() == 2
    assert dead_count(sender.outbox) == 3 and sender.outbox.items == 0


async def test_rejected_list_dead_letters_the_named_item_and_acks_the_rest(
    http_server: Any, tmp_path: Path, clients: Any
) -> None:
    srv = http_server(lambda _s: reply(2, rejected=[{"index": 0, "errors": ["device x is not registered"]}]))
    sender = sender_for(srv, tmp_path, clients)
    add_health(sender.outbox, 3)
    assert await sender.drain_once() == 3
    assert sender.outbox.items == 0
    assert [d["reason"] for d in sender.outbox.dead()] == ["device x is not registered"]


class FakeApi:
    """Just enough of the ingest API for snapshots: presign, PUT into a dict, scripted record answers."""

    def __init__(self) -> None:
        self.store: dict[str, bytes] = {}
        self.records: list[dict[str, Any]] = []
        self.record_answers: list[Callable[[list[dict[str, Any]]], Answer]] = []
        self.presign_refuse: dict[str, Answer] = {}
        self.port = 0

    def __call__(self, seen: Seen) -> Answer:
        if seen.path == "/api/v1/ingest/snapshots/presign":
            body = json.loads(seen.body)
            if body["device_id"] in self.presign_refuse:
                return self.presign_refuse[body["device_id"]]
            key = f"snapshots/{body['device_id']}/{body['ts'][:19].replace(':', '')}.jpg"
            out = {
                "key": key,
                "url": f"http://127.0.0.1:{self.port}/put/{key}",
                "expires_at": "2030-01-01T00:00:00Z",
            }
            return 200, {"Content-Type": "application/json"}, json.dumps(out).encode()
        if seen.method == "PUT" and seen.path.startswith("/put/"):
            self.store[seen.path[5:]] = seen.body
            return 200, {}, b""
        if seen.path == "/api/v1/ingest/snapshots":
            items = json.loads(seen.body)["items"]
            if self.record_answers:
                return self.record_answers.pop(0)(items)
            self.records.extend(items)
            return reply(len(items))
        return 404, {}, b""


async def test_a_record_whose_object_is_not_in_the_store_is_uploaded_again_not_dead(
    http_server: Any, tmp_path: Path, clients: Any
) -> None:
    fake = FakeApi()
    srv = http_server(fake)
    fake.port = srv.port
    not_found = [
        {"index": 0, "errors": ["object not found in the store: upload it through the presigned URL first"]}
    ]
    fake.record_answers = [lambda items: reply(len(items) - 1, rejected=not_found)]
    sender = sender_for(srv, tmp_path, clients)
    add_snapshot(sender.outbox, 0)
    add_snapshot(sender.outbox, 1)
    assert await sender.drain_once() == 1  # the second record went in; the first is kept
    assert dead_count(sender.outbox) == 0 and sender.outbox.depth()["snapshot"] == 1
    kept = sender.outbox.take("snapshot", 10)[0]
    assert kept.object_key is None and kept.blob == JPEG and kept.attempts == 1
    fake.store.clear()  # the store really lost it: the bytes must come from the outbox again
    assert await sender.drain_once() == 1
    assert sender.outbox.items == 0 and dead_count(sender.outbox) == 0
    assert list(fake.store.values()) == [JPEG]
    presigns = [s for s in srv.seen if s.path.endswith("/presign")]
    assert len(presigns) == 3  # two at first, one for the re-upload


async def test_snapshot_records_answered_503_are_kept_with_their_upload(
    http_server: Any, tmp_path: Path, clients: Any
) -> None:
    fake = FakeApi()
    srv = http_server(fake)
    fake.port = srv.port
    fake.record_answers = [lambda _items: problem(503, "the object store is unavailable")]
    sender = sender_for(srv, tmp_path, clients)
    add_snapshot(sender.outbox, 0)
    with pytest.raises(ApiUnavailable):
        await sender.drain_once()
    assert dead_count(sender.outbox) == 0
    (kept,) = sender.outbox.take("snapshot", 10)
    assert kept.object_key is not None  # uploaded once; only the record is sent again
    sender._gate.clear()
    assert await sender.drain_once() == 1
    assert [r["key"] for r in fake.records] == [kept.object_key]


async def test_presign_404_keeps_the_snapshot_and_it_does_not_block_fresh_ones(
    http_server: Any, tmp_path: Path, clients: Any
) -> None:
    fake = FakeApi()
    srv = http_server(fake)
    fake.port = srv.port
    fake.presign_refuse[DEV] = (404, {"Content-Type": PROBLEM}, b'{"title":"Not found","status":404}')
    sender = sender_for(srv, tmp_path, clients, snapshot_batch=1)
    add_snapshot(sender.outbox, 0, device=DEV)  # refused
    add_snapshot(sender.outbox, 1, device=DEV2)
    with pytest.raises(ApiUnavailable):
        await sender.drain_once()  # the refused one went first and was kept
    sender._gate.clear()
    assert await sender.drain_once() == 1  # the fresh one passes it
    assert [r["device_id"] for r in fake.records] == [DEV2]
    assert dead_count(sender.outbox) == 0 and sender.outbox.depth()["snapshot"] == 1
    assert unexpected(sender, "snapshot", 404) == 1


async def test_a_put_refused_by_the_store_keeps_the_bytes(
    http_server: Any, tmp_path: Path, clients: Any
) -> None:
    fake = FakeApi()
    srv = http_server(fake)
    fake.port = srv.port
    real = fake.__call__

    def respond(seen: Seen) -> Answer:
        if seen.method == "PUT":
            return 413, {"Content-Type": "text/html"}, b"<h1>413</h1>"
        return real(seen)

    srv.respond = respond
    sender = sender_for(srv, tmp_path, clients)
    add_snapshot(sender.outbox, 0)
    with pytest.raises(ApiUnavailable):
        await sender.drain_once()
    assert dead_count(sender.outbox) == 0
    assert sender.outbox.take("snapshot", 1)[0].blob == JPEG


async def test_a_result_the_api_does_not_take_is_kept_until_its_deadline(
    http_server: Any, tmp_path: Path, clients: Any
) -> None:
    srv = http_server(lambda _s: (404, {"Content-Type": "text/html"}, b"<h1>gone</h1>"))
    sender = sender_for(srv, tmp_path, clients)
    deadline = dt.datetime.now(dt.UTC) + dt.timedelta(minutes=5)
    sender.outbox.add_result("c1", DEV, deadline, CommandResult(ok=True))
    with pytest.raises(ApiUnavailable):
        await sender.drain_once()
    assert sender.outbox.depth()["result"] == 1 and dead_count(sender.outbox) == 0


async def test_one_failing_route_does_not_stall_the_others(
    http_server: Any, tmp_path: Path, clients: Any
) -> None:
    fake = FakeApi()

    def respond(seen: Seen) -> Answer:
        if seen.path == "/api/v1/ingest/health":
            return 404, {"Content-Type": "text/html"}, b"<h1>no such route</h1>"
        return fake(seen)

    srv = http_server(respond)
    fake.port = srv.port
    sender = sender_for(srv, tmp_path, clients)
    add_health(sender.outbox, 2)
    add_snapshot(sender.outbox, 0)
    assert await sender.drain_once() == 1  # the snapshot went; health kept and backing off
    assert sender.outbox.depth() == {"health": 2, "snapshot": 0, "result": 0, "stream": 0}
    assert "health" in sender._gate and "snapshot" not in sender._gate


def test_outbox_file_is_private(tmp_path: Path) -> None:
    box = Outbox(tmp_path / "o.db")
    add_health(box, 1)
    mode = os.stat(tmp_path / "o.db").st_mode & 0o777
    box.close()
    assert mode == 0o600
    open_to_all = tmp_path / "old.db"
    open_to_all.touch(mode=0o644)
    os.chmod(open_to_all, 0o644)
    Outbox(open_to_all).close()
    assert os.stat(open_to_all).st_mode & 0o777 == 0o600


# -- device credentials -------------------------------------------------------------------------


def auth_recorder(challenge: str) -> Callable[[Seen], Answer]:
    """A server that challenges once, then serves a JPEG to whatever credentials come."""

    def respond(seen: Seen) -> Answer:
        if "authorization" not in seen.headers:
            return 401, {"WWW-Authenticate": challenge}, b""
        return 200, {"Content-Type": "image/jpeg"}, JPEG

    return respond


def test_addresses_compare_host_and_port() -> None:
    a = DeviceAddresses.of("10.1.2.3", 80, ["http://NVR.example:8080/snap.jpg", None])
    assert a.check_snapshot("http://10.1.2.3/onvif/snapshot") and a.check_snapshot(
        "http://nvr.example:8080/x"
    )
    for bad in ("http://10.1.2.3:8080/x", "http://10.1.2.4/x", "https://10.1.2.3/x", "http://evil.example/x"):
        with pytest.raises(BadAnswer, match="points at another host"):
            a.check_snapshot(bad)
    assert a.check_stream("rtsp://10.1.2.3:554/main")
    with pytest.raises(BadAnswer, match="points at another host"):
        a.check_stream("rtsp://10.9.9.9/main")
    assert a.basic_allowed("http", "10.1.2.3") and a.basic_allowed("https", "nvr.example")
    assert not a.basic_allowed("http", "nvr.example")
    v6 = DeviceAddresses.of("[FE80::1]", 80, [])
    assert v6.check_snapshot("http://[fe80:0::1]/x")


async def test_snapshot_uri_at_another_port_never_gets_a_request(http_server: Any) -> None:
    attacker = http_server(auth_recorder('Basic realm="x"'))
    device = DeviceAddresses.of("127.0.0.1", attacker.port + 1 if attacker.port < 65535 else 1, [])
    with pytest.raises(BadAnswer, match="points at another host"):
        await fetch_snapshot(f"{attacker.url}/snap.jpg", "admin", "S3cret!", addresses=device)
    assert attacker.seen == []


async def test_basic_is_answered_only_to_the_device_itself_over_plain_http(http_server: Any) -> None:
    srv = http_server(auth_recorder('Basic realm="cam"'))
    url = f"{srv.url}/snap.jpg"
    # the registry's snapshot URL is on another host than the ONVIF service: Digest yes, Basic no
    elsewhere = DeviceAddresses.of("localhost", 80, [url])
    with pytest.raises(AuthRefused, match="Basic"):
        await fetch_snapshot(url, "admin", "S3cret!", addresses=elsewhere, decode=False)
    assert [s.headers.get("authorization") for s in srv.seen] == [None]
    with pytest.raises(AuthRefused, match="Basic"):
        await fetch_snapshot(url, "admin", "S3cret!", addresses=elsewhere, auth="basic", decode=False)
    assert all("authorization" not in s.headers for s in srv.seen)
    # the device's own host: Basic is answered
    own = DeviceAddresses.of("127.0.0.1", srv.port, [])
    snap = await fetch_snapshot(url, "admin", "S3cret!", addresses=own, decode=False)
    assert snap.data == JPEG
    assert srv.seen[-1].headers["authorization"] == "Basic " + base64.b64encode(b"admin:S3cret!").decode()


async def test_digest_is_still_answered_at_a_registered_url(http_server: Any) -> None:
    srv = http_server(auth_recorder('Digest realm="cam", nonce="abc", qop="auth"'))
    url = f"{srv.url}/snap.jpg"
    snap = await fetch_snapshot(url, "admin", "S3cret!", addresses=DeviceAddresses.of("localhost", 80, [url]))
    assert snap.data == JPEG
    sent = srv.seen[-1].headers["authorization"]
    assert sent.startswith("Digest ") and "S3cret" not in sent


async def test_rtsp_url_on_another_host_is_refused_before_connecting() -> None:
    device = DeviceAddresses.of("127.0.0.1", 80, [])
    with pytest.raises(BadAnswer, match="points at another host"):
        await rtsp_probe.fetch_frame("rtsp://192.0.2.1:554/main", "admin", "pw", 1.0, device)


@pytest.fixture
async def sim() -> AsyncIterator[Simulator]:
    await warm_wsdl()
    async with Simulator(n_cameras=1, n_checkpoints=0) as s:
        yield s


@pytest.fixture
def evil_snapshot_uri(http_server: Any, monkeypatch: pytest.MonkeyPatch) -> Server:
    """The simulator's cameras answer GetSnapshotUri with a URL on another 127.0.0.1 port."""
    attacker = http_server(auth_recorder('Basic realm="x"'))

    async def get_snapshot_uri(dev: Any, req: Any, path: str) -> tuple[str, str | None]:
        return sim_onvif._media_uri("GetSnapshotUri", f"{attacker.url}/steal.jpg"), None

    monkeypatch.setitem(sim_onvif.OPERATIONS, "GetSnapshotUri", get_snapshot_uri)
    return attacker


def probe_request(dev: Any, snapshot_url: str | None = None) -> ProbeRequest:
    return ProbeRequest(
        device_id=dev.device_id,
        onvif=OnvifEndpoint(host="127.0.0.1", port=dev.port, username=dev.username, password=dev.password),
        snapshot_url=snapshot_url,
        deadline_s=4.0,
    )


async def test_installer_probe_refuses_a_snapshot_uri_at_another_port(
    sim: Simulator, evil_snapshot_uri: Server
) -> None:
    dev = sim.devices[0]
    out = await run_installer(probe_request(dev), ProbeSettings(call_timeout_s=2.0))
    r = out.result
    steps = {s.name: s for s in r.steps}
    assert steps["uris"].outcome == "failed" and "points at another host" in (steps["uris"].message or "")
    assert r.error is not None and r.error.code == "bad_answer"
    assert r.snapshot_uri is None  # never reported, so never stored and handed back as trusted
    assert r.stream_uri == dev.rtsp_url  # the stream on the device's own host is fine
    assert evil_snapshot_uri.seen == []
    # with the registry's own snapshot URL the probe still gets its picture, from the device
    out = await run_installer(probe_request(dev, dev.snapshot_url), ProbeSettings(call_timeout_s=2.0))
    assert out.jpeg is not None and out.result.snapshot is not None
    assert evil_snapshot_uri.seen == []


async def test_agent_snapshot_work_refuses_a_device_uri_at_another_port(
    sim: Simulator, http_server: Any, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    dev = sim.devices[0]
    s = settings("http://127.0.0.1:9", tmp_path, call_timeout_s=2.0)
    box = Outbox(s.outbox)
    pool = OnvifPool(max_size=4, timeout_s=2.0)
    http = httpx.AsyncClient(timeout=5, trust_env=False, follow_redirects=False)
    metrics = Metrics()
    work = DeviceWork(s, box, metrics, pool, http, Judge(box))
    a = Assignment(
        device_id=dev.device_id,
        kind="camera",
        onvif=OnvifCredentials(host="127.0.0.1", port=dev.port, username=dev.username, password=dev.password),
        health_interval_s=60,
        snapshot_interval_s=900,
    )
    try:
        assert await work.snapshot(a) is not None  # the honest device: a picture through its own URI
        attacker = http_server(auth_recorder('Basic realm="x"'))

        async def evil(d: Any, req: Any, path: str) -> tuple[str, str | None]:
            return sim_onvif._media_uri("GetSnapshotUri", f"{attacker.url}/steal.jpg"), None

        monkeypatch.setitem(sim_onvif.OPERATIONS, "GetSnapshotUri", evil)
        work.forget(dev.device_id)  # drop the cached URI: ask the device again
        key = await work.snapshot(a)  # no picture: the failure itself is the evidence recorded
        (failed,) = [e for e in box.take("snapshot", 10) if e.key == key]
        assert failed.blob is None and "another host" in failed.payload["error"]
        assert attacker.seen == []
        assert (
            metrics.registry.get_sample_value(
                "tianwang_agent_probes_total", {"kind": "snapshot", "outcome": "bad_answer"}
            )
            == 1
        )
    finally:
        await http.aclose()
        await pool.close()
        box.close()
