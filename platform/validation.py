"""The base of every model that takes user or device input: no control characters in text.

PostgreSQL refuses NUL in text and control characters break CSV, logs and the console, so they
are refused at the edge with the field named, rather than failing deep in the database.
"""

from __future__ import annotations

import re
import unicodedata
from typing import Annotated, Any

from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, field_validator

_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")
# beyond C0: C1 controls (Cc), format characters (Cf: bidi overrides and isolates, zero-width
# spaces and joiners, the BOM, soft hyphens), lone surrogates (Cs), line and paragraph separators
_HIDDEN = frozenset({"Cc", "Cf", "Cs", "Zl", "Zp"})


def check_text(value: str) -> str:
    if _CONTROL.search(value):
        raise ValueError("contains control characters")
    return value


def check_display_text(value: str) -> str:
    """Text people read (names, notes, addresses): no control or invisible characters, which can
    hide or reorder what a reader sees (a right-to-left override shows "photo\u202egpj.exe" as
    "photoexe.jpg")."""
    check_text(value)
    if not value.isascii():
        for ch in value:
            if ch >= "\x80" and unicodedata.category(ch) in _HIDDEN:
                raise ValueError(f"contains an invisible or control character (U+{ord(ch):04X})")
    return value


def nfkc(value: Any) -> Any:
    """Compatibility-normalised (NFKC): full-width digits and letters become ASCII, so "４６０…" and
    "460…" are one number. For fields that are numbers or codes, before their ASCII pattern."""
    return unicodedata.normalize("NFKC", value) if isinstance(value, str) else value


def _display(value: Any) -> Any:
    return check_display_text(value) if isinstance(value, str) else value


# A name, note or address: refuses what `check_display_text` refuses. A number or code typed by
# people: normalised with NFKC, then matched by the field's ASCII pattern. The optional forms wrap
# `str | None` whole, so a field's length and pattern limits still apply to the string itself.
Text = Annotated[str, AfterValidator(_display)]
OptText = Annotated[str | None, AfterValidator(_display)]
Code = Annotated[str, BeforeValidator(nfkc)]
OptCode = Annotated[str | None, BeforeValidator(nfkc)]


class InputModel(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    @field_validator("*", mode="after")
    @classmethod
    def _no_control_chars(cls, v: Any) -> Any:
        if isinstance(v, str):
            return check_text(v)
        if isinstance(v, list):
            for item in v:
                if isinstance(item, str):
                    check_text(item)
        return v
