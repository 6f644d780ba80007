"""The object store's two backends under the same assertions: a directory behind the API's signed URLs,
and MinIO's SDK over the real S3 wire protocol against a local S3 server process (moto)."""

from __future__ import annotations

import datetime as dt
import hashlib
import os
import re
import threading
import time
import urllib.parse
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from cryptography.fernet import Fernet

from tests.conftest import LiveServer, free_port
from tianwang.api.app import create_app
from tianwang.config import Settings
from tianwang.context import AppContext
from tianwang.errors import Conflict, NotFound, ValidationFailed
from tianwang.storage.objectstore import (
    MAX_EXPIRY_S,
    DirectoryStore,
    MinioStore,
    ObjectStore,
    ObjectStoreUnavailable,
    check_bucket,
    open_store,
    snapshot_key,
)

JPEG = b"\xff\xd8\xff\xe0" + bytes(range(256)) * 4 + b"\xff\xd9"
DEVICE = "44030500001320000001"
PROBLEM = "application/problem+json"


@dataclass
class Backend:
    kind: str
    store: ObjectStore
    api_url: str
    existed_before_start: bool


def bucket_exists(store: ObjectStore) -> bool:
    if isinstance(store, DirectoryStore):
        return (store.root / store.bucket).is_dir()
    assert isinstance(store, MinioStore)
    return bool(store.client.bucket_exists(store.bucket))


def s3_spec(endpoint: str) -> str:
    return f"s3://testkey:testsecret@{endpoint}?secure=false"


@pytest.fixture(params=["dir", "s3"])
def backend(request: pytest.FixtureRequest, tmp_path: Path, sqlite_database: str) -> Iterator[Backend]:
    """The API on a live socket with the given object store; the store is the API's own."""
    if request.param == "dir":
        spec = f"dir:{tmp_path / 'objects'}"
    else:
        spec = s3_spec(request.getfixturevalue("s3_server"))
    port = free_port()
    settings = Settings(
        data_dir=tmp_path,
        database_url=sqlite_database,
        object_store=spec,
        bucket=f"tw-{uuid.uuid4().hex[:12]}",  # the S3 server lives for the session
        secret_key=Fernet.generate_key().decode(),
        public_url=f"http://127.0.0.1:{port}",
    )
    ctx = AppContext.build(settings)
    before = bucket_exists(ctx.store)
    srv = LiveServer(create_app(settings, ctx), port).start()
    try:
        yield Backend(request.param, ctx.store, srv.url, before)
    finally:
        srv.stop()
        ctx.close()


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def assert_problem(r: httpx.Response, status: int) -> dict[str, object]:
    assert r.status_code == status, r.text
    assert r.headers["content-type"].startswith(PROBLEM)
    body: dict[str, object] = r.json()
    assert body["status"] == status and body["title"] and body["detail"]
    return body


# -- both backends ----------------------------------------------------------------------------


def test_bucket_created_on_start(backend: Backend) -> None:
    assert not backend.existed_before_start
    assert bucket_exists(backend.store)
    backend.store.put("keep.bin", b"x")
    backend.store.ensure_bucket()  # idempotent, keeps what is there
    assert backend.store.get("keep.bin") == b"x"


def test_put_get_stat_exists(backend: Backend) -> None:
    s = backend.store
    key = "photos/c1/front.jpg"
    assert not s.exists(key)
    info = s.put(key, JPEG, "image/jpeg")
    assert (info.key, info.size, info.sha256, info.content_type) == (key, len(JPEG), sha(JPEG), "image/jpeg")
    assert s.exists(key)
    assert s.get(key) == JPEG
    st = s.stat(key)
    assert (st.key, st.size, st.sha256, st.content_type) == (key, len(JPEG), sha(JPEG), "image/jpeg")
    assert st.modified is not None and st.modified.tzinfo is not None
    data, rinfo = s.read(key)
    assert data == JPEG and rinfo.sha256 == sha(JPEG) and rinfo.content_type == "image/jpeg"


def test_overwrite_replaces_content_and_metadata(backend: Backend) -> None:
    s = backend.store
    s.put("a/obj", JPEG, "image/jpeg")
    s.put("a/obj", b"second", "text/plain")
    assert s.get("a/obj") == b"second"
    st = s.stat("a/obj")
    assert (st.size, st.sha256, st.content_type) == (6, sha(b"second"), "text/plain")


