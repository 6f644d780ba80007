"""The faults a virtual device can be given: names, default parameters, and the CLI spec parser.

A device's faults are a dict `{name: value}`; `value` is `True` for a fault without a parameter
and a number for one with a parameter (seconds, hours, megabytes, strength).
"""

from __future__ import annotations

import random
from collections.abc import Mapping
from typing import Any

# name -> default parameter (None: the fault takes none). The unit is in FAULT_HELP.
NETWORK_FAULTS: dict[str, float | None] = {
    "offline": None,
    "slow": 3.0,
    "silent": None,
    "wrong_password": None,
    "clock_skew": 5.0,
    "malformed_xml": None,
    "oversized": 50.0,
}
PICTURE_FAULTS: dict[str, float | None] = {
    "signal_loss_black": None,
    "signal_loss_blue": None,
    "blur": 9.0,
    "overexposed": None,
    "underexposed": None,
    "color_cast": None,
    "occlusion": 0.6,
    "noise": 40.0,
    "frozen": None,
    "moved": 12.0,
}
# how the snapshot URL serves (or fails to serve) the picture: not a picture fault, a device's habit
SNAPSHOT_FAULTS: dict[str, float | None] = {
    "png_snapshot": None,
    "bmp_snapshot": None,
    "snapshot_broken": None,
    "no_snapshot_uri": None,
}
# The RTSP stream's own faults (the stream also shows frozen and signal_loss_black/blue); never
# given at random, like ADDRESS_FAULTS, so seeded fault assignments stay what they were.
STREAM_FAULTS: dict[str, float | None] = {
    "no_stream": None,
    "wrong_resolution": None,
    "low_fps": 5.0,
    "broken_packets": 0.001,
    "stream_stops": 1.0,
}
# How the device names itself, not a failure: never given at random (see random_assignment).
ADDRESS_FAULTS: dict[str, float | None] = {
    "nat": None,
}
FAULTS: dict[str, float | None] = {
    **NETWORK_FAULTS,
    **PICTURE_FAULTS,
    **SNAPSHOT_FAULTS,
    **STREAM_FAULTS,
    **ADDRESS_FAULTS,
}
# the device's own LAN address under the nat fault: TEST-NET-1 (RFC 5737), routed nowhere
NAT_LAN_ADDRESS = "192.0.2.10:80"

FAULT_HELP = {
    "offline": "port closed: connections are refused",
    "slow": "answers after N seconds (default 3)",
    "silent": "accepts the connection, never answers",
    "wrong_password": "the device's password differs from the registered one",
    "clock_skew": "the device clock is N hours off (default +5; may be negative)",
    "malformed_xml": "SOAP answers are truncated, invalid XML with HTTP 200",
    "oversized": "SOAP answers are N megabytes (default 50), streamed",
    "signal_loss_black": "black frame",
    "signal_loss_blue": "blue 'no video' frame",
    "blur": "Gaussian blur of sigma N pixels (default 9)",
    "overexposed": "washed-out frame",
    "underexposed": "very dark frame",
    "color_cast": "strong green cast",
    "occlusion": "a flat object covers share N of the frame (default 0.6)",
    "noise": "Gaussian noise of sigma N grey levels (default 40)",
    "frozen": "the same frame (same bytes) forever",
    "moved": "the scene turned by N degrees and shifted, as if the camera was knocked",
    "no_stream": "the RTSP server has no stream at the device's URI (404)",
    "wrong_resolution": "the stream is half the declared width and height",
    "low_fps": "the stream runs at N frames per second (default 5) whatever the profile says",
    "broken_packets": "the coded video has bytes flipped with probability N (default 0.001): decode errors",
    "stream_stops": "the stream ends N seconds (default 1) after each PLAY",
    "nat": (
        f"behind NAT: XAddrs, snapshot and stream URIs name the LAN address {NAT_LAN_ADDRESS} "
        "(or the device's lan_address), not the forwarded one it is reached at"
    ),
    "png_snapshot": "the snapshot URL serves PNG (image/png), as some virtual and older cameras do",
    "bmp_snapshot": "the snapshot URL serves an uncompressed BMP (image/bmp)",
    "snapshot_broken": "the snapshot URL answers HTTP 500: ONVIF answers, no picture ever comes",
    "no_snapshot_uri": "stream only: GetSnapshotUri answers ter:ActionNotSupported, no snapshot URL",
}

