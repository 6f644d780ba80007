"""RFC 9457 problem JSON for every error, in one place; never a stack trace."""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
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

    @app.exception_handler(StarletteHTTPException)
    async def _http(_req: Request, exc: StarletteHTTPException) -> JSONResponse:
        return problem(exc.status_code, str(exc.detail) if exc.detail else "Error", str(exc.detail or ""))

    @app.exception_handler(Exception)
    async def _unexpected(req: Request, exc: Exception) -> JSONResponse:
        log.exception("unhandled error on %s %s", req.method, req.url.path)
        return problem(500, "Internal error", "the server failed; the error is in its log")