def test_empty_object_and_default_type(backend: Backend) -> None:
    s = backend.store
    s.put("empty", b"")
    st = s.stat("empty")
    assert (st.size, st.sha256, st.content_type) == (0, sha(b""), "application/octet-stream")
    assert s.get("empty") == b""


def test_missing_objects_raise_not_found(backend: Backend) -> None:
    s = backend.store
    s.put("dir/child.bin", b"1")
    for key in ("nope.bin", "dir", "dir/child.bin/deeper"):
        with pytest.raises(NotFound):
            s.get(key)
        with pytest.raises(NotFound):
            s.stat(key)
        with pytest.raises(NotFound):
            s.read(key)
        assert not s.exists(key)
    s.delete("nope.bin")  # deleting what is not there is not an error, as in S3


def test_delete(backend: Backend) -> None:
    s = backend.store
    s.put("x/1.bin", b"1")
    s.put("x/2.bin", b"2")
    s.delete("x/1.bin")
    assert not s.exists("x/1.bin")
    with pytest.raises(NotFound):
        s.get("x/1.bin")
    assert [o.key for o in s.list("x/")] == ["x/2.bin"]
    assert s.get("x/2.bin") == b"2"


def test_list_by_prefix_in_key_order(backend: Backend) -> None:
    s = backend.store
    keys = [
        "snapshots/a/2024/01/02/x.jpg",
        "snapshots/a/2024/01/03/y.jpg",
        "snapshots/a-b/w.jpg",
        "snapshots/a.x",
        "snapshots/ab/z.jpg",
        "photos/p.jpg",
    ]
    for i, k in enumerate(reversed(keys)):
        s.put(k, b"x" * (i + 1))
    listed = list(s.list())
    assert [o.key for o in listed] == sorted(keys)
    sizes = {o.key: o.size for o in listed}
    assert sizes == {k: len(keys) - i for i, k in enumerate(keys)}
    assert [o.key for o in s.list("snapshots/a/")] == keys[:2]
    assert [o.key for o in s.list("snapshots/a")] == sorted(keys[:5])
    assert [o.key for o in s.list("snapshots/a/2024/01/0")] == keys[:2]
    assert [o.key for o in s.list("snapshots/a/2024/01/03/y.jpg")] == keys[1:2]
    assert list(s.list("nothing/")) == []
    assert list(s.list("../")) == []
    for o in listed:  # listings may leave the hash out (S3 does), never get it wrong
        assert o.sha256 in (None, sha(b"x" * o.size))


BAD_KEYS = ["../x", "/abs", "", "a/../b", "a//b", "a/", "./a", "a/./b", "a b", "a\n", "k\\x", "é", "x" * 600]


@pytest.mark.parametrize("key", BAD_KEYS)
def test_bad_keys_rejected(backend: Backend, key: str) -> None:
    s = backend.store
    for call in (
        lambda: s.put(key, b"evil"),
        lambda: s.get(key),
        lambda: s.stat(key),
        lambda: s.delete(key),
        lambda: s.presigned_get(key, 60),
        lambda: s.presigned_put(key, 60),
    ):
        with pytest.raises(ValidationFailed):
            call()
    assert list(s.list()) == []


def test_snapshot_key_objects_listed_by_day(backend: Backend) -> None:
    s = backend.store
    t0 = dt.datetime(2024, 3, 1, 1, 0, 0, tzinfo=dt.timezone(dt.timedelta(hours=8)))
    keys = [snapshot_key(DEVICE, t0 + dt.timedelta(minutes=m)) for m in (0, 30, 61, 90)]
    for k in keys:
        s.put(k, JPEG, "image/jpeg")
    # 01:00+08:00 is 17:00 UTC the day before; 02:01+08:00 is 18:01 UTC, still the 29th
    day = f"snapshots/{DEVICE}/2024/02/29/"
    assert [o.key for o in s.list(day)] == keys
    assert list(s.list(f"snapshots/{DEVICE}/2024/03/")) == []


def test_presign_expiry_bounds(backend: Backend) -> None:
    for bad in (0, -5, MAX_EXPIRY_S + 1):
        with pytest.raises(ValueError, match="expiry"):
            backend.store.presigned_get("k.bin", bad)
        with pytest.raises(ValueError, match="expiry"):
            backend.store.presigned_put("k.bin", bad)


