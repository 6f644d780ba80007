"""ONVIF operations of a virtual device (device, media and event services): request → answer body.

Answers copy the shape of a real camera's (see tests/fixtures/onvif-recorded) so that zeep,
with the ONVIF WSDLs, parses them; they are written here, not replayed. Every address in an answer
is the one the device names (`named_*`): behind NAT (the `nat` fault) its LAN address.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import time
from collections.abc import Awaitable, Callable
from typing import Protocol
from urllib.parse import quote
from xml.sax.saxutils import escape

from simulator import events as ev
from simulator.soap import (
    NAMESPACES,
    Request,
    SoapFault,
    child_text,
    parse_duration,
    parse_xs_datetime,
    xs_datetime,
)
from simulator.spec import DeviceSpec

PULL_WAIT_CAP_S = 10.0  # longest a PullMessages is held open, whatever Timeout the client asks
MESSAGE_LIMIT_CAP = 100

PROFILES = ("Profile_1", "Profile_2")  # main stream, sub stream


class Device(Protocol):
    spec: DeviceSpec
    subscriptions: dict[str, ev.Subscription]

    @property
    def named_base_url(self) -> str: ...
    @property
    def seed(self) -> int: ...
    @property
    def named_snapshot_url(self) -> str: ...
    @property
    def named_rtsp_url(self) -> str: ...
    def now(self) -> dt.datetime: ...
    def set_clock(self, utc: dt.datetime) -> None: ...


Handler = Callable[[Device, Request, str], Awaitable[tuple[str, str | None]]]


def scopes(spec: DeviceSpec) -> list[tuple[str, str]]:
    """(ScopeDef, ScopeItem) pairs; discovery announces the same items."""
    base = "onvif://www.onvif.org"
    return [
        ("Fixed", f"{base}/Profile/Streaming"),
        ("Fixed", f"{base}/type/video_encoder"),
        ("Fixed", f"{base}/type/{'ptz' if spec.kind == 'ptz' else 'Network_Video_Transmitter'}"),
        ("Fixed", f"{base}/hardware/{quote(spec.model, safe='')}"),
        ("Configurable", f"{base}/name/{quote(spec.name, safe='')}"),
        ("Configurable", f"{base}/location/country/china"),
        ("Configurable", f"{base}/location/city/shenzhen"),
    ]


async def get_system_date_and_time(dev: Device, req: Request, path: str) -> tuple[str, str | None]:
    now = dev.now()
    local = now.astimezone(dt.timezone(dt.timedelta(hours=8)))

    def stamp(tag: str, t: dt.datetime) -> str:
        return (
            f"<tt:{tag}><tt:Time><tt:Hour>{t.hour}</tt:Hour><tt:Minute>{t.minute}</tt:Minute>"
            f"<tt:Second>{t.second}</tt:Second></tt:Time><tt:Date><tt:Year>{t.year}</tt:Year>"
            f"<tt:Month>{t.month}</tt:Month><tt:Day>{t.day}</tt:Day></tt:Date></tt:{tag}>"
        )

    return (
        "<tds:GetSystemDateAndTimeResponse><tds:SystemDateAndTime>"
        "<tt:DateTimeType>Manual</tt:DateTimeType><tt:DaylightSavings>false</tt:DaylightSavings>"
        "<tt:TimeZone><tt:TZ>CST-8</tt:TZ></tt:TimeZone>"
        f"{stamp('UTCDateTime', now)}{stamp('LocalDateTime', local)}"
        "</tds:SystemDateAndTime></tds:GetSystemDateAndTimeResponse>"
    ), None


async def set_system_date_and_time(dev: Device, req: Request, path: str) -> tuple[str, str | None]:
    """Manual time only (what the agent's clock correction sends); NTP is not simulated."""
    kind = child_text(req.body, "DateTimeType") or "Manual"
    if kind != "Manual":
        raise SoapFault("Sender", ("ter:InvalidArgVal", "ter:NtpServerUndefined"), "no NTP server is set")
    utc = next(
        (c for c in req.body.iter() if isinstance(c.tag, str) and c.tag.endswith("}UTCDateTime")), None
    )
    try:
        y, mo, d, h, mi, sec = (
            int(child_text(utc, f) or "") for f in ("Year", "Month", "Day", "Hour", "Minute", "Second")
        )
        when = dt.datetime(y, mo, d, h, mi, sec, tzinfo=dt.UTC)
    except ValueError:
        raise SoapFault(
            "Sender", ("ter:InvalidArgVal", "ter:InvalidDateTime"), "no valid UTCDateTime"
        ) from None
    dev.set_clock(when)
    return "<tds:SetSystemDateAndTimeResponse/>", None


async def get_device_information(dev: Device, req: Request, path: str) -> tuple[str, str | None]:
    s = dev.spec
    return (
        "<tds:GetDeviceInformationResponse>"
        "<tds:Manufacturer>Tianwang Simulator</tds:Manufacturer>"
        f"<tds:Model>{escape(s.model)}</tds:Model>"
        "<tds:FirmwareVersion>V5.7.3 build 240115</tds:FirmwareVersion>"
        f"<tds:SerialNumber>{s.model}-{s.serial}</tds:SerialNumber>"
        f"<tds:HardwareId>{s.device_id[10:13]}</tds:HardwareId>"
        "</tds:GetDeviceInformationResponse>"
    ), None


async def get_capabilities(dev: Device, req: Request, path: str) -> tuple[str, str | None]:
    b = dev.named_base_url
    return (
        "<tds:GetCapabilitiesResponse><tds:Capabilities>"
        f"<tt:Device><tt:XAddr>{b}/onvif/device_service</tt:XAddr>"
        "<tt:Network><tt:IPFilter>false</tt:IPFilter><tt:ZeroConfiguration>false</tt:ZeroConfiguration>"
        "<tt:IPVersion6>false</tt:IPVersion6><tt:DynDNS>false</tt:DynDNS></tt:Network>"
        "<tt:System><tt:DiscoveryResolve>false</tt:DiscoveryResolve><tt:DiscoveryBye>false</tt:DiscoveryBye>"
        "<tt:RemoteDiscovery>false</tt:RemoteDiscovery><tt:SystemBackup>false</tt:SystemBackup>"
        "<tt:SystemLogging>false</tt:SystemLogging><tt:FirmwareUpgrade>false</tt:FirmwareUpgrade>"
        "<tt:SupportedVersions><tt:Major>2</tt:Major><tt:Minor>60</tt:Minor></tt:SupportedVersions></tt:System>"
        "<tt:IO><tt:InputConnectors>0</tt:InputConnectors><tt:RelayOutputs>0</tt:RelayOutputs></tt:IO>"
        "<tt:Security><tt:TLS1.1>false</tt:TLS1.1><tt:TLS1.2>false</tt:TLS1.2>"
        "<tt:OnboardKeyGeneration>false</tt:OnboardKeyGeneration><tt:AccessPolicyConfig>false</tt:AccessPolicyConfig>"
        "<tt:X.509Token>false</tt:X.509Token><tt:SAMLToken>false</tt:SAMLToken>"
        "<tt:KerberosToken>false</tt:KerberosToken><tt:RELToken>false</tt:RELToken></tt:Security>"
        "</tt:Device>"
        f"<tt:Events><tt:XAddr>{b}/onvif/events_service</tt:XAddr>"
        "<tt:WSSubscriptionPolicySupport>false</tt:WSSubscriptionPolicySupport>"
        "<tt:WSPullPointSupport>true</tt:WSPullPointSupport>"
        "<tt:WSPausableSubscriptionManagerInterfaceSupport>false</tt:WSPausableSubscriptionManagerInterfaceSupport>"
        "</tt:Events>"
        f"<tt:Media><tt:XAddr>{b}/onvif/media_service</tt:XAddr>"
        "<tt:StreamingCapabilities><tt:RTPMulticast>false</tt:RTPMulticast><tt:RTP_TCP>true</tt:RTP_TCP>"
        "<tt:RTP_RTSP_TCP>true</tt:RTP_RTSP_TCP></tt:StreamingCapabilities></tt:Media>"
        "</tds:Capabilities></tds:GetCapabilitiesResponse>"
    ), None


async def get_services(dev: Device, req: Request, path: str) -> tuple[str, str | None]:
    b = dev.named_base_url
    services = [
        (NAMESPACES["tds"], f"{b}/onvif/device_service", 2, 60),
        (NAMESPACES["trt"], f"{b}/onvif/media_service", 2, 60),
        (NAMESPACES["tev"], f"{b}/onvif/events_service", 2, 60),
    ]
    body = "".join(
        f"<tds:Service><tds:Namespace>{ns}</tds:Namespace><tds:XAddr>{x}</tds:XAddr>"
        f"<tds:Version><tt:Major>{ma}</tt:Major><tt:Minor>{mi}</tt:Minor></tds:Version></tds:Service>"
        for ns, x, ma, mi in services
    )
    return f"<tds:GetServicesResponse>{body}</tds:GetServicesResponse>", None


async def get_scopes(dev: Device, req: Request, path: str) -> tuple[str, str | None]:
    body = "".join(
        f"<tds:Scopes><tt:ScopeDef>{d}</tt:ScopeDef><tt:ScopeItem>{escape(item)}</tt:ScopeItem></tds:Scopes>"
        for d, item in scopes(dev.spec)
    )
    return f"<tds:GetScopesResponse>{body}</tds:GetScopesResponse>", None


def _profile(
    token: str, name: str, w: int, h: int, src_w: int, src_h: int, bitrate: int, fps: int = 25, gov: int = 50
) -> str:
    return (
        f'<trt:Profiles fixed="true" token="{token}"><tt:Name>{name}</tt:Name>'
        '<tt:VideoSourceConfiguration token="VideoSourceConfig_1"><tt:Name>VideoSourceConfig_1</tt:Name>'
        "<tt:UseCount>2</tt:UseCount><tt:SourceToken>VideoSource_1</tt:SourceToken>"
        f'<tt:Bounds height="{src_h}" width="{src_w}" y="0" x="0"></tt:Bounds></tt:VideoSourceConfiguration>'
        f'<tt:VideoEncoderConfiguration token="VideoEncoder_{token[-1]}"><tt:Name>{name}</tt:Name>'
        "<tt:UseCount>1</tt:UseCount><tt:Encoding>H264</tt:Encoding>"
        f"<tt:Resolution><tt:Width>{w}</tt:Width><tt:Height>{h}</tt:Height></tt:Resolution>"
        f"<tt:Quality>5</tt:Quality><tt:RateControl><tt:FrameRateLimit>{fps}</tt:FrameRateLimit>"
        f"<tt:EncodingInterval>1</tt:EncodingInterval><tt:BitrateLimit>{bitrate}</tt:BitrateLimit></tt:RateControl>"
        f"<tt:H264><tt:GovLength>{gov}</tt:GovLength><tt:H264Profile>Main</tt:H264Profile></tt:H264>"
        "<tt:Multicast><tt:Address><tt:Type>IPv4</tt:Type><tt:IPv4Address>0.0.0.0</tt:IPv4Address></tt:Address>"
        "<tt:Port>0</tt:Port><tt:TTL>0</tt:TTL><tt:AutoStart>false</tt:AutoStart></tt:Multicast>"
        "<tt:SessionTimeout>PT60S</tt:SessionTimeout></tt:VideoEncoderConfiguration></trt:Profiles>"
    )


async def get_profiles(dev: Device, req: Request, path: str) -> tuple[str, str | None]:
    s = dev.spec
    main = _profile(
        PROFILES[0], "mainStream", s.width, s.height, s.width, s.height, s.bitrate_kbps, s.fps, s.gov_length
    )
    sub = _profile(PROFILES[1], "subStream", 640, 360, s.width, s.height, 512, s.fps, s.gov_length)
    return f"<trt:GetProfilesResponse>{main}{sub}</trt:GetProfilesResponse>", None


def _check_profile(req: Request) -> str:
    token = child_text(req.body, "ProfileToken")
    if token not in PROFILES:
        raise SoapFault("Sender", ("ter:InvalidArgVal", "ter:NoProfile"), f"no profile {token!r}")
    return token or ""


def _media_uri(tag: str, uri: str) -> str:
    return (
        f"<trt:{tag}Response><trt:MediaUri><tt:Uri>{escape(uri)}</tt:Uri>"
        "<tt:InvalidAfterConnect>false</tt:InvalidAfterConnect><tt:InvalidAfterReboot>false</tt:InvalidAfterReboot>"
        f"<tt:Timeout>PT0S</tt:Timeout></trt:MediaUri></trt:{tag}Response>"
    )


async def get_snapshot_uri(dev: Device, req: Request, path: str) -> tuple[str, str | None]:
    _check_profile(req)
    if "no_snapshot_uri" in dev.spec.faults:
        raise SoapFault("Receiver", ("ter:ActionNotSupported",), "this device serves no snapshot URI", 500)
    return _media_uri("GetSnapshotUri", dev.named_snapshot_url), None


async def get_stream_uri(dev: Device, req: Request, path: str) -> tuple[str, str | None]:
    token = _check_profile(req)
    main = dev.named_rtsp_url
    uri = main if token == PROFILES[0] else main.rsplit("/", 1)[0] + "/sub"
    return _media_uri("GetStreamUri", uri), None


def _termination(value: str | None, now: dt.datetime) -> dt.datetime:
    if not value:
        return now + dt.timedelta(seconds=60)
    try:
        if value.strip().startswith(("P", "-P")):
            end = now + parse_duration(value)
        else:
            end = parse_xs_datetime(value)
    except ValueError:
        raise SoapFault(
            "Sender", ("wsnt:UnacceptableInitialTerminationTimeFault",), f"bad time {value!r}"
        ) from None
    if end <= now:
        raise SoapFault(
            "Sender", ("wsnt:UnacceptableTerminationTimeFault",), "termination time is in the past"
        )
    return min(end, now + ev.MAX_TERMINATION)


def _subscription(dev: Device, path: str) -> ev.Subscription:
    sub_id = path.rstrip("/").rsplit("/", 1)[-1] if "/pullpoint/" in path else ""
    sub = dev.subscriptions.get(sub_id)
    if sub is None or sub.termination <= dev.now():
        dev.subscriptions.pop(sub_id, None)
        raise SoapFault("Sender", ("wsrf-rw:ResourceUnknownFault",), "no such subscription (expired?)")
    return sub


def _address(dev: Device, sub: ev.Subscription) -> str:
    return f"{dev.named_base_url}/onvif/pullpoint/{sub.id}"


async def create_pull_point_subscription(dev: Device, req: Request, path: str) -> tuple[str, str | None]:
    now = dev.now()
    termination = _termination(child_text(req.body, "InitialTerminationTime"), now)
    for sid in [sid for sid, s in dev.subscriptions.items() if s.termination <= now]:
        del dev.subscriptions[sid]
    while len(dev.subscriptions) >= ev.MAX_SUBSCRIPTIONS:
        dev.subscriptions.pop(next(iter(dev.subscriptions)))
    sub = ev.Subscription(now.timestamp(), termination)
    dev.subscriptions[sub.id] = sub
    return (
        "<tev:CreatePullPointSubscriptionResponse><tev:SubscriptionReference>"
        f"<wsa5:Address>{_address(dev, sub)}</wsa5:Address></tev:SubscriptionReference>"
        f"<wsnt:CurrentTime>{xs_datetime(now)}</wsnt:CurrentTime>"
        f"<wsnt:TerminationTime>{xs_datetime(termination)}</wsnt:TerminationTime>"
        "</tev:CreatePullPointSubscriptionResponse>"
    ), f"{NAMESPACES['tev']}/EventPortType/CreatePullPointSubscriptionResponse"


async def pull_messages(dev: Device, req: Request, path: str) -> tuple[str, str | None]:
    sub = _subscription(dev, path)
    try:
        timeout = parse_duration(child_text(req.body, "Timeout") or "PT0S").total_seconds()
        limit = int(child_text(req.body, "MessageLimit") or "10")
    except ValueError:
        raise SoapFault("Sender", ("ter:InvalidArgVal",), "Timeout or MessageLimit is not valid") from None
    limit = max(1, min(limit, MESSAGE_LIMIT_CAP))
    deadline = time.monotonic() + max(0.0, min(timeout, PULL_WAIT_CAP_S))
    while True:
        now = dev.now()
        got = sub.take(dev.seed, dev.spec.is_checkpoint, now.timestamp(), limit)
        left = deadline - time.monotonic()
        if got or left <= 0:
            break
        nxt = ev.next_event_after(dev.seed, dev.spec.is_checkpoint, now.timestamp(), left)
        await asyncio.sleep(min(left, (nxt - now.timestamp()) + 0.01) if nxt else left)
    address = _address(dev, sub)
    messages = "".join(ev.event_xml(e, address) for e in got)
    return (
        f"<tev:PullMessagesResponse><tev:CurrentTime>{xs_datetime(now)}</tev:CurrentTime>"
        f"<tev:TerminationTime>{xs_datetime(sub.termination)}</tev:TerminationTime>{messages}"
        "</tev:PullMessagesResponse>"
    ), f"{NAMESPACES['tev']}/PullPointSubscription/PullMessagesResponse"


async def renew(dev: Device, req: Request, path: str) -> tuple[str, str | None]:
    sub = _subscription(dev, path)
    now = dev.now()
    sub.termination = _termination(child_text(req.body, "TerminationTime"), now)
    return (
        f"<wsnt:RenewResponse><wsnt:TerminationTime>{xs_datetime(sub.termination)}</wsnt:TerminationTime>"
        f"<wsnt:CurrentTime>{xs_datetime(now)}</wsnt:CurrentTime></wsnt:RenewResponse>"
    ), "http://docs.oasis-open.org/wsn/bw-2/SubscriptionManager/RenewResponse"


async def unsubscribe(dev: Device, req: Request, path: str) -> tuple[str, str | None]:
    sub = _subscription(dev, path)
    dev.subscriptions.pop(sub.id, None)
    return (
        "<wsnt:UnsubscribeResponse/>",
        "http://docs.oasis-open.org/wsn/bw-2/SubscriptionManager/UnsubscribeResponse",
    )


async def set_synchronization_point(dev: Device, req: Request, path: str) -> tuple[str, str | None]:
    _subscription(dev, path).needs_initial = True
    return "<tev:SetSynchronizationPointResponse/>", None


OPERATIONS: dict[str, Handler] = {
    "GetSystemDateAndTime": get_system_date_and_time,
    "SetSystemDateAndTime": set_system_date_and_time,
    "GetDeviceInformation": get_device_information,
    "GetCapabilities": get_capabilities,
    "GetServices": get_services,
    "GetScopes": get_scopes,
    "GetProfiles": get_profiles,
    "GetSnapshotUri": get_snapshot_uri,
    "GetStreamUri": get_stream_uri,
    "CreatePullPointSubscription": create_pull_point_subscription,
    "PullMessages": pull_messages,
    "Renew": renew,
    "Unsubscribe": unsubscribe,
    "SetSynchronizationPoint": set_synchronization_point,
}
UNAUTHENTICATED = frozenset({"GetSystemDateAndTime"})
