"""Every route × every role: who may call what. The table here is the policy, written apart from the code."""

from __future__ import annotations

import re

from fastapi.testclient import TestClient

from tests.conftest import ROLES, auth

A, S, V, N, G = "admin", "staff", "investigator", "installer", "agent"
HUMANS = {A, S, V, N}
REGISTRY_WRITE = {A, S, N}

# (method, path) -> roles admitted. A route missing here fails the test:
# every new route must say who may call it.
POLICY: dict[tuple[str, str], set[str]] = {
    ("GET", "/api/v1/me"): set(ROLES),
    ("POST", "/api/v1/cameras"): REGISTRY_WRITE,
    ("GET", "/api/v1/cameras"): HUMANS,
    ("GET", "/api/v1/cameras/{device_id}"): HUMANS,
    ("PATCH", "/api/v1/cameras/{device_id}"): REGISTRY_WRITE,
    ("DELETE", "/api/v1/cameras/{device_id}"): REGISTRY_WRITE,
    ("POST", "/api/v1/cameras/import"): REGISTRY_WRITE,
    ("GET", "/api/v1/cameras/export"): HUMANS,
    ("POST", "/api/v1/cameras/{device_id}/probe"): REGISTRY_WRITE,
    # changes a device in the field: staff (and admin), audited
    ("POST", "/api/v1/cameras/{device_id}/clock"): {A, S},
    ("POST", "/api/v1/checkpoints"): REGISTRY_WRITE,
    ("GET", "/api/v1/checkpoints"): HUMANS,
    ("GET", "/api/v1/checkpoints/{checkpoint_id}"): HUMANS,
    ("PATCH", "/api/v1/checkpoints/{checkpoint_id}"): REGISTRY_WRITE,
    ("DELETE", "/api/v1/checkpoints/{checkpoint_id}"): REGISTRY_WRITE,
    ("POST", "/api/v1/areas"): {A, S},
    ("GET", "/api/v1/areas"): HUMANS,
    ("GET", "/api/v1/areas/{code}"): HUMANS,
    ("DELETE", "/api/v1/areas/{code}"): {A, S},
    ("POST", "/api/v1/key-sites"): {A, S},
    ("GET", "/api/v1/key-sites"): HUMANS,
    ("DELETE", "/api/v1/key-sites/{site_id}"): {A, S},
    ("POST", "/api/v1/roads"): {A, S},
    ("GET", "/api/v1/roads"): HUMANS,
    ("POST", "/api/v1/fences"): {A, S},
    ("GET", "/api/v1/fences"): HUMANS,
    ("DELETE", "/api/v1/fences/{fence_id}"): {A, S},
    # device credentials travel in assignments: agents only, not even admin
    ("POST", "/api/v1/agents/heartbeat"): {G},
    ("POST", "/api/v1/agents/commands/{command_id}/result"): {G},
    ("GET", "/api/v1/agents"): {A, S},
    ("POST", "/api/v1/ingest/health"): {G},
    ("POST", "/api/v1/ingest/streams"): {G},
    ("POST", "/api/v1/ingest/snapshots/presign"): {G},
    ("POST", "/api/v1/ingest/snapshots"): {G},
    ("GET", "/api/v1/cameras/{device_id}/health"): HUMANS,
    ("GET", "/api/v1/cameras/{device_id}/snapshots"): HUMANS,
    ("GET", "/api/v1/cameras/{device_id}/streams"): HUMANS,
    ("GET", "/api/v1/faults"): {A, S},
    # passes and sightings: pushed by agents and checkpoint platforms (GA/T 1400 with an agent token)
    ("POST", "/api/v1/ingest/passes"): {G},
    ("POST", "/api/v1/ingest/faces"): {G},
    ("POST", "/api/v1/ingest/phones"): {G},
    ("POST", "/VIID/MotorVehicles"): {G},
    # investigations: audited, investigators (and admin)
    ("GET", "/api/v1/trajectories/vehicle/{plate_no}"): {A, V},
    ("GET", "/api/v1/passes"): {A, V},
    ("GET", "/api/v1/passes/export"): {A, V},
    ("GET", "/api/v1/trajectories/person/{person_id}"): {A, V},
    ("GET", "/api/v1/trajectories/phone/{imsi}"): {A, V},
    ("GET", "/api/v1/audit"): {A},
    ("POST", "/api/v1/analysis/collision"): {A, V},
    ("GET", "/api/v1/analysis/stay-points"): {A, V},
    ("GET", "/api/v1/analysis/first-entry"): {A, V},
    ("GET", "/api/v1/analysis/night-active"): {A, V},
    ("GET", "/api/v1/analysis/cloned-plates"): {A, V},
    ("GET", "/api/v1/analysis/companions"): {A, V},
    ("GET", "/metrics"): {A, S},  # Prometheus scrapes with a staff token
    ("GET", "/api/v1/hotlists"): {A, V},
    ("GET", "/api/v1/trajectories/fusion"): {A, V},
    ("POST", "/api/v1/hotlists"): {A, V},
    ("GET", "/api/v1/hotlists/{hotlist_id}"): {A, V},
    ("DELETE", "/api/v1/hotlists/{hotlist_id}"): {A, V},
    ("GET", "/api/v1/alarms"): {A, V},
    ("GET", "/api/v1/alarms/stream"): {A, V},
    ("POST", "/api/v1/alarms/{alarm_id}/ack"): {A, V},
    ("POST", "/api/v1/alarm-sinks"): {A},
    ("GET", "/api/v1/alarm-sinks"): {A, S},
    ("DELETE", "/api/v1/alarm-sinks/{sink_id}"): {A},
    ("GET", "/api/v1/coverage/summary"): {A, S},
    ("GET", "/api/v1/coverage/areas"): {A, S},
    ("GET", "/api/v1/coverage/blind-spots"): {A, S},
    ("GET", "/api/v1/coverage/history"): {A, S},
    ("GET", "/api/v1/coverage/enclosure"): {A, S},
    ("GET", "/api/v1/coverage/report"): {A, S},
}
PUBLIC = {("GET", "/healthz")}


