"""`tianwang discover` on every interface (loopback too) with an honest exit code; `tianwang serve`
signs object URLs for the address it serves."""

from __future__ import annotations

import os
import socket
from collections.abc import Iterator
from typing import Any

import pytest
from typer.testing import CliRunner

from edge_agent.devices.discovery import ipv4_interfaces
from simulator.devices import SimulatorThread
from tianwang.cli import app
from tianwang.config import Settings, get_settings, served_public_url


def _free_udp_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_every_interface_is_listed_loopback_included() -> None:
    found = ipv4_interfaces()
    assert "127.0.0.1" in found and len(found) == len(set(found))
    assert all(socket.inet_aton(a) for a in found)


def test_discover_without_an_interface_finds_loopback_devices_and_fails_on_silence() -> None:
    with SimulatorThread(n_cameras=2, n_checkpoints=0, seed=3, discovery_port=0) as sim:
        assert sim.discovery_port
        r = CliRunner().invoke(app, ["discover", "--timeout", "0.5", "--port", str(sim.discovery_port)])
        assert r.exit_code == 0, r.output
        xaddrs = {line.split()[0] for line in r.stdout.splitlines() if line.startswith("http")}
        assert xaddrs == {d.xaddr for d in sim.devices}
    # nothing listens there: no device, and the exit code says so
    r = CliRunner().invoke(app, ["discover", "--timeout", "0.3", "--port", str(_free_udp_port())])
    assert r.exit_code == 1 and "no device answered" in r.output


@pytest.fixture
def clean_env(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    # set then removed, so the test's end restores the variable's absence (`serve` sets it)
    monkeypatch.setenv("TIANWANG_PUBLIC_URL", "")
    monkeypatch.delenv("TIANWANG_PUBLIC_URL")
    monkeypatch.chdir(os.path.dirname(__file__))  # no .env of the developer's
    get_settings.cache_clear()
    yield
    get_settings.cache_clear()


def test_public_url_follows_the_served_address_unless_configured(clean_env: None) -> None:
    assert served_public_url(Settings(), "127.0.0.1", 9000) == "http://127.0.0.1:9000"
    assert served_public_url(Settings(), "0.0.0.0", 9001) == "http://127.0.0.1:9001"
    assert served_public_url(Settings(), "::1", 9002) == "http://[::1]:9002"
    assert served_public_url(Settings(public_url="https://tw.example"), "127.0.0.1", 9000) is None


def test_serve_signs_object_urls_for_its_own_port(clean_env: None, monkeypatch: pytest.MonkeyPatch) -> None:
    import uvicorn

    seen: dict[str, Any] = {}

    def run(*args: Any, **kw: Any) -> None:  # what the server's workers would read
        seen.update(kw, public_url=get_settings().public_url, env=os.environ.get("TIANWANG_PUBLIC_URL"))

    monkeypatch.setattr(uvicorn, "run", run)
    r = CliRunner().invoke(app, ["serve", "--port", "9000"])
    assert r.exit_code == 0, r.output
    assert seen["port"] == 9000 and seen["public_url"] == seen["env"] == "http://127.0.0.1:9000"
    # a configured public URL (a proxy in front) is left alone
    monkeypatch.setenv("TIANWANG_PUBLIC_URL", "https://tw.example")
    get_settings.cache_clear()
    r = CliRunner().invoke(app, ["serve", "--port", "9000"])
    assert r.exit_code == 0 and seen["public_url"] == "https://tw.example"
