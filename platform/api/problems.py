"""RFC 9457 problem JSON for every error, in one place; never a stack trace."""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm.exc import StaleDataError
from starlette.exceptions import HTTPException as StarletteHTTPException

from tianwang.errors import TianwangError
from tianwang.protocol.fields import text_error

log = logging.getLogger("tianwang.api")
PROBLEM = "application/problem+json"


def problem(
    status: int,
    title: str,
    detail: str = "",
    type_: str = "about:blank",
    errors: list[dict[str, str]] | None = None,
) -> JSONResponse:
    body: dict[str, Any] = {"type": type_, "title": title, "status": status, "detail": detail or title}
    if errors:
        body["errors"] = errors
    headers = {"WWW-Authenticate": "Bearer"} if status == 401 else None
    return JSONResponse(body, status_code=status, media_type=PROBLEM, headers=headers)


def _field(loc: tuple[Any, ...]) -> str:
    parts = [str(p) for p in loc if p not in ("body", "query", "path", "header")]
    return ".".join(parts) or "body"


def _safe_msg(err: dict[str, Any]) -> str:
    # pydantic puts the offending input in some messages; keep the message, never the input
    # (it could be a password). Text refused for a NUL or a control character says so.
    return text_error(err) or str(err.get("msg", "invalid"))


def _integrity_reason(exc: IntegrityError) -> str:
    """Which kind of constraint refused the write, in words (never the SQL or the values)."""
    code = getattr(exc.orig, "sqlstate", None)  # psycopg: the SQLSTATE class 23 code
    text = str(exc.orig).lower()
    if code == "23505" or "unique" in text:
        return "a record with the same identifier already exists"
    if code == "23503" or "foreign key" in text:
        return "it refers to a record that is not registered (or was just deleted)"
    return "it breaks a rule of the stored data"


def install(app: FastAPI) -> None:
    @app.exception_handler(TianwangError)
    async def _domain(_req: Request, exc: TianwangError) -> JSONResponse:
        return problem(exc.status, exc.title, exc.detail, exc.type_, exc.errors)

    @app.exception_handler(RequestValidationError)
    async def _validation(_req: Request, exc: RequestValidationError) -> JSONResponse:
        errors = [{"field": _field(tuple(e.get("loc", ()))), "message": _safe_msg(e)} for e in exc.errors()]
        return problem(
            422,
            "Validation failed",
            "the request has invalid fields",
            "urn:tianwang:problem:validation",
            errors,
        )

    # the database's own checks are the last line: a write that a route did not check first (or that
    # raced another one) is the client's conflict, never a 500
    @app.exception_handler(IntegrityError)
    async def _integrity(req: Request, exc: IntegrityError) -> JSONResponse:
        log.info("integrity error on %s %s: %s", req.method, req.url.path, exc.orig)
        return problem(
            409,
            "Conflict",
            f"the change was refused: {_integrity_reason(exc)}",
            "urn:tianwang:problem:conflict",
        )

    @app.exception_handler(StaleDataError)
    async def _stale(req: Request, exc: StaleDataError) -> JSONResponse:
        log.info("stale write on %s %s: %s", req.method, req.url.path, exc)
        return problem(
            409,
            "Conflict",
            "the record was changed or deleted by another request meanwhile; read it again",
            "urn:tianwang:problem:conflict",
        )

    @app.exception_handler(StarletteHTTPException)
    async def _http(_req: Request, exc: StarletteHTTPException) -> JSONResponse:
        return problem(exc.status_code, str(exc.detail) if exc.detail else "Error", str(exc.detail or ""))

    @app.exception_handler(Exception)
    async def _unexpected(req: Request, exc: Exception) -> JSONResponse:
        log.exception("unhandled error on %s %s", req.method, req.url.path)
        return problem(500, "Internal error", "the server failed; the error is in its log")
