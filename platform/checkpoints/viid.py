"""GA/T 1400 (视图库, VIID) motor-vehicle push: `MotorVehicleListObject` in, `ResponseStatusListObject` out.

Only the subset a checkpoint sends about a pass is read: MotorVehicleID (the idempotency key),
TollgateID (our checkpoint_id), DeviceID, LaneNo, PassTime (yyyyMMddHHmmss in China Standard
Time, +08:00, no offset written), HasPlate, PlateNo, PlateClass (号牌种类), PlateColor and
VehicleColor (ColorType codes), PlateCharReliability, VehicleClass (车辆类型), Speed (km/h),
Direction (行驶方向), StorageUrl1..5 (the first present is kept as the image) and, when none is,
SubImageList (the picture chosen by its ImageType). Each object gets its own status in the answer.
The code tables and their public sources are in `codes` (and docs/standards.md).

Only MotorVehicleID, PassTime and TollgateID are required. GA/T 1400's plate conventions: PlateNo
`无车牌` (or HasPlate 0 with no PlateNo) is a vehicle without a plate, stored under the no-plate
marker (`plates.read`); a `-` in PlateNo is a character that could not be read, stored as
`plates.UNREADABLE`. PlateCharReliability (`苏-80,B-90,…`, per character 0–100) is stored as the
confidences alone, aligned with the stored plate (`80,90,…`). One odd attribute never loses the
pass: a Direction, PlateClass or VehicleClass that is no code of its table (vendors send 0 for
unknown), a reliability that does not fit the plate or an overlong DeviceID is dropped with a
warning, and so are a non-numeric Speed or LaneNo and unknown colours (by the pass ingest).
Direction 9 (其他) is a code of the table: stored without a heading, no warning.
"""

from __future__ import annotations

import datetime as dt
import re
from typing import Any

from tianwang.checkpoints import codes, plates
from tianwang.protocol.fields import safe_echo, text_problem, time_problem
from tianwang.protocol.sightings import EXTRA_WARNINGS
from tianwang.storage.models import utcnow

CST = dt.timezone(dt.timedelta(hours=8), "CST")
REQUEST_URL = "/VIID/MotorVehicles"

# GA/T 1400 ResponseStatusObject.StatusCode
OK, OTHER_ERROR, INVALID_JSON_FORMAT, INVALID_JSON_CONTENT = 0, 1, 7, 8

# 行驶方向 code → heading of travel in degrees clockwise from north, None for 9 其他
# (GA/T 1400.3 §B.3.52; the table and its sources: codes.DIRECTIONS).
DIRECTION_DEG: dict[str, float | None] = {code: deg for code, (deg, _name) in codes.DIRECTIONS.items()}
# PlateNo of a vehicle without a plate (GA/T 1400), and the character written for one not read.
NO_PLATE_TEXT = "无车牌"
UNREAD_CHAR = "-"
_FALSE = frozenset({"0", "false", "False", "FALSE"})
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
    return utcnow().astimezone(CST).strftime("%Y%m%d%H%M%S")


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
    warnings: list[str] = []
    plate_no = plate_text(_text(o, "PlateNo"), _text(o, "HasPlate"))
    item: dict[str, Any] = {
        "key": mid,
        "checkpoint_id": tollgate,
        "lane": int(lane) if lane and lane.isdecimal() else lane,
        "ts": ts,
        "plate_no": plate_no,
        "plate_color": _text(o, "PlateColor"),
        "vehicle_color": _text(o, "VehicleColor"),
        "vehicle_type": _coded(o, "VehicleClass", codes.vehicle_class, "a 车辆类型 (GA 24.4) code", warnings),
        "speed_kmh": float(speed) if speed is not None and _is_number(speed) else speed,
        "direction_deg": DIRECTION_DEG.get(direction) if direction is not None else None,
        "image_key": image(o),
    }
    if direction is not None and direction not in DIRECTION_DEG:
        warnings.append(
            f"Direction: {direction[:20]!r} is not a 行驶方向 code 1–9 (dropped: stored without it)"
        )
    device = _text(o, "DeviceID")
    if device is not None and len(device) > 20:
        warnings.append("DeviceID: more than 20 characters (dropped: stored without it)")
        device = None
    more: dict[str, Any] = {
        "device_id": device,
        "plate_class": _coded(o, "PlateClass", codes.plate_class, "a 号牌种类 (GA 24.7) code", warnings),
        "plate_char_reliability": char_reliability(plate_no, _text(o, "PlateCharReliability"), warnings),
    }
    if warnings:
        more[EXTRA_WARNINGS] = warnings
    return item, more


