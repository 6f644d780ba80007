"""Alarm delivery beyond the console: sinks at the API, the durable outbox written with the alarm,
leased claims shared by several workers, and the whole path through a webhook receiver that is down
then failing, a Mosquitto broker restarted mid-run and an API restarted mid-run."""

from __future__ import annotations

import collections
import contextlib
import datetime as dt
import hashlib
import hmac
import json
import random
import shutil
import socket
import subprocess
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import anyio
import httpx
import paho.mqtt.client as mqtt
import pytest
from cryptography.fernet import Fernet
from fastapi.testclient import TestClient
from paho.mqtt.enums import CallbackAPIVersion
from sqlalchemy import func, select

from tests.conftest import IN_CI, LiveServer, auth, free_port
from tests.sightings_support import CP1, CP2, base_time, pass_item, seed
from tianwang.alarms import sinks as alarm_sinks
from tianwang.alarms.delivery import Deliverer
from tianwang.api.app import create_app
from tianwang.auth.tokens import create_token
from tianwang.config import Settings
from tianwang.context import AppContext
from tianwang.records import ingest as records
from tianwang.storage.models import AlarmDelivery, AlarmSink, Hotlist, HotlistEntry, utcnow

SECRET = "webhook-secret-✓"
CASE = "A4403052026110009"


def _hotlist(t: dt.datetime, plate: str) -> dict[str, Any]:
    return {
        "name": f"布控 {plate}",
        "reason": "stolen vehicle",
        "case_no": CASE,
        "valid_from": (t - dt.timedelta(hours=1)).isoformat(),
        "valid_to": (t + dt.timedelta(days=3)).isoformat(),
        "priority": 10,
        "entries": [{"plate_no": plate}],
    }


# --- pure parts ---------------------------------------------------------------------------------


def test_backoff_doubles_to_its_cap_with_jitter() -> None:
    rng = random.Random(7)
    for attempts in range(1, 30):
        ceiling = min(60.0, 0.5 * 2 ** (attempts - 1))
        waits = [alarm_sinks.backoff_s(attempts, 0.5, 60.0, rng) for _ in range(50)]
        assert all(ceiling / 2 <= w <= ceiling for w in waits)
        assert len(set(waits)) > 1  # jittered: many rows retried at once spread out
    assert alarm_sinks.backoff_s(10_000, 1.0, 300.0, rng) <= 300.0


# --- the sinks at the API -----------------------------------------------------------------------


