"""Bad input at the API's edges: database refusals, degenerate geometry, hostile text and
look-alike digits answer clean problem JSON (never 500), on SQLite and PostgreSQL."""

from __future__ import annotations

from typing import Any

from fastapi.testclient import TestClient
from sqlalchemy import event, text

from tests.conftest import auth
from tianwang.context import AppContext

CAM_ID = "44030500001320000001"
CP_ID = "44030500001210000009"  # a checkpoint code (type 121)


def camera(**over: Any) -> dict[str, Any]:
    b: dict[str, Any] = {
        "device_id": CAM_ID,
        "name": "福田路口东北角",
        "kind": "bullet",
        "lon": 114.05,
        "lat": 22.54,
        "heading_deg": 90,
        "hfov_deg": 60,
        "range_m": 80,
        "point_class": 1,
    }
    b.update(over)
    return b


def is_problem(r: Any, status: int) -> dict[str, Any]:
    assert r.status_code == status, r.text
    assert r.headers["content-type"].startswith("application/problem+json")
    body: dict[str, Any] = r.json()
    assert body["status"] == status
    return body


# ---------------------------------------------------------------- database refusals


def test_unknown_checkpoint_is_409_on_post_and_patch(client: TestClient, tokens: dict[str, str]) -> None:
    h = auth(tokens["installer"])
    p = is_problem(client.post("/api/v1/cameras", json=camera(checkpoint_id=CP_ID), headers=h), 409)
    assert p["errors"] == [{"field": "checkpoint_id", "message": "not registered"}]
    assert client.post("/api/v1/cameras", json=camera(), headers=h).status_code == 201
    p = is_problem(client.patch(f"/api/v1/cameras/{CAM_ID}", json={"checkpoint_id": CP_ID}, headers=h), 409)
    assert CP_ID in p["detail"]
    assert client.get(f"/api/v1/cameras/{CAM_ID}", headers=h).json()["checkpoint_id"] is None


def test_patch_racing_a_delete_is_404(client: TestClient, tokens: dict[str, str], ctx: AppContext) -> None:
    h = auth(tokens["installer"])
    assert client.post("/api/v1/cameras", json=camera(), headers=h).status_code == 201
    fired: list[str] = []

    # the DELETE commits on another connection just before the PATCH writes its UPDATE
    def delete_first(conn: Any, _cur: Any, statement: str, *_a: Any) -> None:
        if statement.lstrip().upper().startswith("UPDATE CAMERAS") and not fired:
            fired.append(statement)
            with ctx.db.engine.connect() as other:
                other.execute(text("DELETE FROM cameras WHERE device_id = :d"), {"d": CAM_ID})
                other.commit()

    event.listen(ctx.db.engine, "before_cursor_execute", delete_first)
    try:
        r = client.patch(f"/api/v1/cameras/{CAM_ID}", json={"name": "renamed"}, headers=h)
    finally:
        event.remove(ctx.db.engine, "before_cursor_execute", delete_first)
    assert fired
    assert "deleted meanwhile" in is_problem(r, 404)["detail"]


def test_integrity_error_anywhere_is_a_409_problem(
    client: TestClient, tokens: dict[str, str], ctx: AppContext
) -> None:
    """The mapping in the one place problems are made: a write no route checked first is a 409."""
    from sqlalchemy.exc import IntegrityError

    app = client.app
    path = "/__test/integrity"

    @app.get(path)
    def _boom() -> None:
        raise IntegrityError("INSERT ...", {}, Exception("UNIQUE constraint failed: cameras.device_id"))

    body = is_problem(client.get(path), 409)
    assert "already exists" in body["detail"] and "INSERT" not in body["detail"]