def test_presigned_put_then_get_over_http(backend: Backend) -> None:
    s = backend.store
    key = snapshot_key(DEVICE, dt.datetime(2024, 5, 6, 7, 8, 9, 123000, tzinfo=dt.UTC))
    put_url = s.presigned_put(key, 300)
    get_url = s.presigned_get(key, 300)
    with httpx.Client(timeout=10) as http:
        r = http.put(put_url, content=JPEG, headers={"Content-Type": "image/jpeg"})
        assert r.status_code == 200, r.text
        assert s.get(key) == JPEG
        st = s.stat(key)
        assert (st.size, st.content_type) == (len(JPEG), "image/jpeg")
        if backend.kind == "dir":
            assert st.sha256 == sha(JPEG) and r.headers["etag"] == f'"{sha(JPEG)}"'
        else:
            # an S3 presigned PUT carries no hash of ours unless the uploader sends the header
            assert st.sha256 is None
        g = http.get(get_url)
        assert g.status_code == 200
        assert g.content == JPEG
        assert g.headers["content-type"].startswith("image/jpeg")


def test_a_recorded_upload_cannot_be_overwritten_through_its_url(backend: Backend) -> None:
    """The attack: keep the presigned URL of a snapshot and PUT other bytes after it was recorded."""
    s = backend.store
    key = snapshot_key(DEVICE, dt.datetime(2024, 5, 6, 7, 8, 9, 321000, tzinfo=dt.UTC))
    url = s.presigned_upload(key, 300, sha(JPEG))
    forged = b"\xff\xd8 not the picture \xff\xd9"
    with httpx.Client(timeout=10) as http:
        assert http.put(url, content=JPEG, headers={"Content-Type": "image/jpeg"}).status_code == 200
        assert s.accept_upload(key, sha(JPEG)) == sha(JPEG)  # the record step
        # the forger even claims the right hash as S3 metadata
        r = http.put(url, content=forged, headers={"x-amz-meta-sha256": sha(JPEG)})
        if backend.kind == "dir":
            assert_problem(r, 422)  # the URL takes only the presigned content, and only once
        # whatever the store answered, the recorded object is untouched
        assert s.get(key) == JPEG and s.accept_upload(key, sha(JPEG)) == sha(JPEG)
        assert http.get(s.presigned_get(key, 60)).content == JPEG


def test_an_upload_of_other_content_is_never_accepted(backend: Backend) -> None:
    s = backend.store
    key = snapshot_key(DEVICE, dt.datetime(2024, 5, 6, 7, 8, 10, tzinfo=dt.UTC))
    url = s.presigned_upload(key, 300, sha(JPEG))
    with httpx.Client(timeout=10) as http:
        r = http.put(url, content=b"other", headers={"x-amz-meta-sha256": sha(JPEG)})
    if backend.kind == "dir":
        assert_problem(r, 422)
        with pytest.raises(NotFound):
            s.accept_upload(key, sha(JPEG))
    else:
        # S3 took the bytes at the staging key; the record step hashes them itself, refuses to
        # make them the snapshot, and says what it found
        assert r.status_code == 200
        assert s.accept_upload(key, sha(JPEG)) == sha(b"other")
    assert not s.exists(key)


def test_presigned_get_of_missing_object_is_404(backend: Backend) -> None:
    url = backend.store.presigned_get("never/put.jpg", 60)
    with httpx.Client(timeout=10) as http:
        r = http.get(url)
    assert r.status_code == 404
    if backend.kind == "dir":
        assert_problem(r, 404)


def test_objects_route_wrong_bucket_is_404(backend: Backend) -> None:
    # for an S3 store the route serves nothing at all: the URLs point at the S3 server
    with httpx.Client(timeout=10) as http:
        r = http.get(f"{backend.api_url}/objects/other-bucket/k.jpg", params={"expires": 1, "signature": "x"})
        assert_problem(r, 404)
        r = http.put(f"{backend.api_url}/objects/other-bucket/k.jpg?expires=1&signature=x", content=b"1")
        assert_problem(r, 404)
        if backend.kind == "s3":
            r = http.get(f"{backend.api_url}/objects/{backend.store.bucket}/k.jpg?expires=1&signature=x")
            assert_problem(r, 404)


# -- the directory store's signed URLs, through the API -----------------------------------------


@pytest.fixture
def served(tmp_path: Path, sqlite_database: str) -> Iterator[tuple[DirectoryStore, str]]:
    port = free_port()
    settings = Settings(
        data_dir=tmp_path,
        database_url=sqlite_database,
        object_store=f"dir:{tmp_path / 'objects'}",
        secret_key=Fernet.generate_key().decode(),
        public_url=f"http://127.0.0.1:{port}",
    )
    ctx = AppContext.build(settings)
    srv = LiveServer(create_app(settings, ctx), port).start()
    try:
        assert isinstance(ctx.store, DirectoryStore)
        yield ctx.store, srv.url
    finally:
        srv.stop()
        ctx.close()


