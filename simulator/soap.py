"""SOAP 1.2 plumbing for the virtual devices: safe request parsing, WS-UsernameToken checks, envelopes.

Requests are untrusted: bounded in size by the HTTP server, parsed without DTDs, entities or
network access. Answers are built from string templates whose shape follows real ONVIF devices.
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import hashlib
import hmac
import re
from dataclasses import dataclass
from xml.sax.saxutils import escape

from lxml import etree

SOAP_ENV = "http://www.w3.org/2003/05/soap-envelope"
WSSE = "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-secext-1.0.xsd"
WSU = "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-utility-1.0.xsd"

NAMESPACES = {
    "SOAP-ENV": SOAP_ENV,
    "xsi": "http://www.w3.org/2001/XMLSchema-instance",
    "xsd": "http://www.w3.org/2001/XMLSchema",
    "wsa5": "http://www.w3.org/2005/08/addressing",
    "wsnt": "http://docs.oasis-open.org/wsn/b-2",
    "wstop": "http://docs.oasis-open.org/wsn/t-1",
    "tt": "http://www.onvif.org/ver10/schema",
    "tds": "http://www.onvif.org/ver10/device/wsdl",
    "trt": "http://www.onvif.org/ver10/media/wsdl",
    "tev": "http://www.onvif.org/ver10/events/wsdl",
    "tns1": "http://www.onvif.org/ver10/topics",
    "ter": "http://www.onvif.org/ver10/error",
    "wsrf-rw": "http://docs.oasis-open.org/wsrf/rw-2",
}
_XMLNS = " ".join(f'xmlns:{k}="{v}"' for k, v in NAMESPACES.items())
CONTENT_TYPE = "application/soap+xml; charset=utf-8"

# Clock window for UsernameToken Created, on the device's own clock (as real firmware does).
CREATED_WINDOW = dt.timedelta(minutes=5)

_PARSER = etree.XMLParser(
    resolve_entities=False, no_network=True, load_dtd=False, huge_tree=False, remove_comments=True
)


class SoapFault(Exception):
    """An answer that is a SOAP Fault: code (Sender/Receiver), ONVIF subcodes, reason, HTTP status."""

    def __init__(self, code: str, subcodes: tuple[str, ...], reason: str, status: int = 400) -> None:
        super().__init__(reason)
        self.code = code
        self.subcodes = subcodes
        self.reason = reason
        self.status = status


def not_authorized(reason: str) -> SoapFault:
    return SoapFault("Sender", ("ter:NotAuthorized",), reason, 400)


@dataclass
class Request:
    operation: str  # local name of the Body's first child
    namespace: str
    body: etree._Element
    header: etree._Element | None


def parse_request(data: bytes) -> Request:
    """Parse a SOAP 1.2 (or 1.1) envelope; a malformed one is a Sender fault, never a crash."""
    try:
        root = etree.fromstring(data, _PARSER)
    except etree.XMLSyntaxError as e:
        raise SoapFault("Sender", ("ter:WellFormed",), f"request is not well-formed XML: {e}") from None
    if root.getroottree().docinfo.doctype:
        raise SoapFault("Sender", ("ter:WellFormed",), "DOCTYPE is not allowed in SOAP")
    if etree.QName(root).localname != "Envelope":
        raise SoapFault("Sender", ("ter:WellFormed",), "root element is not a SOAP Envelope")
    env_ns = etree.QName(root).namespace
    body = root.find(f"{{{env_ns}}}Body")
    header = root.find(f"{{{env_ns}}}Header")
    first = None if body is None else next((c for c in body if isinstance(c.tag, str)), None)
    if first is None:
        raise SoapFault("Sender", ("ter:WellFormed",), "SOAP Body is empty")
    q = etree.QName(first)
    return Request(q.localname, q.namespace or "", first, header)


def child_text(el: etree._Element | None, local: str) -> str | None:
    """Text of the first descendant with this local name, whatever its namespace."""
    if el is None:
        return None
    for c in el.iter():
        if isinstance(c.tag, str) and etree.QName(c).localname == local:
            return (c.text or "").strip()
    return None


def parse_xs_datetime(value: str) -> dt.datetime:
    v = value.strip()
    if v.endswith(("Z", "z")):
        v = v[:-1] + "+00:00"
    # Python before 3.11 rejected some fraction lengths; trim to microseconds to be safe
    v = re.sub(r"(\.\d{6})\d+", r"\1", v)
    parsed = dt.datetime.fromisoformat(v)
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=dt.UTC)
    return parsed


_DURATION = re.compile(r"^-?P(?:(\d+)D)?(?:T(?:(\d+)H)?(?:(\d+)M)?(?:(\d+(?:\.\d+)?)S)?)?$")


def parse_duration(value: str) -> dt.timedelta:
    """xs:duration as ONVIF uses it (PnDTnHnMnS); years and months are refused."""
    m = _DURATION.match(value.strip())
    if not m or value.strip() in ("P", "PT"):
        raise ValueError(f"not a supported xs:duration: {value!r}")
    d, h, mi, s = m.groups()
    return dt.timedelta(days=int(d or 0), hours=int(h or 0), minutes=int(mi or 0), seconds=float(s or 0))


def check_username_token(
    header: etree._Element | None, username: str, password: str, now: dt.datetime
) -> None:
    """Check the WS-Security UsernameToken against the device's account and clock; raise NotAuthorized."""
    token = None
    if header is not None:
        token = next(header.iter(f"{{{WSSE}}}UsernameToken"), None)
    if token is None:
        raise not_authorized("Sender not Authorized: no WS-Security UsernameToken")
    user = child_text(token, "Username")
    pw_el = token.find(f"{{{WSSE}}}Password")
    nonce_b64 = child_text(token, "Nonce")
    created_s = child_text(token, "Created")
    if user != username or pw_el is None:
        raise not_authorized("Sender not Authorized")
    given = (pw_el.text or "").strip()
    created: dt.datetime | None = None
    if created_s:
        try:
            created = parse_xs_datetime(created_s)
        except ValueError:
            raise not_authorized("Sender not Authorized: Created is not a timestamp") from None
    if pw_el.get("Type", "").endswith("#PasswordDigest"):
        if not nonce_b64 or not created_s:
            raise not_authorized("Sender not Authorized: digest needs Nonce and Created")
        try:
            nonce = base64.b64decode(nonce_b64, validate=True)
        except (binascii.Error, ValueError):
            raise not_authorized("Sender not Authorized: Nonce is not base64") from None
        # WS-Security UsernameToken profile mandates SHA-1
        digest = hashlib.sha1(nonce + created_s.encode() + password.encode()).digest()  # noqa: S324
        expected = base64.b64encode(digest).decode()
        if not hmac.compare_digest(given.encode(), expected.encode()):
            raise not_authorized("Sender not Authorized")
    elif not hmac.compare_digest(given.encode(), password.encode()):
        raise not_authorized("Sender not Authorized")
    if created is not None and abs(created - now) > CREATED_WINDOW:
        raise not_authorized(
            f"Sender not Authorized: Created {created_s} is outside ±5 min of the device clock "
            f"{now.strftime('%Y-%m-%dT%H:%M:%SZ')}"
        )


