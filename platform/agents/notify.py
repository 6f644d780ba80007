"""In-process wake-ups for long polls; replicas that miss them still see the database within a poll tick."""

from __future__ import annotations

import asyncio
from collections import defaultdict


class Notifier:
    def __init__(self) -> None:
        self._events: dict[str, asyncio.Event] = defaultdict(asyncio.Event)

    def notify(self, topic: str) -> None:
        ev = self._events.get(topic)
        if ev is not None:
            ev.set()

    async def wait(self, topic: str, timeout: float) -> None:
        """Return when notified on `topic` or after `timeout` seconds, whichever comes first."""
        ev = self._events[topic]
        try:
            await asyncio.wait_for(ev.wait(), timeout)
        except TimeoutError:
            pass
        finally:
            ev.clear()
