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
  (``WJ粤12345``), possibly ending in a class letter;
- recognised loosely, by shape only: temporary plates (any plate text carrying 临), military
  plates (a branch letter, a letter and five digits, ``VA12345``), civil aviation (``民航`` and five serial
  characters) and Hong Kong / Macao plates read as they are painted (two letters and up to
  four digits, ``AB1234``, ``MA1234``).

`parse` refuses anything else with a reason (hotlist entries, trajectory queries). The ingest uses
`read`, which never refuses: a pass is evidence even without a readable plate, and the vehicles with
none are the ones investigators look for. `read` stores

- no plate on the vehicle (无牌, 无车牌, …) as the marker ``无牌`` (kind ``none``);
- nothing read (empty, 未识别, 未知, all zeros or stars, longer than 40 characters) as the marker
  ``未识别`` (kind ``unread``);
- any other text as read, normalised, with kind ``other`` and `valid` false.
"""

from __future__ import annotations

import re
import unicodedata
from enum import StrEnum
from typing import NamedTuple

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
# (As two strings too, for SQL's translate(): the hotlist matcher computes the key in the query.)
OCR_FROM, OCR_TO = "OQDIB", "00018"
_OCR = str.maketrans(OCR_FROM, OCR_TO)
_ASCII_UPPER = str.maketrans("abcdefghijklmnopqrstuvwxyz", "ABCDEFGHIJKLMNOPQRSTUVWXYZ")
MAX_LEN = 16
# Characters that normalisation leaves as they are (NFKC-stable, upper case, not separators).
_CLEAN = frozenset(PROVINCES + SUFFIXES + "使0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ")
# The same set as one regex: a text made only of these is already normal (one C-level scan).
_CLEAN_TEXT = re.compile(f"[{re.escape(''.join(sorted(_CLEAN)))}]*")
# The commonest plate by far, an ordinary one: province, authority, five serial characters.
# Whatever it matches `_why_not` classifies as ordinary too; `read` takes it without the walk.
_ORDINARY = re.compile(f"[{PROVINCES}][{''.join(sorted(AUTHORITY))}][{''.join(sorted(SERIAL))}]{{5}}")
# What `read` stores as unread when the whole text is made of these (all zeros, stars, …).
_BLANK_CHARS = frozenset("0*?X")


class PlateKind(StrEnum):
    ordinary = "ordinary"
    new_energy = "new_energy"
    embassy = "embassy"
    armed_police = "armed_police"
    temporary = "temporary"
    military = "military"
    civil_aviation = "civil_aviation"
    hk_macao = "hk_macao"
    other = "other"  # text that is not a plate of any known shape (misread, foreign): kept as read
    none = "none"  # the vehicle carries no plate (无牌)
    unread = "unread"  # the checkpoint read nothing (未识别)


# Kinds whose `plate_no` is not a plate that was read off the vehicle.
NOT_VALID = frozenset({PlateKind.other, PlateKind.none, PlateKind.unread})
# Markers stored as `plate_no` when there is no plate text to keep.
NO_PLATE = "无牌"
UNREAD = "未识别"
MARKERS = frozenset({NO_PLATE, UNREAD})
# A character the checkpoint could not read. GA/T 1400 writes each as a half-width '-' in PlateNo
# (粤B12-45), which `normalise` would drop as a separator; the GA/T 1400 ingest turns each into this
# character first, so 粤B12?45 keeps its length and its other characters (kind `other`, not valid).
UNREADABLE = "?"
# What vendors send (after normalisation) for these two cases.
_NO_PLATE_WORDS = frozenset({"无牌", "无车牌", "无号牌", "无牌车", "无牌照", "NOPLATE"})
_UNREAD_WORDS = frozenset(
    {
        "",
        "未识别",
        "未知",
        "车牌",
        "未识别车牌",
        "无法识别",
        "识别失败",
        "不识别",
        "UNKNOWN",
        "NULL",
        "NONE",
        "NA",
    }
)
# Longest plate text kept as read (the column is 40 characters).
MAX_READ = 40
# PLA plates: the issuing branch or region letter (V 军委, K 空军, H 海军, B/S/L/J/N/G/C 战区旧军区, Z 直属),
# a second letter, five digits
_MILITARY = re.compile(r"^[VKHBSLJNGCZ][A-Z][0-9]{5}$")
_HK_MACAO = re.compile(r"^[A-Z]{2}[0-9]{1,4}$")


# Colour: GA/T 1400.3 ColorType (颜色类型), the code carried in MotorVehicleObject.PlateColor (the
# plate's background, a subset of the table) and VehicleColor. Stored as the code string; the native
# ingest also takes the names. Checked against 648540858/wvp-GB28181-pro
# src/main/resources/gb_dict.json ("color") and OverwindSlash/CargoX
# src/Pensees.CargoX.Core/Entities/Vehicles/Motor.cs (PlateColor), which agree code for code; see
# docs/standards.md. (GA 24.8's lettered 车身颜色 codes, A 白 … J 黑, are a different table and are
# not taken.)
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


class Plate(NamedTuple):
    """A plate as classified: immutable (a named tuple, cheap to make once per pass at ingest)."""

    plate_no: str
    kind: PlateKind
    province: str | None
    why: str | None = None  # for a kind in NOT_VALID: why the text is not a plate

    @property
    def valid(self) -> bool:
        return self.kind not in NOT_VALID


def normalise(text: str) -> str:
    """Full-width → half-width (NFKC), ASCII letters upper-cased, separators and spaces dropped.

    Repeated to a fixed point because dropping a separator can bring together characters that
    NFKC composes; so normalise(normalise(x)) == normalise(x) for any text.
    """
    if _CLEAN_TEXT.fullmatch(text):
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
    if "临" in p:
        return (PlateKind.temporary, p[0] if p[0] in PROVINCES else None)
    if p.startswith("民航"):
        if _serial(p[2:], 5):
            return (PlateKind.civil_aviation, None)
        return "civil-aviation plates are 民航 and five serial characters"
    if _MILITARY.match(p):
        return (PlateKind.military, None)
    if _HK_MACAO.match(p):
        return (PlateKind.hk_macao, None)
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


def read(text: str | None) -> Plate:
    """What a checkpoint read, classified; never raises. See the module notes for the markers."""
    p = normalise(text) if isinstance(text, str) else ""
    if _ORDINARY.fullmatch(p):
        return Plate(p, PlateKind.ordinary, p[0])
    if p in _NO_PLATE_WORDS:
        return Plate(NO_PLATE, PlateKind.none, None, "the vehicle carries no plate")
    if p in _UNREAD_WORDS or set(p) <= _BLANK_CHARS or len(p) > MAX_READ:
        why = "no plate text" if len(p) <= MAX_READ else f"longer than {MAX_READ} characters"
        return Plate(UNREAD, PlateKind.unread, None, why)
    if UNREADABLE in p:
        n = p.count(UNREADABLE)
        return Plate(p, PlateKind.other, None, f"{n} character{'s' * (n > 1)} unread")
    got = _why_not(p)
    if isinstance(got, str):
        return Plate(p, PlateKind.other, None, got)
    return Plate(p, *got)


def parse(text: str) -> Plate:
    """Normalise and check; raise InvalidPlate naming why the text is not a plate."""
    if not isinstance(text, str):
        raise InvalidPlate("plate_no must be text", errors=[{"field": "plate_no", "message": "not text"}])
    got = read(text)
    if got.kind in (PlateKind.none, PlateKind.unread) and normalise(text) in MARKERS | _NO_PLATE_WORDS:
        why = f"{got.plate_no} is not a plate: it marks passes without one"
        raise InvalidPlate(why, errors=[{"field": "plate_no", "message": why}])
    if not got.valid:
        p = normalise(text)
        why = "empty plate" if not p else (got.why or "not a plate")
        raise InvalidPlate(f"{p!r}: {why}", errors=[{"field": "plate_no", "message": why}])
    return got


def is_valid(text: str) -> bool:
    return read(text).valid


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
