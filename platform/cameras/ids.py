"""GB/T 28181 device codes (设备编码): 20 digits that say where a device is and what it is.

digits 1–8   centre code: 1–6 administrative division (行政区划, GB/T 2260), 7–8 grassroots unit
digits 9–10  industry (行业编码): 00 public-security road, 04 traffic road, 05 traffic checkpoint …
digits 11–13 type (类型编码): 111 DVR, 118 NVR, 121 video checkpoint (视频卡口), 131 camera,
             132 IP camera, 200 platform …
digit 14     network (网络标识): 0–4 public-security networks, 5 public network, 6–9 other
digits 15–20 serial
"""

from __future__ import annotations

from dataclasses import dataclass

from tianwang.errors import InvalidDeviceId

# GB/T 2260 province-level codes (first two digits of the division).
PROVINCES = frozenset(
    {
        "11", "12", "13", "14", "15", "21", "22", "23", "31", "32", "33", "34", "35", "36", "37",
        "41", "42", "43", "44", "45", "46", "50", "51", "52", "53", "54", "61", "62", "63", "64",
        "65", "71", "81", "82",
    }
)  # fmt: skip

TYPE_NAMES = {
    "111": "DVR",
    "112": "video server",
    "113": "encoder",
    "114": "decoder",
    "118": "NVR",
    "121": "video checkpoint",
    "131": "camera",
    "132": "IP camera",
    "200": "platform",
}

CAMERA_KINDS = ("bullet", "dome", "ptz", "turret", "fisheye", "checkpoint", "face")
# which type codes a registered kind may carry
TYPES_FOR_KIND = {
    "checkpoint": frozenset({"121"}),
    **{k: frozenset({"131", "132"}) for k in ("bullet", "dome", "ptz", "turret", "fisheye", "face")},
}


@dataclass(frozen=True)
class DeviceCode:
    code: str
    division: str
    centre: str
    industry: str
    type_code: str
    network: str
    serial: str

    @property
    def province(self) -> str:
        return self.division[:2]


def parse_device_id(value: str, field: str = "device_id") -> DeviceCode:
    """Parse and check the shape of a 20-digit code; raises InvalidDeviceId with the reason."""
    v = value.strip() if isinstance(value, str) else ""
    reason = None
    if len(v) != 20 or not v.isascii() or not v.isdigit():
        reason = "must be exactly 20 digits (GB/T 28181)"
    elif v[:2] not in PROVINCES:
        reason = f"division {v[:6]} does not start with a GB/T 2260 province code"
    elif v[10:13] not in TYPE_NAMES:
        reason = f"type code {v[10:13]} is not a known GB/T 28181 device type"
    if reason:
        raise InvalidDeviceId(f"{field} {value!r}: {reason}", errors=[{"field": field, "message": reason}])
    return DeviceCode(v, v[:6], v[:8], v[8:10], v[10:13], v[13], v[14:])


def check_kind(code: DeviceCode, kind: str, field: str = "device_id") -> None:
    allowed = TYPES_FOR_KIND.get(kind)
    if allowed is None:
        msg = f"unknown kind {kind!r} (one of {', '.join(CAMERA_KINDS)})"
        raise InvalidDeviceId(msg, errors=[{"field": "kind", "message": msg}])
    if code.type_code not in allowed:
        want = "/".join(sorted(allowed))
        name = TYPE_NAMES[code.type_code]
        msg = f"type code {code.type_code} ({name}) does not fit kind {kind!r}: expected {want}"
        raise InvalidDeviceId(msg, errors=[{"field": field, "message": msg}])