def _coded(o: dict[str, Any], name: str, code: Any, what: str, warnings: list[str]) -> str | None:
    """A coded attribute as its code; absent or not a code of its table (then warned) → None."""
    v = _text(o, name)
    if v is None:
        return None
    got: str | None = code(v)
    if got is None:
        warnings.append(f"{name}: {v[:20]!r} is not {what} (dropped: stored without it)")
    return got


def plate_text(plate_no: str | None, has_plate: str | None = None) -> str | None:
    """PlateNo as the pass ingest reads it: GA/T 1400's `-` for a character not read becomes
    `plates.UNREADABLE` (else normalisation would drop it as a separator); no PlateNo with
    HasPlate 0 is a vehicle without a plate."""
    if plate_no is None:
        return NO_PLATE_TEXT if has_plate in _FALSE else None
    if UNREAD_CHAR in plate_no and plate_no.strip(UNREAD_CHAR + " "):
        return plate_no.replace(UNREAD_CHAR, plates.UNREADABLE)
    return plate_no


def char_reliability(plate_no: str | None, text: str | None, warnings: list[str]) -> str | None:
    """PlateCharReliability (`苏-80,B-90,1-90,…`: each character of PlateNo and its confidence
    0–100) → the confidences alone, comma-separated, one per character of the stored plate. None
    when not sent or when the plate stored is a marker; dropped with a warning when it does not
    fit the plate."""
    if text is None or plate_no is None or len(plate_no) > plates.MAX_READ:
        return None
    plate = plates.read(plate_no)
    if plate.kind in (plates.PlateKind.none, plates.PlateKind.unread):
        return None
    chars: list[str] = []
    values: list[str] = []
    for part in text.replace("，", ",").split(","):
        char, sep, value = part.strip().rpartition("-")
        value = value.strip()
        if not sep or not value.isdecimal() or int(value) > 100:
            warnings.append(
                f"PlateCharReliability: {part.strip()[:20]!r} is not character-confidence "
                "(0–100) (dropped: stored without it)"
            )
            return None
        char = char.strip()
        chars.append(plates.UNREADABLE if char == UNREAD_CHAR else char)
        values.append(str(int(value)))
    if plates.normalise("".join(chars)) != plate.plate_no or len(values) != len(plate.plate_no):
        warnings.append(
            "PlateCharReliability: its characters are not those of PlateNo (dropped: stored without it)"
        )
        return None
    return ",".join(values)


def image(o: dict[str, Any]) -> str | None:
    """The pass's picture: the first StorageUrl1..5 present, else from SubImageList the picture
    whose ImageType (codes.IMAGE_TYPES) shows the most of the vehicle (codes.IMAGE_PREFERENCE)."""
    url = next((u for n in range(1, 6) if (u := _text(o, f"StorageUrl{n}"))), None)
    if url is not None:
        return url
    subs = o.get("SubImageList")
    subs = subs.get("SubImageInfoObject") if isinstance(subs, dict) else None
    if isinstance(subs, dict):
        subs = [subs]
    if not isinstance(subs, list):
        return None
    by_type: dict[str, str] = {}
    for sub in subs:
        if isinstance(sub, dict) and (path := _text(sub, "StoragePath")):
            by_type.setdefault(str(sub.get("Type", "")).strip(), path)
    return next((by_type[t] for t in codes.IMAGE_PREFERENCE if t in by_type), None)


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
