"""Field types the wire models share: text a database can store, and times a calendar can hold.

PostgreSQL refuses NUL in text (and in JSON), and no UTF-8 encoder takes a lone surrogate (JSON's
`"\\ud800"`): such a value reaching the database fails the whole batch it is in. Times like
`0001-01-01T00:00:00+08:00` parse, but overflow when turned into UTC. Both are refused here, at
validation, with the field named, so an ingest refuses only the item that carries one.

The checks are pydantic constraints (a pattern, a range), run in its compiled core: on the ingest
path they cost ~0.1 µs an item where a Python validator per field cost ~2 µs. Only a refused
value is looked at again (`text_error`), to say what is wrong with it.
"""

from __future__ import annotations

import datetime as dt
import math
import re
from collections.abc import Mapping
from typing import Annotated, Any

from annotated_types import Interval
from pydantic import StringConstraints
from pydantic_core import PydanticCustomError

# The pydantic error type of a JSON value refused by `check_json`.
BAD_TEXT = "bad_text"

# one line (ids, codes, plates, names): no control character at all
LINE_PATTERN = r"^[^\x00-\x1f\x7f]*$"
# free text (an error message, a note): tab, line feed and carriage return are allowed
TEXT_PATTERN = r"^[^\x00-\x08\x0b\x0c\x0e-\x1f\x7f]*$"
_NOT_IN_LINE = re.compile(r"[\x00-\x1f\x7f\ud800-\udfff]")
_NOT_IN_TEXT = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f\ud800-\udfff]")

# Times outside these years are a device clock or a caller gone wrong; inside them every
# conversion and day arithmetic the platform does stays far from datetime's year 1 and 9999.
MIN_YEAR, MAX_YEAR = 1970, 2200
EARLIEST = dt.datetime(MIN_YEAR, 1, 1, tzinfo=dt.UTC)
AFTER_LAST = dt.datetime(MAX_YEAR + 1, 1, 1, tzinfo=dt.UTC)

# A single line of text: an id, a code, a plate, a name. (A field with a pattern of its own keeps
# it: each of those already refuses control characters.) A lone surrogate fails any pattern.
Line = Annotated[str, StringConstraints(pattern=LINE_PATTERN)]
# Free text such as an error message: tabs and line breaks allowed.
Text = Annotated[str, StringConstraints(pattern=TEXT_PATTERN)]
# A point in time in the years MIN_YEAR–MAX_YEAR (UTC), compared without converting it; its offset
# is kept, and a naive time stays naive, for the caller to refuse with its own words.
Instant = Annotated[dt.datetime, Interval(ge=EARLIEST, lt=AFTER_LAST)]


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
    if utc is None or not EARLIEST.replace(tzinfo=None) <= utc < AFTER_LAST.replace(tzinfo=None):
        return f"must be in the years {MIN_YEAR}–{MAX_YEAR} (UTC)"
    return None


def text_error(error: Mapping[str, Any]) -> str | None:
    """What is wrong with the text a pydantic error refused, when it holds what `text_problem`
    refuses: the error's own message would not say so (a pattern's, or a length's when that was
    checked first). None for any other error."""
    value = error.get("input")
    if not isinstance(value, str):
        return None
    if error.get("type") == "string_pattern_mismatch":
        return text_problem(value, multiline=(error.get("ctx") or {}).get("pattern") == TEXT_PATTERN)
    # the field's rule is not known here: only what free text may not hold either
    return text_problem(value, multiline=True)


def safe_echo(value: str | None) -> str | None:
    """`value` fit to be echoed in a reply: a lone surrogate cannot be encoded as UTF-8, so it
    would fail the reply itself; it is written as its escape instead."""
    if value is None:
        return None
    return value.encode("utf-8", "backslashreplace").decode("utf-8")
