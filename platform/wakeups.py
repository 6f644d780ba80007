"""The one in-process wake-up hub: long polls (agent heartbeats, probe commands) and alarm streams
wait on a topic; routes — async ones and the worker threads of sync ones — publish to it.

A wake-up carries nothing but a nudge to read the database, so one that is missed (another replica
did the write, or it came before the listener subscribed) costs at most the listener's poll
interval, never a command or an alarm. Each listener's event is set on its own event loop
(`call_soon_threadsafe`), so publishing is safe from any thread; a topic is dropped when its last
listener leaves, so a topic per command never accumulates.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import AsyncIterator

ALARMS = "alarms"


def agent_topic(agent_id: str) -> str:
    return f"agent:{agent_id}"


def command_topic(command_id: int | str) -> str:
    return f"command:{command_id}"


class WakeHub:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._topics: dict[str, dict[asyncio.Event, asyncio.AbstractEventLoop]] = {}

    def subscribe(self, topic: str) -> asyncio.Event:
        """An event set at each publish on `topic` (clear it after waking); call from a coroutine."""
        ev = asyncio.Event()
        loop = asyncio.get_running_loop()
        with self._lock:
            self._topics.setdefault(topic, {})[ev] = loop
        return ev

    def unsubscribe(self, topic: str, ev: asyncio.Event) -> None:
        with self._lock:
            listeners = self._topics.get(topic)
            if listeners is None:
                return
            listeners.pop(ev, None)
            if not listeners:
                del self._topics[topic]

    @contextlib.asynccontextmanager
    async def listening(self, topic: str) -> AsyncIterator[asyncio.Event]:
        ev = self.subscribe(topic)
        try:
            yield ev
        finally:
            self.unsubscribe(topic, ev)

    def publish(self, topic: str) -> None:
        """Wake every listener of `topic`; safe from any thread, a no-op when nobody listens."""
        with self._lock:
            targets = list(self._topics.get(topic, {}).items())
        for ev, loop in targets:
            try:
                loop.call_soon_threadsafe(ev.set)
            except RuntimeError:  # that loop is closed: its listener is gone
                self.unsubscribe(topic, ev)

    async def wait(self, topic: str, timeout: float) -> bool:
        """Return when `topic` is published or after `timeout` seconds; True if woken."""
        async with self.listening(topic) as ev:
            try:
                await asyncio.wait_for(ev.wait(), timeout)
            except TimeoutError:
                return False
            return True

    def listeners(self, topic: str | None = None) -> int:
        with self._lock:
            if topic is not None:
                return len(self._topics.get(topic, {}))
            return sum(len(v) for v in self._topics.values())

    def topics(self) -> int:
        with self._lock:
            return len(self._topics)