def with_query(url: str, **params: str) -> str:
    u = urllib.parse.urlsplit(url)
    q = dict(urllib.parse.parse_qsl(u.query))
    q.update(params)
    return urllib.parse.urlunsplit(u._replace(query=urllib.parse.urlencode(q)))


def test_tampered_or_expired_signature_is_403(served: tuple[DirectoryStore, str]) -> None:
    store, _ = served
    store.put("a/ok.jpg", JPEG, "image/jpeg")
    store.put("a/other.jpg", b"other", "image/jpeg")
    good = store.presigned_get("a/ok.jpg", 60)
    sig = dict(urllib.parse.parse_qsl(urllib.parse.urlsplit(good).query))["signature"]
    flipped = ("A" if sig[0] != "A" else "B") + sig[1:]
    expired = int(time.time()) - 5
    with httpx.Client(timeout=10) as http:
        assert http.get(good).content == JPEG
        for url in (
            with_query(good, signature=flipped),
            with_query(good, signature=""),
            with_query(good, signature="签名"),  # non-ASCII once crashed compare_digest
            with_query(good, expires=str(int(time.time()) + 3600)),  # longer life, same signature
            good.replace("/a/ok.jpg", "/a/other.jpg"),  # the signature is for another key
            # a signature that was right, for an expiry that has passed
            with_query(good, expires=str(expired), signature=store._signature("GET", "a/ok.jpg", expired)),
        ):
            body = assert_problem(http.get(url), 403)
            assert body["type"] == "urn:tianwang:problem:forbidden"
        # a GET signature does not allow a PUT
        body = assert_problem(http.put(good, content=b"overwrite"), 403)
        assert store.get("a/ok.jpg") == JPEG
        # missing query fields are a validation problem, not a crash
        assert_problem(http.get(good.split("?")[0]), 422)


def test_presigned_put_size_limit_and_bad_length(served: tuple[DirectoryStore, str]) -> None:
    from tianwang.api.routers import objects

    store, _ = served
    url = store.presigned_put("big.bin", 60)
    with httpx.Client(timeout=30) as http:
        r = http.put(url, content=b"\0" * (objects.MAX_PUT + 1))
        assert_problem(r, 413)
    assert not store.exists("big.bin")


def test_traversal_through_the_route_is_refused(served: tuple[DirectoryStore, str], tmp_path: Path) -> None:
    store, base = served
    secret = tmp_path / "secret.txt"
    secret.write_text("do not serve")
    key = "../../secret.txt"
    expires = int(time.time()) + 60
    # even with a valid signature over the bad key, the key itself is refused
    sig = store._signature("GET", key, expires)
    with httpx.Client(timeout=10) as http:
        url = f"{base}/objects/{store.bucket}/{urllib.parse.quote(key, safe='')}"
        r = http.get(url, params={"expires": expires, "signature": sig})
    assert r.status_code in (404, 422)
    assert b"do not serve" not in r.content


def test_a_presigned_put_is_one_time(served: tuple[DirectoryStore, str]) -> None:
    store, _ = served
    url = store.presigned_put("p/once.jpg", 60)  # as the installer's probe gets one: no hash bound
    with httpx.Client(timeout=10) as http:
        assert http.put(url, content=JPEG).status_code == 200
        # the same bytes again (an agent that lost the answer): done, nothing changes
        again = http.put(url, content=JPEG)
        assert again.status_code == 200 and again.headers["etag"] == f'"{sha(JPEG)}"'
        body = assert_problem(http.put(url, content=b"replacement"), 409)
        assert body["type"] == "urn:tianwang:problem:conflict"
        # nor through a fresh URL for the same key
        assert_problem(http.put(store.presigned_put("p/once.jpg", 60), content=b"replacement"), 409)
    assert store.get("p/once.jpg") == JPEG and store.stat("p/once.jpg").sha256 == sha(JPEG)


