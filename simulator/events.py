"""The events a virtual device emits (motion; licence plates at checkpoints) and its pull-point subscriptions.

Events are a deterministic function of the device seed and its clock, so a subscription only keeps
a cursor (the device time up to which it has delivered) — memory stays bounded however long a
client is away: the device buffers at most BUFFER_S seconds of events, like real firmware.
"""

from __future__ import annotations

import datetime as dt
import random
import secrets
from dataclasses import dataclass
from xml.sax.saxutils import quoteattr

from simulator.scene import plate_for

MOTION_TOPIC = "tns1:VideoSource/MotionAlarm"
# ONVIF defines no fixed plate topic; this is the analytics rule-engine form real checkpoint firmware uses.
PLATE_TOPIC = "tns1:RuleEngine/LicensePlateDetector/LicensePlate"
BUFFER_S = 600.0
MAX_SUBSCRIPTIONS = 16  # per device; the oldest is dropped beyond this
MAX_TERMINATION = dt.timedelta(hours=1)


@dataclass(frozen=True)
class Pass:
    """One vehicle passing a checkpoint (过车): the seed of a future pass record."""

    ts: float  # device clock, epoch seconds
    index: int
    plate_no: str
    plate_color: str
    lane: int
    vehicle_type: str
    speed_kmh: int


@dataclass(frozen=True)
class Event:
    ts: float
    topic: str
    operation: str  # Initialized | Changed
    source: tuple[tuple[str, str], ...]
    data: tuple[tuple[str, str], ...]


def _motion_params(seed: int) -> tuple[float, float, float]:
    rng = random.Random(f"motion:{seed}")
    return rng.uniform(20.0, 40.0), rng.uniform(4.0, 10.0), rng.uniform(0.0, 40.0)


def motion_state(seed: int, t: float) -> bool:
    period, duration, phase = _motion_params(seed)
    return ((t - phase) % period) < duration


def _motion_changes(seed: int, t0: float, t1: float) -> list[Event]:
    period, duration, phase = _motion_params(seed)
    out = []
    k = int((t0 - phase) // period)
    while True:
        start = phase + k * period
        if start > t1:
            break
        for ts, state in ((start, True), (start + duration, False)):
            if t0 < ts <= t1:
                out.append(_motion_event(ts, state, "Changed"))
        k += 1
    return out


def _motion_event(ts: float, state: bool, operation: str) -> Event:
    return Event(
        ts, MOTION_TOPIC, operation, (("Source", "VideoSource_1"),), (("State", str(state).lower()),)
    )


def _pass_period(seed: int) -> tuple[float, float]:
    rng = random.Random(f"passes:{seed}")
    return rng.uniform(3.0, 6.0), rng.uniform(0.0, 6.0)


def passes_between(seed: int, t0: float, t1: float) -> list[Pass]:
    """The vehicles a checkpoint sees in (t0, t1] of its clock.

    This is where checkpoint pass records come from; sending them to the API (native batches or
    GA/T 1400) is a later issue and is NOT done by the simulator yet.
    """
    period, phase = _pass_period(seed)
    out = []
    k = max(0, int((t0 - phase) // period))
    while (ts := phase + k * period) <= t1:
        if ts > t0:
            rng = random.Random(f"pass:{seed}:{k}")
            out.append(
                Pass(
                    ts=ts,
                    index=k,
                    plate_no=plate_for(seed, k),
                    plate_color=rng.choice(("blue", "blue", "blue", "yellow")),
                    lane=rng.randint(1, 3),
                    vehicle_type=rng.choice(("car", "car", "car", "suv", "truck", "bus")),
                    speed_kmh=rng.randint(20, 75),
                )
            )
        k += 1
    return out


def _plate_event(p: Pass) -> Event:
    return Event(
        p.ts,
        PLATE_TOPIC,
        "Changed",
        (
            ("VideoSourceConfigurationToken", "VideoSourceConfig_1"),
            ("VideoAnalyticsConfigurationToken", "Analytics_1"),
            ("Rule", "PlateRule_1"),
        ),
        (
            ("PlateNumber", p.plate_no),
            ("PlateColor", p.plate_color),
            ("Lane", str(p.lane)),
            ("VehicleType", p.vehicle_type),
            ("Speed", str(p.speed_kmh)),
            ("Likelihood", "0.97"),
        ),
    )


def events_between(seed: int, checkpoint: bool, t0: float, t1: float) -> list[Event]:
    out = _motion_changes(seed, t0, t1)
    if checkpoint:
        out += [_plate_event(p) for p in passes_between(seed, t0, t1)]
    return sorted(out, key=lambda e: e.ts)


def next_event_after(seed: int, checkpoint: bool, t: float, horizon: float) -> float | None:
    nxt = events_between(seed, checkpoint, t, t + horizon)
    return nxt[0].ts if nxt else None


class Subscription:
    """A pull point: where its client is in the event stream, and when it expires (device clock)."""

    def __init__(self, created: float, termination: dt.datetime) -> None:
        self.id = secrets.token_hex(8)
        self.cursor = created
        self.termination = termination
        self.needs_initial = True  # ONVIF sends property states as "Initialized" first

    def take(self, seed: int, checkpoint: bool, now: float, limit: int) -> list[Event]:
        out: list[Event] = []
        if self.needs_initial:
            out.append(_motion_event(now, motion_state(seed, now), "Initialized"))
            self.needs_initial = False
        self.cursor = max(self.cursor, now - BUFFER_S)
        pending = events_between(seed, checkpoint, self.cursor, now)
        room = max(0, limit - len(out))
        delivered = pending[:room]
        out += delivered
        self.cursor = delivered[-1].ts if len(pending) > room and delivered else now
        return out


def event_xml(ev: Event, subscription_address: str) -> str:
    def items(pairs: tuple[tuple[str, str], ...]) -> str:
        return "".join(f"<tt:SimpleItem Name={quoteattr(k)} Value={quoteattr(v)}/>" for k, v in pairs)

    utc = dt.datetime.fromtimestamp(ev.ts, dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"
    return (
        "<wsnt:NotificationMessage>"
        f"<wsnt:SubscriptionReference><wsa5:Address>{subscription_address}</wsa5:Address></wsnt:SubscriptionReference>"
        f'<wsnt:Topic Dialect="http://www.onvif.org/ver10/tev/topicExpression/ConcreteSet">{ev.topic}</wsnt:Topic>'
        f'<wsnt:Message><tt:Message UtcTime="{utc}" PropertyOperation="{ev.operation}">'
        f"<tt:Source>{items(ev.source)}</tt:Source><tt:Data>{items(ev.data)}</tt:Data>"
        "</tt:Message></wsnt:Message></wsnt:NotificationMessage>"
    )
