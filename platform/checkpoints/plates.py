"""Chinese licence plates (号牌): normalisation, syntax check, colour codes, OCR-equivalent keys.

Pure functions: the ingest, the hotlist matcher and the trajectory routes all go through here, so
one plate is spelt one way everywhere.

Syntax accepted (GA 36-2018 号牌 as seen by checkpoint cameras; reasonable, not exhaustive):

- ordinary (普通): province character, issuing-authority letter (A–Z but I), five serial
  characters from digits and letters without I and O — ``粤B12345``, ``京AB123C``;
- with a trailing class character instead of the fifth serial: 学 (driving school), 警 (police),
  港 / 澳 (Hong Kong / Macao cross-border), 挂 (trailer), 领 (consulate), 试 (test), 超 — ``粤Z1234港``;
- new energy (新能源, six serial characters): small vehicles ``D|F`` then one letter-or-digit then
  four digits (``粤BD12345``, ``粤BDF1234``); large vehicles five digits then ``D|F`` (``粤B12345D``).
  D is battery-electric, F any other new energy;
- embassy (使馆): ``使`` and six digits (``使014578``);
- armed police (武警): ``WJ``, an optional province character, five serial characters
  (``WJ粤12345``), possibly ending in a class letter.

Not accepted (refused with a reason): military plates (two-letter prefixes such as ``VA``),
temporary plates (临时), civil-aviation (民航) and the old-style black Hong Kong / Macao plates
read as foreign text. A checkpoint that reads no plate (无牌 / 未识别) sends no plate at all.
"""

from __future__ import annotations

import unicodedata
from dataclasses import dataclass
from enum import StrEnum

from tianwang.errors import ValidationFailed

PROVINCES = "京津沪渝冀豫云辽黑湘皖鲁新苏浙赣鄂桂甘晋蒙陕吉闽贵粤青藏川宁琼"
SUFFIXES = "学警港澳挂领试超"
# Serial characters: digits and letters without I and O (they read as 1 and 0).
SERIAL = frozenset("0123456789ABCDEFGHJKLMNPQRSTUVWXYZ")
AUTHORITY = frozenset("ABCDEFGHJKLMNOPQRSTUVWXYZ")  # O is used (e.g. police 粤O), I is not
DIGITS = frozenset("0123456789")
# Separators found between the parts of a plate as typed or OCR'd: dropped.
_DROP = frozenset(" \t\r\n\u3000-·•・.．_\u2010\u2011\u2012\u2013\u2014\u2212\u00a0\u200b\u200c\u200d\ufeff")
# What an OCR engine confuses (after upper-casing): both sides map to the digit.
_OCR = str.maketrans({"O": "0", "Q": "0", "D": "0", "I": "1", "B": "8"})
_ASCII_UPPER = str.maketrans("abcdefghijklmnopqrstuvwxyz", "ABCDEFGHIJKLMNOPQRSTUVWXYZ")
MAX_LEN = 16
# Characters that normalisation leaves as they are (NFKC-stable, upper case, not separators).
_CLEAN = frozenset(PROVINCES + SUFFIXES + "使0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ")


class PlateKind(StrEnum):
    ordinary = "ordinary"
    new_energy = "new_energy"
    embassy = "embassy"
    armed_police = "armed_police"


# Plate colour: GA/T 1400.3 ColorType (颜色类型), the code carried in MotorVehicleObject.PlateColor
# and VehicleColor. Stored as the code string; the native ingest also takes the names.
COLOURS: dict[str, tuple[str, str]] = {
    "1": ("black", "黑"),
    "2": ("white", "白"),
    "3": ("grey", "灰"),
    "4": ("red", "红"),
    "5": ("blue", "蓝"),
    "6": ("yellow", "黄"),
    "7": ("orange", "橙"),
    "8": ("brown", "棕"),
    "9": ("green", "绿"),
    "10": ("purple", "紫"),
    "11": ("cyan", "青"),
    "12": ("pink", "粉"),
    "13": ("transparent", "透明"),
    "99": ("other", "其他"),
}
_COLOUR_NAMES = {name: code for code, names in COLOURS.items() for name in names}
_COLOUR_NAMES.update({"gray": "3", "黄绿": "9", "渐变绿": "9", "yellow-green": "9"})


class InvalidPlate(ValidationFailed):
    title = "Invalid plate"
    type_ = "urn:tianwang:problem:invalid-plate"


@dataclass(frozen=True)
class Plate:
    plate_no: str
    kind: PlateKind
    province: str | None