def test_a_presigned_put_bound_to_a_hash(served: tuple[DirectoryStore, str]) -> None:
    store, _ = served
    url = store.presigned_upload("p/bound.jpg", 60, sha(JPEG))
    assert f"sha256={sha(JPEG)}" in url
    u = urllib.parse.urlsplit(url)
    unbound = urllib.parse.urlunsplit(
        u._replace(
            query=urllib.parse.urlencode(
                [(k, v) for k, v in urllib.parse.parse_qsl(u.query) if k != "sha256"]
            )
        )
    )
    with httpx.Client(timeout=10) as http:
        assert_problem(http.put(url, content=b"other"), 422)
        # the hash is part of what is signed: it can be neither dropped nor swapped
        assert_problem(http.put(unbound, content=b"other"), 403)
        assert_problem(http.put(with_query(url, sha256=sha(b"other")), content=b"other"), 403)
        assert not store.exists("p/bound.jpg")
        assert http.put(url, content=JPEG).status_code == 200
    assert store.get("p/bound.jpg") == JPEG


def test_signatures_stay_out_of_the_access_log(tmp_path: Path, sqlite_database: str) -> None:
    """uvicorn's access log prints the query string: a presigned URL's signature must not be in it."""
    import logging

    import uvicorn

    port = free_port()
    settings = Settings(
        data_dir=tmp_path,
        database_url=sqlite_database,
        object_store=f"dir:{tmp_path / 'objects'}",
        secret_key=Fernet.generate_key().decode(),
        public_url=f"http://127.0.0.1:{port}",
    )
    ctx = AppContext.build(settings)
    # the access log on, as `tianwang serve` runs it
    server = uvicorn.Server(
        uvicorn.Config(create_app(settings, ctx), host="127.0.0.1", port=port, log_level="info")
    )
    lines: list[str] = []

    class Keep(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            lines.append(record.getMessage())

    keep = Keep()
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    try:
        deadline = time.monotonic() + 15
        while not server.started and time.monotonic() < deadline:
            time.sleep(0.02)
        logging.getLogger("uvicorn.access").addHandler(keep)
        store = ctx.store
        assert isinstance(store, DirectoryStore)
        put_url = store.presigned_upload("log/a.jpg", 60, sha(JPEG))
        get_url = store.presigned_get("log/a.jpg", 60)
        with httpx.Client(timeout=10) as http:
            assert http.put(put_url, content=JPEG).status_code == 200
            assert http.get(get_url).status_code == 200
    finally:
        logging.getLogger("uvicorn.access").removeHandler(keep)
        server.should_exit = True
        thread.join(10)
        ctx.close()
    signatures = [
        dict(urllib.parse.parse_qsl(urllib.parse.urlsplit(u).query))["signature"] for u in (put_url, get_url)
    ]
    assert len(lines) == 2, lines
    assert all("/objects/" in ln and "signature=REDACTED" in ln for ln in lines), lines
    assert not any(sig in ln for sig in signatures for ln in lines)


def test_s3_signatures_are_redacted_too() -> None:
    import logging

    from tianwang.api.app import RedactSignatures

    path = "/b/k.jpg?X-Amz-Algorithm=AWS4&X-Amz-Credential=AKIA%2F2024&X-Amz-Signature=abc123&x=1"
    rec = logging.LogRecord(
        "uvicorn.access", logging.INFO, "", 0, '%s - "%s %s HTTP/%s" %d', ("c", "PUT", path, "1.1", 200), None
    )
    assert RedactSignatures().filter(rec)
    msg = rec.getMessage()
    assert "abc123" not in msg and "AKIA" not in msg and "X-Amz-Signature=REDACTED" in msg and "x=1" in msg


# -- the directory store's own hardening -----------------------------------------------------


@pytest.fixture
def dstore(tmp_path: Path) -> DirectoryStore:
    s = DirectoryStore(tmp_path / "objects", "tianwang", "http://127.0.0.1:1", b"k" * 32)
    s.ensure_bucket()
    return s


def test_directory_key_clashes_are_conflicts(dstore: DirectoryStore) -> None:
    dstore.put("a", b"file")
    with pytest.raises(Conflict):
        dstore.put("a/b", b"under a file")
    dstore.put("x/y", b"1")
    with pytest.raises(Conflict):
        dstore.put("x", b"over a folder")
    assert dstore.get("a") == b"file" and dstore.get("x/y") == b"1"
    assert [o.key for o in dstore.list()] == ["a", "x/y"]
    assert list((dstore.root / ".tmp").iterdir()) == []  # failed writes leave nothing behind


def test_directory_meta_key_names_never_clash(dstore: DirectoryStore) -> None:
    # the metadata once lived at KEY + ".json", where `a` and `a.json/x` collided
    dstore.put("a", b"1", "text/plain")
    dstore.put("a.json/x", b"2", "image/png")
    assert dstore.stat("a").content_type == "text/plain"
    assert dstore.stat("a.json/x").content_type == "image/png"


def test_directory_stale_metadata_is_not_trusted(dstore: DirectoryStore) -> None:
    dstore.put("k.bin", b"original", "image/jpeg")
    # someone replaces the file behind the store's back (or a crash hit between the two renames)
    path = dstore.root / dstore.bucket / "k.bin"
    tmp = path.with_name("replacement")
    tmp.write_bytes(b"changed!")
    os.replace(tmp, path)
    st = dstore.stat("k.bin")
    assert st.sha256 == sha(b"changed!") and st.size == 8
    data, info = dstore.read("k.bin")
    assert data == b"changed!" and info.sha256 == sha(b"changed!")


def test_directory_writes_are_atomic_under_concurrency(dstore: DirectoryStore) -> None:
    versions = [bytes([i]) * (1000 + i) for i in range(8)]
    dstore.put("hot.bin", versions[0])
    stop = threading.Event()
    errors: list[str] = []

    def writer(offset: int) -> None:
        i = offset
        while not stop.is_set():
            dstore.put("hot.bin", versions[i % len(versions)])
            i += 1

    threads = [threading.Thread(target=writer, args=(n,)) for n in range(2)]
    for t in threads:
        t.start()
    try:
        for _ in range(300):
            data, info = dstore.read("hot.bin")
            if data not in versions:
                errors.append(f"torn read of {len(data)} bytes")
            elif info.sha256 != sha(data) or info.size != len(data):
                errors.append("metadata of another version")
    finally:
        stop.set()
        for t in threads:
            t.join()
    assert errors == []
    assert list((dstore.root / ".tmp").iterdir()) == []


def test_directory_put_once_has_one_winner(dstore: DirectoryStore) -> None:
    versions = [bytes([i]) * 5000 for i in range(6)]
    won: list[bytes] = []
    lost: list[bytes] = []
    start = threading.Barrier(len(versions))

    def writer(data: bytes) -> None:
        start.wait()
        try:
            dstore.put_once("race.bin", data)
            won.append(data)
        except Conflict:
            lost.append(data)

    threads = [threading.Thread(target=writer, args=(v,)) for v in versions]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(won) == 1 and len(lost) == len(versions) - 1
    assert dstore.get("race.bin") == won[0] and dstore.stat("race.bin").sha256 == sha(won[0])
    assert list((dstore.root / ".tmp").iterdir()) == []


def test_directory_delete_prunes_empty_folders(dstore: DirectoryStore) -> None:
    key = snapshot_key(DEVICE, dt.datetime(2024, 1, 2, 3, 4, 5, tzinfo=dt.UTC))
    dstore.put(key, JPEG)
    dstore.put("snapshots/keep.bin", b"1")
    dstore.delete(key)
    assert not (dstore.root / dstore.bucket / "snapshots" / DEVICE).exists()
    assert not (dstore.root / ".meta" / dstore.bucket / "snapshots" / DEVICE).exists()
    assert dstore.get("snapshots/keep.bin") == b"1"
    dstore.delete("snapshots")  # a folder, not an object: nothing happens
    assert dstore.exists("snapshots/keep.bin")


def test_directory_relative_root_is_fixed_at_start(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    s = open_store("dir:rel/objects", "tianwang", "http://h", b"k")
    assert isinstance(s, DirectoryStore)
    s.ensure_bucket()
    monkeypatch.chdir(tmp_path.parent)
    s.put("k.bin", b"1")
    assert (tmp_path / "rel" / "objects" / "tianwang" / "k.bin").read_bytes() == b"1"


# -- the S3 backend's own checks --------------------------------------------------------------


def test_s3_sha256_is_user_metadata(s3_server: str) -> None:
    s = open_store(s3_spec(s3_server), f"tw-{uuid.uuid4().hex[:12]}", "", b"")
    assert isinstance(s, MinioStore)
    s.ensure_bucket()
    s.put("m/x.jpg", JPEG, "image/jpeg")
    raw = s.client.stat_object(s.bucket, "m/x.jpg")
    assert raw.metadata["x-amz-meta-sha256"] == sha(JPEG)
    assert s.stat("m/x.jpg").sha256 == sha(JPEG)


def test_s3_forged_sha256_header_of_wrong_form_is_dropped(s3_server: str) -> None:
    s = open_store(s3_spec(s3_server), f"tw-{uuid.uuid4().hex[:12]}", "", b"")
    s.ensure_bucket()
    url = s.presigned_put("f.bin", 60)
    r = httpx.put(url, content=b"abc", headers={"x-amz-meta-sha256": "not-a-hash"}, timeout=10)
    assert r.status_code == 200
    assert s.stat("f.bin").sha256 is None
    assert s.read("f.bin")[1].sha256 is None


def test_s3_snapshot_is_recorded_from_its_staging_upload_and_cannot_be_replaced(
    settings: Settings, tokens: dict[str, str], s3_server: str
) -> None:
    """Through the API on S3: presign, PUT, record; then the URL is used again with other bytes."""
    from fastapi.testclient import TestClient

    from tests.conftest import auth

    s3 = settings.model_copy(
        update={"object_store": s3_spec(s3_server), "bucket": f"tw-{uuid.uuid4().hex[:12]}"}
    )
    ctx = AppContext.build(s3)
    try:
        with TestClient(create_app(s3, ctx)) as client:
            cam = {
                "device_id": DEVICE, "name": "c", "kind": "dome", "lon": 114.05, "lat": 22.54,
                "heading_deg": 0, "hfov_deg": 90, "range_m": 50, "point_class": 1,
            }  # fmt: skip
            assert (
                client.post("/api/v1/cameras", json=cam, headers=auth(tokens["installer"])).status_code == 201
            )
            h = auth(tokens["agent"])
            ts = dt.datetime(2024, 5, 6, 7, 8, 9, tzinfo=dt.UTC).isoformat()
            ask = {"device_id": DEVICE, "ts": ts, "sha256": sha(JPEG), "size": len(JPEG)}
            pre = client.post("/api/v1/ingest/snapshots/presign", json=ask, headers=h).json()
            item = {
                "key": pre["key"],
                "device_id": DEVICE,
                "ts": ts,
                "sha256": sha(JPEG),
                "width": 4,
                "height": 4,
            }
            with httpx.Client(timeout=10) as http:
                assert http.put(pre["url"], content=JPEG).status_code == 200
                assert not ctx.store.exists(pre["key"])  # staged, not yet the snapshot
                r = client.post("/api/v1/ingest/snapshots", json={"items": [item]}, headers=h)
                assert r.json()["accepted"] == 1, r.text
                assert ctx.store.get(pre["key"]) == JPEG
                # the URL still works for its 900 s: it rewrites only the staging object
                assert http.put(pre["url"], content=b"forged").status_code == 200
                r = client.post("/api/v1/ingest/snapshots", json={"items": [item]}, headers=h)
                assert r.json()["duplicates"] == 1
                assert ctx.store.get(pre["key"]) == JPEG
                # another snapshot whose upload is not what the record says: refused, nothing made final
                ts2 = dt.datetime(2024, 5, 6, 7, 8, 10, tzinfo=dt.UTC).isoformat()
                pre2 = client.post(
                    "/api/v1/ingest/snapshots/presign", json={**ask, "ts": ts2}, headers=h
                ).json()
                http.put(pre2["url"], content=b"forged", headers={"x-amz-meta-sha256": sha(JPEG)})
                r = client.post(
                    "/api/v1/ingest/snapshots",
                    json={"items": [{**item, "key": pre2["key"], "ts": ts2}]},
                    headers=h,
                )
                assert r.json()["accepted"] == 0 and "sha256" in r.json()["rejected"][0]["errors"][0]
                assert not ctx.store.exists(pre2["key"])
    finally:
        ctx.close()


def test_s3_missing_bucket_is_not_found(s3_server: str) -> None:
    s = open_store(s3_spec(s3_server), f"tw-missing-{uuid.uuid4().hex[:8]}", "", b"")
    for call in (lambda: s.get("k"), lambda: s.stat("k"), lambda: list(s.list()), lambda: s.put("k", b"1")):
        with pytest.raises(NotFound):
            call()


def test_s3_unreachable_is_typed() -> None:
    port = free_port()  # nothing listens there
    s = MinioStore(f"127.0.0.1:{port}", "k", "s", "tianwang", timeout_s=2)
    with pytest.raises(ObjectStoreUnavailable) as e:
        s.ensure_bucket()
    assert e.value.status == 503
    with pytest.raises(ObjectStoreUnavailable):
        s.put("k.bin", b"1")


# -- specs, keys, names -----------------------------------------------------------------------


def test_open_store_parses_s3_spec_and_talks_to_the_server(s3_server: str) -> None:
    host, port = s3_server.split(":")
    spec = f"s3://testkey:testsecret@{host}:{port}?secure=false"
    s = open_store(spec, "tw-parse-" + uuid.uuid4().hex[:8], "http://unused", b"")
    assert isinstance(s, MinioStore)
    assert s.endpoint == f"127.0.0.1:{port}"
    s.ensure_bucket()
    s.put("p.bin", b"parsed")
    assert s.get("p.bin") == b"parsed"
    # presigned URLs show scheme, host, bucket and region without a network call (region given)
    t = open_store("minio://k:p%40ss@[::1]:9000?secure=true&region=cn-south-1&bucket=other", "tw", "", b"")
    assert isinstance(t, MinioStore) and t.bucket == "other" and t.endpoint == "[::1]:9000"
    url = t.presigned_get("a/b.jpg", 60)
    assert url.startswith("https://[::1]:9000/other/a/b.jpg?")
    assert "cn-south-1" in urllib.parse.unquote(url) and "X-Amz-Credential=k%2F" in url


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("", "unknown object store"),
        ("ftp://k:hunter2@h:1", "unknown object store"),
        ("S3://k:hunter2@h:1", "unknown object store"),
        ("dir:", "needs a path"),
        ("s3://h:9000", "needs s3://KEY:SECRET@HOST:PORT"),
        ("s3://k:hunter2@:9000", "needs s3://KEY:SECRET@HOST:PORT"),
        ("s3://k:hunter2@h:99999", "invalid port"),
        ("s3://k:hunter2@h:port", "invalid port"),
        ("s3://k:hunter2@h:9000/bucket", "no path"),
        ("s3://k:hunter2@h:9000?secure=maybe", "secure"),
        ("s3://k:hunter2@h:9000?sekure=true", "unknown option"),
        ("s3://k:hunter2@h:9000?bucket=Bad_Name", "invalid bucket name"),
    ],
)
def test_open_store_bad_spec_is_readable_value_error(spec: str, message: str) -> None:
    with pytest.raises(ValueError, match=re.escape(message)) as e:
        open_store(spec, "tianwang", "http://h", b"k")
    assert "hunter2" not in str(e.value)  # the spec holds a secret; errors end up in logs


