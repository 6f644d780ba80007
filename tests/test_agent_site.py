"""A simulated site of 54 devices with every fault kind → one agent (subprocess) → the API:
each device ends in the right status with the right reason and the right picture diagnosis."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from sqlalchemy import func, select

from simulator.devices import SimulatorThread
from tests.agent_support import AgentProcess, register, tokens_for, wait_until
from tests.conftest import LiveServer, auth
from tianwang.context import AppContext
from tianwang.storage.models import HealthObservation, Snapshot

# network faults, set from the start: (fault, param) → (status, words the reason must hold)
NETWORK: list[tuple[str, Any, str, str]] = [
    ("offline", True, "offline", "unreachable"),
    ("silent", True, "offline", "timeout"),
    ("slow", 8, "offline", "timeout"),  # slower than the 2 s call timeout
    ("malformed_xml", True, "offline", "bad_answer"),
    ("oversized", 3, "offline", "bad_answer"),
    ("wrong_password", True, "fault", "refuses the registered credentials"),
    ("slow", 0.6, "online", "answered"),  # slow but within the timeout
    ("clock_skew", 5, "online", "answered"),
]
# picture faults, set once the agent holds a reference frame of the camera: fault → diagnosis name
PICTURE = {
    "signal_loss_black": "signal_loss",
    "signal_loss_blue": "signal_loss",
    "blur": "blur",
    "overexposed": "brightness_high",
    "underexposed": "brightness_low",
    "color_cast": "color_cast",
    "occlusion": "occlusion",
    "noise": "noise",
    "frozen": "frozen",
    "moved": "scene_change",
}


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
def test_site_of_54_devices_ends_in_the_right_states(
    live_server: tuple[LiveServer, AppContext], tmp_path: Any
) -> None:
    srv, ctx = live_server
    tok = tokens_for(ctx)
    n_cam, n_cp = 52, 2
    net_faults: dict[int, dict[str, Any]] = {}
    plan: dict[int, tuple[str, str, str]] = {}  # index → (kind of check, expected, detail)
    i = 0
    for fault, param, status, words in NETWORK:
        for _ in range(2):
            net_faults[i] = {fault: param}
            plan[i] = ("net", status, words)
            i += 1
    picture_at: dict[int, str] = {}
    for fault in PICTURE:
        for _ in range(2):
            picture_at[i] = fault
            plan[i] = ("picture", "fault", PICTURE[fault])
            i += 1
    for j in range(i, n_cam + n_cp):  # the rest (checkpoints included) stay clean
        plan[j] = ("clean", "online", "answered")

    with SimulatorThread(n_cameras=n_cam, n_checkpoints=n_cp, seed=11, faults=net_faults) as sim:
        described = sim.describe()
        ids = [d["device_id"] for d in described]
        assert len(ids) == 54 and sum(d["kind"] == "checkpoint" for d in described) == 2
        # pictures every 3 s for the cameras whose picture matters here (and four clean ones), rarely
        # for the others: the machine running the tests is small
        judged = [k for k, p in plan.items() if p[0] == "picture"] + [
            k for k, p in plan.items() if p[0] == "clean"
        ][:4]
        over = {
            d["device_id"]: {"health_interval_s": 20, "snapshot_interval_s": 30 if k in judged else 600}
            for k, d in enumerate(described)
        }
        register(srv.url, tok["installer"], described, **over)
        agent = AgentProcess(
            srv.url,
            tok["agent"],
            tmp_path / "outbox.db",
            tmp_path / "agent.log",
            interval_scale=0.1,  # registered 20 s / 30 s → every 2 s / 3 s
            call_timeout_s=2,
            health_deadline_s=5,
            snapshot_deadline_s=8,
            heartbeat_wait_s=5,
            concurrency=32,
        ).start()
        try:

            def snapshots_per_device() -> dict[str, int]:
                with ctx.db.session() as s:
                    rows = s.execute(
                        select(Snapshot.device_id, func.count())
                        .where(Snapshot.error.is_(None))  # pictures, not failed snapshots
                        .group_by(Snapshot.device_id)
                    )
                    return {d: int(n) for d, n in rows}

            watched = [ids[k] for k in judged]
            # a judged snapshot each: the first clean one became the camera's reference
            wait_until(
                "a snapshot of every judged camera",
                lambda: all(snapshots_per_device().get(d, 0) >= 1 for d in watched),
                120,
            )
            for k, fault in picture_at.items():
                sim.set_faults(ids[k], {fault: True})

            def latest(device_id: str) -> Any:
                with ctx.db.session() as s:
                    snap = s.scalars(
                        select(Snapshot)
                        .where(Snapshot.device_id == device_id, Snapshot.error.is_(None))
                        .order_by(Snapshot.ts.desc())
                        .limit(1)
                    ).first()
                    return snap.quality if snap else None

            def mismatches() -> list[str]:
                r = httpx.get(
                    f"{srv.url}/api/v1/cameras",
                    params={"limit": 1000},
                    headers=auth(tok["staff"]),
                    timeout=10,
                )
                cams = {c["device_id"]: c for c in r.json()["items"]}
                bad = []
                for k, (kind, status, words) in plan.items():
                    c = cams[ids[k]]
                    reason = c.get("status_reason") or ""
                    if c["status"] != status or words not in reason:
                        bad.append(
                            f"{ids[k]} [{kind} {status}/{words}]: {c['status']} — {reason} {latest(ids[k])}"
                        )
                return bad

            last: list[list[str]] = []

            def settled() -> bool:
                last[:] = [mismatches()]
                return not last[0]

            try:
                wait_until("every device in its expected state", settled, 90, every_s=1.0)
            except AssertionError:
                pytest.fail(
                    "devices not in their expected state:\n" + "\n".join(last[0]) + agent.log_tail(3000)
                )

            with ctx.db.session() as s:
                # the clock-skewed cameras report their skew (5 h), the slow ones their latency
                for k, (fault, param, _, _) in enumerate(x for x in NETWORK for _ in range(2)):
                    obs = s.scalars(
                        select(HealthObservation)
                        .where(HealthObservation.device_id == ids[k], HealthObservation.reachable.is_(True))
                        .order_by(HealthObservation.ts.desc())
                        .limit(1)
                    ).first()
                    if fault == "clock_skew":
                        assert obs is not None and obs.clock_skew_s is not None
                        assert abs(obs.clock_skew_s - 5 * 3600) < 10
                        assert obs.authenticated is True  # WS-Security signed with the device's time
                    if fault == "slow" and param < 2:
                        assert obs is not None and obs.latency_ms is not None and obs.latency_ms >= 600
                # the latest snapshot of a picture-faulty camera carries the raw and the filtered verdict
                for k, fault in picture_at.items():
                    snap = s.scalars(
                        select(Snapshot)
                        .where(Snapshot.device_id == ids[k], Snapshot.error.is_(None))
                        .order_by(Snapshot.ts.desc())
                        .limit(1)
                    ).one()
                    assert snap.verdict == "fault" and PICTURE[fault] in snap.quality["faults"], snap.quality
                    assert PICTURE[fault] in snap.quality["raw_faults"]
                # clean cameras: judged ok
                for k, p in plan.items():
                    if p[0] == "clean" and k in judged:
                        snap = s.scalars(
                            select(Snapshot)
                            .where(Snapshot.device_id == ids[k], Snapshot.error.is_(None))
                            .order_by(Snapshot.ts.desc())
                            .limit(1)
                        ).one()
                        assert snap.verdict == "ok", (ids[k], snap.quality)
            m = agent.metrics()
            assert m["tianwang_agent_devices"] == 54
            assert m.get('tianwang_agent_probes_total{kind="health",outcome="ok"}', 0) > 0
            assert m.get('tianwang_agent_probes_total{kind="health",outcome="unreachable"}', 0) > 0
            assert m.get('tianwang_agent_probes_total{kind="health",outcome="auth_refused"}', 0) > 0
            # each device in exactly one state: its latest health outcome
            states = {k: v for k, v in m.items() if k.startswith("tianwang_agent_device_states{")}
            assert sum(states.values()) == 54, states
            assert states.get('tianwang_agent_device_states{state="auth_refused"}', 0) > 0
            assert agent.alive()
        finally:
            code = agent.terminate()
        assert code == 0, agent.log_tail()