def _routes(client: TestClient) -> set[tuple[str, str]]:
    spec = client.app.openapi()  # type: ignore[attr-defined]
    return {
        (m.upper(), p)
        for p, ops in spec["paths"].items()
        for m in ops
        if m in ("get", "post", "patch", "put", "delete")
    }


def _concrete(path: str) -> str:
    return re.sub(r"\{[^}]+\}", "44030500001320000001", path)


def test_every_route_is_in_the_policy(client: TestClient) -> None:
    routes = _routes(client)
    unlisted = routes - set(POLICY) - PUBLIC
    assert not unlisted, f"routes with no role policy in this test: {sorted(unlisted)}"


def test_role_matrix(client: TestClient, tokens: dict[str, str]) -> None:
    checked = 0
    for method, path in sorted(_routes(client) - PUBLIC):
        url = _concrete(path)
        r = client.request(method, url)
        assert r.status_code == 401, f"{method} {path} without a token gave {r.status_code}"
        assert r.json()["status"] == 401
        for role in ROLES:
            r = client.request(method, url, headers=auth(tokens[role]), json={})
            allowed = role in POLICY[(method, path)]
            if allowed:
                assert r.status_code not in (401, 403), f"{role} refused on {method} {path}: {r.text}"
            else:
                assert r.status_code == 403, f"{role} admitted on {method} {path}: {r.status_code} {r.text}"
                assert r.headers["content-type"].startswith("application/problem+json")
            assert r.status_code < 500, f"{method} {path} as {role}: {r.status_code} {r.text}"
            checked += 1
    assert checked >= len(POLICY) * len(ROLES) - len(ROLES) * 5


def test_public_routes_need_no_token(client: TestClient) -> None:
    assert client.get("/healthz").json() == {"status": "ok"}
