"""Which live agent owns which device: pinned agent first, else zone match, balanced by capacity.

Weighted rendezvous hashing (highest random weight): every (device, agent) pair gets a stable
pseudo-random score scaled by the agent's capacity, and the device goes to the best-scoring
agent of its zone. When an agent stops heart-beating only its own devices move; when one
joins, it takes a capacity-proportional share from the others and nothing else moves.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass


def in_zones(zones: Iterable[str], area_code: str, device_id: str) -> bool:
    """Whether a device lies in one of `zones` (area-code prefixes, or "*" for all)."""
    return any(z == "*" or area_code.startswith(z) or device_id.startswith(z) for z in zones)


def intersect_zones(claimed: Sequence[str], allowed: Sequence[str] | None) -> tuple[str, ...]:
    """The zones an agent watches: what its heartbeat claims, within what its token allows (None: all).

    Zones are prefixes, so two overlap only when one starts with the other, and their overlap is
    the longer one: "44" within "4403" is "4403"; "4403" and "4404" share nothing.
    """
    if allowed is None or "*" in allowed:
        return tuple(dict.fromkeys(claimed))
    out: list[str] = []
    for c in claimed:
        for a in allowed:
            if c == "*" or c.startswith(a):
                out.append(c if c != "*" and len(c) >= len(a) else a)
            elif a.startswith(c):
                out.append(a)
    return tuple(dict.fromkeys(out))


@dataclass(frozen=True)
class AgentInfo:
    agent_id: str
    capacity: int
    zones: tuple[str, ...]
    # its token's zones (None: all): bounds even a device pinned to this agent
    limit: tuple[str, ...] | None = None

    def reaches(self, area_code: str, device_id: str) -> bool:
        return in_zones(self.zones, area_code, device_id) and self.allowed(area_code, device_id)

    def allowed(self, area_code: str, device_id: str) -> bool:
        return self.limit is None or in_zones(self.limit, area_code, device_id)


@dataclass(frozen=True)
class DeviceRef:
    device_id: str
    area_code: str
    pinned_agent: str | None = None


def _score(device_id: str, agent: AgentInfo) -> float:
    h = hashlib.blake2b(f"{device_id}|{agent.agent_id}".encode(), digest_size=8).digest()
    u = (int.from_bytes(h, "big") + 1) / (2**64 + 2)  # in (0, 1)
    return agent.capacity / -math.log(u)


def owner(device: DeviceRef, agents: Sequence[AgentInfo]) -> str | None:
    """The agent that owns `device` among the live `agents`, or None if none can reach it."""
    if device.pinned_agent:
        for a in agents:
            if a.agent_id == device.pinned_agent and a.allowed(device.area_code, device.device_id):
                return a.agent_id
        # a pinned agent that is down (or whose token does not reach the device): fall back to the
        # zone, so the device is still watched
    best: tuple[float, str] | None = None
    for a in agents:
        if a.reaches(device.area_code, device.device_id):
            s = _score(device.device_id, a)
            if best is None or s > best[0]:
                best = (s, a.agent_id)
    return best[1] if best else None


def assign(devices: Iterable[DeviceRef], agents: Sequence[AgentInfo]) -> dict[str, str | None]:
    return {d.device_id: owner(d, agents) for d in devices}
