"""Request limits enforced before anything reads the body: its size, and who is sending it.

FastAPI reads and parses a JSON body before it runs the route's dependencies (authentication
among them), so without these a client with no token could make every replica buffer an
unbounded body, or parse a large one.
"""

from __future__ import annotations

import json
import logging
from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from tianwang.auth.tokens import authenticate
from tianwang.errors import TianwangError

log = logging.getLogger("tianwang.api")
BODY_METHODS = frozenset({"POST", "PUT", "PATCH"})


class AuthFirst:
    """A request that carries a body to the API must present a valid bearer token before its body
    is read; the principal found is kept on the request, where the route's own dependency takes it
    and checks the role."""

    def __init__(self, app: ASGIApp, prefixes: tuple[str, ...]) -> None:
        self.app = app
        self.prefixes = prefixes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if (
            scope["type"] != "http"
            or scope.get("method") not in BODY_METHODS
            or not scope.get("path", "").startswith(self.prefixes)
        ):
            await self.app(scope, receive, send)
            return
        header = ""
        for name, value in scope.get("headers", []):
            if name == b"authorization":
                header = value.decode("latin-1")
        scheme, _, token = header.partition(" ")
        token = token.strip()
        if scheme.lower() != "bearer" or not token:
            await send_problem(send, 401, "Unauthorized", "missing bearer token", "unauthorized")
            return
        ctx = getattr(scope["app"].state, "ctx", None) if "app" in scope else None
        if ctx is not None:

            def check() -> None:
                with ctx.db.session() as s:
                    # kept for the route's own dependency (deps.get_principal): one lookup a request
                    scope.setdefault("state", {})["principal"] = authenticate(s, token)

            try:
                await run_in_threadpool(check)
            except TianwangError as e:
                await send_problem(send, e.status, e.title, e.detail, e.type_.rsplit(":", 1)[-1])
                return
            except Exception:  # the database is down, say: the route answers that in its own way
                log.exception("authentication before the body failed; leaving it to the route")
        await self.app(scope, receive, send)


class BodyLimit:
    def __init__(self, app: ASGIApp, default: int, larger: dict[str, int]) -> None:
        self.app = app
        self.default = default
        self.larger = larger  # path prefix → its own limit (imports, object uploads)

    def _limit(self, path: str) -> int:
        for prefix, n in self.larger.items():
            if path.startswith(prefix):
                return n
        return self.default

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit = self._limit(scope.get("path", ""))
        for name, value in scope.get("headers", []):
            if name == b"content-length":
                try:
                    too_big = int(value) > limit
                except ValueError:
                    too_big = False  # the server rejects a malformed length itself
                if too_big:
                    await _too_large(send, limit)
                    return
        seen = 0
        exceeded = False
        started = False

        async def counted() -> Message:
            nonlocal seen, exceeded
            if exceeded:
                return {"type": "http.disconnect"}
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > limit:
                    # stop reading; whatever the app answers to the cut body is replaced below
                    exceeded = True
                    return {"type": "http.disconnect"}
            return message

        async def guarded(message: Message) -> None:
            nonlocal started
            if exceeded:
                return
            started = True
            await send(message)

        try:
            await self.app(scope, counted, guarded)
        except Exception:
            if not exceeded:
                raise
        if exceeded and not started:
            await _too_large(send, limit)


async def _too_large(send: Send, limit: int) -> None:
    await send_problem(
        send, 413, "Payload too large", f"request bodies here are limited to {limit} bytes", "too-large"
    )


async def send_problem(send: Send, status: int, title: str, detail: str, kind: str) -> None:
    """Problem JSON straight from a middleware (the app's handlers are not reached from here)."""
    body: dict[str, Any] = {
        "type": f"urn:tianwang:problem:{kind}",
        "title": title,
        "status": status,
        "detail": detail,
    }
    data = json.dumps(body).encode()
    headers = [
        (b"content-type", b"application/problem+json"),
        (b"content-length", str(len(data)).encode()),
    ]
    if status == 401:
        headers.append((b"www-authenticate", b"Bearer"))
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": data})
