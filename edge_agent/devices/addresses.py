"""Where a device's credentials may be sent: its own registered addresses, never a host named by an answer.

A camera's GetSnapshotUri / GetStreamUri answer is untrusted input. Fetching whatever it names with
the camera's password would let one spoofed device make the agent log in anywhere on either network
(SSRF) and, through a Basic challenge, hand out the password in clear. So:

- an HTTP(S) snapshot URI is used with credentials only when its origin (host and port) is the
  device's registered ONVIF service or the origin of a URL the registry holds for it (snapshot_url,
  rtsp_url). The port counts: behind NAT one gateway address forwards a port per camera, and on a
  shared host another port is another device. A camera that serves pictures on another port of its
  own address needs its snapshot_url registered; the refusal says so;
- an RTSP URL is used with credentials only on the ONVIF host or a registered URL's host (RTSP always
  has a port of its own, so only the host can be compared);
- HTTP Basic (the password in clear) is answered only over HTTPS, or over plain HTTP to the device's
  registered ONVIF host itself (older firmware offers nothing else, and that host already holds the
  password). Digest is answered wherever credentials may go.

Cameras behind NAT or a port forward (a 4G router, an NVR, a gateway) name their own LAN address in
every XAddr and URI they give, an address the agent cannot reach. By default the registered address
wins, as ONVIF Device Manager does (it rewrites the RTSP host too, agsh/onvif#41) and
onvif-zeep-async's opt-in `nat_override` (python-onvif-zeep-async#250) does for XAddrs
(`rewrite_service`, `rewrite_media`):

- a service XAddr (GetServices, GetCapabilities) becomes the registered endpoint,
  `http://<registered host>:<registered port>`, with the device's path and query kept: the
  registered port is the one port known to reach the device's web server;
- a snapshot or stream URI gets the registered host; its port becomes the registered port when it
  is one of the ports the device advertised for its services (its web server, seen from inside:
  the snapshot CGI of nearly every camera, RTSP tunnelled over HTTP), and is kept otherwise (RTSP on
  554: a gateway that forwards it elsewhere needs the camera's rtsp_url registered).

Then the usual checks apply to the rewritten URI. A camera registered with
`trust_device_addresses` is taken at its word instead: its XAddrs and URIs are used as named, and
the hosts its XAddrs name count as its own (`DeviceAddresses.trusting`), since they already receive
its WS-Security token; HTTP Basic still goes only to the registered host.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable
from dataclasses import dataclass, replace
from urllib.parse import urlsplit, urlunsplit

from edge_agent.devices.errors import BadAnswer

DEFAULT_PORTS = {"http": 80, "https": 443, "rtsp": 554, "rtsps": 322}


def normal_host(host: str) -> str:
    """Lower case, no IPv6 brackets, an IP address in its canonical text form."""
    h = host.strip().strip("[]").lower().rstrip(".")
    try:
        return str(ipaddress.ip_address(h))
    except ValueError:
        return h


def origin(url: str) -> tuple[str, int] | None:
    """(host, port) of a URL, the scheme's default port filled in; None when it has no usable host."""
    try:
        u = urlsplit(url.strip())
        port = u.port
    except ValueError:
        return None
    if not u.hostname:
        return None
    scheme = u.scheme.lower()
    if port is None:
        port = DEFAULT_PORTS.get(scheme)
        if port is None:
            return None
    return normal_host(u.hostname), port


def _show(o: tuple[str, int]) -> str:
    host, port = o
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