def normalise(text: str) -> str:
    """Full-width → half-width (NFKC), ASCII letters upper-cased, separators and spaces dropped.

    Repeated to a fixed point because dropping a separator can bring together characters that
    NFKC composes; so normalise(normalise(x)) == normalise(x) for any text.
    """
    if all(ch in _CLEAN for ch in text):
        return text  # already normal: the common case at ingest, so skip NFKC
    s = text
    for _ in range(8):
        t = unicodedata.normalize("NFKC", s).translate(_ASCII_UPPER)
        t = "".join(ch for ch in t if ch not in _DROP)
        if t == s:
            break
        s = t
    return s


def ocr_key(plate_no: str) -> str:
    """The key under which plates an OCR engine could confuse (O/0/D/Q, I/1, B/8) are equal."""
    return normalise(plate_no).translate(_OCR)


def _serial(s: str, n: int) -> bool:
    return len(s) == n and all(c in SERIAL for c in s)


def _new_energy(serial: str) -> bool:
    if len(serial) != 6:
        return False
    small = serial[0] in "DF" and serial[1] in SERIAL and all(c in DIGITS for c in serial[2:])
    large = all(c in DIGITS for c in serial[:5]) and serial[5] in "DF"
    return small or large


def _why_not(p: str) -> tuple[PlateKind, str | None] | str:
    """The plate's kind and province, or why it is not a plate."""
    if not p:
        return "empty plate"
    if len(p) > MAX_LEN:
        return f"longer than {MAX_LEN} characters"
    if p[0] == "使":
        return (
            (PlateKind.embassy, None)
            if len(p) == 7 and all(c in DIGITS for c in p[1:])
            else ("embassy plates are 使 and six digits")
        )
    if p.startswith("WJ"):
        rest = p[2:]
        if rest[:1] and rest[0] in PROVINCES:
            rest = rest[1:]
        if _serial(rest, 5) or (
            _serial(rest[:4], 4) and rest[4:] in ("警", "消", "边", "通", "森", "金", "电")
        ):
            return (PlateKind.armed_police, p[2] if p[2:3] and p[2] in PROVINCES else None)
        return "armed-police plates are WJ, an optional province and five serial characters"
    if p[0] not in PROVINCES:
        return f"first character {p[0]!r} is not a province abbreviation"
    if len(p) < 2 or p[1] not in AUTHORITY:
        return "second character must be the issuing authority letter (A–Z, not I)"
    serial = p[2:]
    if _serial(serial, 5):
        return (PlateKind.ordinary, p[0])
    if len(serial) == 5 and serial[4] in SUFFIXES and _serial(serial[:4], 4):
        return (PlateKind.ordinary, p[0])
    if _new_energy(serial):
        return (PlateKind.new_energy, p[0])
    if len(serial) == 6:
        return "six-character serials are new-energy plates: D/F first (then 4 digits last) or D/F sixth"
    if any(c in "IO" for c in serial):
        return "serials do not use the letters I and O"
    return f"serial {serial!r} is not five characters (or four and a class character such as 学 or 警)"


def parse(text: str) -> Plate:
    """Normalise and check; raise InvalidPlate naming why the text is not a plate."""
    if not isinstance(text, str):
        raise InvalidPlate("plate_no must be text", errors=[{"field": "plate_no", "message": "not text"}])
    p = normalise(text)
    got = _why_not(p)
    if isinstance(got, str):
        raise InvalidPlate(f"{p!r}: {got}", errors=[{"field": "plate_no", "message": got}])
    kind, province = got
    return Plate(p, kind, province)


def is_valid(text: str) -> bool:
    return not isinstance(_why_not(normalise(text)), str)


def colour_code(value: str | int | None) -> str | None:
    """A colour as its GA/T 1400 ColorType code; None when absent. Raises on an unknown colour."""
    if value is None or value == "":
        return None
    if isinstance(value, str) and value in COLOURS:
        return value
    v = normalise(str(value)).lower()
    if v in COLOURS:
        return v
    if v.isdigit() and v.lstrip("0") in COLOURS:
        return v.lstrip("0")
    code = _COLOUR_NAMES.get(v) or _COLOUR_NAMES.get(str(value).strip())
    if code is None:
        known = ", ".join(f"{c} {n[0]}" for c, n in COLOURS.items())
        raise ValidationFailed(
            f"unknown colour {value!r} (GA/T 1400 ColorType: {known})",
            errors=[{"field": "color", "message": "unknown colour code"}],
        )
    return code
