"""A URL with a NUL in its path or query is refused (422) before any route sees it.

PostgreSQL cannot hold NUL in text, so a `%00` reaching a lookup or a filter failed there as a 500,
on every read route with a path or query parameter. One check here covers them all, the console's
files included.
"""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import parse_qsl

from starlette.types import ASGIApp, Receive, Scope, Send


class NoNulInUrl:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            field = _nul_field(scope.get("path", ""), scope.get("query_string", b""))
            if field is not None:
                await _refuse(send, field)
                return
        await self.app(scope, receive, send)


def _nul_field(path: str, query: bytes) -> str | None:
    """Where the URL holds a NUL: "path", the query parameter's name, or None."""
    if "\x00" in path:
        return "path"
    if b"%00" not in query and b"\x00" not in query:
        return None
    for name, value in parse_qsl(query.decode("latin-1"), keep_blank_values=True):
        if "\x00" in name or "\x00" in value:
            return name.replace("\x00", "") or "query"
    return "query"


async def _refuse(send: Send, field: str) -> None:
    why = "contains a NUL character (%00), which no parameter may hold"
    body: dict[str, Any] = {
        "type": "urn:tianwang:problem:validation",
        "title": "Validation failed",
        "status": 422,
        "detail": f"the URL {why}",
        "errors": [{"field": field, "message": why}],
    }
    data = json.dumps(body).encode()
    await send(
        {
            "type": "http.response.start",
            "status": 422,
            "headers": [
                (b"content-type", b"application/problem+json"),
                (b"content-length", str(len(data)).encode()),
            ],
        }
    )
    await send({"type": "http.response.body", "body": data})
