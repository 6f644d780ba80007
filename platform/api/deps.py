"""Request dependencies: the database session, the caller's identity and role checks."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Annotated

from fastapi import Depends, Request
from sqlalchemy.orm import Session

from tianwang.auth.tokens import Principal, authenticate
from tianwang.context import AppContext
from tianwang.errors import Forbidden, Unauthorized
from tianwang.storage.models import Role


def get_ctx(request: Request) -> AppContext:
    ctx: AppContext = request.app.state.ctx
    return ctx


def get_session(ctx: Annotated[AppContext, Depends(get_ctx)]) -> Iterator[Session]:
    with ctx.db.session() as s:
        yield s


def get_principal(request: Request, ctx: Annotated[AppContext, Depends(get_ctx)]) -> Principal:
    known = getattr(request.state, "principal", None)  # found by AuthFirst before the body was read
    if isinstance(known, Principal):
        return known
    header = request.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise Unauthorized("missing bearer token")
    with ctx.db.session() as s:
        return authenticate(s, token.strip())


def require(*roles: Role, admin: bool = True) -> Callable[..., Principal]:
    """A dependency admitting the given roles (and admin, unless `admin=False`)."""
    allowed = frozenset(roles) | ({Role.admin} if admin else set())

    def check(principal: Annotated[Principal, Depends(get_principal)]) -> Principal:
        if principal.role not in allowed:
            raise Forbidden(f"role {principal.role.value} may not do this")
        return principal

    check.allowed_roles = allowed  # type: ignore[attr-defined]
    return check


# scope="function": the session commits BEFORE the response is sent, so nothing is acknowledged
# (an agent deletes from its outbox on a 200) that a failed commit did not store
DB = Annotated[Session, Depends(get_session, scope="function")]
Ctx = Annotated[AppContext, Depends(get_ctx)]

# who may do what (each route names one of these)
HUMANS = (Role.staff, Role.investigator, Role.installer)
REGISTRY_WRITE = (Role.staff, Role.installer)
MAP_WRITE = (Role.staff,)
