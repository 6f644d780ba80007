"""Typed device errors: every raw failure of a device conversation becomes one of four kinds.

Callers (probes, the scheduler, the API in direct-probe mode) branch on the kind and report its
short machine `code`; the raw exception stays chained as `__cause__` for logs.
"""

from __future__ import annotations

import asyncio
import re

import aiohttp
import httpx
import zeep.exceptions
from lxml import etree
from onvif.exceptions import ONVIFAuthError, ONVIFError, ONVIFTimeoutError

_MAX_MESSAGE = 300
# WS-Security / ONVIF fault subcodes that mean "wrong credentials" (ter:NotAuthorized is the
# ONVIF one; cameras also send wsse:FailedAuthentication or a plain "Sender not authorized").
_AUTH_FAULT = re.compile(r"notauthori[sz]ed|failedauthentication|not authori[sz]ed|unauthori[sz]ed", re.I)


class DeviceError(Exception):
    """Base of the device errors; `code` is stable for machines, the message is for people."""

    code = "device_error"
    # True when the device did answer (so it is reachable) but the answer was refused or useless.
    answered = False

    def __init__(self, message: str) -> None:
        message = " ".join(str(message).split())
        if len(message) > _MAX_MESSAGE:
            message = message[: _MAX_MESSAGE - 1] + "…"
        super().__init__(message)
        self.message = message


class DeviceUnreachable(DeviceError):
    """No connection: refused, no route, DNS failure, connection reset before an answer."""

    code = "unreachable"


class DeviceTimeout(DeviceError):
    """Connected (or trying) but no complete answer within the deadline."""

    code = "timeout"


class AuthRefused(DeviceError):
    """The device answered and refused the credentials (HTTP 401/403 or an ONVIF auth fault)."""

    code = "auth_refused"
    answered = True


class BadAnswer(DeviceError):
    """The device answered with something unusable: a fault, malformed XML, too large, wrong type."""

    code = "bad_answer"
    answered = True


def _fault_text(fault: zeep.exceptions.Fault) -> str:
    parts = [str(fault.message or ""), str(fault.code or "")]
    for sub in fault.subcodes or []:
        parts.append(str(getattr(sub, "localname", sub)))
    return " ".join(p for p in parts if p)


def classify(exc: BaseException, what: str = "device") -> DeviceError:
    """Map a raw exception from aiohttp, httpx, zeep, lxml or onvif to a typed device error."""
    if isinstance(exc, DeviceError):
        return exc
    if isinstance(exc, ONVIFError) and not isinstance(exc, ONVIFTimeoutError | ONVIFAuthError):
        # onvif's safe_func wraps the real error; classify that one when there is one
        inner = exc.__cause__ or (
            exc.args[0] if exc.args and isinstance(exc.args[0], BaseException) else None
        )
        if inner is not None and inner is not exc:
            return classify(inner, what)
        return BadAnswer(f"{what}: {exc}")
    if isinstance(exc, ONVIFAuthError):
        return AuthRefused(f"{what} refused the credentials")
    # timeouts first: aiohttp.ServerTimeoutError is both a ClientError and a TimeoutError
    if isinstance(exc, TimeoutError | asyncio.TimeoutError | ONVIFTimeoutError | httpx.TimeoutException):
        return DeviceTimeout(f"{what} did not answer in time")
    if isinstance(exc, zeep.exceptions.Fault):
        text = _fault_text(exc)
        if _AUTH_FAULT.search(text):
            return AuthRefused(f"{what} refused the credentials ({text})")
        return BadAnswer(f"{what} answered with a SOAP fault: {text}")
    if isinstance(exc, zeep.exceptions.TransportError):
        status = exc.status_code or 0
        if status in (401, 403):
            return AuthRefused(f"{what} refused the credentials (HTTP {status})")
        return BadAnswer(f"{what} answered HTTP {status} without a usable SOAP envelope")
    if isinstance(exc, aiohttp.ClientResponseError):
        if exc.status in (401, 403):
            return AuthRefused(f"{what} refused the credentials (HTTP {exc.status})")
        return BadAnswer(f"{what} answered HTTP {exc.status}")
    if isinstance(exc, aiohttp.ClientPayloadError | aiohttp.ServerDisconnectedError):
        # it accepted the connection, then broke the answer off
        return BadAnswer(f"{what} broke off its answer: {type(exc).__name__}")
    if isinstance(
        exc,
        aiohttp.ClientConnectionError | httpx.ConnectError | httpx.NetworkError | ConnectionError | OSError,
    ):
        return DeviceUnreachable(f"{what} is unreachable: {type(exc).__name__}: {exc}")
    if isinstance(exc, httpx.HTTPError | aiohttp.ClientError):
        return BadAnswer(f"{what}: {type(exc).__name__}: {exc}")
    if isinstance(
        exc,
        zeep.exceptions.Error
        | etree.LxmlError
        | ValueError
        | TypeError
        | AttributeError
        | KeyError
        | IndexError
        | UnicodeError,
    ):
        # zeep/lxml parse errors, and the shapes a malformed-but-parseable answer produces
        return BadAnswer(f"{what} gave a malformed answer: {type(exc).__name__}: {exc}")
    return BadAnswer(f"{what}: unexpected {type(exc).__name__}: {exc}")
