"""WS-Discovery of ONVIF cameras: a bounded Probe over SOAP-over-UDP, multicast or unicast.

Sends one `Probe` for `dn:NetworkVideoTransmitter` (twice, as SOAP-over-UDP retransmits) and
collects `ProbeMatches` for a bounded time. Answers are untrusted: size-bounded datagrams, parsed
without entities or network access, fields length-checked, at most `max_devices` kept.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import struct
import uuid
from dataclasses import dataclass, field
from urllib.parse import urlsplit

from lxml import etree

MULTICAST_GROUP = "239.255.255.250"
PORT = 3702
MAX_DATAGRAM = 65_507
SIOCGIFADDR = 0x8915  # Linux ioctl: an interface's IPv4 address
WSD = "http://schemas.xmlsoap.org/ws/2005/04/discovery"
WSA = "http://schemas.xmlsoap.org/ws/2004/08/addressing"
SOAP12 = "http://www.w3.org/2003/05/soap-envelope"
_PARSER = etree.XMLParser(
    resolve_entities=False, no_network=True, huge_tree=False, remove_comments=True, load_dtd=False
)


@dataclass
class Discovered:
    epr: str  # endpoint reference (urn:uuid:…), stable per device
    xaddrs: list[str]
    scopes: list[str] = field(default_factory=list)
    types: list[str] = field(default_factory=list)
    source: str = ""  # ip:port the answer came from

    @property
    def name(self) -> str | None:
        return _scope_value(self.scopes, "name")

    @property
    def hardware(self) -> str | None:
        return _scope_value(self.scopes, "hardware")


def _scope_value(scopes: list[str], kind: str) -> str | None:
    prefix = f"onvif://www.onvif.org/{kind}/"
    for s in scopes:
        if s.startswith(prefix):
            from urllib.parse import unquote

            return unquote(s[len(prefix) :])[:100] or None
    return None


def probe_message(message_id: str) -> bytes:
    return (
        '<?xml version="1.0" encoding="UTF-8"?>'
        f'<e:Envelope xmlns:e="{SOAP12}" xmlns:w="{WSA}" xmlns:d="{WSD}" '
        'xmlns:dn="http://www.onvif.org/ver10/network/wsdl">'
        "<e:Header>"
        f"<w:MessageID>{message_id}</w:MessageID>"
        '<w:To e:mustUnderstand="true">urn:schemas-xmlsoap-org:ws:2005:04:discovery</w:To>'
        f'<w:Action e:mustUnderstand="true">{WSD}/Probe</w:Action>'
        "</e:Header>"
        "<e:Body><d:Probe><d:Types>dn:NetworkVideoTransmitter</d:Types></d:Probe></e:Body>"
        "</e:Envelope>"
    ).encode()


def _split(text: str | None, limit: int = 32) -> list[str]:
    return [t for t in (text or "").split() if len(t) <= 1000][:limit]


def parse_probe_matches(data: bytes, message_id: str | None = None, source: str = "") -> list[Discovered]:
    """ProbeMatches → devices; [] for anything else (other traffic, garbage, another probe's answer)."""
    if len(data) > MAX_DATAGRAM:
        return []
    try:
        root = etree.fromstring(data, _PARSER)
    except etree.XMLSyntaxError:
        return []
    if message_id is not None:
        relates = root.findtext(f".//{{{WSA}}}RelatesTo")
        # devices that leave RelatesTo out are accepted; a different one is someone else's answer
        if relates is not None and relates.strip() not in (message_id, ""):
            return []
    out = []
    for match in root.iter(f"{{{WSD}}}ProbeMatch"):
        epr = (match.findtext(f"{{{WSA}}}EndpointReference/{{{WSA}}}Address") or "").strip()[:200]
        xaddrs = [x for x in _split(match.findtext(f"{{{WSD}}}XAddrs")) if _is_http(x)]
        if not xaddrs:
            continue
        out.append(
            Discovered(
                epr=epr or xaddrs[0],
                xaddrs=xaddrs,
                scopes=_split(match.findtext(f"{{{WSD}}}Scopes"), 64),
                types=_split(match.findtext(f"{{{WSD}}}Types")),
                source=source,
            )
        )
    return out


def _is_http(url: str) -> bool:
    try:
        u = urlsplit(url)
        return u.scheme in ("http", "https") and bool(u.hostname)
    except ValueError:
        return False


def parse_target(spec: str) -> tuple[str, int]:
    """`host` or `host:port` (default 3702); `[v6]:port` for IPv6."""
    host, port = spec, PORT
    if spec.startswith("["):
        end = spec.find("]")
        if end < 0:
            raise ValueError(f"bad address {spec!r}")
        host, rest = spec[1:end], spec[end + 1 :]
        if rest:
            if not rest.startswith(":"):
                raise ValueError(f"bad address {spec!r}")
            port = int(rest[1:])
    elif spec.count(":") == 1:
        host, p = spec.split(":")
        port = int(p)
    if not host or not 0 < port < 65536:
        raise ValueError(f"bad address {spec!r}")
    return host, port


class _Collector(asyncio.DatagramProtocol):
    def __init__(self, message_id: str, max_devices: int) -> None:
        self.message_id = message_id
        self.max_devices = max_devices
        self.found: dict[str, Discovered] = {}

    def datagram_received(self, data: bytes, addr: tuple[str | int, ...]) -> None:
        if len(self.found) >= self.max_devices:
            return
        for d in parse_probe_matches(data, self.message_id, f"{addr[0]}:{addr[1]}"):
            self.found.setdefault(d.epr, d)

    def error_received(self, exc: Exception) -> None:  # ICMP unreachable from a unicast target
        pass


def ipv4_interfaces() -> list[str]:
    """The IPv4 address of every interface that is up, loopback included (Linux; elsewhere loopback
    and the address of the default route)."""
    found: list[str] = []
    try:
        import fcntl

        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            for _, name in socket.if_nameindex():
                with contextlib.suppress(OSError):
                    packed = fcntl.ioctl(s.fileno(), SIOCGIFADDR, struct.pack("256s", name[:15].encode()))
                    found.append(socket.inet_ntoa(packed[20:24]))
    except (ImportError, OSError):
        with contextlib.suppress(OSError), socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            s.connect((MULTICAST_GROUP, PORT))  # no packet: only picks the route's source address
            found.append(s.getsockname()[0])
    if not any(a.startswith("127.") for a in found):
        found.insert(0, "127.0.0.1")
    return list(dict.fromkeys(found))


async def discover(
    *,
    unicast: list[str] | None = None,
    interface: str | None = None,
    timeout_s: float = 3.0,
    max_devices: int = 10_000,
    ttl: int = 1,
    port: int = PORT,
) -> list[Discovered]:
    """Probe and collect for `timeout_s`: unicast to the given hosts, multicast on `interface` (an
    IPv4 address), or else on every interface. Loopback has no multicast: devices there (a
    simulator, a replay, an NVR's local services) are probed by unicast on `port`."""
    if not 0 < timeout_s <= 60:
        raise ValueError("timeout must be in (0, 60] seconds")
    # (host, port, multicast interface or None)
    targets: list[tuple[str, int, str | None]]
    if unicast:
        targets = [(h, p, None) for h, p in (parse_target(t) for t in unicast)]
    else:
        targets = [
            (address, port, None) if address.startswith("127.") else (MULTICAST_GROUP, port, address)
            for address in ([interface] if interface else ipv4_interfaces())
        ]
    message_id = f"uuid:{uuid.uuid4()}"
    loop = asyncio.get_running_loop()
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM, socket.IPPROTO_UDP)
    sock.setblocking(False)
    sock.bind((interface or "0.0.0.0", 0))  # noqa: S104 (answers come back to this port from anywhere)
    if not unicast:
        sock.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_TTL, struct.pack("b", ttl))
    transport, proto = await loop.create_datagram_endpoint(
        lambda: _Collector(message_id, max_devices), sock=sock
    )
    try:
        msg = probe_message(message_id)
        for attempt in range(2):
            for host, to_port, via in targets:
                # an unresolvable or unreachable target, or an interface without multicast, just
                # answers nothing
                with contextlib.suppress(OSError):
                    if via is not None:
                        sock.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_IF, socket.inet_aton(via))
                    transport.sendto(msg, (host, to_port))
            if attempt == 0:
                await asyncio.sleep(min(0.1, timeout_s / 4))
        await asyncio.sleep(max(0.0, timeout_s - min(0.1, timeout_s / 4)))
    finally:
        transport.close()
    return sorted(proto.found.values(), key=lambda d: d.xaddrs[0])