def test_alarm_sinks_api(client: TestClient, ctx: AppContext, tokens: dict[str, str]) -> None:
    adm, staff, inv = auth(tokens["admin"]), auth(tokens["staff"]), auth(tokens["investigator"])
    t = base_time()
    hid = client.post("/api/v1/hotlists", json=_hotlist(t, "粤B11111"), headers=inv).json()["id"]
    body = {"kind": "webhook", "url": "https://hooks.example.test/tw", "secret": SECRET, "hotlist_ids": [hid]}
    assert client.post("/api/v1/alarm-sinks", json=body, headers=staff).status_code == 403
    assert client.post("/api/v1/alarm-sinks", json=body, headers=inv).status_code == 403
    r = client.post("/api/v1/alarm-sinks", json=body, headers=adm)
    assert r.status_code == 201, r.text
    hook = r.json()
    assert hook["has_secret"] is True and hook["hotlist_ids"] == [hid] and "secret" not in hook
    assert SECRET not in r.text
    m = client.post(
        "/api/v1/alarm-sinks",
        json={"kind": "mqtt", "topic": "city/alarms", "url": "mqtt://bus@10.1.2.3"},
        headers=adm,
    )
    assert m.status_code == 201, m.text
    assert m.json()["url"] == "mqtt://bus@10.1.2.3" and m.json()["has_secret"] is False
    # the secret is encrypted at rest and readable with the key
    with ctx.db.session() as s:
        row = s.get(AlarmSink, hook["id"])
        assert row is not None and row.secret_enc is not None
        assert SECRET.encode() not in row.secret_enc
        assert ctx.box.decrypt(row.secret_enc) == SECRET

    listed = client.get("/api/v1/alarm-sinks", headers=staff)
    assert listed.status_code == 200
    assert [(x["id"], x["kind"], x["pending"]) for x in listed.json()["items"]] == [
        (hook["id"], "webhook", 0),
        (m.json()["id"], "mqtt", 0),
    ]
    assert SECRET not in listed.text
    assert client.get("/api/v1/alarm-sinks", headers=inv).status_code == 403

    bad = [
        ({"kind": "webhook"}, "url"),
        ({"kind": "webhook", "url": "ftp://x.test/"}, "url"),
        ({"kind": "webhook", "url": "https://u:pw@x.test/"}, "url"),
        ({"kind": "webhook", "url": "https://x.test/", "topic": "a"}, "topic"),
        ({"kind": "mqtt"}, "topic"),
        ({"kind": "mqtt", "topic": "city/#"}, "topic"),
        ({"kind": "mqtt", "topic": "city", "url": "http://x.test"}, "url"),
        ({"kind": "webhook", "url": "https://x.test/", "hotlist_ids": [hid, 999_999]}, "hotlist_ids"),
        ({"kind": "smtp", "url": "https://x.test/"}, "kind"),
        ({"kind": "webhook", "url": "https://x.test/", "hotlist_ids": [2**40]}, "hotlist_ids"),
    ]
    for payload, field in bad:
        r = client.post("/api/v1/alarm-sinks", json=payload, headers=adm)
        assert r.status_code == 422, (payload, r.text)
        assert r.headers["content-type"].startswith("application/problem+json")
        assert field in json.dumps(r.json()["errors"]), (payload, r.json())

    assert client.delete(f"/api/v1/alarm-sinks/{hook['id']}", headers=staff).status_code == 403
    assert client.delete(f"/api/v1/alarm-sinks/{hook['id']}", headers=adm).status_code == 204
    assert client.delete(f"/api/v1/alarm-sinks/{hook['id']}", headers=adm).status_code == 404
    assert [x["id"] for x in client.get("/api/v1/alarm-sinks", headers=adm).json()["items"]] == [
        m.json()["id"]
    ]


def test_outbox_is_written_with_the_alarm(ctx: AppContext) -> None:
    """One row per matching sink in the alarm's transaction; a rolled-back ingest leaves neither."""
    seed(ctx)
    t = base_time()
    with ctx.db.session() as s:
        a = Hotlist(
            name="a",
            reason="r",
            case_no=CASE,
            valid_from=t - dt.timedelta(hours=1),
            valid_to=t + dt.timedelta(days=1),
            priority=1,
            created_by="x",
            created_at=t,
        )
        b = Hotlist(
            name="b",
            reason="r",
            case_no=CASE,
            valid_from=t - dt.timedelta(hours=1),
            valid_to=t + dt.timedelta(days=1),
            priority=1,
            created_by="x",
            created_at=t,
        )
        s.add_all([a, b])
        s.flush()

        s.add_all(
            [
                HotlistEntry(hotlist_id=a.id, kind="plate", value="粤B11111"),
                HotlistEntry(hotlist_id=b.id, kind="plate", value="粤B22222"),
            ]
        )
        s.add_all(
            [
                AlarmSink(kind="webhook", url="http://127.0.0.1:9/", created_by="x", created_at=t),
                AlarmSink(
                    kind="webhook",
                    url="http://127.0.0.1:9/b",
                    hotlist_ids=[b.id],
                    created_by="x",
                    created_at=t,
                ),
            ]
        )
    with pytest.raises(RuntimeError), ctx.db.session() as s:
        out = records.ingest_passes(s, [pass_item("ob-rollback", "粤B22222", t, CP1)])
        assert len(out.alarms) == 1
        raise RuntimeError("the ingest transaction fails after the match")
    with ctx.db.session() as s:
        assert s.scalar(select(func.count()).select_from(AlarmDelivery)) == 0
        out = records.ingest_passes(
            s,
            [
                pass_item("ob-000001", "粤B11111", t, CP1),
                pass_item("ob-000002", "粤B22222", t, CP2),
                pass_item("ob-000003", "粤B33333", t, CP2),
            ],
        )
        assert len(out.alarms) == 2
    with ctx.db.session() as s:
        rows = s.execute(select(AlarmDelivery.alarm_id, AlarmDelivery.sink_id, AlarmDelivery.state)).all()
        by_alarm = collections.Counter(r[0] for r in rows)
        assert sorted(by_alarm.values()) == [1, 2]  # hotlist a: the catch-all sink; b: both
        assert {r[2] for r in rows} == {"pending"}
        assert alarm_sinks.pending_by_sink(s) and sum(alarm_sinks.pending_by_sink(s).values()) == 3