# Scene modes are how the world looks, not faults; a diagnosis must not call them faults.
SCENE_MODES = ("day", "night", "ir")


class FaultSpecError(ValueError):
    """A fault name, parameter or CLI spec that cannot be used; the message says which and why."""


def normalise(faults: Mapping[str, Any]) -> dict[str, bool | float]:
    """Check a `{name: value}` dict and fill defaults; `False`/`None` values mean "not set"."""
    out: dict[str, bool | float] = {}
    for name, value in faults.items():
        if name not in FAULTS:
            raise FaultSpecError(f"unknown fault {name!r} (one of {', '.join(FAULTS)})")
        if value is None or value is False:
            continue
        default = FAULTS[name]
        if default is None:
            if value is not True:
                raise FaultSpecError(f"fault {name!r} takes no parameter (use true)")
            out[name] = True
            continue
        if value is True:
            out[name] = default
            continue
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise FaultSpecError(f"fault {name!r}: parameter must be a number, not {value!r}")
        number = float(value)
        if number != number or abs(number) > 1e6:
            raise FaultSpecError(f"fault {name!r}: parameter {value!r} out of range")
        if name != "clock_skew" and number < 0:
            raise FaultSpecError(f"fault {name!r}: parameter must not be negative")
        if name in ("occlusion", "broken_packets") and not 0 < number <= 1:
            raise FaultSpecError(f"fault {name!r}: share must be in (0, 1]")
        if name in ("low_fps", "stream_stops") and number < 0.1:
            raise FaultSpecError(f"fault {name!r}: parameter must be at least 0.1")
        out[name] = number
    return out


def merge(current: Mapping[str, bool | float], change: Mapping[str, Any]) -> dict[str, bool | float]:
    """Apply a run-time change: named faults are set, `false`/`null` clears one, others stay."""
    checked = normalise(change)
    out = dict(current)
    for name, value in change.items():
        if value is None or value is False:
            out.pop(name, None)
    out.update(checked)
    return out


def parse_spec(spec: str, n_devices: int) -> dict[int, dict[str, bool | float]]:
    """Parse `"3:offline,4:slow=5,5:blur"` (0-based device index : fault [= parameter])."""
    out: dict[int, dict[str, bool | float]] = {}
    for raw in spec.split(","):
        item = raw.strip()
        if not item:
            continue
        index_s, sep, fault = item.partition(":")
        if not sep or not index_s.strip().isdigit():
            raise FaultSpecError(f"{item!r}: expected INDEX:FAULT[=PARAM], e.g. 3:offline or 4:slow=5")
        index = int(index_s)
        if index >= n_devices:
            raise FaultSpecError(f"{item!r}: device index {index} out of range (0..{n_devices - 1})")
        name, eq, param = fault.strip().partition("=")
        value: Any = True
        if eq:
            try:
                value = float(param)
            except ValueError:
                raise FaultSpecError(f"{item!r}: parameter {param!r} is not a number") from None
        out.setdefault(index, {}).update(normalise({name.strip(): value}))
    return out


def random_assignment(n_devices: int, share: float, seed: int) -> dict[int, dict[str, bool | float]]:
    """Give round(share × n) devices, picked by seed, one fault each (with its default parameter)."""
    if not 0 <= share <= 1:
        raise FaultSpecError(f"fault share {share} must be between 0 and 1")
    rng = random.Random(f"faults:{seed}")
    count = round(share * n_devices)
    names = sorted({**NETWORK_FAULTS, **PICTURE_FAULTS})
    return {i: normalise({rng.choice(names): True}) for i in sorted(rng.sample(range(n_devices), count))}
