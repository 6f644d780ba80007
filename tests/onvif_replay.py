"""A replay of a real camera: serves the recorded ONVIF answers in tests/fixtures/onvif-recorded/.

The answers are rendered as the recording's README says (doT expressions, the camera's address
rewritten to this server, the missing SOAP-ENV declaration added) and chosen by the local name of
the request Body's first child. WS-UsernameToken is checked against one user, so wrong
credentials get the ONVIF NotAuthorized fault a real camera sends; the snapshot path wants HTTP
Digest. Faults for tests: `oversized` (an endless answer), `garbage` (not XML), `error_xml` (the
recording's placeholder fault). With `rewrite_address=False` the answers keep the camera's own
LAN address (192.168.68.111, port 80), as a camera reached through NAT names it: the client must
then rewrite it and never contact that address.
"""

from __future__ import annotations

import asyncio
import base64
import datetime as dt
import hashlib
import re
import secrets
import threading
from pathlib import Path

import cv2
import numpy as np
from aiohttp import web
from lxml import etree

RECORDED = Path(__file__).resolve().parent / "fixtures" / "onvif-recorded"
CAMERA_ADDRESS = "192.168.68.111"
SOAP12 = "http://www.w3.org/2003/05/soap-envelope"
WSSE = "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-secext-1.0.xsd"
WSU = "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-utility-1.0.xsd"
SNAPSHOT_PATH = "/onvif-cgi/jpg/image.cgi"
REALM = "replay-camera"
# asked without credentials (ONVIF "pre-auth" operations)
UNAUTHENTICATED = {"GetSystemDateAndTime", "GetServices", "GetCapabilities", "GetServiceCapabilities"}


def recorded_dir() -> Path:
    if not (RECORDED / "GetProfiles.xml").is_file():
        raise FileNotFoundError(
            f"the recorded ONVIF answers are missing: expected {RECORDED} "
            "(tests/fixtures/onvif-recorded in the repository)"
        )
    return RECORDED


def _render(text: str, port: int, rewrite_address: bool = True) -> str:
    now = dt.datetime.now(dt.UTC)

    def iso(t: dt.datetime) -> str:
        return t.strftime("%Y-%m-%dT%H:%M:%S.") + f"{t.microsecond // 1000:03d}Z"

    values = {
        "it.hostname": "127.0.0.1" if rewrite_address else CAMERA_ADDRESS,
        "it.port": str(port) if rewrite_address else "80",
        "it.pullPointUrl": "/onvif/PullPoint",
        "new Date().toISOString()": iso(now),
        "new Date(Date.now()+5000).toISOString()": iso(now + dt.timedelta(seconds=5)),
    }

    def expr(m: re.Match[str]) -> str:
        key = m.group(1).strip()
        if key not in values:
            raise ValueError(f"unknown template expression {key!r}")
        return values[key]

    # conditionals: the error branches (`it.bad`) and random ones are left out, the others kept
    def cond(m: re.Match[str]) -> str:
        c = m.group(1)
        return "" if ("it.bad" in c or "Math.random" in c) else m.group(2)

    text = re.sub(r"\{\{\?(?!\}\})(.*?)\}\}(.*?)\{\{\?\}\}", cond, text, flags=re.S)
    text = re.sub(r"\{\{=(.*?)\}\}", expr, text)
    if rewrite_address:
        text = text.replace(f"//{CAMERA_ADDRESS}", f"//127.0.0.1:{port}").replace(CAMERA_ADDRESS, "127.0.0.1")
    if "SOAP-ENV:" in text and "xmlns:SOAP-ENV=" not in text:
        text = text.replace("<SOAP-ENV:Envelope", f'<SOAP-ENV:Envelope xmlns:SOAP-ENV="{SOAP12}"', 1)
    return text


def _fault(subcode: str, reason: str) -> str:
    return (
        f'<?xml version="1.0" encoding="UTF-8"?><env:Envelope xmlns:env="{SOAP12}" '
        'xmlns:ter="http://www.onvif.org/ver10/error"><env:Body><env:Fault>'
        "<env:Code><env:Value>env:Sender</env:Value><env:Subcode><env:Value>ter:NotAuthorized"
        f'</env:Value></env:Subcode></env:Code><env:Reason><env:Text xml:lang="en">{reason}</env:Text>'
        "</env:Reason></env:Fault></env:Body></env:Envelope>"
    )


