"""Many virtual ONVIF devices in one event loop, each on its own 127.0.0.1 port, with faults set at run time.

Public API: `Simulator` (async: start/stop, set_faults, describe), `SimulatorThread` (the same in a
background thread, for sync tests), `DeviceSpec`. "Offline" closes the device's listening socket,
so a client sees a refused connection exactly as with a dead camera.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import hashlib
import hmac
import json
import logging
import re
import secrets
import socket
import threading
import time
from collections.abc import Mapping
from typing import Any
from urllib.parse import urlsplit

from aiohttp import web

from simulator import faults as flt
from simulator import onvif, scene
from simulator.discovery import DiscoveryResponder
from simulator.events import Subscription
from simulator.rtsp import RtspServer, StreamProfile, launch_for
from simulator.soap import (
    CONTENT_TYPE,
    SoapFault,
    check_username_token,
    envelope,
    fault_envelope,
    oversized,
    parse_request,
)
from simulator.spec import DeviceSpec, make_specs

__all__ = ["DeviceSpec", "Simulator", "SimulatorThread", "VirtualDevice"]

log = logging.getLogger("simulator")

MAX_REQUEST_BYTES = 256 * 1024  # ONVIF requests are small; anything bigger is refused (413)
DIGEST_NONCE_TTL_S = 300
SHUTDOWN_TIMEOUT_S = 1.0


def _md5(text: str) -> str:
    return hashlib.md5(text.encode()).hexdigest()  # noqa: S324 - RFC 7616 MD5 is what cameras speak


_DIGEST_PARAM = re.compile(r'(\w+)\s*=\s*(?:"([^"]*)"|([^\s,]+))')


def parse_lan_address(text: str) -> tuple[str, int]:
    """ "host:port" (an IPv4 address or a name; port 1-65535) → (host, port); ValueError otherwise."""
    host, sep, port = text.strip().rpartition(":")
    if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise ValueError(f"lan_address {text!r}: expected host:port, e.g. 192.0.2.10:80")
    if any(c in host for c in "/@[]: "):
        raise ValueError(f"lan_address {text!r}: the host must be an IPv4 address or a name")
    return host, int(port)


class VirtualDevice:
    """One virtual camera or checkpoint: its HTTP server (ONVIF + snapshot) and its fault state."""

    def __init__(
        self, spec: DeviceSpec, host: str = "127.0.0.1", rtsp_base: str = "rtsp://127.0.0.1:8554"
    ) -> None:
        self.spec = spec
        self.host = host
        self.port = 0
        self.subscriptions: dict[str, Subscription] = {}
        self._rtsp_base = rtsp_base.rstrip("/")
        self._runner: web.AppRunner | None = None
        self._server: asyncio.Server | None = None
        self._opening: asyncio.Task[None] | None = None
        self._reserved: socket.socket | None = None
        self._stopping = asyncio.Event()
        self._frozen: bytes | None = None
        self._digest_key = secrets.token_bytes(16)
        self._seed = scene.seed_of(spec.device_id)
        self.rtsp: RtspServer | None = None  # set by the Simulator when it serves real RTSP
        if spec.lan_address is not None:
            parse_lan_address(spec.lan_address)  # refused at construction, not at the first answer

    # identity and addresses -------------------------------------------------------------
    @property
    def device_id(self) -> str:
        return self.spec.device_id

    @property
    def username(self) -> str:
        return self.spec.username

    @property
    def password(self) -> str:
        """The REGISTERED password (what the platform is told)."""
        return self.spec.password

    @property
    def device_password(self) -> str:
        """The password the device itself checks: differs under the wrong_password fault."""
        return self.spec.password + "-changed" if "wrong_password" in self.faults else self.spec.password

    @property
    def faults(self) -> dict[str, bool | float]:
        return self.spec.faults

    @property
    def seed(self) -> int:
        return self._seed

    @property
    def base_url(self) -> str:
        return f"http://{self.host}:{self.port}"

    @property
    def xaddr(self) -> str:
        return f"{self.base_url}/onvif/device_service"

    @property
    def snapshot_url(self) -> str:
        return f"{self.base_url}/snapshot.jpg"

    @property
    def rtsp_url(self) -> str:
        # without the simulator's RTSP server (rtsp=False) a stream probe finds this refused
        return f"{self._rtsp_base}/{self.device_id}/main"

    def stream_profiles(self) -> dict[str, StreamProfile]:
        """The streams this device declares (GetProfiles) and serves, by mount name."""
        s = self.spec
        return {
            "main": StreamProfile(s.width, s.height, s.fps, s.bitrate_kbps, s.gov_length),
            "sub": StreamProfile(640, 360, s.fps, 512, s.gov_length),
        }

    def sync_streams(self) -> None:
        """Serve this device's streams as its faults say (none while offline or under no_stream)."""
        if self.rtsp is None:
            return
        for name, profile in self.stream_profiles().items():
            launch = None if not self.online else launch_for(profile, self.faults)
            # the device's own password: under wrong_password the registered one is refused (401)
            self.rtsp.set_mount(f"/{self.device_id}/{name}", launch, self.username, self.device_password)

    @property
    def lan_address(self) -> tuple[str, int] | None:
        """Under the nat fault, the (host, port) the device names as its own; None otherwise."""
        if "nat" not in self.faults:
            return None
        return parse_lan_address(self.spec.lan_address or flt.NAT_LAN_ADDRESS)

    @property
    def named_base_url(self) -> str:
        """The base URL the device names in its answers: its LAN address behind NAT."""
        lan = self.lan_address
        return f"http://{lan[0]}:{lan[1]}" if lan else self.base_url

    @property
    def named_snapshot_url(self) -> str:
        return f"{self.named_base_url}/snapshot.jpg"

    @property
    def named_rtsp_url(self) -> str:
        """The stream URI it names: behind NAT on its LAN host, the RTSP port unchanged."""
        lan = self.lan_address
        if lan is None:
            return self.rtsp_url
        u = urlsplit(self._rtsp_base)
        return f"rtsp://{lan[0]}:{u.port or 554}{u.path}/{self.device_id}/main"

    @property
    def online(self) -> bool:
        return "offline" not in self.faults

    def now(self) -> dt.datetime:
        """The device's clock: the host's UTC plus the clock_skew fault."""
        skew = float(self.faults.get("clock_skew", 0.0))
        return dt.datetime.now(dt.UTC) + dt.timedelta(hours=skew)

    def set_clock(self, utc: dt.datetime) -> None:
        """SetSystemDateAndTime: the clock_skew fault becomes what is left of the difference."""
        hours = (utc - dt.datetime.now(dt.UTC)).total_seconds() / 3600
        faults = {k: v for k, v in self.faults.items() if k != "clock_skew"}
        if abs(hours) * 3600 >= 1:
            faults["clock_skew"] = hours
        self.spec.faults = faults

    def describe(self) -> dict[str, Any]:
        s = self.spec
        return {
            "device_id": s.device_id,
            "name": s.name,
            "kind": s.kind,
            "lon": s.lon,
            "lat": s.lat,
            "heading_deg": s.heading_deg,
            "hfov_deg": s.hfov_deg,
            "range_m": s.range_m,
            "point_class": s.point_class,
            "onvif": {"host": self.host, "port": self.port, "username": s.username, "password": s.password},
            "snapshot_url": None if "no_snapshot_uri" in self.faults else self.snapshot_url,
            "rtsp_url": self.rtsp_url,
            "resolution": f"{s.width}x{s.height}",
            "faults": dict(s.faults),
        }

    # lifecycle ----------------------------------------------------------------------------
    async def start(self) -> None:
        self.sync_streams()
        app = web.Application(client_max_size=MAX_REQUEST_BYTES, middlewares=[self._fault_middleware])
        app.router.add_post("/onvif/{tail:.*}", self._soap)
        app.router.add_get("/snapshot.jpg", self._snapshot)
        self._runner = web.AppRunner(
            app,
            handle_signals=False,
            access_log=None,
            shutdown_timeout=SHUTDOWN_TIMEOUT_S,
            handler_cancellation=True,
        )
        await self._runner.setup()
        sock = self._bind()
        self.port = sock.getsockname()[1]
        if self.online:
            sock.listen(128)
            await self._serve(sock)
        else:
            # bound but not listening: connections are refused, and no other device takes the port
            self._reserved = sock

    def _bind(self) -> socket.socket:
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.bind((self.host, self.port))
            sock.setblocking(False)
        except OSError:
            sock.close()
            raise
        return sock

    async def _serve(self, sock: socket.socket) -> None:
        assert self._runner is not None and self._runner.server is not None
        try:
            self._server = await asyncio.get_running_loop().create_server(self._runner.server, sock=sock)
        except BaseException:
            sock.close()
            raise

    def _go_offline(self) -> None:
        if self._opening is not None:
            self._opening.cancel()
            self._opening = None
        if self._server is not None:
            self._server.close()  # stops listening now: new connections are refused
            self._server = None
        if self._runner is not None and self._runner.server is not None:
            for conn in list(self._runner.server.connections):
                conn.force_close()  # kept-alive connections die with the device
        if self._reserved is None and not self._stopping.is_set():
            with contextlib.suppress(OSError):  # hold the port while offline, if it is still free
                self._reserved = self._bind()

    def _go_online(self) -> None:
        if self._server is not None or self._runner is None:
            return
        sock, self._reserved = self._reserved or self._bind(), None
        sock.listen(128)  # listening from here on: connections wait in the backlog
        self._opening = asyncio.get_running_loop().create_task(self._serve(sock))

    def apply_faults(self, new: dict[str, bool | float]) -> None:
        """Replace the device's faults (already normalised); must run on the simulator's loop."""
        was_online = self.online
        if "frozen" not in new:
            self._frozen = None
        self.spec.faults = new
        self.sync_streams()
        if self._runner is None:
            return
        if was_online and not self.online:
            self._go_offline()
        elif not was_online and self.online:
            self._go_online()

    async def stop(self) -> None:
        self._stopping.set()
        self._go_offline()
        if self._reserved is not None:
            self._reserved.close()
            self._reserved = None
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    # HTTP ---------------------------------------------------------------------------------
    @web.middleware
    async def _fault_middleware(self, request: web.Request, handler: Any) -> web.StreamResponse:
        f = self.faults
        if "offline" in f:
            if request.transport is not None:
                request.transport.abort()
            raise web.HTTPServiceUnavailable()
        if "silent" in f:
            # accept, read nothing back, never answer; ends when the client gives up or we stop
            while (
                not self._stopping.is_set()
                and request.transport is not None
                and not request.transport.is_closing()
            ):
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._stopping.wait(), 0.5)
            raise web.HTTPServiceUnavailable()
        if "slow" in f:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stopping.wait(), float(f["slow"]))
        result: web.StreamResponse = await handler(request)
        return result

    async def _soap(self, request: web.Request) -> web.StreamResponse:
        operation = "Unknown"
        try:
            data = await request.read()
            req = parse_request(data)
            operation = req.operation
            handler = onvif.OPERATIONS.get(req.operation)
            if handler is None:
                raise SoapFault(
                    "Receiver", ("ter:ActionNotSupported",), f"{req.operation} is not supported", 500
                )
            if req.operation not in onvif.UNAUTHENTICATED:
                check_username_token(req.header, self.username, self.device_password, self.now())
            body, action = await handler(self, req, request.path)
            status, text = 200, envelope(body, action)
        except SoapFault as fault:
            status, text = fault.status, fault_envelope(fault)
        except web.HTTPRequestEntityTooLarge:
            raise
        if "oversized" in self.faults:
            return await self._oversized(request, operation)
        raw = text.encode()
        if "malformed_xml" in self.faults:
            # a firmware bug: the answer is cut short and ends in garbage, still with 200
            raw = raw[: len(raw) * 2 // 3] + b"<tt:Broken attr=<&\x00"
            status = 200
        return web.Response(body=raw, status=status, headers={"Content-Type": CONTENT_TYPE})

    async def _oversized(self, request: web.Request, operation: str) -> web.StreamResponse:
        big = oversized(operation, float(self.faults["oversized"]))
        resp = web.StreamResponse(status=200, headers={"Content-Type": CONTENT_TYPE})
        resp.content_length = big.length
        await resp.prepare(request)
        try:
            await resp.write(big.head)
            for _ in range(big.repeats):
                await resp.write(big.chunk)  # waits for the client to drain: memory stays bounded
            await resp.write(big.tail)
            await resp.write_eof()
        except (ConnectionError, RuntimeError):
            pass  # the client stopped reading, as a careful client should
        return resp

    def _nonce(self, ts: int | None = None) -> str:
        ts = int(time.time()) if ts is None else ts
        mac = hmac.new(self._digest_key, str(ts).encode(), hashlib.sha256).hexdigest()[:24]
        return f"{ts:x}{mac}"

    def _nonce_fresh(self, nonce: str) -> bool | None:
        """True fresh, False stale (ours but old), None not ours."""
        ts_hex, mac = nonce[:-24], nonce[-24:]
        try:
            ts = int(ts_hex, 16)
        except ValueError:
            return None
        if not hmac.compare_digest(self._nonce(ts)[-24:], mac):
            return None
        return time.time() - ts <= DIGEST_NONCE_TTL_S

    def _digest_ok(self, request: web.Request) -> bool | None:
        header = request.headers.get("Authorization", "")
        if not header.lower().startswith("digest "):
            return False
        p = {
            m.group(1).lower(): m.group(2) if m.group(2) is not None else m.group(3)
            for m in _DIGEST_PARAM.finditer(header[7:])
        }
        realm = self._realm
        if p.get("username") != self.username or p.get("realm") != realm or p.get("qop") != "auth":
            return False
        if p.get("algorithm", "MD5").upper() != "MD5" or p.get("uri") not in (
            request.path_qs,
            str(request.url),
        ):
            return False
        fresh = self._nonce_fresh(p.get("nonce", ""))
        if fresh is None:
            return False
        ha1 = _md5(f"{self.username}:{realm}:{self.device_password}")
        ha2 = _md5(f"{request.method}:{p['uri']}")
        expected = _md5(f"{ha1}:{p['nonce']}:{p.get('nc', '')}:{p.get('cnonce', '')}:auth:{ha2}")
        if not hmac.compare_digest(expected, p.get("response", "")):
            return False
        return True if fresh else None  # None: right password, stale nonce

    @property
    def _realm(self) -> str:
        return f"IP Camera({self.spec.serial})"

    async def _snapshot(self, request: web.Request) -> web.StreamResponse:
        ok = self._digest_ok(request)
        if not ok:
            stale = ', stale="true"' if ok is None else ""
            challenge = (
                f'Digest realm="{self._realm}", qop="auth", algorithm=MD5, nonce="{self._nonce()}"{stale}'
            )
            return web.Response(
                status=401, text="401 Unauthorized\n", headers={"WWW-Authenticate": challenge}
            )
        if "no_snapshot_uri" in self.faults:
            return web.Response(status=404, text="404 Not Found\n")
        if "snapshot_broken" in self.faults:
            return web.Response(status=500, text="500 Internal Server Error\n")
        if "frozen" in self.faults and self._frozen is not None:
            jpeg = self._frozen
        else:
            jpeg = await asyncio.to_thread(self.render_jpeg)
            if "frozen" in self.faults:
                self._frozen = jpeg
        body, kind = jpeg, "image/jpeg"
        for fault, ext in (("png_snapshot", ".png"), ("bmp_snapshot", ".bmp")):
            if fault in self.faults:
                body, kind = await asyncio.to_thread(scene.reencode, jpeg, ext), f"image/{ext[1:]}"
        return web.Response(body=body, headers={"Content-Type": kind, "Cache-Control": "no-store"})

    def render_jpeg(self) -> bytes:
        s = self.spec
        frame = scene.render(
            self._seed,
            s.width,
            s.height,
            self.now().timestamp(),
            checkpoint=s.is_checkpoint,
            mode=s.mode,
            faults=self.faults,
            label=s.device_id,
        )
        return scene.encode_jpeg(frame)


def _resolve_faults(
    faults: Mapping[int | str, Mapping[str, Any]] | str | None, specs: list[DeviceSpec]
) -> dict[int, dict[str, bool | float]]:
    if faults is None:
        return {}
    if isinstance(faults, str):
        return flt.parse_spec(faults, len(specs))
    index = {s.device_id: i for i, s in enumerate(specs)}
    out: dict[int, dict[str, bool | float]] = {}
    for key, value in faults.items():
        if isinstance(key, int):
            if not 0 <= key < len(specs):
                raise flt.FaultSpecError(f"device index {key} out of range (0..{len(specs) - 1})")
            i = key
        elif key in index:
            i = index[key]
        else:
            raise flt.FaultSpecError(f"no device {key!r}")
        out.setdefault(i, {}).update(flt.normalise(value))
    return out


class Simulator:
    """The virtual devices, an optional control HTTP server and an optional WS-Discovery responder."""

    def __init__(
        self,
        n_cameras: int = 20,
        n_checkpoints: int = 2,
        seed: int = 1,
        faults: Mapping[int | str, Mapping[str, Any]] | str | None = None,
        host: str = "127.0.0.1",
        *,
        fault_share: float = 0.0,
        specs: list[DeviceSpec] | None = None,
        mode: str = "day",
        control_port: int | None = None,
        discovery_port: int | None = None,
        rtsp_base: str = "rtsp://127.0.0.1:8554",
        rtsp: bool = False,
    ) -> None:
        if mode not in flt.SCENE_MODES:
            raise ValueError(f"scene mode {mode!r} is not one of {', '.join(flt.SCENE_MODES)}")
        self.specs = specs if specs is not None else make_specs(n_cameras, n_checkpoints, seed)
        assigned = flt.random_assignment(len(self.specs), fault_share, seed) if fault_share else {}
        for i, f in _resolve_faults(faults, self.specs).items():
            assigned.setdefault(i, {}).update(f)
        for i, spec in enumerate(self.specs):
            spec.faults = {**flt.normalise(spec.faults), **assigned.get(i, {})}
            if specs is None:
                spec.mode = mode
        self.host = host
        self.devices = [VirtualDevice(s, host, rtsp_base) for s in self.specs]
        self._by_id = {d.device_id: d for d in self.devices}
        if len(self._by_id) != len(self.devices):
            raise ValueError("device ids must be unique")
        self._control_port_wanted = control_port
        # with `rtsp`, one GStreamer RTSP server process serves every device's streams (simulator.rtsp)
        self.rtsp: RtspServer | None = RtspServer(host, auth=True) if rtsp else None
        self._discovery_port_wanted = discovery_port
        self.control_port: int | None = None
        self.discovery: DiscoveryResponder | None = None
        self._control: web.AppRunner | None = None
        self._loop: asyncio.AbstractEventLoop | None = None

    @property
    def control_url(self) -> str | None:
        return None if self.control_port is None else f"http://{self.host}:{self.control_port}"

    @property
    def discovery_port(self) -> int | None:
        return None if self.discovery is None else self.discovery.port

    def device(self, device_id: str) -> VirtualDevice:
        try:
            return self._by_id[device_id]
        except KeyError:
            raise KeyError(f"no device {device_id!r}") from None

    async def start(self) -> None:
        self._loop = asyncio.get_running_loop()
        try:
            if self.rtsp is not None:
                await asyncio.to_thread(self.rtsp.start)
                for d in self.devices:
                    d.rtsp, d._rtsp_base = self.rtsp, self.rtsp.base_url
            # in batches: hundreds of listening sockets, without a burst of file-descriptor churn
            for i in range(0, len(self.devices), 50):
                await asyncio.gather(*(d.start() for d in self.devices[i : i + 50]))
            if self._control_port_wanted is not None:
                await self._start_control(self._control_port_wanted)
            if self._discovery_port_wanted is not None:
                self.discovery = DiscoveryResponder(
                    lambda: self.devices, self.host, self._discovery_port_wanted
                )
                await self.discovery.start()
        except BaseException:
            await self.stop()
            raise

    async def stop(self) -> None:
        if self.discovery is not None:
            self.discovery.stop()
            self.discovery = None
        if self._control is not None:
            await self._control.cleanup()
            self._control = None
        await asyncio.gather(*(d.stop() for d in self.devices), return_exceptions=True)
        if self.rtsp is not None:
            await asyncio.to_thread(self.rtsp.stop)

    async def __aenter__(self) -> Simulator:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    def set_faults(
        self, device_id: str, faults: Mapping[str, Any], replace: bool = False
    ) -> dict[str, bool | float]:
        """Change a device's faults at run time: named ones are set, false/null clears one.

        With `replace`, faults not named are dropped too.
        Safe from any thread: from outside the simulator's loop the change is run on the loop.
        """
        dev = self.device(device_id)
        new = flt.normalise(faults) if replace else flt.merge(dev.faults, faults)
        loop = self._loop
        if loop is not None and loop.is_running() and not _in_loop(loop):
            done = asyncio.run_coroutine_threadsafe(_call(dev.apply_faults, new), loop)
            done.result(timeout=10)
        else:
            dev.apply_faults(new)
        return dict(dev.faults)

    def set_mode(self, device_id: str, mode: str) -> None:
        if mode not in flt.SCENE_MODES:
            raise ValueError(f"scene mode {mode!r} is not one of {', '.join(flt.SCENE_MODES)}")
        self.device(device_id).spec.mode = mode

    def describe(self) -> list[dict[str, Any]]:
        """The devices as JSON-able dicts: each a POST /api/v1/cameras body plus a `faults` key."""
        return [d.describe() for d in self.devices]

    # control API ----------------------------------------------------------------------------
    async def _start_control(self, port: int) -> None:
        app = web.Application(client_max_size=64 * 1024)
        app.router.add_get("/healthz", self._healthz)
        app.router.add_get("/devices", self._list)
        app.router.add_get("/devices/{device_id}", self._get)
        app.router.add_put("/devices/{device_id}/faults", self._put_faults)
        self._control = web.AppRunner(
            app, handle_signals=False, access_log=None, shutdown_timeout=SHUTDOWN_TIMEOUT_S
        )
        await self._control.setup()
        site = web.TCPSite(self._control, self.host, port)
        await site.start()
        server = site._server  # aiohttp keeps the bound socket here; port 0 needs reading back
        assert isinstance(server, asyncio.Server)
        self.control_port = server.sockets[0].getsockname()[1]

    async def _healthz(self, request: web.Request) -> web.Response:
        online = sum(d.online for d in self.devices)
        return web.json_response({"status": "ok", "devices": len(self.devices), "online": online})

    async def _list(self, request: web.Request) -> web.Response:
        return web.json_response(self.describe())

    def _problem(self, status: int, title: str, detail: str) -> web.Response:
        body = {"type": "about:blank", "title": title, "status": status, "detail": detail}
        return web.json_response(body, status=status, content_type="application/problem+json")

    async def _get(self, request: web.Request) -> web.Response:
        dev = self._by_id.get(request.match_info["device_id"])
        if dev is None:
            return self._problem(404, "Not Found", f"no device {request.match_info['device_id']!r}")
        return web.json_response(dev.describe())

    async def _put_faults(self, request: web.Request) -> web.Response:
        device_id = request.match_info["device_id"]
        if device_id not in self._by_id:
            return self._problem(404, "Not Found", f"no device {device_id!r}")
        try:
            body = await request.json()
        except (json.JSONDecodeError, UnicodeDecodeError):
            return self._problem(400, "Bad Request", "body is not JSON")
        if not isinstance(body, dict) or not isinstance(body.get("faults", {}), dict):
            return self._problem(400, "Bad Request", 'expected {"faults": {"name": true | number | false}}')
        try:
            if "mode" in body:
                self.set_mode(device_id, str(body["mode"]))
            self.set_faults(device_id, body.get("faults", {}), replace=bool(body.get("replace", False)))
        except (flt.FaultSpecError, ValueError) as e:
            return self._problem(422, "Unprocessable Entity", str(e))
        return web.json_response(self._by_id[device_id].describe())


def _in_loop(loop: asyncio.AbstractEventLoop) -> bool:
    try:
        return asyncio.get_running_loop() is loop
    except RuntimeError:
        return False


async def _call(fn: Any, *args: Any) -> None:
    fn(*args)


class SimulatorThread:
    """Run a Simulator in a background thread's event loop, for synchronous tests and scripts.

    `with SimulatorThread(n_cameras=5) as sim:` gives the running Simulator; `sim.set_faults` is
    thread-safe. Leaving the block stops every server and the thread.
    """

    def __init__(self, *args: Any, start_timeout: float = 120.0, **kwargs: Any) -> None:
        self.sim = Simulator(*args, **kwargs)
        self._timeout = start_timeout
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._ready = threading.Event()
        self._error: BaseException | None = None
        self._stop: asyncio.Event | None = None

    def _run(self) -> None:
        loop = asyncio.new_event_loop()
        self._loop = loop
        try:
            loop.run_until_complete(self._main())
        finally:
            loop.close()

    async def _main(self) -> None:
        self._stop = asyncio.Event()
        try:
            await self.sim.start()
        except BaseException as e:
            self._error = e
            self._ready.set()
            return
        self._ready.set()
        try:
            await self._stop.wait()
        finally:
            await self.sim.stop()

    def start(self) -> Simulator:
        self._thread = threading.Thread(target=self._run, name="simulator", daemon=True)
        self._thread.start()
        if not self._ready.wait(self._timeout):
            raise TimeoutError(f"simulator did not start within {self._timeout} s")
        if self._error is not None:
            raise self._error
        return self.sim

    def stop(self) -> None:
        if (
            self._loop is not None
            and self._stop is not None
            and self._thread is not None
            and self._thread.is_alive()
        ):
            self._loop.call_soon_threadsafe(self._stop.set)
            self._thread.join(timeout=30)

    def __enter__(self) -> Simulator:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