# --- receivers ----------------------------------------------------------------------------------


class WebhookReceiver:
    """A webhook receiver on 127.0.0.1: down (nothing listens), failing (500) or up; it verifies the
    signature of every request and counts deliveries by alarm id (dedupe = the set of ids)."""

    def __init__(self, port: int, secret: str) -> None:
        self.port, self.secret = port, secret
        self.failing = False
        self.delay_s = 0.0  # > the API's timeout: a receiver that hangs
        self.delivered: collections.Counter[int] = collections.Counter()
        self.refused = 0
        self.bad: list[str] = []
        self.lock = threading.Lock()
        self.server: ThreadingHTTPServer | None = None

    def start(self) -> None:
        rx = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                if rx.delay_s:
                    time.sleep(rx.delay_s)
                    return  # the caller timed out: no answer
                want = "sha256=" + hmac.new(rx.secret.encode(), body, hashlib.sha256).hexdigest()
                alarm = json.loads(body)
                with rx.lock:
                    if self.headers.get("X-Tianwang-Signature") != want:
                        rx.bad.append("signature")
                    if self.headers.get("X-Tianwang-Alarm-Id") != str(alarm["id"]):
                        rx.bad.append("alarm id header")
                    if rx.failing:
                        rx.refused += 1
                    else:
                        rx.delivered[int(alarm["id"])] += 1
                self.send_response(500 if rx.failing else 204)
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def stop(self) -> None:
        if self.server is not None:
            self.server.shutdown()
            self.server.server_close()


MOSQUITTO = shutil.which("mosquitto") or (
    "/usr/sbin/mosquitto" if Path("/usr/sbin/mosquitto").exists() else None
)


