"""SQL that reads the same on SQLite (the embedded default) and PostgreSQL: the few places the two
databases differ, written once for every module that needs them."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import (
    BigInteger,
    ColumnElement,
    Float,
    String,
    any_,
    bindparam,
    cast,
    extract,
    func,
    literal_column,
)
from sqlalchemy.dialects.postgresql import ARRAY as PG_ARRAY
from sqlalchemy.engine import Connection
from sqlalchemy.orm import Session


def dialect_of(bind: Session | Connection) -> str:
    """ "postgresql" or "sqlite" for a session or a connection."""
    return (bind.get_bind() if isinstance(bind, Session) else bind).dialect.name


def is_pg(bind: Session | Connection) -> bool:
    return dialect_of(bind) == "postgresql"


def epoch_seconds(col: Any, dialect: str) -> ColumnElement[float]:
    """A stored UTC time as seconds since 1970, a float with the milliseconds, computed by the
    database (no datetime per row). SQLite keeps 'YYYY-MM-DD HH:MM:SS.ffffff' (UTC): julianday
    keeps the milliseconds where strftime('%s') would drop them."""
    if dialect == "postgresql":
        return cast(extract("epoch", col), Float)
    return (func.julianday(col) - literal_column("2440587.5")) * literal_column("86400.0")


def epoch_whole_seconds(col: Any) -> ColumnElement[int]:
    """A stored time as whole seconds since 1970 (SQLAlchemy renders extract on both databases)."""
    return cast(func.extract("epoch", col), BigInteger)


def any_of(col: Any, values: Sequence[str], pg: bool) -> ColumnElement[bool]:
    """`col IN values`; on PostgreSQL one array parameter (`= ANY`), which still drives an index scan
    and keeps the statement the same whatever the number of values."""
    if pg:
        return col == any_(bindparam(None, list(values), type_=PG_ARRAY(String)))
    return col.in_(list(values))
