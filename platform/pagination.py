"""Keyset pagination: an opaque cursor holding the last row's id."""

from __future__ import annotations

import base64
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from sqlalchemy import Select
from sqlalchemy.orm import InstrumentedAttribute, Session

from tianwang.errors import ValidationFailed

T = TypeVar("T")


def encode_cursor(value: int, tag: str = "id") -> str:
    """An opaque cursor: `tag` says what the number is (a row id, or an offset into a computed list)."""
    return base64.urlsafe_b64encode(f"{tag}:{value}".encode()).decode().rstrip("=")


def decode_cursor(cursor: str | None, tag: str = "id") -> int | None:
    if not cursor:
        return None
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
        got, value = raw.split(":", 1)
        # forged: past a 64-bit integer, SQLite cannot bind it
        if got != tag or not 0 <= int(value) < 2**63:
            raise ValueError
        return int(value)
    except (ValueError, UnicodeDecodeError):
        raise ValidationFailed(
            "invalid cursor", errors=[{"field": "cursor", "message": "not a cursor"}]
        ) from None


@dataclass
class Page(Generic[T]):
    items: list[T]
    next_cursor: str | None


def paginate(
    session: Session, stmt: Select[Any], id_col: InstrumentedAttribute[int], limit: int, cursor: str | None
) -> Page[Any]:
    after = decode_cursor(cursor)
    if after is not None:
        stmt = stmt.where(id_col > after)
    rows = list(session.scalars(stmt.order_by(id_col).limit(limit + 1)))
    more = len(rows) > limit
    rows = rows[:limit]
    return Page(rows, encode_cursor(rows[-1].id) if more and rows else None)
