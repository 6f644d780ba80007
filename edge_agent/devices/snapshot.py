"""Fetch one snapshot over HTTP (Digest, or Basic where safe), bounded in time and size; check the picture.

The device's answer is untrusted: the body is streamed and abandoned past `max_bytes`, the
picture's header (JPEG, PNG or BMP: what cameras serve and OpenCV decodes) is parsed for its size
before anything decodes it (a 60 000 × 60 000 "snapshot" is a decompression bomb), and it must
decode. What it is comes from its bytes, not from the Content-Type the device claims.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import struct
from collections.abc import Generator
from dataclasses import dataclass
from typing import Literal

import httpx

from edge_agent.devices.addresses import DeviceAddresses
from edge_agent.devices.errors import AuthRefused, BadAnswer, DeviceError, classify

# httpx logs every request URL at INFO, and a camera's snapshot URL may carry user:password
logging.getLogger("httpx").setLevel(logging.WARNING)

DEFAULT_MAX_BYTES = 10 * 1024 * 1024
MAX_PIXELS = 50_000_000  # a 8K frame is 33 MP
SnapshotAuth = Literal["auto", "digest", "basic", "none"]


@dataclass(frozen=True)
class Snapshot:
    data: bytes
    width: int
    height: int
    content_type: str

    @property
    def size(self) -> int:
        return len(self.data)

    @property
    def sha256(self) -> str:
        return hashlib.sha256(self.data).hexdigest()


class _DeviceAuth(httpx.Auth):
    """Answer the camera's challenge, Digest (most) or Basic (some older firmware), but Basic (the
    password in clear) only where `DeviceAddresses.basic_allowed` says so; `withheld` tells why not."""

    def __init__(self, mode: SnapshotAuth, username: str, password: str, addresses: DeviceAddresses) -> None:
        self._mode = mode
        self._digest = httpx.DigestAuth(username, password)
        self._basic = httpx.BasicAuth(username, password)
        self._addresses = addresses
        self.withheld = False

    def _basic_ok(self, request: httpx.Request) -> bool:
        ok = self._addresses.basic_allowed(request.url.scheme, request.url.host)
        self.withheld = self.withheld or not ok
        return ok

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        if self._mode == "basic":
            # preemptive Basic, as configured: still never in clear to a host that is not the device's
            yield next(self._basic.auth_flow(request)) if self._basic_ok(request) else request
            return
        response = yield request
        if response.status_code != 401:
            return
        scheme = response.headers.get("www-authenticate", "").split(" ", 1)[0].strip().lower()
        if scheme == "digest":
            flow = self._digest.auth_flow(request)
            next(flow)  # the unauthenticated first request, already sent
            try:
                retry = flow.send(response)
            except StopIteration:
                return
            yield retry
        elif scheme == "basic" and self._mode == "auto" and self._basic_ok(request):
            yield next(self._basic.auth_flow(request))


def _auth(mode: SnapshotAuth, username: str, password: str, addresses: DeviceAddresses) -> _DeviceAuth | None:
    if mode == "none" or not username:
        return None
    return _DeviceAuth(mode, username, password, addresses)


_SOF = {0xC0, 0xC1, 0xC2, 0xC3, 0xC5, 0xC6, 0xC7, 0xC9, 0xCA, 0xCB, 0xCD, 0xCE, 0xCF}


def jpeg_size(data: bytes) -> tuple[int, int]:
    """(width, height) from the first SOF marker; BadAnswer when it is not a well-formed JPEG header."""
    if len(data) < 4 or data[:3] != b"\xff\xd8\xff":
        raise BadAnswer("snapshot is not a JPEG (no FFD8FF signature)")
    i = 2
    n = len(data)
    while i + 4 <= n:
        if data[i] != 0xFF:
            raise BadAnswer("snapshot has a corrupt JPEG header")
        marker = data[i + 1]
        if marker == 0xFF:  # fill byte
            i += 1
            continue
        if marker in (0xD8, 0x01) or 0xD0 <= marker <= 0xD7:
            i += 2
            continue
        (length,) = struct.unpack(">H", data[i + 2 : i + 4])
        if length < 2:
            raise BadAnswer("snapshot has a corrupt JPEG segment")
        if marker in _SOF:
            if i + 9 > n:
                break
            height, width = struct.unpack(">HH", data[i + 5 : i + 9])
            if width == 0 or height == 0:
                raise BadAnswer("snapshot JPEG declares a zero size")
            return width, height
        if marker == 0xDA:  # start of scan before any frame header
            break
        i += 2 + length
    raise BadAnswer("snapshot JPEG has no frame header")


PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def image_size(data: bytes) -> tuple[int, int, str]:
    """(width, height, content type) from a JPEG, PNG or BMP header; BadAnswer for anything else."""
    if data[:3] == b"\xff\xd8\xff":
        return (*jpeg_size(data), "image/jpeg")
    if data[:8] == PNG_SIGNATURE:
        if len(data) < 24 or data[12:16] != b"IHDR":
            raise BadAnswer("snapshot has a corrupt PNG header")
        width, height = struct.unpack(">II", data[16:24])
        kind = "image/png"
    elif data[:2] == b"BM" and len(data) >= 26:
        width, height = struct.unpack("<ii", data[18:26])
        height = abs(height)  # negative: rows stored top-down
        kind = "image/bmp"
    else:
        raise BadAnswer("snapshot is not a picture (neither JPEG, PNG nor BMP)")
    if width <= 0 or height <= 0:
        raise BadAnswer(f"snapshot {kind.split('/')[1].upper()} declares a size of {width}×{height}")
    return width, height, kind


def check_image(data: bytes) -> tuple[int, int, str]:
    """Width, height and content type of a picture that really decodes; BadAnswer otherwise."""
    width, height, kind = image_size(data)
    if kind == "image/jpeg":
        return (*check_jpeg(data), kind)
    if width * height > MAX_PIXELS:
        raise BadAnswer(f"snapshot declares {width}×{height} pixels, over the {MAX_PIXELS} limit")
    import cv2
    import numpy as np

    img = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_GRAYSCALE)
    if img is None or img.size == 0:
        raise BadAnswer(f"snapshot does not decode as {kind}")
    return width, height, kind


def storable(data: bytes, kind: str) -> tuple[bytes, str]:
    """The picture as stored: JPEG and PNG as they came, anything else (BMP) as lossless PNG."""
    if kind in ("image/jpeg", "image/png"):
        return data, kind
    import cv2
    import numpy as np

    img = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)
    ok, buf = (False, None) if img is None else cv2.imencode(".png", img)
    if not ok or buf is None:
        raise BadAnswer(f"snapshot ({kind}) does not decode")
    return buf.tobytes(), "image/png"


def check_jpeg(data: bytes) -> tuple[int, int]:
    """Width and height of a JPEG that really decodes; BadAnswer otherwise."""
    width, height = jpeg_size(data)
    if width * height > MAX_PIXELS:
        raise BadAnswer(f"snapshot declares {width}×{height} pixels, over the {MAX_PIXELS} limit")
    import cv2
    import numpy as np

    # a 1/8-scale decode checks the entropy-coded data at a fraction of the cost of a full one
    img = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_REDUCED_GRAYSCALE_8)
    if img is None or img.size == 0:
        raise BadAnswer("snapshot does not decode as a JPEG")
    return width, height


async def fetch_snapshot(
    url: str,
    username: str = "",
    password: str = "",
    *,
    auth: SnapshotAuth = "auto",
    connect_timeout_s: float = 3.0,
    read_timeout_s: float = 10.0,
    total_timeout_s: float | None = None,
    max_bytes: int = DEFAULT_MAX_BYTES,
    client: httpx.AsyncClient | None = None,
    decode: bool = True,
    addresses: DeviceAddresses | None = None,
) -> Snapshot:
    """GET `url` and return the checked picture (JPEG, PNG or BMP); raises only `DeviceError` subclasses.

    With credentials, `addresses` are the device's registered addresses: a URL elsewhere is refused
    before any connection (see `edge_agent.devices.addresses`). Without it the caller vouches for
    `url` itself (an explicitly registered snapshot URL), which then counts as the device's address.
    """
    if addresses is None:
        addresses = DeviceAddresses.of(None, None, [url])
    if username:
        addresses.check_snapshot(url)
    device_auth = _auth(auth, username, password, addresses)
    total = total_timeout_s if total_timeout_s is not None else connect_timeout_s + 2 * read_timeout_s
    own = client is None
    http = client or httpx.AsyncClient(
        timeout=httpx.Timeout(read_timeout_s, connect=connect_timeout_s),
        follow_redirects=False,
        trust_env=False,  # a camera on the video private network is never reached through a proxy
    )
    try:
        async with asyncio.timeout(total):
            async with http.stream(
                "GET",
                url,
                auth=device_auth,
                timeout=httpx.Timeout(read_timeout_s, connect=connect_timeout_s),
            ) as r:
                if r.status_code == 401 and device_auth is not None and device_auth.withheld:
                    raise AuthRefused(
                        "snapshot URL asks for Basic auth (the password in clear) over plain HTTP from "
                        "a host that is not the device's own: credentials not sent"
                    )
                if r.status_code in (401, 403):
                    raise AuthRefused(f"snapshot URL refused the credentials (HTTP {r.status_code})")
                if r.status_code != 200:
                    raise BadAnswer(f"snapshot URL answered HTTP {r.status_code}")
                declared = r.headers.get("content-length")
                if declared and declared.isdigit() and int(declared) > max_bytes:
                    raise BadAnswer(f"snapshot declares {declared} bytes (max {max_bytes})")
                buf = bytearray()
                async for chunk in r.aiter_raw():
                    buf += chunk
                    if len(buf) > max_bytes:
                        raise BadAnswer(f"snapshot exceeds {max_bytes} bytes")
        data = bytes(buf)
        if decode:
            width, height, content_type = await asyncio.to_thread(check_image, data)
        else:
            width, height, content_type = image_size(data)
        return Snapshot(data, width, height, content_type)
    except DeviceError:
        raise
    except Exception as e:
        raise classify(e, "snapshot URL") from e
    finally:
        if own:
            await http.aclose()
