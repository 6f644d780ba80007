"""Wake-ups for alarm listeners in this process, safe to call from the worker threads of sync routes.

Listeners never receive alarms through here, only a nudge to read the database, so a missed
nudge (another replica stored the alarm) costs at most one poll interval, never an alarm.
"""

from __future__ import annotations

import asyncio
import threading


class AlarmHub:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._listeners: dict[asyncio.Event, asyncio.AbstractEventLoop] = {}

    def subscribe(self) -> asyncio.Event:
        ev = asyncio.Event()
        with self._lock:
            self._listeners[ev] = asyncio.get_running_loop()
        return ev

    def unsubscribe(self, ev: asyncio.Event) -> None:
        with self._lock:
            self._listeners.pop(ev, None)

    @property
    def listeners(self) -> int:
        return len(self._listeners)

    def publish(self) -> None:
        with self._lock:
            targets = list(self._listeners.items())
        for ev, loop in targets:
            try:
                loop.call_soon_threadsafe(ev.set)
            except RuntimeError:  # that loop is closed: its listener is gone
                self.unsubscribe(ev)
