"""Hysteresis over diagnosis verdicts: one bad frame is not an alarm, one good frame is not a cure.

A fault is raised for a camera after it was seen in `raise_after` consecutive checks and cleared
after `clear_after` consecutive checks without it.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from edge_agent.diagnosis.config import DiagnosisConfig

_DEFAULTS = DiagnosisConfig()


@dataclass(frozen=True, slots=True)
class TrackerUpdate:
    active: frozenset[str]  # faults raised for the camera after this check
    raised: frozenset[str]  # newly raised by this check
    cleared: frozenset[str]  # newly cleared by this check


@dataclass(slots=True)
class _Counter:
    seen: int = 0  # consecutive checks with the fault
    missing: int = 0  # consecutive checks without it
    active: bool = False


@dataclass
class FaultTracker:
    """Per camera and fault name, count consecutive presence and absence of a fault."""

    raise_after: int = _DEFAULTS.raise_after
    clear_after: int = _DEFAULTS.clear_after
    _state: dict[str, dict[str, _Counter]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.raise_after < 1 or self.clear_after < 1:
            raise ValueError("raise_after and clear_after must be at least 1")

    @classmethod
    def from_config(cls, config: DiagnosisConfig) -> FaultTracker:
        return cls(raise_after=config.raise_after, clear_after=config.clear_after)

    def update(self, camera: str, faults: Iterable[str]) -> TrackerUpdate:
        """Record one check of `camera` that found `faults`; return what is raised now."""
        present = set(faults)
        counters = self._state.setdefault(camera, {})
        for name in present:
            counters.setdefault(name, _Counter())
        raised: set[str] = set()
        cleared: set[str] = set()
        for name, c in list(counters.items()):
            if name in present:
                c.seen += 1
                c.missing = 0
                if not c.active and c.seen >= self.raise_after:
                    c.active = True
                    raised.add(name)
            else:
                c.missing += 1
                c.seen = 0
                if c.active and c.missing >= self.clear_after:
                    c.active = False
                    cleared.add(name)
                if not c.active:
                    del counters[name]  # nothing pending: keep the state small
        return TrackerUpdate(frozenset(n for n, c in counters.items() if c.active), frozenset(raised),
                             frozenset(cleared))  # fmt: skip

    def active(self, camera: str) -> frozenset[str]:
        return frozenset(n for n, c in self._state.get(camera, {}).items() if c.active)

    def forget(self, camera: str) -> None:
        self._state.pop(camera, None)
