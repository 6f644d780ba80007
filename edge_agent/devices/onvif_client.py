"""An ONVIF client that survives real cameras: deadlines on every call, bounded answers, wrong clocks.

A thin layer over `onvif-zeep-async` (module `onvif`): every await runs under `asyncio.timeout`,
every raw failure becomes a typed `DeviceError`, every answer is treated as untrusted input (sizes
bounded in the transport, fields coerced and checked here), and one long-lived camera object is
kept per device in an `OnvifPool`. The XAddrs and media URIs a device names are moved to its
registered address unless it is trusted (cameras behind NAT; see `edge_agent.devices.addresses`).
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import math
import weakref
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Literal, TypeVar
from urllib.parse import urlsplit

from aiohttp import ClientResponse, ClientSession, DigestAuthMiddleware
from onvif import ONVIFCamera
from onvif.client import AsyncTransportProtocolErrorHandler, ONVIFService
from zeep.utils import get_version

from edge_agent.devices.addresses import origin, rewrite_media, rewrite_service
from edge_agent.devices.errors import BadAnswer, DeviceError, classify

log = logging.getLogger("edge_agent.devices.onvif")

T = TypeVar("T")
TransportAuth = Literal["wsse", "digest", "both"]

# ONVIF answers are small (a 16-channel NVR's GetProfiles is ~200 KB); anything far beyond is a
# broken or hostile device, and zeep would otherwise hold the whole body and its parse tree.
DEFAULT_MAX_ANSWER_BYTES = 2 * 1024 * 1024
DEFAULT_CALL_TIMEOUT_S = 5.0
MAX_PROFILES = 64
MAX_TEXT = 100  # matches the registry's manufacturer/model/firmware/serial columns
MAX_URI = 1000  # matches the registry's stream_uri/snapshot_uri columns
MAX_ADVERTISED = 64  # distinct origins remembered from a device's XAddrs


class AnswerTooLarge(BadAnswer):
    """The device sent more than the configured bound; reading stopped there."""


class _BoundedTransport(AsyncTransportProtocolErrorHandler):
    """onvif's aiohttp transport, reading at most `max_bytes` of each answer.

    The stock transport calls `response.read()`, which buffers whatever the device sends; here the
    body is streamed and abandoned past the bound. It also carries the HTTP Digest seam: cameras
    that ignore WS-UsernameToken and want Digest on the HTTP layer get an aiohttp
    `DigestAuthMiddleware` on each request.
    """

    def __init__(self, session: ClientSession, max_bytes: int, digest: tuple[str, str] | None) -> None:
        super().__init__(session=session, verify_ssl=False, cache=None)
        self.max_bytes = max_bytes
        self._middlewares = (DigestAuthMiddleware(*digest),) if digest else ()

    async def _read_bounded(self, response: ClientResponse, address: str) -> bytes:
        declared = response.content_length
        if declared is not None and declared > self.max_bytes:
            raise AnswerTooLarge(
                f"answer from {_origin(address)} declares {declared} bytes (max {self.max_bytes})"
            )
        buf = bytearray()
        async for chunk in response.content.iter_chunked(64 * 1024):
            buf += chunk
            if len(buf) > self.max_bytes:
                raise AnswerTooLarge(f"answer from {_origin(address)} exceeds {self.max_bytes} bytes")
        return bytes(buf)

    async def _post_internal(
        self, address: str, message: str | bytes, headers: dict[str, str]
    ) -> tuple[ClientResponse, bytes]:
        headers = headers or {}
        headers.setdefault("User-Agent", f"Zeep/{get_version()}")
        headers.setdefault("Content-Type", 'text/xml; charset="utf-8"')
        data = message.encode("utf-8") if isinstance(message, str) else message
        async with self.session.post(
            address, data=data, headers=headers, timeout=self._client_timeout, middlewares=self._middlewares
        ) as response:
            content = await self._read_bounded(response, address)
        return response, content

    async def get(
        self, address: str, params: dict[str, Any] | None = None, headers: dict[str, str] | None = None
    ) -> Any:
        async with self.session.get(
            address, params=params, headers=headers or {}, timeout=self._client_timeout
        ) as response:
            content = await self._read_bounded(response, address)
        return self._aiohttp_to_requests_response(response, content)


def _origin(url: str) -> str:
    try:
        u = urlsplit(url)
        return f"{u.scheme}://{u.hostname}:{u.port or ''}".rstrip(":")
    except ValueError:
        return "device"


class _HardenedCamera(ONVIFCamera):
    """ONVIFCamera whose every service uses the bounded transport (and Digest when asked)."""

    def __init__(
        self,
        host: str,
        port: int,
        user: str,
        passwd: str,
        *,
        max_answer_bytes: int,
        transport_auth: TransportAuth,
        trust_device_addresses: bool = False,
    ) -> None:
        # adjust_time stays off in the library: OnvifClient measures the skew itself (one
        # unauthenticated round trip, tolerant parsing) and sets dt_diff from it.
        super().__init__(host, port, user, passwd, no_cache=True, adjust_time=False)
        self._max_answer_bytes = max_answer_bytes
        self._transport_auth = transport_auth
        self._trust = trust_device_addresses
        # (host, port) of every XAddr the device named, before any rewriting
        self.advertised: set[tuple[str, int]] = set()

    def rewrite_url(self, url: str | None) -> str | None:
        """The library's seam for every XAddr (GetServices, GetCapabilities) and subscription address
        a device names: kept as named for a trusted device, else moved to the registered endpoint."""
        if not url:
            return url
        o = origin(url)
        if o is not None and len(self.advertised) < MAX_ADVERTISED:
            self.advertised.add(o)
        return url if self._trust else rewrite_service(url, self.host, self.port)

    async def create_onvif_service(
        self,
        name: str,
        port_type: str | None = None,
        read_timeout: int | None = None,
        write_timeout: int | None = None,
    ) -> ONVIFService:
        await _warm_wsdl(name)
        service = await super().create_onvif_service(name, port_type, read_timeout, write_timeout)
        if not isinstance(service.transport, _BoundedTransport):
            digest = (self.user or "", self.passwd or "") if self._transport_auth != "wsse" else None
            bounded = _BoundedTransport(service._session, self._max_answer_bytes, digest)
            service.transport = bounded
            for client in (service.zeep_client, service.zeep_client_authless):
                if client is not None:
                    client.transport = bounded
            if self._transport_auth == "digest" and service.zeep_client is not None:
                service.zeep_client.wsse = None  # HTTP Digest only: no WS-Security header at all
        return service


# The first service of each kind parses its WSDL (~0.2 s CPU) in an executor. Done once per
# process, shielded so a device deadline that cancels the caller does not throw the parse away,
# and serialised so 200 concurrent first calls do not parse it 200 times.
_warm_tasks: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, dict[str, asyncio.Task[None]]] = (
    weakref.WeakKeyDictionary()
)
_warmed: set[str] = set()


async def _warm_one(name: str) -> None:
    cam = ONVIFCamera("127.0.0.1", 1, None, None, no_cache=True)
    try:
        if name == "devicemgmt":
            await cam.create_devicemgmt_service()
        else:
            from onvif.definition import SERVICES

            cam.xaddrs[SERVICES[name]["ns"]] = "http://127.0.0.1:1/onvif/" + name
            await cam.create_onvif_service(name)
        _warmed.add(name)
    finally:
        await cam.close()


async def _warm_wsdl(name: str) -> None:
    name = name.lower()
    if name in _warmed:
        return
    loop = asyncio.get_running_loop()
    tasks = _warm_tasks.setdefault(loop, {})
    task = tasks.get(name)
    if task is None or (task.done() and (task.cancelled() or task.exception() is not None)):
        task = tasks[name] = loop.create_task(_warm_one(name))
    await asyncio.shield(task)


async def warm_wsdl(names: tuple[str, ...] = ("devicemgmt", "media")) -> None:
    """Parse the WSDLs ahead of the first device call (call at start, outside any device deadline)."""
    for name in names:
        await _warm_wsdl(name)


# -- plain results -----------------------------------------------------------------------------


@dataclass(frozen=True)
class DeviceClock:
    utc: dt.datetime | None
    skew_s: float | None  # device − local, seconds; None when the device gave no usable UTC time
    date_time_type: str | None = None  # "NTP" or "Manual"
    timezone: str | None = None


@dataclass(frozen=True)
class DeviceInfo:
    manufacturer: str | None
    model: str | None
    firmware: str | None
    serial: str | None
    hardware_id: str | None


@dataclass(frozen=True)
class Profile:
    token: str
    name: str | None
    encoding: str | None
    width: int | None
    height: int | None
    fps: float | None
    # the declared rate limit (kbit/s) and H.264 GOP length; what the stream check compares against
    bitrate_kbps: int | None = None
    gov_length: int | None = None


@dataclass
class _Stats:
    calls: int = 0
    failures: int = 0
    last_error: str | None = None


# -- coercion of untrusted fields --------------------------------------------------------------


def _text(v: Any, limit: int = MAX_TEXT) -> str | None:
    if v is None:
        return None
    s = " ".join(str(v).split())
    # control characters have no business in a model name and would poison logs and CSV exports
    s = "".join(ch for ch in s if ch.isprintable())
    return s[:limit] or None


def _int(v: Any, lo: int, hi: int) -> int | None:
    try:
        i = int(v)
    except (TypeError, ValueError, OverflowError):
        return None
    return i if lo <= i <= hi else None


def _float(v: Any, lo: float, hi: float) -> float | None:
    try:
        f = float(v)
    except (TypeError, ValueError, OverflowError):
        return None
    return f if math.isfinite(f) and lo <= f <= hi else None


def _get(obj: Any, *path: str) -> Any:
    for name in path:
        if obj is None:
            return None
        obj = obj.get(name) if isinstance(obj, dict) else getattr(obj, name, None)
    return obj


def check_uri(uri: Any, schemes: tuple[str, ...], what: str) -> str:
    """A device-given URI, accepted only with an expected scheme, a host and a sane length."""
    if not isinstance(uri, str) or not uri.strip():
        raise BadAnswer(f"device gave no {what}")
    uri = uri.strip()
    if len(uri) > MAX_URI or any(not ch.isprintable() or ch.isspace() for ch in uri):
        raise BadAnswer(f"device gave an unusable {what} (too long or control characters)")
    try:
        parts = urlsplit(uri)
        _ = parts.port  # raises on a non-numeric port
    except ValueError:
        raise BadAnswer(f"device gave a malformed {what}") from None
    if parts.scheme.lower() not in schemes or not parts.hostname:
        raise BadAnswer(f"device gave a {what} with scheme {parts.scheme!r} (expected {'/'.join(schemes)})")
    return uri


def parse_clock(answer: Any, now: dt.datetime | None = None) -> DeviceClock:
    """GetSystemDateAndTime → the device's UTC time and its skew; tolerant of missing or absurd fields."""
    now = now or dt.datetime.now(dt.UTC)
    utc = _get(answer, "UTCDateTime")
    when: dt.datetime | None = None
    if utc is not None:
        try:
            when = dt.datetime(
                int(_get(utc, "Date", "Year")),
                int(_get(utc, "Date", "Month")),
                int(_get(utc, "Date", "Day")),
                int(_get(utc, "Time", "Hour")),
                int(_get(utc, "Time", "Minute")),
                # some firmwares say second 60 (leap second) — clamp rather than refuse
                min(int(_get(utc, "Time", "Second")), 59),
                tzinfo=dt.UTC,
            )
        except (TypeError, ValueError, OverflowError):
            when = None
    # the device reports whole seconds (truncated): add the half second lost on average, and do not
    # pretend to more precision than that
    skew = float(round((when - now).total_seconds() + 0.5)) if when else None
    return DeviceClock(
        utc=when,
        skew_s=skew,
        date_time_type=_text(_get(answer, "DateTimeType"), 20),
        timezone=_text(_get(answer, "TimeZone", "TZ"), 100),
    )


