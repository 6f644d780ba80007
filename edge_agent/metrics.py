"""The agent's Prometheus metrics, in a registry of its own (several agents may share a process in tests)."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, start_http_server
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

if TYPE_CHECKING:
    from edge_agent.outbox import Outbox


class _OutboxCollector(Collector):
    """Outbox depth and its drop / dead-letter counters, read at scrape time from the outbox's totals."""

    def __init__(self, outbox: Outbox) -> None:
        self.outbox = outbox

    def collect(self) -> Iterator[Any]:
        items = GaugeMetricFamily(
            "tianwang_agent_outbox_items", "items waiting in the outbox", labels=["kind"]
        )
        for kind, n in self.outbox.depth().items():
            items.add_metric([kind], n)
        yield items
        yield GaugeMetricFamily(
            "tianwang_agent_outbox_bytes", "bytes waiting in the outbox", value=self.outbox.bytes
        )
        c = self.outbox.counters()
        # persisted in the outbox, so they survive restarts: exposed as gauges of running totals
        yield GaugeMetricFamily(
            "tianwang_agent_outbox_dropped_snapshots",
            "snapshots dropped because the outbox was full",
            value=c.get("dropped_snapshots", 0),
        )
        dead = GaugeMetricFamily(
            "tianwang_agent_outbox_dead_letters", "items the API refused as invalid", labels=["kind"]
        )
        for kind in ("health", "snapshot", "result"):
            dead.add_metric([kind], c.get(f"dead_{kind}", 0))
        yield dead
        yield GaugeMetricFamily(
            "tianwang_agent_outbox_expired_results",
            "command results dropped after their deadline",
            value=c.get("expired_results", 0),
        )


class _DeviceStates(Collector):
    """Each assigned device's latest health outcome (`ok`, `auth_refused`, `unreachable`, `timeout`…),
    published as a count of devices per state."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._state: dict[str, str] = {}

    def set(self, device_id: str, state: str) -> None:
        with self._lock:
            self._state[device_id] = state

    def forget(self, device_id: str) -> None:
        with self._lock:
            self._state.pop(device_id, None)

    def collect(self) -> Iterator[Any]:
        with self._lock:
            states = list(self._state.values())
        fam = GaugeMetricFamily(
            "tianwang_agent_device_states",
            "assigned devices by their latest health outcome",
            labels=["state"],
        )
        for state in sorted(set(states) | {"ok", "auth_refused", "unreachable", "timeout"}):
            fam.add_metric([state], states.count(state))
        yield fam


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        self.probes = Counter("tianwang_agent_probes", "device probes", ["kind", "outcome"], registry=r)
        self.probe_seconds = Histogram(
            "tianwang_agent_probe_seconds",
            "probe duration",
            ["kind"],
            registry=r,
            buckets=(0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 20, 30),
        )
        self.skipped_ticks = Counter(
            "tianwang_agent_skipped_ticks",
            "scheduled runs skipped because the previous one overran",
            ["kind"],
            registry=r,
        )
        self.sent = Counter(
            "tianwang_agent_sent", "items acknowledged by the API", ["kind", "outcome"], registry=r
        )
        self.uploads = Counter(
            "tianwang_agent_uploads", "snapshot uploads (presigned PUT)", ["outcome"], registry=r
        )
        self.send_failures = Counter(
            "tianwang_agent_send_failures", "batches not delivered (API down, 5xx)", ["kind"], registry=r
        )
        self.unexpected_answers = Counter(
            "tianwang_agent_unexpected_answers",
            "API answers that neither took nor rejected the items (redirect, 404, 413, 5xx…): items kept",
            ["kind", "status"],
            registry=r,
        )
        self.heartbeats = Counter("tianwang_agent_heartbeats", "heartbeats answered", registry=r)
        self.heartbeat_failures = Counter(
            "tianwang_agent_heartbeat_failures", "heartbeats that failed", registry=r
        )
        self.commands = Counter("tianwang_agent_commands", "commands run", ["kind", "outcome"], registry=r)
        self.devices = Gauge("tianwang_agent_devices", "devices assigned to this agent", registry=r)
        self._device_states = _DeviceStates()
        r.register(self._device_states)
        self._server: Any = None
        self._thread: threading.Thread | None = None

    def device_health(self, device_id: str, outcome: str) -> None:
        """Record a device's latest health outcome (the same outcome `tianwang_agent_probes` counts)."""
        self._device_states.set(device_id, outcome)

    def forget_device(self, device_id: str) -> None:
        """The device is no longer assigned here: it leaves the device-state gauge."""
        self._device_states.forget(device_id)

    def exposition(self) -> bytes:
        from prometheus_client import generate_latest

        return generate_latest(self.registry)

    def watch_outbox(self, outbox: Outbox) -> None:
        self.registry.register(_OutboxCollector(outbox))

    def serve(self, port: int, host: str = "127.0.0.1") -> int:
        """Serve /metrics on its own thread; returns the port (useful with port 0)."""
        self._server, self._thread = start_http_server(port, addr=host, registry=self.registry)
        return int(self._server.server_address[1])

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