def small_jpeg(width: int = 320, height: int = 240) -> bytes:
    y, x = np.mgrid[0:height, 0:width]
    img = np.dstack([(x * 255 // width), (y * 255 // height), ((x + y) % 256)]).astype(np.uint8)
    ok, buf = cv2.imencode(".jpg", img)
    assert ok
    return buf.tobytes()


class ReplayCamera:
    def __init__(
        self, username: str = "admin", password: str = "replay-pass", *, rewrite_address: bool = True
    ) -> None:
        self.dir = recorded_dir()
        self.rewrite_address = rewrite_address
        self.username, self.password = username, password
        self.port = 0
        self.fault: str | None = None  # oversized | garbage | error_xml
        self.jpeg = small_jpeg()
        self.requests: list[str] = []
        self._runner: web.AppRunner | None = None
        self._nonces: set[str] = set()

    @property
    def xaddr(self) -> str:
        return f"http://127.0.0.1:{self.port}/onvif/device_service"

    # -- SOAP ----------------------------------------------------------------------------------
    def _answer_file(self, op: str, ns: str) -> Path | None:
        service = {
            "media": "media",
            "device": "device",
            "imaging": "imaging",
            "ptz": "ptz",
            "events": "events",
        }
        for key, prefix in service.items():
            if f"/{key}/" in ns or ns.endswith(f"/{key}/wsdl"):
                p = self.dir / f"{prefix}.{op}.xml"
                if p.is_file():
                    return p
        p = self.dir / f"{op}.xml"
        return p if p.is_file() else None

    def _check_token(self, root: etree._Element) -> bool:
        token = root.find(f".//{{{WSSE}}}UsernameToken")
        if token is None:
            return False
        user = token.findtext(f"{{{WSSE}}}Username") or ""
        digest = token.findtext(f"{{{WSSE}}}Password") or ""
        nonce = base64.b64decode(token.findtext(f"{{{WSSE}}}Nonce") or "")
        created = token.findtext(f"{{{WSU}}}Created") or ""
        want = base64.b64encode(
            hashlib.sha1(nonce + created.encode() + self.password.encode()).digest()
        ).decode()
        return user == self.username and secrets.compare_digest(want, digest)

    async def soap(self, request: web.Request) -> web.StreamResponse:
        body = await request.read()
        parser = etree.XMLParser(resolve_entities=False, no_network=True)
        root = etree.fromstring(body, parser)
        first = root.find(f"{{{SOAP12}}}Body")
        assert first is not None and len(first), "request without a SOAP Body child"
        qname = etree.QName(first[0])
        op, ns = qname.localname, qname.namespace or ""
        self.requests.append(op)
        headers = {"Content-Type": "application/soap+xml; charset=utf-8"}
        if op not in UNAUTHENTICATED and not self._check_token(root):
            return web.Response(
                status=400, text=_fault("ter:NotAuthorized", "Sender not Authorized"), headers=headers
            )
        if self.fault == "garbage":
            return web.Response(status=200, text="<html><body>login</body", headers=headers)
        if self.fault == "error_xml":
            return web.Response(status=500, text=(self.dir / "Error.xml").read_text(), headers=headers)
        if self.fault == "oversized":
            resp = web.StreamResponse(status=200, headers=headers)
            await resp.prepare(request)
            chunk = b"<a>" + b"x" * (256 * 1024) + b"</a>"
            try:
                for _ in range(200):  # 50 MB
                    await resp.write(chunk)
            except (ConnectionError, RuntimeError):
                pass  # the client hung up, as it should
            return resp
        path = self._answer_file(op, ns)
        if path is None:
            return web.Response(status=400, text=_fault("ter:ActionNotSupported", op), headers=headers)
        return web.Response(
            status=200,
            text=_render(path.read_text(encoding="utf-8"), self.port, self.rewrite_address),
            headers=headers,
        )

    # -- snapshot, HTTP Digest ---------------------------------------------------------------------
    async def snapshot(self, request: web.Request) -> web.Response:
        header = request.headers.get("Authorization", "")
        if header.startswith("Digest ") and self._digest_ok(request.method, header[7:]):
            return web.Response(body=self.jpeg, content_type="image/jpeg")
        nonce = secrets.token_hex(16)
        self._nonces.add(nonce)
        challenge = f'Digest realm="{REALM}", nonce="{nonce}", qop="auth", algorithm=MD5'
        return web.Response(status=401, headers={"WWW-Authenticate": challenge})

    def _digest_ok(self, method: str, params: str) -> bool:
        p = dict(re.findall(r'(\w+)="?([^",]*)"?', params))
        if p.get("nonce") not in self._nonces or p.get("username") != self.username:
            return False

        def md5(s: str) -> str:
            return hashlib.md5(s.encode()).hexdigest()  # HTTP Digest is MD5

        ha1 = md5(f"{self.username}:{REALM}:{self.password}")
        ha2 = md5(f"{method}:{p.get('uri', '')}")
        want = md5(f"{ha1}:{p['nonce']}:{p.get('nc', '')}:{p.get('cnonce', '')}:{p.get('qop', '')}:{ha2}")
        return secrets.compare_digest(want, p.get("response", ""))

    # -- lifecycle -----------------------------------------------------------------------------
    async def start(self, port: int) -> None:
        self.port = port
        app = web.Application(client_max_size=1024 * 1024)
        app.router.add_get(SNAPSHOT_PATH, self.snapshot)
        app.router.add_post("/{tail:.*}", self.soap)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        await web.TCPSite(self._runner, "127.0.0.1", port).start()

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()


class ReplayThread:
    """The replay camera on its own event loop in a thread (for sync tests: the API, the CLI)."""

    def __init__(self, port: int, **kw: str) -> None:
        self.camera = ReplayCamera(**kw)
        self._port = port
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)

    def __enter__(self) -> ReplayCamera:
        self._thread.start()
        asyncio.run_coroutine_threadsafe(self.camera.start(self._port), self._loop).result(10)
        return self.camera

    def __exit__(self, *exc: object) -> None:
        asyncio.run_coroutine_threadsafe(self.camera.stop(), self._loop).result(10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)
        self._loop.close()
