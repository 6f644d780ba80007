"""The directory object store's presigned URLs: signed, expiring GET/PUT of one object.

Only used when the object store is a directory (embedded default); with MinIO the URLs point at
MinIO itself. The signature is the authorisation, as with S3 presigned URLs.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Request, Response
from starlette.concurrency import run_in_threadpool

from tianwang.api.deps import Ctx
from tianwang.errors import Forbidden, NotFound, PayloadTooLarge, ValidationFailed
from tianwang.storage.objectstore import DirectoryStore, sha256_hex

router = APIRouter(prefix="/objects", tags=["objects"], include_in_schema=False)

MAX_PUT = 32 * 1024 * 1024
# pictures are what agents and installers upload; anything else is kept as opaque bytes
SAFE_TYPES = frozenset({"image/jpeg", "image/png"})


def _safe_type(content_type: str) -> str:
    base = content_type.split(";", 1)[0].strip().lower()
    return base if base in SAFE_TYPES else "application/octet-stream"


def _store(ctx: Ctx, bucket: str) -> DirectoryStore:
    store = ctx.store
    if not isinstance(store, DirectoryStore) or bucket != store.bucket:
        raise NotFound("no such bucket")
    return store


@router.get("/{bucket}/{key:path}")
def get_object(
    bucket: str, key: str, ctx: Ctx, expires: Annotated[int, Query()], signature: Annotated[str, Query()]
) -> Response:
    store = _store(ctx, bucket)
    if not store.verify("GET", key, expires, signature):
        raise Forbidden("signature invalid or expired")
    # one read for body and headers, so the ETag names the version that is sent
    data, info = store.read(key)
    # served on the API's own origin: never let a browser run an uploaded object as a page
    headers = {
        "ETag": f'"{info.sha256}"',
        "X-Content-Type-Options": "nosniff",
        "Content-Security-Policy": "sandbox",
    }
    return Response(data, media_type=_safe_type(info.content_type), headers=headers)


@router.put("/{bucket}/{key:path}")
async def put_object(
    bucket: str,
    key: str,
    request: Request,
    ctx: Ctx,
    expires: Annotated[int, Query()],
    signature: Annotated[str, Query()],
    sha256: Annotated[str | None, Query(pattern="^[0-9a-f]{64}$")] = None,
) -> Response:
    """One-time upload: the first PUT stores the object; the same bytes again are answered as done,
    other bytes are 409 (a recorded picture cannot be replaced). A URL presigned with `sha256` takes
    only content of that hash."""
    store = _store(ctx, bucket)
    if not store.verify("PUT", key, expires, signature, sha256):
        raise Forbidden("signature invalid or expired")
    declared = request.headers.get("content-length")
    if declared is not None and not (declared.isascii() and declared.isdigit()):
        raise ValidationFailed("Content-Length is not a number")
    if declared and int(declared) > MAX_PUT:
        raise PayloadTooLarge(f"objects are limited to {MAX_PUT} bytes")
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > MAX_PUT:
            raise PayloadTooLarge(f"objects are limited to {MAX_PUT} bytes")
    data = bytes(body)
    if sha256 is not None and sha256_hex(data) != sha256:
        raise ValidationFailed(
            "the content's sha256 is not the one this URL was presigned for",
            errors=[{"field": "body", "message": "sha256 mismatch"}],
        )
    ctype = _safe_type(request.headers.get("content-type") or "")
    # file writes and fsync off the event loop
    info = await run_in_threadpool(store.put_once, key, data, ctype)
    return Response(status_code=200, headers={"ETag": f'"{info.sha256}"'})
