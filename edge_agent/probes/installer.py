"""The installer's probe (安装调试): prove on site that a newly registered camera works.

Steps, each with a typed outcome, later ones skipped with a reason when an earlier one makes them
pointless: clock (unauthenticated GetSystemDateAndTime: reachable? clock skew?) → auth
(GetDeviceInformation) → profiles → URIs (snapshot + stream of the first profile, moved to the
registered host unless the camera is trusted; a URI naming another host than the device's is
refused, see `edge_agent.devices.addresses`) → snapshot (fetch,
check, and judge it when picture diagnosis is available). The whole run is bounded by one
deadline, enforced outside the steps by `run_with_deadline`.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, TypeVar

from edge_agent.devices.addresses import DeviceAddresses
from edge_agent.devices.errors import AuthRefused, BadAnswer, DeviceError
from edge_agent.devices.snapshot import fetch_snapshot
from edge_agent.probes import ProbeResult, ProbeSettings, Trace, current_trace, run_with_deadline
from edge_agent.probes._clients import onvif_client
from tianwang import protocol

log = logging.getLogger("edge_agent.probes.installer")
T = TypeVar("T")


@dataclass
class InstallerOutcome:
    result: protocol.ProbeResult
    jpeg: bytes | None  # the checked snapshot, for the caller to store (never inside the wire model)


def _diagnoser() -> Callable[[bytes], dict[str, Any] | None] | None:
    """Picture diagnosis of one snapshot as a dict, when the library has it (edge_agent.diagnosis)."""
    try:
        from edge_agent import diagnosis
    except ImportError:
        return None
    fn = getattr(diagnosis, "diagnose_jpeg", None)
    if not callable(fn):
        return None

    def judge(data: bytes) -> dict[str, Any] | None:
        d = fn(data)
        # diagnose_jpeg returns a Diagnosis (with .as_dict()) or, in simpler versions, a dict
        d = d.as_dict() if hasattr(d, "as_dict") else d
        return dict(d) if isinstance(d, dict) else None

    return judge


class _Run:
    def __init__(self, result: protocol.ProbeResult, trace: Trace) -> None:
        self.result = result
        self.trace = trace

    def skip(self, name: protocol.probe.StepName, why: str) -> None:
        self.result.steps.append(protocol.ProbeStep(name=name, outcome="skipped", message=why))

    async def step(
        self, name: protocol.probe.StepName, fn: Callable[[], Awaitable[T]], *, decisive: bool = True
    ) -> tuple[T | None, DeviceError | None]:
        t0 = time.perf_counter()
        try:
            with self.trace.phase(name):
                value = await fn()
        except DeviceError as e:
            ms = round((time.perf_counter() - t0) * 1000, 1)
            self.result.steps.append(
                protocol.ProbeStep(
                    name=name, outcome="failed", duration_ms=ms, code=e.code, message=e.message
                )
            )
            if decisive and self.result.error is None:
                self.result.error = protocol.ProbeError(code=e.code, message=e.message)
            return None, e
        ms = round((time.perf_counter() - t0) * 1000, 1)
        self.result.steps.append(protocol.ProbeStep(name=name, outcome="ok", duration_ms=ms))
        return value, None


async def probe(request: protocol.ProbeRequest, settings: ProbeSettings) -> ProbeResult:
    """Blackbox-shaped: the protocol result and the JPEG are in `.data` (also when the deadline cuts it)."""
    trace = current_trace()
    res = protocol.ProbeResult(device_id=request.device_id, probed_at=dt.datetime.now(dt.UTC))
    trace.data["result"] = res
    run = _Run(res, trace)
    snapshot_url = request.snapshot_url
    # where the device's credentials may go: its ONVIF service, or the registry's snapshot URL
    addresses = DeviceAddresses.of(
        request.onvif.host if request.onvif else None,
        request.onvif.port if request.onvif else None,
        [request.snapshot_url],
    )

    if request.onvif is None:
        for name in ("clock", "auth", "profiles", "uris"):
            run.skip(name, "no ONVIF endpoint registered")
    else:
        async with onvif_client(request.onvif, settings) as client:
            clock, err = await run.step("clock", client.system_date_and_time, decisive=False)
            if clock is not None:
                res.reachable = True
                res.clock_skew_s = clock.skew_s
            elif err is not None and err.answered:
                # it answered (some cameras want auth even for the clock): reachable, go on
                res.reachable = True
            else:
                res.error = protocol.ProbeError(code=err.code, message=err.message) if err else None
                for name in ("auth", "profiles", "uris", "snapshot"):
                    run.skip(name, "device not reachable")
                return _done(res)

            info, err = await run.step("auth", client.device_information)
            if info is None:
                if err is not None and err.answered:
                    res.reachable = True
                if isinstance(err, AuthRefused):
                    res.authenticated = False  # refused: known; anything else leaves it unknown
                for name in ("profiles", "uris", "snapshot"):
                    run.skip(name, "not authenticated")
                return _done(res)
            res.reachable = res.authenticated = True
            res.device_info = protocol.DeviceInfo(
                manufacturer=info.manufacturer, model=info.model, firmware=info.firmware, serial=info.serial
            )

            profiles, err = await run.step("profiles", client.profiles)
            if client.trust_device_addresses:
                # a trusted camera's own XAddr hosts may receive its credentials too
                addresses = addresses.trusting(client.advertised_hosts)
            if profiles:
                res.profiles = [protocol.ProfileInfo(**vars(p)) for p in profiles]
                token = profiles[0].token  # the main stream comes first on every camera seen so far

                async def uris() -> None:
                    # both asked even when one fails: a camera without GetSnapshotUri still streams
                    got: list[str | BaseException] = list(
                        await asyncio.gather(
                            client.snapshot_uri(token), client.stream_uri(token), return_exceptions=True
                        )
                    )
                    # A URI naming another host is neither used nor reported: the platform stores
                    # what is reported and hands it to agents as the device's own address.
                    for i, check in ((0, addresses.check_snapshot), (1, addresses.check_stream)):
                        uri = got[i]
                        if isinstance(uri, str):
                            try:
                                check(uri)
                            except DeviceError as e:
                                got[i] = e
                    if isinstance(got[0], str):
                        res.snapshot_uri = got[0]
                    if isinstance(got[1], str):
                        res.stream_uri = got[1]
                    for g in got:
                        if isinstance(g, BaseException):
                            raise g

                await run.step("uris", uris)
            else:
                if profiles is not None:  # answered, but no profile at all
                    res.steps[-1] = protocol.ProbeStep(
                        name="profiles",
                        outcome="failed",
                        duration_ms=res.steps[-1].duration_ms,
                        code="bad_answer",
                        message="device lists no media profile",
                    )
                    if res.error is None:
                        res.error = protocol.ProbeError(
                            code="bad_answer", message="device lists no media profile"
                        )
                run.skip("uris", "no media profile")
        snapshot_url = res.snapshot_uri or snapshot_url

    if not (request.fetch_snapshot and settings.fetch_snapshot):
        run.skip("snapshot", "snapshot not asked for")
    elif not snapshot_url:
        run.skip("snapshot", "no snapshot URI from the device or the registry")
    else:
        user = request.onvif.username if request.onvif else ""
        password = request.onvif.password.get_secret_value() if request.onvif else ""

        async def fetch() -> None:
            snap = await fetch_snapshot(
                snapshot_url,
                user,
                password,
                auth=settings.snapshot_auth,
                connect_timeout_s=settings.snapshot_connect_timeout_s,
                read_timeout_s=settings.snapshot_read_timeout_s,
                max_bytes=settings.snapshot_max_bytes,
                decode=settings.decode_snapshot,
                addresses=addresses,
            )
            data = snap.data
            if snap.content_type != "image/jpeg":
                # the probe's test picture is stored as JPEG (a PNG or BMP camera still shows one)
                data = await asyncio.to_thread(_as_jpeg, data)
            trace.data["jpeg"] = data
            res.snapshot = protocol.SnapshotInfo(
                width=snap.width, height=snap.height, size=snap.size, sha256=snap.sha256
            )

        _, err = await run.step("snapshot", fetch)
        if isinstance(err, AuthRefused) and res.authenticated is None:
            res.authenticated = False  # as the health check says of a snapshot URL that refuses them
        jpeg = trace.data.get("jpeg")
        diagnose = _diagnoser()
        if jpeg is not None and res.snapshot is not None and diagnose is not None:
            try:
                quality = await asyncio.to_thread(diagnose, jpeg)
            except Exception:  # a diagnosis bug must not lose the probe's answer
                log.exception("picture diagnosis failed for %s", request.device_id)
            else:
                res.snapshot.quality = quality
                res.snapshot.judged = quality is not None
    return _done(res)


def _as_jpeg(data: bytes) -> bytes:
    import cv2
    import numpy as np

    img = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)
    ok, buf = (False, None) if img is None else cv2.imencode(".jpg", img, [cv2.IMWRITE_JPEG_QUALITY, 95])
    if not ok or buf is None:
        raise BadAnswer("snapshot does not decode")
    return bytes(buf.tobytes())


def _done(res: protocol.ProbeResult) -> ProbeResult:
    current_trace().data["result"] = res
    return ProbeResult(res.error is None, dict(current_trace().phases), data=current_trace().data)


def _finish_after_deadline(res: protocol.ProbeResult, trace: Trace, deadline_s: float) -> None:
    seen = {s.name for s in res.steps}
    cut = trace.cancelled_in
    for name in protocol.STEP_NAMES:
        if name in seen:
            continue
        if name == cut:
            ms = round(trace.phases.get(name, 0.0) * 1000, 1)
            res.steps.append(
                protocol.ProbeStep(
                    name=name,
                    outcome="failed",
                    duration_ms=ms,
                    code="timeout",
                    message=f"probe deadline of {deadline_s:g} s passed",
                )
            )
        else:
            res.steps.append(
                protocol.ProbeStep(name=name, outcome="skipped", message="probe deadline passed")
            )
    if res.error is None:
        res.error = protocol.ProbeError(
            code="timeout", message=f"probe deadline of {deadline_s:g} s passed during {cut or 'the probe'}"
        )


async def run(
    request: protocol.ProbeRequest, settings: ProbeSettings | None = None, deadline_s: float | None = None
) -> InstallerOutcome:
    """The installer probe under its deadline (request.deadline_s unless given)."""
    settings = settings or ProbeSettings()
    deadline = deadline_s if deadline_s is not None else request.deadline_s
    out = await run_with_deadline(probe, request, settings, deadline)
    res = out.data.get("result")
    if not isinstance(res, protocol.ProbeResult):  # the deadline passed before the probe began
        res = protocol.ProbeResult(device_id=request.device_id, probed_at=dt.datetime.now(dt.UTC))
    if out.error_code == "timeout" and not out.success and "deadline_phase" in out.data:
        _finish_after_deadline(res, _trace_of(out), deadline)
    res.duration_ms = round(out.duration_s * 1000, 1)
    jpeg = out.data.get("jpeg") if res.snapshot is not None else None
    return InstallerOutcome(res, jpeg)


def _trace_of(out: ProbeResult) -> Trace:
    t = Trace()
    t.phases = dict(out.phases)
    t.cancelled_in = out.data.get("deadline_phase")
    return t
