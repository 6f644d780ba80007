"""Refused calls are audited too: a role that may not follow a subject (403) and a call without a
case number (422) each leave a row with `outcome: refused` and the reason, in their own transaction."""

from __future__ import annotations

from fastapi.testclient import TestClient
from sqlalchemy import select

from tests.conftest import auth
from tianwang.context import AppContext
from tianwang.storage.models import AuditEntry

CASE = "A4403052026120101"


def _rows(ctx: AppContext) -> list[AuditEntry]:
    with ctx.db.session() as s:
        return list(s.scalars(select(AuditEntry).order_by(AuditEntry.id)))


def test_refused_calls_are_audited_with_their_reason(
    client: TestClient, ctx: AppContext, tokens: dict[str, str]
) -> None:
    q = {"case_no": CASE, "from": "2026-03-01T00:00:00+08:00", "to": "2026-03-02T00:00:00+08:00"}
    r = client.get("/api/v1/trajectories/vehicle/粤B12345", params=q, headers=auth(tokens["staff"]))
    assert r.status_code == 403
    r = client.get("/api/v1/analysis/cloned-plates", params=q, headers=auth(tokens["installer"]))
    assert r.status_code == 403
    no_case = {k: v for k, v in q.items() if k != "case_no"}
    r = client.get(
        "/api/v1/trajectories/phone/460001234567890", params=no_case, headers=auth(tokens["investigator"])
    )
    assert r.status_code == 422
    ok = client.get("/api/v1/trajectories/vehicle/粤B12345", params=q, headers=auth(tokens["investigator"]))
    assert ok.status_code == 200
    rows = _rows(ctx)
    assert [(r.role, r.route, r.outcome) for r in rows] == [
        ("staff", "trajectories.vehicle", "refused"),
        ("installer", "analysis.cloned_plates", "refused"),
        ("investigator", "trajectories.phone", "refused"),
        ("investigator", "trajectories.vehicle", "ok"),
    ]
    assert rows[0].case_no == CASE and rows[0].reason and rows[0].reason.startswith("403")
    assert rows[0].params["path"].endswith("/trajectories/vehicle/粤B12345") and rows[0].result_size == 0
    assert rows[2].case_no == "-" and rows[2].reason and rows[2].reason.startswith("422")
    assert rows[3].reason is None
    # the admin's audit read shows them, with their outcome
    log = client.get("/api/v1/audit", headers=auth(tokens["admin"])).json()["items"]
    assert [e["outcome"] for e in log] == ["refused", "refused", "refused", "ok"]
    assert log[0]["reason"].startswith("403")
