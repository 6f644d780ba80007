"""The base of every model that takes user or device input: no control characters in text.

PostgreSQL refuses NUL in text and control characters break CSV, logs and the console, so they
are refused at the edge with the field named, rather than failing deep in the database.
"""

from __future__ import annotations

import re
from typing import Any

from pydantic import BaseModel, ConfigDict, field_validator

_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")


def check_text(value: str) -> str:
    if _CONTROL.search(value):
        raise ValueError("contains control characters")
    return value


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
