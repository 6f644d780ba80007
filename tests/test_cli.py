"""The `tianwang` CLI against a real database: readable lines, exit codes, nothing half-written."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from cryptography.fernet import Fernet
from typer.testing import CliRunner

from tianwang.cli import app
from tianwang.config import get_settings


@pytest.fixture
def cli_env(tmp_path: Path, db_url: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    monkeypatch.setenv("TIANWANG_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("TIANWANG_DATABASE_URL", db_url)
    monkeypatch.setenv("TIANWANG_SECRET_KEY", Fernet.generate_key().decode())
    get_settings.cache_clear()
    yield tmp_path
    get_settings.cache_clear()


def test_token_create(cli_env: Path) -> None:
    r = CliRunner().invoke(app, ["token", "create", "--role", "staff", "--name", "ops"])
    assert r.exit_code == 0, r.output
    assert r.output.strip().startswith("tw_") and len(r.output.strip()) > 40
    bad = CliRunner().invoke(app, ["token", "create", "--role", "root", "--name", "x"])
    assert bad.exit_code == 1 and "unknown role" in bad.output


def test_cameras_add_get_list(cli_env: Path) -> None:
    rec = {
        "device_id": "44030500001320000001",
        "name": "cli camera",
        "kind": "dome",
        "lon": 114.05,
        "lat": 22.54,
        "heading_deg": 10,
        "hfov_deg": 90,
        "range_m": 50,
        "point_class": 2,
        "onvif": {"host": "127.0.0.1", "port": 80, "username": "a", "password": "pw-cli-secret"},
    }
    f = cli_env / "cam.json"
    f.write_text(json.dumps(rec))
    r = CliRunner().invoke(app, ["cameras", "add", str(f)])
    assert r.exit_code == 0, r.output
    assert "pw-cli-secret" not in r.output and json.loads(r.output)["device_id"] == rec["device_id"]
    again = CliRunner().invoke(app, ["cameras", "add", str(f)])
    assert again.exit_code == 1 and "already registered" in again.output
    f.write_text(json.dumps(dict(rec, lat=123)))
    bad = CliRunner().invoke(app, ["cameras", "add", str(f)])
    assert bad.exit_code == 1 and "lat" in bad.output
    r = CliRunner().invoke(app, ["cameras", "list"])
    assert r.exit_code == 0 and "44030500001320000001" in r.output
    r = CliRunner().invoke(app, ["cameras", "get", "44030500001320099999"])
    assert r.exit_code == 1 and "not registered" in r.output


def test_db_upgrade_on_a_new_sqlite(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TIANWANG_DATA_DIR", str(tmp_path / "fresh"))
    monkeypatch.delenv("TIANWANG_DATABASE_URL", raising=False)
    get_settings.cache_clear()
    try:
        r = CliRunner().invoke(app, ["db", "upgrade"])
        assert r.exit_code == 0, r.output
        assert (tmp_path / "fresh" / "tianwang.db").exists()
    finally:
        get_settings.cache_clear()


def test_register_the_simulators_devices_and_probe_them_all(cli_env: Path) -> None:
    """The issue's walk-through: simulate, register from the JSON it wrote, probe each one."""
    from simulator.devices import SimulatorThread

    with SimulatorThread(n_cameras=4, n_checkpoints=0, seed=5, faults="1:offline,2:wrong_password") as sim:
        devices = sim.describe()
        devices.append(dict(devices[0], device_id="bad"))  # one bad record does not stop the rest
        f = cli_env / "devices.json"
        f.write_text(json.dumps(devices))
        r = CliRunner().invoke(app, ["cameras", "add", str(f)])
        assert r.exit_code == 1 and "1 of 5 records refused" in r.output
        assert r.output.count("registered") == 4
        r = CliRunner().invoke(app, ["cameras", "probe", "--all", "--direct"])
        assert r.exit_code == 2, r.output  # some devices are in trouble
        lines = {ln.split()[0]: ln for ln in r.output.splitlines() if ln[:1].isdigit()}
        ids = [d["device_id"] for d in devices[:4]]
        assert "reachable=yes auth=yes" in lines[ids[0]]
        assert "reachable=no" in lines[ids[1]] and "unreachable" in lines[ids[1]]
        assert "auth=no" in lines[ids[2]] and "auth_refused" in lines[ids[2]]
        assert "reachable=yes auth=yes" in lines[ids[3]]
        # by default the probe goes to the owning agent, as the API does: none here, so it says so
        r = CliRunner().invoke(app, ["cameras", "probe", ids[0], "--via-agent"])
        assert r.exit_code == 2 and "no agent online" in r.output
        r = CliRunner().invoke(app, ["cameras", "probe"])
        assert r.exit_code == 1 and "--all" in r.output


def test_token_list_and_revoke(cli_env: Path) -> None:
    tok = CliRunner().invoke(app, ["token", "create", "--role", "staff", "--name", "leaver"]).output.strip()
    listed = CliRunner().invoke(app, ["token", "list"])
    assert listed.exit_code == 0 and "leaver" in listed.output and tok not in listed.output
    token_id = next(ln.split()[0] for ln in listed.output.splitlines() if "leaver" in ln)
    assert CliRunner().invoke(app, ["token", "revoke", token_id]).exit_code == 0
    assert "revoked" in CliRunner().invoke(app, ["token", "list"]).output
    assert CliRunner().invoke(app, ["token", "revoke", token_id]).exit_code == 1
    from tianwang.auth.tokens import authenticate
    from tianwang.context import AppContext
    from tianwang.errors import Unauthorized

    ctx = AppContext.build(get_settings())
    try:
        with ctx.db.session() as s, pytest.raises(Unauthorized):
            authenticate(s, tok)
    finally:
        ctx.close()
