"""GA/T 1400 (视图库, VIID) motor-vehicle push: `MotorVehicleListObject` in, `ResponseStatusListObject` out.

Only the subset a checkpoint sends about a pass is read: MotorVehicleID (the idempotency key),
TollgateID (our checkpoint_id), DeviceID, LaneNo, PassTime (yyyyMMddHHmmss in China Standard
Time, +08:00, no offset written), PlateNo, PlateColor and VehicleColor (ColorType codes),
VehicleClass, Speed (km/h), Direction (GA/T 1400 行驶方向 code), StorageUrl1..5 (the first
present is kept as the image). Each object gets its own status in the answer.

Only MotorVehicleID, PassTime and TollgateID are required. A missing or unread PlateNo is a pass
without a plate, stored under a marker (`plates.read`); a Direction outside 1–8 (vendors send 0 or
9 for unknown) or an overlong DeviceID is dropped with a warning, and so are a non-numeric Speed or
LaneNo (by the pass ingest), so one odd attribute never loses the pass.
"""

from __future__ import annotations

import datetime as dt
import re
from typing import Any

from tianwang.protocol.fields import safe_echo, text_problem, time_problem
from tianwang.protocol.sightings import EXTRA_WARNINGS

CST = dt.timezone(dt.timedelta(hours=8), "CST")
REQUEST_URL = "/VIID/MotorVehicles"

# GA/T 1400 ResponseStatusObject.StatusCode
OK, OTHER_ERROR, INVALID_JSON_FORMAT, INVALID_JSON_CONTENT = 0, 1, 7, 8

# 行驶方向 code → heading of travel in degrees clockwise from north
# (1 东→西, 2 西→东, 3 南→北, 4 北→南, 5 东南→西北, 6 西北→东南, 7 东北→西南, 8 西南→东北).
DIRECTION_DEG = {"1": 270.0, "2": 90.0, "3": 0.0, "4": 180.0, "5": 315.0, "6": 135.0, "7": 225.0, "8": 45.0}
_KEY_OK = re.compile(r"^[A-Za-z0-9_.:\-]{8,128}$")


class BadBody(ValueError):
    """The request body is not a MotorVehicleListObject at all."""


def local_time(s: str) -> dt.datetime:
    """`yyyyMMddHHmmss` in China Standard Time → an aware datetime (UTC)."""
    if not re.fullmatch(r"[0-9]{14}", s):
        raise ValueError("PassTime must be yyyyMMddHHmmss (14 digits, local time +08:00)")
    local = dt.datetime.strptime(s, "%Y%m%d%H%M%S").replace(tzinfo=CST)
    why = time_problem(local)  # before the conversion, which overflows in year 1
    if why is not None:
        raise ValueError(f"PassTime {why}")
    return local.astimezone(dt.UTC)


def now_local() -> str:
    return dt.datetime.now(CST).strftime("%Y%m%d%H%M%S")


def objects(body: Any) -> list[Any]:
    """The MotorVehicleObject list of a request body; raise BadBody when the shape is wrong."""
    if not isinstance(body, dict) or not isinstance(body.get("MotorVehicleListObject"), dict):
        raise BadBody("body must be {MotorVehicleListObject: {MotorVehicleObject: [...]}}")
    objs = body["MotorVehicleListObject"].get("MotorVehicleObject")
    if isinstance(objs, dict):
        objs = [objs]
    if not isinstance(objs, list):
        raise BadBody("MotorVehicleListObject.MotorVehicleObject must be a list")
    if len(objs) > 5000:
        raise BadBody("at most 5000 MotorVehicleObject per request")
    return objs


def _text(o: dict[str, Any], name: str) -> str | None:
    """A field as text; raise ValueError naming it when it is no scalar or holds what a database
    cannot store (a NUL, a control character, a lone surrogate): that object is refused."""
    v = o.get(name)
    if v is None or v == "":
        return None
    if isinstance(v, dict | list):
        raise ValueError(f"{name}: must be a string or a number")
    text = str(v).strip()
    why = text_problem(text)
    if why is not None:
        raise ValueError(f"{name}: {why}")
    return text


def object_id(o: Any) -> str:
    """An object's MotorVehicleID as it can be echoed in its status, whatever was sent."""
    v = o.get("MotorVehicleID") if isinstance(o, dict) else None
    if v is None or isinstance(v, dict | list):
        return ""
    return safe_echo(str(v)[:128]) or ""


def to_pass(o: Any) -> tuple[dict[str, Any], dict[str, Any]]:
    """One MotorVehicleObject → (native pass item, extra columns and, under EXTRA_WARNINGS, what was
    dropped). Raises ValueError naming the field when a required one is missing or malformed."""
    if not isinstance(o, dict):
        raise ValueError("MotorVehicleObject must be an object")
    mid = _text(o, "MotorVehicleID")
    if not mid or not _KEY_OK.match(mid):
        raise ValueError("MotorVehicleID: required, 8–128 letters, digits or _.:-")
    pass_time = _text(o, "PassTime")
    if not pass_time:
        raise ValueError("PassTime: required")
    ts = local_time(pass_time)
    tollgate = _text(o, "TollgateID")
    if not tollgate:
        raise ValueError("TollgateID: required (the checkpoint)")
    lane = _text(o, "LaneNo")
    speed = _text(o, "Speed")
    direction = _text(o, "Direction")
    image = next((u for n in range(1, 6) if (u := _text(o, f"StorageUrl{n}"))), None)
    item: dict[str, Any] = {
        "key": mid,
        "checkpoint_id": tollgate,
        "lane": int(lane) if lane and lane.isdigit() else lane,
        "ts": ts,
        "plate_no": _text(o, "PlateNo"),
        "plate_color": _text(o, "PlateColor"),
        "vehicle_color": _text(o, "VehicleColor"),
        "vehicle_type": _text(o, "VehicleClass"),
        "speed_kmh": float(speed) if speed is not None and _is_number(speed) else speed,
        "direction_deg": DIRECTION_DEG.get(direction) if direction is not None else None,
        "image_key": image,
    }
    warnings: list[str] = []
    if direction is not None and direction not in DIRECTION_DEG:
        warnings.append(
            f"Direction: {direction[:20]!r} is not a 行驶方向 code 1–8 (dropped: stored without it)"
        )
    device = _text(o, "DeviceID")
    if device is not None and len(device) > 20:
        warnings.append("DeviceID: more than 20 characters (dropped: stored without it)")
        device = None
    more: dict[str, Any] = {"device_id": device}
    if warnings:
        more[EXTRA_WARNINGS] = warnings
    return item, more


def _is_number(s: str) -> bool:
    try:
        float(s)
    except ValueError:
        return False
    return True


def status(id_: str, code: int, text: str) -> dict[str, Any]:
    return {
        "RequestURL": REQUEST_URL,
        "StatusCode": code,
        "StatusString": text[:500],
        "Id": id_,
        "LocalTime": now_local(),
    }


def response(statuses: list[dict[str, Any]]) -> dict[str, Any]:
    return {"ResponseStatusListObject": {"ResponseStatusObject": statuses}}