class Broker:
    """Mosquitto on a free 127.0.0.1 port, persistent (a durable subscriber keeps its queue over a
    restart, as a real deployment's broker does)."""

    def __init__(self, tmp: Path) -> None:
        self.port = free_port()
        store = tmp / "mosquitto"
        store.mkdir()
        self.conf = tmp / "mosquitto.conf"
        self.conf.write_text(
            f"listener {self.port} 127.0.0.1\nallow_anonymous true\npersistence true\n"
            f"persistence_location {store}/\n"
        )
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        assert MOSQUITTO is not None
        self.proc = subprocess.Popen(
            [MOSQUITTO, "-c", str(self.conf)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            with socket.socket() as s:
                if s.connect_ex(("127.0.0.1", self.port)) == 0:
                    return
            time.sleep(0.05)
        raise RuntimeError("mosquitto did not start")

    def stop(self) -> None:
        if self.proc is not None:
            self.proc.terminate()
            self.proc.wait(10)
            self.proc = None


class Subscriber:
    """A durable MQTT subscriber (clean_session false, QoS 1) counting alarms by id and topic."""

    def __init__(self, port: int, pattern: str) -> None:
        self.delivered: collections.Counter[int] = collections.Counter()
        self.topics: dict[int, str] = {}
        self.lock = threading.Lock()
        self.subscribed = threading.Event()
        c = self.client = mqtt.Client(
            CallbackAPIVersion.VERSION2, client_id="tw-test-rx", clean_session=False
        )
        c.reconnect_delay_set(1, 1)

        def on_connect(client: mqtt.Client, _u: Any, _f: Any, rc: Any, _p: Any) -> None:
            client.subscribe(pattern, qos=1)

        def on_subscribe(*_a: Any) -> None:
            self.subscribed.set()

        def on_message(_c: Any, _u: Any, msg: mqtt.MQTTMessage) -> None:
            alarm = json.loads(msg.payload)
            with self.lock:
                self.delivered[int(alarm["id"])] += 1
                self.topics[int(alarm["id"])] = msg.topic

        c.on_connect, c.on_subscribe, c.on_message = on_connect, on_subscribe, on_message
        c.connect_async("127.0.0.1", port, keepalive=5)
        c.loop_start()

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


@pytest.fixture
def broker(tmp_path: Path) -> Iterator[Broker]:
    if MOSQUITTO is None:
        if IN_CI:
            pytest.fail("mosquitto is required under CI=true (make system-packages installs it)")
        pytest.skip("mosquitto is not installed (apt-get install mosquitto)")
    b = Broker(tmp_path)
    b.start()
    try:
        yield b
    finally:
        b.stop()


def _settings(tmp: Path, db_url: str, port: int, key: str, **kw: Any) -> Settings:
    # the minute of outage and the backoff caps shortened, the shape kept
    fast = {
        "alarm_retry_base_s": 0.1,
        "alarm_retry_max_s": 1.0,
        "alarm_delivery_poll_s": 0.2,
        "alarm_delivery_timeout_s": 2.0,
        "alarm_delivery_lease_s": 5.0,
    }
    return Settings(
        data_dir=tmp,
        database_url=db_url,
        object_store=f"dir:{tmp / 'objects'}",
        secret_key=key,
        public_url=f"http://127.0.0.1:{port}",
        **{**fast, **kw},
    )


def _samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    from prometheus_client.parser import text_string_to_metric_families

    return {
        (x.name, tuple(sorted(x.labels.items()))): x.value
        for fam in text_string_to_metric_families(text)
        for x in fam.samples
    }


def _wait(cond: Any, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not cond():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.05)


def test_every_alarm_arrives_through_outages(tmp_path: Path, db_url: str, broker: Broker) -> None:
    """Webhook receiver down (refused, then 500s) for a while, the broker restarted, the API
    restarted: every alarm arrives, by id, at each sink it was meant for; duplicates (at least
    once) are only ever of the same id, so a receiver deduping by id has each exactly once."""
    rx_port, api_port = free_port(), free_port()
    key = Fernet.generate_key().decode()
    settings = _settings(tmp_path, db_url, api_port, key)
    ctx = AppContext.build(settings)
    seed(ctx)
    with ctx.db.session() as s:
        tok = {r: create_token(s, r, f"dl-{r}") for r in ("investigator", "agent", "admin", "staff")}
    sub = Subscriber(broker.port, "tw/#")
    assert sub.subscribed.wait(10)
    rx = WebhookReceiver(rx_port, SECRET)
    t = base_time()
    srv = LiveServer(create_app(settings, ctx), api_port).start()
    servers = [srv]
    n = 0

    def ingest(c: httpx.Client, count: int) -> None:
        nonlocal n
        items = []
        for _ in range(count):
            n += 1
            plate = ("粤B11111", "粤B22222", "粤B99999")[n % 3]  # the last one is on no hotlist
            items.append(pass_item(f"dl-{n:06d}", plate, t + dt.timedelta(seconds=n), (CP1, CP2)[n % 2]))
        r = c.post("/api/v1/ingest/passes", json={"items": items}, headers=auth(tok["agent"]))
        assert r.status_code == 200 and r.json()["accepted"] == count, r.text

    try:
        with httpx.Client(base_url=srv.url, timeout=10) as c:
            inv, adm = auth(tok["investigator"]), auth(tok["admin"])
            ha = c.post("/api/v1/hotlists", json=_hotlist(t, "粤B11111"), headers=inv).json()["id"]
            hb = c.post("/api/v1/hotlists", json=_hotlist(t, "粤B22222"), headers=inv).json()["id"]
            hook = c.post(
                "/api/v1/alarm-sinks",
                json={
                    "kind": "webhook",
                    "url": f"http://127.0.0.1:{rx_port}/alarms",
                    "secret": SECRET,
                    "hotlist_ids": [ha],
                },
                headers=adm,
            )
            assert hook.status_code == 201, hook.text
            mq = c.post(
                "/api/v1/alarm-sinks",
                json={"kind": "mqtt", "url": f"mqtt://127.0.0.1:{broker.port}", "topic": "tw"},
                headers=adm,
            )
            assert mq.status_code == 201, mq.text

            # 1. the webhook receiver is down (connection refused); the broker is up
            ingest(c, 30)
            _wait(lambda: len(sub.delivered) == 20, 15, "MQTT deliveries of the first batch")
            assert not rx.delivered
            # 2. the broker restarts while alarms are raised
            broker.stop()
            ingest(c, 30)
            time.sleep(1.0)
            broker.start()

            def refused_retries() -> bool:
                with ctx.db.session() as s:
                    rows = s.execute(
                        select(AlarmDelivery.attempts, AlarmDelivery.last_error).where(
                            AlarmDelivery.sink_id == hook.json()["id"]
                        )
                    ).all()
                return bool(rows) and all(n >= 2 and "Connect" in (e or "") for n, e in rows)

            _wait(refused_retries, 15, "retries of every webhook delivery against the refused port")
            listed = c.get("/api/v1/alarm-sinks", headers=auth(tok["staff"])).json()["items"]
            assert listed[0]["pending"] == 20 and "Connect" in listed[0]["last_error"]
            # 3. the receiver answers, but 500 (not delivered: retried)
            rx.failing = True
            rx.start()
            ingest(c, 30)
            _wait(lambda: rx.refused >= 5, 15, "retries against the failing receiver")
        # 4. the API restarts: the outbox is in the database, nothing is lost
        srv.stop()
        ctx.close()
        ctx = AppContext.build(settings)
        srv = LiveServer(create_app(settings, ctx), api_port).start()
        servers.append(srv)
        with httpx.Client(base_url=srv.url, timeout=10) as c:
            ingest(c, 30)
            rx.failing = False  # 5. the receiver is up
            ingest(c, 30)

            alarms = c.get(
                "/api/v1/alarms", params={"limit": 1000}, headers=auth(tok["investigator"])
            ).json()["items"]
            assert len(alarms) == 100  # 150 passes, a third on no hotlist
            for_hook = {a["id"] for a in alarms if a["hotlist_id"] == ha}
            every = {a["id"] for a in alarms}
            _wait(
                lambda: set(rx.delivered) >= for_hook and set(sub.delivered) >= every,
                30,
                "every alarm at its sinks",
            )
            time.sleep(0.5)  # late duplicates, if any, would show now
            assert set(rx.delivered) == for_hook  # only hotlist a's alarms go to the webhook
            assert set(sub.delivered) == every
            assert not rx.bad  # every request signed and carrying its alarm id
            topics = {a["id"]: f"tw/hotlists/{a['hotlist_id']}" for a in alarms}
            assert all(sub.topics[i] == topics[i] for i in every)  # one topic per hotlist
            assert {a["hotlist_id"] for a in alarms} == {ha, hb}
            # at least once: any repeat is of an id already seen, so deduping by id leaves each once
            assert sum(rx.delivered.values()) >= len(for_hook) and sum(sub.delivered.values()) >= len(every)

            sinks = c.get("/api/v1/alarm-sinks", headers=auth(tok["staff"])).json()["items"]
            assert [(x["pending"], x["last_error"]) for x in sinks] == [(0, None), (0, None)]
            metrics = _samples(c.get("/metrics", headers=auth(tok["staff"])).text)
            hook_id = str(hook.json()["id"])
            assert metrics[("tianwang_alarm_outbox_depth", (("kind", "webhook"), ("sink", hook_id)))] == 0
            delivered = (
                "tianwang_alarm_deliveries_total",
                (("kind", "webhook"), ("outcome", "delivered"), ("sink", hook_id)),
            )
            assert metrics[delivered] >= 1  # counted by the API after its restart
    finally:
        for s in servers:
            s.stop()
        ctx.close()
        rx.stop()
        sub.close()


def test_workers_share_the_outbox_without_sending_twice(tmp_path: Path, db_url: str) -> None:
    """Three workers (as three API replicas) drain one outbox; leases keep each alarm to one send."""
    rx_port = free_port()
    settings = _settings(
        tmp_path, db_url, free_port(), Fernet.generate_key().decode(), alarm_delivery_batch=25
    )
    ctx = AppContext.build(settings)
    rx = WebhookReceiver(rx_port, SECRET)
    rx.start()
    try:
        seed(ctx)
        t = base_time()
        with ctx.db.session() as s:
            h = Hotlist(
                name="a",
                reason="r",
                case_no=CASE,
                valid_from=t - dt.timedelta(hours=1),
                valid_to=t + dt.timedelta(days=1),
                priority=1,
                created_by="x",
                created_at=t,
            )
            s.add(h)
            s.flush()
            from tianwang.storage.models import HotlistEntry

            s.add(HotlistEntry(hotlist_id=h.id, kind="plate", value="粤B11111"))
            s.add(
                AlarmSink(
                    kind="webhook",
                    url=f"http://127.0.0.1:{rx_port}/",
                    secret_enc=ctx.box.encrypt(SECRET),
                    created_by="x",
                    created_at=t,
                )
            )
        with ctx.db.session() as s:
            at = [t + dt.timedelta(seconds=i) for i in range(300)]
            items = [pass_item(f"wk-{i:06d}", "粤B11111", ts, CP1) for i, ts in enumerate(at)]
            out = records.ingest_passes(s, items)
            ids = {a.id for a in out.alarms}
        assert len(ids) == 300

        async def drain() -> None:
            workers = [Deliverer(AppContext.build(settings)) for _ in range(3)]
            try:
                with anyio.fail_after(60):
                    while set(rx.delivered) != ids:
                        await _gather_once(workers)
            finally:
                for w in workers:
                    await w.aclose()
                    w.ctx.close()

        anyio.run(drain)
        assert set(rx.delivered) == ids
        assert max(rx.delivered.values()) == 1  # no row was sent by two workers
        with ctx.db.session() as s:
            assert alarm_sinks.pending_by_sink(s) == {}
    finally:
        rx.stop()
        ctx.close()


async def _gather_once(workers: list[Deliverer]) -> None:
    import asyncio

    await asyncio.gather(*(w.once() for w in workers))


def test_a_lease_holds_until_it_runs_out(ctx: AppContext) -> None:
    """A claimed row is not claimed again while leased; after the lease (its worker died) it is, and
    the first worker's late failure then leaves the new claim alone. An unreadable secret fails the
    sink's deliveries (retried later), not the round."""
    seed(ctx)
    t = base_time()
    with ctx.db.session() as s:
        h = Hotlist(
            name="a",
            reason="r",
            case_no=CASE,
            valid_from=t - dt.timedelta(hours=1),
            valid_to=t + dt.timedelta(days=1),
            priority=1,
            created_by="x",
            created_at=t,
        )
        s.add(h)
        s.flush()

        s.add(HotlistEntry(hotlist_id=h.id, kind="plate", value="粤B11111"))
        other_key = Fernet(Fernet.generate_key())
        s.add(
            AlarmSink(
                kind="webhook",
                url="http://127.0.0.1:9/",
                secret_enc=other_key.encrypt(b"x"),
                created_by="x",
                created_at=t,
            )
        )
    with ctx.db.session() as s:
        records.ingest_passes(s, [pass_item(f"ls-{i:06d}", "粤B11111", t, CP1) for i in range(3)])
    now = utcnow() + dt.timedelta(seconds=1)
    with ctx.db.session() as s:
        first = alarm_sinks.claim(s, now=now, lease_s=30, limit=10)
    assert len(first) == 3
    with ctx.db.session() as s:
        assert alarm_sinks.claim(s, now=now + dt.timedelta(seconds=29), lease_s=30, limit=10) == []
    with ctx.db.session() as s:
        second = alarm_sinks.claim(s, now=now + dt.timedelta(seconds=31), lease_s=30, limit=10)
    assert sorted(j.delivery_id for j in second) == sorted(j.delivery_id for j in first)
    assert {j.claim for j in second} != {j.claim for j in first}
    with ctx.db.session() as s:  # the first worker comes back late: its outcome is not recorded
        alarm_sinks.mark_failed(s, [(j, "late") for j in first], now=now, base_s=1, max_s=1)
    with ctx.db.session() as s:
        rows = list(s.scalars(select(AlarmDelivery)))
        assert {r.claim for r in rows} == {second[0].claim} and {r.attempts for r in rows} == {0}

    async def round_() -> int:
        d = Deliverer(ctx)
        try:
            return await d.once()
        finally:
            await d.aclose()

    with ctx.db.session() as s:  # the lease run out once more: the worker's round takes the rows
        s.execute(AlarmDelivery.__table__.update().values(next_at=now - dt.timedelta(seconds=1)))
    assert anyio.run(round_) == 3
    with ctx.db.session() as s:
        rows = list(s.scalars(select(AlarmDelivery)))
        assert {r.attempts for r in rows} == {1} and {r.state for r in rows} == {"pending"}
        assert all("cannot be decrypted" in (r.last_error or "") for r in rows)


def test_a_hanging_receiver_delays_only_its_own_alarms(tmp_path: Path, db_url: str) -> None:
    """Each sink has its own delivery loop: while one receiver hangs past the timeout, another
    sink's alarms still arrive at once (woken by the commit, not by the poll)."""
    settings = _settings(
        tmp_path,
        db_url,
        free_port(),
        Fernet.generate_key().decode(),
        alarm_delivery_timeout_s=4.0,
        alarm_delivery_poll_s=5.0,
    )
    ctx = AppContext.build(settings)
    fast, slow = WebhookReceiver(free_port(), SECRET), WebhookReceiver(free_port(), SECRET)
    slow.delay_s = 6.0
    fast.start()
    slow.start()
    seed(ctx)
    t = base_time()
    with ctx.db.session() as s:
        h = Hotlist(
            name="a",
            reason="r",
            case_no=CASE,
            valid_from=t - dt.timedelta(hours=1),
            valid_to=t + dt.timedelta(days=1),
            priority=1,
            created_by="x",
            created_at=t,
        )
        s.add(h)
        s.flush()
        s.add(HotlistEntry(hotlist_id=h.id, kind="plate", value="粤B11111"))
        for rx in (slow, fast):
            s.add(
                AlarmSink(
                    kind="webhook",
                    url=f"http://127.0.0.1:{rx.port}/",
                    secret_enc=ctx.box.encrypt(SECRET),
                    created_by="x",
                    created_at=t,
                )
            )
    count = 0

    def ingest(n: int) -> None:
        nonlocal count
        with ctx.db.session() as s:
            items = [pass_item(f"hg-{count + i:06d}", "粤B11111", t, CP1) for i in range(n)]
            assert len(records.ingest_passes(s, items).alarms) == n
        count += n

    took: list[float] = []

    async def main() -> None:
        import asyncio

        d = Deliverer(ctx)
        task = asyncio.create_task(d.run())
        try:
            await asyncio.sleep(0.5)  # the sinks are read, their loops wait
            for _ in range(2):  # the second batch comes while the slow receiver still hangs
                t0 = time.monotonic()
                await anyio.to_thread.run_sync(ingest, 3)
                while len(fast.delivered) < count and time.monotonic() - t0 < 10:
                    await asyncio.sleep(0.02)
                took.append(time.monotonic() - t0)
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    try:
        anyio.run(main)
        assert len(fast.delivered) == 6
        assert not slow.delivered  # it never answered
        assert max(took) < 1.5, took  # not held behind the 4 s timeouts of the other sink
    finally:
        fast.stop()
        slow.stop()
        ctx.close()
