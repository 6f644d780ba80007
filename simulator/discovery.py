"""WS-Discovery responder (SOAP-over-UDP) for the virtual devices: answers a unicast Probe on loopback.

Accepted: a SOAP 1.2 envelope whose Body's first child is `Probe` in the WS-Discovery 2005/04
namespace, with an optional `Types` filter (QNames; matches when empty or naming
`NetworkVideoTransmitter` or `Device`) and optional `Scopes` (each must prefix-match, by path
segments, one of a device's scopes). Answer: ProbeMatches datagrams to the sender's address,
RelatesTo = the Probe's MessageID, one ProbeMatch per online device, packed into datagrams of at
most MAX_DATAGRAM bytes. Multicast (239.255.255.250) is not joined.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, cast
from xml.sax.saxutils import escape

from lxml import etree

from simulator.onvif import scopes
from simulator.soap import SoapFault, child_text, parse_request

if TYPE_CHECKING:
    from simulator.devices import VirtualDevice

log = logging.getLogger("simulator.discovery")

WSD = "http://schemas.xmlsoap.org/ws/2005/04/discovery"
WSA = "http://schemas.xmlsoap.org/ws/2004/08/addressing"
MAX_PROBE_BYTES = 64 * 1024
MAX_DATAGRAM = 8 * 1024  # keeps every answer far below any UDP or buffer limit


def endpoint_uuid(device_id: str) -> str:
    return f"urn:uuid:{uuid.uuid5(uuid.NAMESPACE_URL, 'tianwang-simulator:' + device_id)}"


def _match(probe_scopes: list[str], device_scopes: list[str]) -> bool:
    def segments(uri: str) -> list[str]:
        return [s for s in uri.rstrip("/").split("/") if s]

    have = [segments(s) for s in device_scopes]
    return all(any(h[: len(segments(p))] == segments(p) for h in have) for p in probe_scopes)


def probe_match(dev: VirtualDevice) -> str:
    items = " ".join(item for _, item in scopes(dev.spec))
    return (
        "<wsdd:ProbeMatch>"
        f"<wsa:EndpointReference><wsa:Address>{endpoint_uuid(dev.device_id)}</wsa:Address></wsa:EndpointReference>"
        "<wsdd:Types>dn:NetworkVideoTransmitter tds:Device</wsdd:Types>"
        f"<wsdd:Scopes>{escape(items)}</wsdd:Scopes>"
        f"<wsdd:XAddrs>{dev.xaddr}</wsdd:XAddrs>"
        "<wsdd:MetadataVersion>1</wsdd:MetadataVersion>"
        "</wsdd:ProbeMatch>"
    )


def probe_matches(relates_to: str, matches: Sequence[str], message_number: int) -> bytes:
    return (
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        '<SOAP-ENV:Envelope xmlns:SOAP-ENV="http://www.w3.org/2003/05/soap-envelope" '
        f'xmlns:wsa="{WSA}" xmlns:wsdd="{WSD}" xmlns:tds="http://www.onvif.org/ver10/device/wsdl" '
        'xmlns:dn="http://www.onvif.org/ver10/network/wsdl">'
        "<SOAP-ENV:Header>"
        f"<wsa:MessageID>urn:uuid:{uuid.uuid4()}</wsa:MessageID>"
        f"<wsa:RelatesTo>{escape(relates_to)}</wsa:RelatesTo>"
        "<wsa:To>http://schemas.xmlsoap.org/ws/2004/08/addressing/role/anonymous</wsa:To>"
        "<wsa:Action>http://schemas.xmlsoap.org/ws/2005/04/discovery/ProbeMatches</wsa:Action>"
        f'<wsdd:AppSequence MessageNumber="{message_number}" InstanceId="1"></wsdd:AppSequence>'
        "</SOAP-ENV:Header>"
        f"<SOAP-ENV:Body><wsdd:ProbeMatches>{''.join(matches)}</wsdd:ProbeMatches></SOAP-ENV:Body>"
        "</SOAP-ENV:Envelope>"
    ).encode()


class _Protocol(asyncio.DatagramProtocol):
    def __init__(self, responder: DiscoveryResponder) -> None:
        self.responder = responder
        self.transport: asyncio.DatagramTransport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.DatagramTransport, transport)

    def datagram_received(self, data: bytes, addr: tuple[str | object, ...]) -> None:
        if self.transport is None or len(data) > MAX_PROBE_BYTES:
            return
        for datagram in self.responder.answer(data):
            self.transport.sendto(datagram, addr)


class DiscoveryResponder:
    """Answers Probes for whatever devices `devices()` returns at that moment (offline ones stay silent)."""

    def __init__(
        self, devices: Callable[[], Sequence[VirtualDevice]], host: str = "127.0.0.1", port: int = 3702
    ) -> None:
        self._devices = devices
        self.host = host
        self.port = port
        self._transport: asyncio.DatagramTransport | None = None
        self._message_number = 0

    async def start(self) -> None:
        loop = asyncio.get_running_loop()
        transport, _ = await loop.create_datagram_endpoint(
            lambda: _Protocol(self), local_addr=(self.host, self.port)
        )
        self._transport = transport
        self.port = transport.get_extra_info("sockname")[1]

    def stop(self) -> None:
        if self._transport is not None:
            self._transport.close()
            self._transport = None

    def answer(self, data: bytes) -> list[bytes]:
        """The datagrams answering one received datagram (none if it is not a Probe we match)."""
        try:
            req = parse_request(data)
        except SoapFault:
            return []
        if req.operation != "Probe" or req.namespace != WSD:
            return []
        message_id = child_text(req.header, "MessageID") or ""
        types = (child_text(req.body, "Types") or "").split()
        if types and not any(t.rsplit(":", 1)[-1] in ("NetworkVideoTransmitter", "Device") for t in types):
            return []
        wanted = (child_text(req.body, "Scopes") or "").split()
        matches = [
            probe_match(d)
            for d in self._devices()
            if d.online and _match(wanted, [item for _, item in scopes(d.spec)])
        ]
        out: list[bytes] = []
        batch: list[str] = []
        size = 0
        for m in matches:
            if batch and size + len(m.encode()) > MAX_DATAGRAM - 1024:
                out.append(self._pack(message_id, batch))
                batch, size = [], 0
            batch.append(m)
            size += len(m.encode())
        if batch:
            out.append(self._pack(message_id, batch))
        return out

    def _pack(self, message_id: str, batch: list[str]) -> bytes:
        self._message_number += 1
        return probe_matches(message_id, batch, self._message_number)


def parse_probe_matches(data: bytes) -> list[dict[str, str]]:
    """Read a ProbeMatches datagram (used by the tests and as the reference for the agent's prober)."""
    root = etree.fromstring(data, etree.XMLParser(resolve_entities=False, no_network=True))
    out = []
    for pm in root.iter(f"{{{WSD}}}ProbeMatch"):
        out.append(
            {
                "address": child_text(pm, "Address") or "",
                "types": child_text(pm, "Types") or "",
                "scopes": child_text(pm, "Scopes") or "",
                "xaddrs": child_text(pm, "XAddrs") or "",
            }
        )
    return out