def envelope(body: str, action: str | None = None) -> str:
    header = ""
    if action:
        action_el = f'<wsa5:Action SOAP-ENV:mustUnderstand="true">{action}</wsa5:Action>'
        header = f"<SOAP-ENV:Header>{action_el}</SOAP-ENV:Header>"
    return (
        f'<?xml version="1.0" encoding="UTF-8"?>\n<SOAP-ENV:Envelope {_XMLNS}>{header}'
        f"<SOAP-ENV:Body>{body}</SOAP-ENV:Body></SOAP-ENV:Envelope>"
    )


def fault_envelope(fault: SoapFault) -> str:
    sub = ""
    for code in reversed(fault.subcodes):
        sub = f"<SOAP-ENV:Subcode><SOAP-ENV:Value>{code}</SOAP-ENV:Value>{sub}</SOAP-ENV:Subcode>"
    return envelope(
        f"<SOAP-ENV:Fault><SOAP-ENV:Code><SOAP-ENV:Value>SOAP-ENV:{fault.code}</SOAP-ENV:Value>{sub}"
        "</SOAP-ENV:Code><SOAP-ENV:Reason>"
        f'<SOAP-ENV:Text xml:lang="en">{escape(fault.reason)}</SOAP-ENV:Text>'
        "</SOAP-ENV:Reason></SOAP-ENV:Fault>"
    )


def xs_datetime(value: dt.datetime) -> str:
    return value.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass(frozen=True)
class Oversized:
    """A valid but huge answer: head + chunk × repeats + tail; the chunk is repeated, never built whole."""

    head: bytes
    chunk: bytes
    repeats: int
    tail: bytes

    @property
    def length(self) -> int:
        return len(self.head) + self.repeats * len(self.chunk) + len(self.tail)


def oversized(operation: str, megabytes: float, chunk_size: int = 256 * 1024) -> Oversized:
    op = re.sub(r"[^A-Za-z0-9_]", "", operation) or "Unknown"
    head = envelope(f"<tds:{op}Response><tt:Padding>").encode().split(b"</SOAP-ENV:Body>")[0]
    tail = f"</tt:Padding></tds:{op}Response></SOAP-ENV:Body></SOAP-ENV:Envelope>".encode()
    repeats = max(1, int(megabytes * 1024 * 1024) // chunk_size)
    return Oversized(head, (b"A" * 63 + b"\n") * (chunk_size // 64), repeats, tail)