def parse_profiles(answer: Any) -> list[Profile]:
    out: list[Profile] = []
    for p in list(answer or [])[:MAX_PROFILES]:
        token = _text(_get(p, "token"), 64)
        if not token:
            continue  # a profile without a token cannot be asked for URIs
        vec = _get(p, "VideoEncoderConfiguration")
        out.append(
            Profile(
                token=token,
                name=_text(_get(p, "Name"), 64),
                encoding=_text(_get(vec, "Encoding"), 16),
                width=_int(_get(vec, "Resolution", "Width"), 1, 16384),
                height=_int(_get(vec, "Resolution", "Height"), 1, 16384),
                fps=_float(_get(vec, "RateControl", "FrameRateLimit"), 0.01, 1000.0),
                bitrate_kbps=_int(_get(vec, "RateControl", "BitrateLimit"), 1, 10_000_000),
                gov_length=_int(_get(vec, "H264", "GovLength"), 1, 100_000),
            )
        )
    return out


# -- the client ----------------------------------------------------------------------------------


class OnvifClient:
    """One device. Methods raise only `DeviceError` subclasses; each call is bounded by `timeout_s`."""

    def __init__(
        self,
        host: str,
        port: int = 80,
        username: str = "",
        password: str = "",
        *,
        timeout_s: float = DEFAULT_CALL_TIMEOUT_S,
        adjust_time: bool = True,
        transport_auth: TransportAuth = "wsse",
        max_answer_bytes: int = DEFAULT_MAX_ANSWER_BYTES,
        trust_device_addresses: bool = False,
    ) -> None:
        if not host or any(ch.isspace() or ch in "/?#@" for ch in host):
            raise ValueError(f"invalid ONVIF host {host!r}")
        if not 0 < int(port) < 65536:
            raise ValueError(f"invalid ONVIF port {port!r}")
        self.host, self.port, self.username = host, int(port), username
        self._password = password
        self.timeout_s = timeout_s
        self.adjust_time = adjust_time
        self.transport_auth: TransportAuth = transport_auth
        self.max_answer_bytes = max_answer_bytes
        # False (the default): every XAddr and URI the device names is moved to host:port (NAT)
        self.trust_device_addresses = trust_device_addresses
        self.clock: DeviceClock | None = None
        self._cam: _HardenedCamera | None = None
        self._xaddrs_ready = False
        self.stats = _Stats()

    def __repr__(self) -> str:  # never the password
        return f"OnvifClient({self.host}:{self.port}, user={self.username!r})"

    @property
    def clock_skew_s(self) -> float | None:
        return self.clock.skew_s if self.clock else None

    def _camera(self) -> _HardenedCamera:
        if self._cam is None:
            self._cam = _HardenedCamera(
                self.host,
                self.port,
                self.username,
                self._password,
                max_answer_bytes=self.max_answer_bytes,
                transport_auth=self.transport_auth,
                trust_device_addresses=self.trust_device_addresses,
            )
        return self._cam

    @property
    def advertised_hosts(self) -> frozenset[str]:
        """The hosts the device named in its XAddrs (as named, before any rewriting)."""
        return frozenset(h for h, _ in self._cam.advertised) if self._cam else frozenset()

    def _own_uri(self, uri: str) -> str:
        """A media URI the device named, on the registered host unless the device is trusted."""
        if self.trust_device_addresses or self._cam is None:
            return uri
        ports = {p for _, p in self._cam.advertised}
        return rewrite_media(uri, self.host, self.port, ports)

    async def _call(self, what: str, fn: Callable[[], Awaitable[T]]) -> T:
        self.stats.calls += 1
        try:
            async with asyncio.timeout(self.timeout_s):
                return await fn()
        except Exception as e:
            err: DeviceError = classify(e, f"{what} at {self.host}:{self.port}")
            self.stats.failures += 1
            self.stats.last_error = err.code
            raise err from e

    async def _devicemgmt(self) -> ONVIFService:
        return await self._camera().create_devicemgmt_service()

    async def _ensure_xaddrs(self) -> None:
        if self._xaddrs_ready:
            return
        cam = self._camera()
        skew = cam.dt_diff
        # update_xaddrs() resets dt_diff (it runs the library's own time handshake, which is off
        # here); put our measured offset back so the media service signs with device time.
        await cam.update_xaddrs()
        cam.dt_diff = skew
        self._xaddrs_ready = True

    async def _apply_skew(self, clock: DeviceClock) -> None:
        cam = self._camera()
        if not self.adjust_time or clock.skew_s is None:
            return
        diff = dt.timedelta(seconds=clock.skew_s)
        cam.dt_diff = diff
        # services built before the skew was known sign with local time: rebuild them lazily
        for key, service in list(cam.services.items()):
            if service.dt_diff != diff:
                await service.close()
                cam.services.pop(key, None)

    # -- operations ----------------------------------------------------------------------------

    async def system_date_and_time(self) -> DeviceClock:
        """Unauthenticated GetSystemDateAndTime: reachability, and the clock skew (recorded)."""

        async def run() -> DeviceClock:
            svc = await self._devicemgmt()
            answer = await svc.authless_GetSystemDateAndTime()
            if answer is None:
                raise BadAnswer("empty GetSystemDateAndTime answer")
            return parse_clock(answer)

        clock = await self._call("GetSystemDateAndTime", run)
        self.clock = clock
        await self._apply_skew(clock)
        return clock

    async def set_system_date_and_time(self, utc: dt.datetime) -> None:
        """SetSystemDateAndTime: the device clock set by hand (`Manual`) to `utc`, its time zone and
        daylight saving kept. Signed with the device's present time; the skew is read again after."""

        async def run() -> None:
            svc = await self._devicemgmt()
            t = utc.astimezone(dt.UTC)
            await svc.SetSystemDateAndTime(
                {
                    "DateTimeType": "Manual",
                    "DaylightSavings": False,
                    "UTCDateTime": {
                        "Date": {"Year": t.year, "Month": t.month, "Day": t.day},
                        "Time": {"Hour": t.hour, "Minute": t.minute, "Second": t.second},
                    },
                }
            )

        await self._call("SetSystemDateAndTime", run)
        await self.system_date_and_time()

    async def device_information(self) -> DeviceInfo:
        async def run() -> DeviceInfo:
            svc = await self._devicemgmt()
            a = await svc.GetDeviceInformation()
            if a is None:
                raise BadAnswer("empty GetDeviceInformation answer")
            return DeviceInfo(
                manufacturer=_text(_get(a, "Manufacturer")),
                model=_text(_get(a, "Model")),
                firmware=_text(_get(a, "FirmwareVersion")),
                serial=_text(_get(a, "SerialNumber")),
                hardware_id=_text(_get(a, "HardwareId")),
            )

        return await self._call("GetDeviceInformation", run)

    async def services(self) -> dict[str, str]:
        """The service XAddrs in use (GetServices, else GetCapabilities): the device's own when it is
        trusted, else moved to the registered endpoint."""

        async def run() -> dict[str, str]:
            await self._ensure_xaddrs()
            return {
                str(ns)[:200]: str(x)[:MAX_URI] for ns, x in list(self._camera().xaddrs.items())[:64] if x
            }

        return await self._call("GetServices", run)

    async def capabilities(self) -> dict[str, Any]:
        async def run() -> dict[str, Any]:
            caps = await self._camera().get_capabilities()
            return dict(caps or {})

        return await self._call("GetCapabilities", run)

    async def _media(self) -> ONVIFService:
        await self._ensure_xaddrs()
        return await self._camera().create_media_service()

    async def profiles(self) -> list[Profile]:
        async def run() -> list[Profile]:
            media = await self._media()
            return parse_profiles(await media.GetProfiles())

        return await self._call("GetProfiles", run)

    async def snapshot_uri(self, profile: str) -> str:
        async def run() -> str:
            media = await self._media()
            a = await media.GetSnapshotUri({"ProfileToken": profile})
            uri = check_uri(_get(a, "Uri"), ("http", "https"), "snapshot URI")
            return self._own_uri(uri)

        return await self._call("GetSnapshotUri", run)

    async def stream_uri(self, profile: str) -> str:
        async def run() -> str:
            media = await self._media()
            setup = {"Stream": "RTP-Unicast", "Transport": {"Protocol": "RTSP"}}
            a = await media.GetStreamUri({"StreamSetup": setup, "ProfileToken": profile})
            uri = check_uri(_get(a, "Uri"), ("rtsp", "rtsps", "http", "https"), "stream URI")
            return self._own_uri(uri)

        return await self._call("GetStreamUri", run)

    async def close(self) -> None:
        cam, self._cam = self._cam, None
        self._xaddrs_ready = False
        if cam is not None:
            try:
                async with asyncio.timeout(5):
                    await cam.close()
            except (Exception, TimeoutError) as e:  # closing a broken connection must not mask a result
                log.debug("closing %s: %s", self, e)