@dataclass(frozen=True)
class DeviceAddresses:
    """The addresses one device is registered at; the only places its credentials go."""

    onvif: tuple[str, int] | None
    registered: frozenset[tuple[str, int]]
    # hosts the device named in its own XAddrs, counted only for a trusted camera (`trusting`)
    advertised: frozenset[str] = frozenset()

    @classmethod
    def of(
        cls, onvif_host: str | None, onvif_port: int | None, registry_urls: Iterable[str | None] = ()
    ) -> DeviceAddresses:
        onvif = (normal_host(onvif_host), int(onvif_port or 80)) if onvif_host else None
        found = (origin(u) for u in registry_urls if u)
        return cls(onvif, frozenset(o for o in found if o is not None))

    def trusting(self, hosts: Iterable[str]) -> DeviceAddresses:
        """These addresses plus the other hosts the device advertised (trust_device_addresses set).

        A registered host keeps its own rule (the exact origin for a snapshot): behind one gateway
        address, another port may be another camera, whatever this one names."""
        named = frozenset(normal_host(h) for h in hosts if h)
        return replace(self, advertised=named - self.hosts)

    @property
    def origins(self) -> frozenset[tuple[str, int]]:
        return self.registered | ({self.onvif} if self.onvif else frozenset())

    @property
    def hosts(self) -> frozenset[str]:
        return frozenset(h for h, _ in self.origins)

    def _where(self) -> str:
        if self.onvif:
            return f"the device's ONVIF service is at {_show(self.onvif)}"
        return "the device has no registered address"

    def check_snapshot(self, url: str, what: str = "snapshot URI") -> str:
        """`url` if its origin is one of the device's; BadAnswer (nothing is fetched) otherwise."""
        o = origin(url)
        if o is None:
            raise BadAnswer(f"{what} has no usable host")
        if o not in self.origins and o[0] not in self.advertised:
            raise BadAnswer(
                f"{what} points at another host ({_show(o)}; {self._where()}): refused, the device's "
                "credentials go only to its own address; register the camera's snapshot_url if it "
                "really serves pictures there"
            )
        return url

    def check_stream(self, url: str, what: str = "stream URI") -> str:
        """`url` if it is on one of the device's hosts (any port: RTSP has its own); BadAnswer otherwise."""
        o = origin(url)
        if o is None:
            raise BadAnswer(f"{what} has no usable host")
        if o[0] not in self.hosts and o[0] not in self.advertised:
            raise BadAnswer(
                f"{what} points at another host ({o[0]}; {self._where()}): refused, the device's "
                "credentials go only to its own address; register the camera's rtsp_url if it "
                "really streams from there"
            )
        return url

    def basic_allowed(self, scheme: str, host: str) -> bool:
        """May a Basic challenge (the password in clear) from `scheme://host` be answered?"""
        if scheme.lower() == "https":
            return True
        if self.onvif is not None:
            return normal_host(host) == self.onvif[0]
        # no ONVIF endpoint: credentials (if any) belong to the registered URLs themselves
        return normal_host(host) in self.hosts


def _netloc(userinfo: str, host: str, port: int | None) -> str:
    h = f"[{host}]" if ":" in host else host
    return f"{userinfo}{h}" + (f":{port}" if port is not None else "")


def _split(url: str) -> tuple[str, str, str, int | None, str, str, str] | None:
    """(scheme, userinfo@, host, explicit port, path, query, fragment); None when unusable."""
    try:
        u = urlsplit(url.strip())
        port = u.port
    except ValueError:
        return None
    if not u.hostname:
        return None
    userinfo = u.netloc.rpartition("@")[0]
    return (u.scheme, f"{userinfo}@" if userinfo else "", u.hostname, port, u.path, u.query, u.fragment)


def rewrite_service(url: str, host: str, port: int) -> str:
    """A service XAddr moved to the registered endpoint `http://host:port`, its path and query kept."""
    parts = _split(url)
    if parts is None:
        return url
    _, _, _, _, path, query, fragment = parts
    return urlunsplit(("http", _netloc("", normal_host(host), int(port)), path, query, fragment))


def rewrite_media(url: str, host: str, port: int, service_ports: Iterable[int]) -> str:
    """A snapshot or stream URI on the registered host; its port mapped to the registered port when
    it is one of the device's advertised service ports (see the module's rule), kept otherwise."""
    parts = _split(url)
    if parts is None:
        return url
    scheme, userinfo, _, explicit, path, query, fragment = parts
    named = explicit if explicit is not None else DEFAULT_PORTS.get(scheme.lower())
    new_port = int(port) if named is not None and named in set(service_ports) else explicit
    return urlunsplit((scheme, _netloc(userinfo, normal_host(host), new_port), path, query, fragment))
