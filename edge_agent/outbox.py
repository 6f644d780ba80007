"""The agent's durable outbox: every observation is committed to SQLite before it is sent, and leaves
only when the API acknowledged it (stored or duplicate) or refused it as invalid (dead letter).

Guarantees, and how:
- nothing lost on a crash: an item is committed (WAL, `synchronous` FULL by default) before any
  send, deleted only after the API's answer; a SIGKILL between send and delete replays it;
- nothing stored twice: each item carries an idempotency key made at creation, deterministic per
  agent + device + time + kind, and the API ignores a key it already has; the outbox ignores one too;
- bounded: past `max_items` / `max_bytes` the OLDEST SNAPSHOTS are dropped first, counted and
  logged; health observations and command results are never dropped to make room;
- no poison: an item the API rejects as invalid moves to the `dead` table with the reason.

The API is synchronous and thread-safe (one connection behind a lock); async callers use `call()`,
which runs it on the outbox's own single thread so the event loop never waits on an fsync.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import hashlib
import json
import logging
import os
import sqlite3
import threading
import time
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, ParamSpec, TypeVar

from tianwang.protocol.agents import CommandResult
from tianwang.protocol.ingest import HealthItem
from tianwang.protocol.stream import StreamCheckItem

log = logging.getLogger("edge_agent.outbox")

Kind = Literal["health", "snapshot", "result", "stream"]
KINDS: tuple[Kind, ...] = ("health", "snapshot", "result", "stream")
P = ParamSpec("P")
T = TypeVar("T")

_SCHEMA = """
CREATE TABLE IF NOT EXISTS items (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    kind TEXT NOT NULL,
    key TEXT NOT NULL UNIQUE,
    device_id TEXT NOT NULL,
    created_at REAL NOT NULL,
    payload TEXT NOT NULL,
    blob BLOB,
    size INTEGER NOT NULL,
    object_key TEXT,          -- snapshots: set once the bytes are in the object store
    attempts INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX IF NOT EXISTS items_kind ON items (kind, id);
-- items the API refused for themselves but that are kept (see the sender) sink behind fresh ones
CREATE INDEX IF NOT EXISTS items_kind_attempts ON items (kind, attempts, id);
CREATE TABLE IF NOT EXISTS dead (
    id INTEGER PRIMARY KEY,
    kind TEXT NOT NULL,
    key TEXT NOT NULL,
    device_id TEXT NOT NULL,
    created_at REAL NOT NULL,
    dead_at REAL NOT NULL,
    payload TEXT NOT NULL,
    reason TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS counters (name TEXT PRIMARY KEY, value INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS state (name TEXT PRIMARY KEY, value BLOB NOT NULL);
CREATE TABLE IF NOT EXISTS journal (
    key TEXT PRIMARY KEY, kind TEXT NOT NULL, device_id TEXT NOT NULL, ts TEXT NOT NULL
);
"""
# Dead letters keep the item's JSON (for a person to read and replay by hand), not snapshot bytes.
MAX_DEAD = 100_000
MAX_REASON = 1000


class OutboxError(Exception):
    """The outbox file cannot be opened or written (disk full, corrupt, wrong schema)."""


@dataclass(frozen=True)
class Entry:
    id: int
    kind: Kind
    key: str
    device_id: str
    created_at: float
    payload: dict[str, Any]
    blob: bytes | None
    object_key: str | None
    attempts: int


def _ms(ts: dt.datetime) -> int:
    if ts.tzinfo is None:
        raise ValueError("observation time needs a time zone")
    return round(ts.timestamp() * 1000)


def _agent_part(agent_id: str) -> str:
    # a long agent id would push keys past the API's 128 characters; a hash keeps them unique
    return agent_id if len(agent_id) <= 60 else hashlib.sha256(agent_id.encode()).hexdigest()[:16]


def health_key(agent_id: str, device_id: str, ts: dt.datetime) -> str:
    """Deterministic: the same observation (agent, device, time to the ms) always has the same key."""
    return f"h:{_agent_part(agent_id)}:{device_id}:{_ms(ts)}"


def snapshot_key(agent_id: str, device_id: str, ts: dt.datetime) -> str:
    return f"s:{_agent_part(agent_id)}:{device_id}:{_ms(ts)}"


def stream_key(agent_id: str, device_id: str, ts: dt.datetime) -> str:
    return f"v:{_agent_part(agent_id)}:{device_id}:{_ms(ts)}"


def result_key(command_id: str) -> str:
    return f"r:{command_id}"


def _private(path: Path) -> None:
    """Create the outbox file readable by its owner only (it holds surveillance snapshots); SQLite
    gives its -wal and -shm files the same mode. An existing file open to others is narrowed."""
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        if os.fstat(fd).st_mode & 0o077:
            try:
                os.fchmod(fd, 0o600)
            except OSError as e:  # not our file: say so, but an agent that can write it may run
                log.warning("outbox %s is readable by other users and cannot be narrowed: %s", path, e)
    finally:
        os.close(fd)


class Outbox:
    def __init__(
        self,
        path: Path | str,
        *,
        max_bytes: int = 1024 * 1024 * 1024,
        max_items: int = 2_000_000,
        synchronous: Literal["FULL", "NORMAL"] = "FULL",
        journal: bool = False,
    ) -> None:
        self.path = Path(path)
        self.max_bytes = max_bytes
        self.max_items = max_items
        self.journal = journal
        self._lock = threading.RLock()
        self._executor: ThreadPoolExecutor | None = None
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            _private(self.path)
            # autocommit mode: transactions are explicit (BEGIN IMMEDIATE … COMMIT) below
            self._db = sqlite3.connect(str(self.path), isolation_level=None, check_same_thread=False)
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute(f"PRAGMA synchronous={synchronous}")
            self._db.execute("PRAGMA busy_timeout=5000")
            self._db.executescript(_SCHEMA)
        except (sqlite3.Error, OSError) as e:
            raise OutboxError(f"cannot open the outbox at {self.path}: {e}") from e
        self._count: dict[str, int] = dict.fromkeys(KINDS, 0)
        self._bytes = 0
        for kind, n, size in self._db.execute(
            "SELECT kind, COUNT(*), COALESCE(SUM(size), 0) FROM items GROUP BY kind"
        ):
            self._count[kind] = int(n)
            self._bytes += int(size)
        self._counters: dict[str, int] = {
            name: int(v) for name, v in self._db.execute("SELECT name, value FROM counters")
        }
        self._over_bound_logged = False
        # woken when something is added, so the sender does not poll
        self.added = threading.Event()

    # -- async bridge ---------------------------------------------------------------------------

    async def call(self, fn: Callable[P, T], *args: P.args, **kwargs: P.kwargs) -> T:
        """Run one outbox operation on the outbox thread (SQLite commits fsync; keep them off the loop)."""
        if self._executor is None:
            self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="outbox")
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._executor, lambda: fn(*args, **kwargs))

    # -- adding ---------------------------------------------------------------------------------

    def _tx(self) -> _Tx:
        return _Tx(self)

    def _insert(
        self, kind: Kind, key: str, device_id: str, ts: str, payload: dict[str, Any], blob: bytes | None
    ) -> bool:
        text = json.dumps(payload, separators=(",", ":"), ensure_ascii=False)
        size = len(text.encode()) + (len(blob) if blob else 0)
        with self._tx():
            cur = self._db.execute(
                "INSERT OR IGNORE INTO items (kind, key, device_id, created_at, payload, blob, size)"
                " VALUES (?, ?, ?, ?, ?, ?, ?)",
                (kind, key, device_id, time.time(), text, blob, size),
            )
            inserted = cur.rowcount == 1
            if inserted:
                self._count[kind] += 1
                self._bytes += size
                if self.journal:
                    self._db.execute(
                        "INSERT OR IGNORE INTO journal (key, kind, device_id, ts) VALUES (?, ?, ?, ?)",
                        (key, kind, device_id, ts),
                    )
                self._enforce_bound()
        if inserted:
            self.added.set()
        return inserted

    def add_health(self, item: HealthItem) -> bool:
        """Store one health observation (its key made by `health_key`); False if the key was there."""
        payload = item.model_dump(mode="json")
        return self._insert("health", item.key, item.device_id, payload["ts"], payload, None)

    def add_stream(self, item: StreamCheckItem) -> bool:
        """Store one stream check (its key made by `stream_key`); False if the key was there."""
        payload = item.model_dump(mode="json")
        return self._insert("stream", item.key, item.device_id, payload["ts"], payload, None)

    def add_snapshot(
        self,
        agent_id: str,
        device_id: str,
        ts: dt.datetime,
        jpeg: bytes,
        *,
        sha256: str,
        width: int,
        height: int,
        quality: dict[str, Any] | None,
        content_type: str = "image/jpeg",
    ) -> str | None:
        """Store a snapshot record and its picture; returns its outbox key, or None if it was there."""
        key = snapshot_key(agent_id, device_id, ts)
        payload = {
            "device_id": device_id,
            "ts": ts.astimezone(dt.UTC).isoformat(),
            "sha256": sha256,
            "width": width,
            "height": height,
            "quality": quality,
            "content_type": content_type,
        }
        stamp = ts.astimezone(dt.UTC).isoformat()
        return key if self._insert("snapshot", key, device_id, stamp, payload, jpeg) else None

    def add_snapshot_failure(self, agent_id: str, device_id: str, ts: dt.datetime, error: str) -> str | None:
        """Store a snapshot that gave no picture (no bytes: sent as a record with its `error`)."""
        key = snapshot_key(agent_id, device_id, ts)
        stamp = ts.astimezone(dt.UTC).isoformat()
        payload = {"device_id": device_id, "ts": stamp, "error": error[:500]}
        return key if self._insert("snapshot", key, device_id, stamp, payload, None) else None

    def add_result(
        self,
        command_id: str,
        device_id: str,
        deadline: dt.datetime,
        result: CommandResult,
        *,
        jpeg: bytes | None = None,
        put_url: str | None = None,
    ) -> bool:
        payload = {
            "command_id": command_id,
            "deadline": deadline.astimezone(dt.UTC).isoformat(),
            "result": result.model_dump(mode="json"),
            "put_url": put_url if jpeg is not None else None,
        }
        return self._insert("result", result_key(command_id), device_id, payload["deadline"], payload, jpeg)

    def _enforce_bound(self) -> None:
        """Inside a transaction: drop the oldest snapshots while over a bound; never anything else."""
        dropped = 0
        while self._over():
            rows = self._db.execute(
                "SELECT id, size FROM items WHERE kind = 'snapshot' ORDER BY id LIMIT 64"
            ).fetchall()
            if not rows:
                if not self._over_bound_logged:
                    log.warning(
                        "outbox over its bound (%d items, %d bytes) with no snapshot left to drop: "
                        "health observations and results are kept",
                        self.items,
                        self._bytes,
                    )
                    self._over_bound_logged = True
                break
            for row_id, size in rows:
                if not self._over():
                    break
                self._db.execute("DELETE FROM items WHERE id = ?", (row_id,))
                self._count["snapshot"] -= 1
                self._bytes -= int(size)
                dropped += 1
        if dropped:
            self._bump("dropped_snapshots", dropped)
            log.warning("outbox full: dropped the %d oldest snapshot(s)", dropped)
        elif not self._over():
            self._over_bound_logged = False

    def _over(self) -> bool:
        return self.items > self.max_items or self._bytes > self.max_bytes

    def _bump(self, name: str, n: int = 1) -> None:
        self._counters[name] = self._counters.get(name, 0) + n
        self._db.execute(
            "INSERT INTO counters (name, value) VALUES (?, ?)"
            " ON CONFLICT(name) DO UPDATE SET value = value + excluded.value",
            (name, n),
        )

    # -- taking and settling ------------------------------------------------------------------

    def take(self, kind: Kind, limit: int) -> list[Entry]:
        """The oldest `limit` items of a kind, fewest refusals first, so an item the API keeps refusing
        does not block the ones behind it (they stay until acked, dead-lettered or dropped)."""
        with self._lock:
            rows = self._db.execute(
                "SELECT id, kind, key, device_id, created_at, payload, blob, object_key, attempts"
                " FROM items WHERE kind = ? ORDER BY attempts, id LIMIT ?",
                (kind, limit),
            ).fetchall()
        out = []
        for r in rows:
            out.append(Entry(r[0], r[1], r[2], r[3], r[4], json.loads(r[5]), r[6], r[7], r[8]))
        return out

    def _delete(self, ids: Iterable[int]) -> list[tuple[int, str, int]]:
        gone = []
        for i in ids:
            row = self._db.execute("DELETE FROM items WHERE id = ? RETURNING id, kind, size", (i,)).fetchone()
            if row is not None:
                gone.append((int(row[0]), str(row[1]), int(row[2])))
                self._count[row[1]] -= 1
                self._bytes -= int(row[2])
        return gone

    def ack(self, ids: Iterable[int]) -> int:
        """The API has these (stored or duplicate): delete them."""
        with self._tx():
            return len(self._delete(list(ids)))

    def dead_letter(self, reasons: dict[int, str]) -> int:
        """The API refused these as invalid: move them to `dead` with the reason, never retry."""
        if not reasons:
            return 0
        now = time.time()
        moved = 0
        with self._tx():
            for i, reason in reasons.items():
                row = self._db.execute(
                    "SELECT kind, key, device_id, created_at, payload FROM items WHERE id = ?", (i,)
                ).fetchone()
                if row is None:
                    continue
                self._db.execute(
                    "INSERT INTO dead (kind, key, device_id, created_at, dead_at, payload, reason)"
                    " VALUES (?, ?, ?, ?, ?, ?, ?)",
                    (*row, now, reason[:MAX_REASON]),
                )
                self._delete([i])
                moved += 1
                self._bump(f"dead_{row[0]}")
                log.error("dead letter %s %s (%s): %s", row[0], row[1], row[2], reason[:MAX_REASON])
            if moved:
                self._bump("dead_letters", moved)
                # the table is a record for people, not an archive: keep the newest MAX_DEAD
                self._db.execute("DELETE FROM dead WHERE id <= (SELECT MAX(id) FROM dead) - ?", (MAX_DEAD,))
        return moved

    def drop(self, ids: Iterable[int], counter: str) -> int:
        """Delete items that are useless now (a command result after its deadline), counted."""
        with self._tx():
            n = len(self._delete(list(ids)))
            if n:
                self._bump(counter, n)
        return n

    def mark_uploaded(self, item_id: int, object_key: str) -> None:
        with self._tx():
            self._db.execute("UPDATE items SET object_key = ? WHERE id = ?", (object_key, item_id))

    def attempted(self, ids: Iterable[int]) -> None:
        """The API refused these for themselves, but not as invalid: kept, and taken after fresh items."""
        with self._tx():
            self._db.executemany("UPDATE items SET attempts = attempts + 1 WHERE id = ?", [(i,) for i in ids])

    def retry_upload(self, ids: Iterable[int]) -> None:
        """Snapshots whose object the store does not have: upload the bytes again before the record."""
        with self._tx():
            self._db.executemany(
                "UPDATE items SET object_key = NULL, attempts = attempts + 1 WHERE id = ?",
                [(i,) for i in ids],
            )

    # -- state the agent keeps across restarts (diagnosis memory) ---------------------------------

    def get_state(self, name: str) -> bytes | None:
        with self._lock:
            row = self._db.execute("SELECT value FROM state WHERE name = ?", (name,)).fetchone()
        return bytes(row[0]) if row else None

    def put_state(self, name: str, value: bytes) -> None:
        with self._tx():
            self._db.execute(
                "INSERT INTO state (name, value) VALUES (?, ?)"
                " ON CONFLICT(name) DO UPDATE SET value = excluded.value",
                (name, value),
            )

    def delete_state(self, name: str) -> None:
        with self._tx():
            self._db.execute("DELETE FROM state WHERE name = ?", (name,))

    # -- figures --------------------------------------------------------------------------------

    @property
    def items(self) -> int:
        return sum(self._count.values())

    @property
    def bytes(self) -> int:
        return self._bytes

    def depth(self) -> dict[str, int]:
        return dict(self._count)

    def counter(self, name: str) -> int:
        return self._counters.get(name, 0)

    def counters(self) -> dict[str, int]:
        return dict(self._counters)

    def dead(self, limit: int = 100) -> list[dict[str, Any]]:
        with self._lock:
            rows = self._db.execute(
                "SELECT kind, key, device_id, dead_at, reason FROM dead ORDER BY id DESC LIMIT ?", (limit,)
            ).fetchall()
        return [dict(zip(("kind", "key", "device_id", "dead_at", "reason"), r, strict=True)) for r in rows]

    def journal_keys(self) -> list[tuple[str, str, str, str]]:
        """(key, kind, device_id, ts) of everything ever produced (with `journal=True`)."""
        with self._lock:
            rows = self._db.execute("SELECT key, kind, device_id, ts FROM journal").fetchall()
        return [(str(a), str(b), str(c), str(d)) for a, b, c, d in rows]

    def close(self) -> None:
        if self._executor is not None:
            self._executor.shutdown(wait=True)
            self._executor = None
        with self._lock:
            try:
                self._db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
            except sqlite3.Error as e:  # a busy checkpoint is harmless: the WAL is replayed on open
                log.debug("outbox checkpoint: %s", e)
            self._db.close()


class _Tx:
    """BEGIN IMMEDIATE … COMMIT under the outbox lock; ROLLBACK (and in-memory totals reloaded) on error."""

    def __init__(self, box: Outbox) -> None:
        self.box = box

    def __enter__(self) -> None:
        self.box._lock.acquire()
        try:
            self.box._db.execute("BEGIN IMMEDIATE")
        except sqlite3.Error as e:
            self.box._lock.release()
            raise OutboxError(f"outbox unavailable: {e}") from e

    def __exit__(self, exc_type: object, exc: object, tb: object) -> None:
        db = self.box._db
        try:
            if exc_type is None:
                try:
                    db.execute("COMMIT")
                    return
                except sqlite3.Error as e:
                    db.execute("ROLLBACK")
                    self._reload()
                    raise OutboxError(f"outbox write failed: {e}") from e
            db.execute("ROLLBACK")
            self._reload()
        finally:
            self.box._lock.release()

    def _reload(self) -> None:
        box = self.box
        box._count = dict.fromkeys(KINDS, 0)
        box._bytes = 0
        for kind, n, size in box._db.execute(
            "SELECT kind, COUNT(*), COALESCE(SUM(size), 0) FROM items GROUP BY kind"
        ):
            box._count[kind] = int(n)
            box._bytes += int(size)
        box._counters = {name: int(v) for name, v in box._db.execute("SELECT name, value FROM counters")}