def _key(host: str, port: int, username: str) -> str:
    return f"{host}:{port}:{username}"


class OnvifPool:
    """Long-lived clients, one per device (host:port:user), least recently used closed past `max_size`.

    Bound to the event loop that uses it; `close()` on shutdown.
    """

    def __init__(self, max_size: int = 1024, **client_options: Any) -> None:
        self.max_size = max_size
        self.client_options = client_options
        self._clients: OrderedDict[str, tuple[OnvifClient, str]] = OrderedDict()

    def __len__(self) -> int:
        return len(self._clients)

    async def get(
        self, host: str, port: int = 80, username: str = "", password: str = "", **options: Any
    ) -> OnvifClient:
        key = _key(host, port, username)
        entry = self._clients.get(key)
        if entry is not None:
            client, known = entry
            opts = {**self.client_options, **options}
            if known == password and all(getattr(client, k, v) == v for k, v in opts.items()):
                self._clients.move_to_end(key)
                return client
            # credentials or options changed: the old session signs with stale values
            del self._clients[key]
            await client.close()
        client = OnvifClient(host, port, username, password, **{**self.client_options, **options})
        self._clients[key] = (client, password)
        while len(self._clients) > self.max_size:
            _, (old, _) = self._clients.popitem(last=False)
            await old.close()
        return client

    async def discard(self, client: OnvifClient) -> None:
        """Drop a client (e.g. after an error that leaves its connection suspect)."""
        key = _key(client.host, client.port, client.username)
        entry = self._clients.get(key)
        if entry is not None and entry[0] is client:
            del self._clients[key]
        await client.close()

    async def close(self) -> None:
        clients = [c for c, _ in self._clients.values()]
        self._clients.clear()
        await asyncio.gather(*(c.close() for c in clients), return_exceptions=True)


__all__ = [
    "DEFAULT_CALL_TIMEOUT_S",
    "DEFAULT_MAX_ANSWER_BYTES",
    "AnswerTooLarge",
    "DeviceClock",
    "DeviceInfo",
    "OnvifClient",
    "OnvifPool",
    "Profile",
    "check_uri",
    "parse_clock",
    "parse_profiles",
    "warm_wsdl",
]