@pytest.mark.parametrize("bucket", [".meta", ".tmp", "ab", "UPPER", "a" * 64, "a..b", "-ab", "ab-"])
def test_bad_bucket_names_rejected(bucket: str, tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="bucket"):
        check_bucket(bucket)
    with pytest.raises(ValueError, match="bucket"):
        open_store(f"dir:{tmp_path}", bucket, "http://h", b"k")


SNAPSHOT_RE = re.compile(r"snapshots/(?P<dev>[^/]+)/(\d{4})/(\d{2})/(\d{2})/(\d{8}T\d{9}Z)\.jpg")


def test_snapshot_key_layout() -> None:
    t = dt.datetime(2024, 3, 1, 2, 3, 4, 567891, tzinfo=dt.timezone(dt.timedelta(hours=8)))
    key = snapshot_key(DEVICE, t)
    assert key == f"snapshots/{DEVICE}/2024/02/29/20240229T180304567Z.jpg"
    m = SNAPSHOT_RE.fullmatch(key)
    assert m and m["dev"] == DEVICE
    assert snapshot_key(DEVICE, t, "png").endswith(".png")
    # keys sort in time order, across days and years
    base = dt.datetime(2023, 12, 31, 23, 59, 59, 998000, tzinfo=dt.UTC)
    times = [base + dt.timedelta(milliseconds=ms) for ms in (0, 1, 2, 1000, 86_400_000)]
    keys = [snapshot_key(DEVICE, x) for x in times]
    assert keys == sorted(keys) and len(set(keys)) == len(keys)


@pytest.mark.parametrize(
    ("device_id", "ts", "ext"),
    [
        ("a/b", dt.datetime(2024, 1, 1, tzinfo=dt.UTC), "jpg"),
        ("", dt.datetime(2024, 1, 1, tzinfo=dt.UTC), "jpg"),
        ("..", dt.datetime(2024, 1, 1, tzinfo=dt.UTC), "jpg"),
        (DEVICE, dt.datetime(2024, 1, 1), "jpg"),  # naive: whose local time?
        (DEVICE, dt.datetime(2024, 1, 1, tzinfo=dt.UTC), "j/pg"),
        (DEVICE, dt.datetime(2024, 1, 1, tzinfo=dt.UTC), ""),
    ],
)
def test_snapshot_key_rejects_bad_parts(device_id: str, ts: dt.datetime, ext: str) -> None:
    with pytest.raises(ValidationFailed):
        snapshot_key(device_id, ts, ext)
