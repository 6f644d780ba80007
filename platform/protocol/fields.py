"""Field types the wire models share: text a database can store, and times a calendar can hold.

PostgreSQL refuses NUL in text (and in JSON), and no UTF-8 encoder takes a lone surrogate (JSON's
`"\\ud800"`): such a value reaching the database fails the whole batch it is in. Times like
`0001-01-01T00:00:00+08:00` parse, but overflow when turned into UTC. Both are refused here, at
validation, with the field named, so an ingest refuses only the item that carries one.
"""

from __future__ import annotations

import datetime as dt
import math
import re
from typing import Annotated, Any

from pydantic import AfterValidator, BeforeValidator
from pydantic_core import PydanticCustomError

# The pydantic error type of a value refused here: never "an optional field out of range" that an
# ingest may drop with a warning — a record carrying one is corrupt and is refused whole.
BAD_TEXT = "bad_text"
BAD_TIME = "time_out_of_range"

# one line (ids, codes, plates, names): no control character at all
_NOT_IN_LINE = re.compile(r"[\x00-\x1f\x7f\ud800-\udfff]")
# free text (an error message): tab, line feed and carriage return are allowed
_NOT_IN_TEXT = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f\ud800-\udfff]")

# Times outside these years are a device clock or a caller gone wrong; inside them every
# conversion and day arithmetic the platform does stays far from datetime's year 1 and 9999.
MIN_YEAR, MAX_YEAR = 1970, 2200
_LOW = dt.datetime(MIN_YEAR, 1, 1)
_HIGH = dt.datetime(MAX_YEAR + 1, 1, 1)


def text_problem(value: str, *, multiline: bool = False) -> str | None:
    """Why `value` cannot be stored as text (a short reason, without the value), or None."""
    m = (_NOT_IN_TEXT if multiline else _NOT_IN_LINE).search(value)
    if m is None:
        return None
    c = ord(m.group())
    if c == 0:
        return "contains a NUL character (U+0000), which text may not hold"
    if 0xD800 <= c <= 0xDFFF:
        return f"contains a lone surrogate (U+{c:04X}), which is not text"
    return f"contains the control character U+{c:04X}"


def escape_text(value: str, *, multiline: bool = False) -> str:
    """`value` with each character `text_problem` refuses written as its escape (`\\x00`): for a
    sender that passes on text it did not write, such as a device's error message."""
    bad = _NOT_IN_TEXT if multiline else _NOT_IN_LINE
    return bad.sub(
        lambda m: f"\\x{ord(m.group()):02x}" if ord(m.group()) < 0x100 else f"\\u{ord(m.group()):04x}", value
    )


def _check(multiline: bool) -> Any:
    # before the length and pattern constraints, so a NUL is named as such, not as a mismatch
    def check(value: Any) -> Any:
        if isinstance(value, str):
            why = text_problem(value, multiline=multiline)
            if why is not None:
                raise PydanticCustomError(BAD_TEXT, why)
        return value

    return check


def check_json(value: Any, depth: int = 0) -> None:
    """Refuse, anywhere in a JSON value stored as sent, a string (key or value) a database cannot
    store, a NaN or an infinity."""
    if depth > 32:
        raise PydanticCustomError(BAD_TEXT, "nested more than 32 levels deep")
    if isinstance(value, str):
        why = text_problem(value, multiline=True)
        if why is not None:
            raise PydanticCustomError(BAD_TEXT, why)
    elif isinstance(value, float) and not math.isfinite(value):
        raise PydanticCustomError("finite_number", "JSON has no NaN or Infinity")
    elif isinstance(value, dict):
        for k, v in value.items():
            check_json(k, depth + 1)
            check_json(v, depth + 1)
    elif isinstance(value, list):
        for v in value:
            check_json(v, depth + 1)


def time_problem(value: dt.datetime) -> str | None:
    """Why `value` is no time a record can carry (a short reason), or None."""
    off = value.utcoffset()
    try:
        utc = value.replace(tzinfo=None) - off if off is not None else value
    except OverflowError:
        utc = None
    if utc is None or not _LOW <= utc < _HIGH:
        return f"must be in the years {MIN_YEAR}–{MAX_YEAR} (UTC)"
    return None


def _check_time(value: dt.datetime) -> dt.datetime:
    why = time_problem(value)
    if why is not None:
        raise PydanticCustomError(BAD_TIME, why)
    return value


# A single line of text: an id, a code, a plate, a name.
Line = Annotated[str, BeforeValidator(_check(multiline=False))]
# Free text such as an error message: tabs and line breaks allowed.
Text = Annotated[str, BeforeValidator(_check(multiline=True))]
# A point in time in the years MIN_YEAR–MAX_YEAR; its offset is kept (a naive time stays naive,
# for the caller to refuse with its own words).
Instant = Annotated[dt.datetime, AfterValidator(_check_time)]


def safe_echo(value: str | None) -> str | None:
    """`value` fit to be echoed in a reply: a lone surrogate cannot be encoded as UTF-8, so it
    would fail the reply itself; it is written as its escape instead."""
    if value is None:
        return None
    return value.encode("utf-8", "backslashreplace").decode("utf-8")
