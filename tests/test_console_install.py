"""The installer page in a real browser: register a simulated ONVIF camera, place it, probe it.

The API runs on a real socket with `direct_probe=True`, so the probe reaches the simulator's
virtual camera on 127.0.0.1 in-process; the installer works through the page only, and what the
page did is checked through the API.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from cryptography.fernet import Fernet

from simulator.devices import Simulator, SimulatorThread
from tests.browser_support import browser, login, page, shot  # noqa: F401  (fixtures)
from tests.conftest import LiveServer, auth, free_port
from tianwang.api.app import create_app
from tianwang.auth.tokens import create_token
from tianwang.config import Settings
from tianwang.context import AppContext

pytestmark = pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)


@pytest.fixture
def probe_server(tmp_path: Path, db_url: str) -> Iterator[tuple[LiveServer, AppContext]]:
    """The API on a free port of 127.0.0.1, probing devices in-process (TIANWANG_DIRECT_PROBE)."""
    port = free_port()
    s = Settings(
        data_dir=tmp_path,
        database_url=db_url,
        object_store=f"dir:{tmp_path / 'objects'}",
        secret_key=Fernet.generate_key().decode(),
        public_url=f"http://127.0.0.1:{port}",
        direct_probe=True,
        probe_deadline_s=10,
    )
    c = AppContext.build(s)
    srv = LiveServer(create_app(s, c), port).start()
    try:
        yield srv, c
    finally:
        srv.stop()
        c.close()


@pytest.fixture
def simulated() -> Iterator[Simulator]:
    with SimulatorThread(n_cameras=1, n_checkpoints=0) as s:
        yield s


def centre(p: Any, selector: str) -> tuple[float, float]:
    box = p.locator(selector).bounding_box()
    assert box is not None, selector
    return box["x"] + box["width"] / 2, box["y"] + box["height"] / 2


def drag(p: Any, start: tuple[float, float], end: tuple[float, float]) -> None:
    p.mouse.move(*start)
    p.mouse.down()
    p.mouse.move(*end, steps=12)
    p.mouse.up()


def number(p: Any, selector: str) -> float:
    return float(p.input_value(selector))


def test_installer_registers_places_and_probes_a_simulated_camera(
    probe_server: tuple[LiveServer, AppContext],
    simulated: Simulator,
    page: Any,  # noqa: F811
    browser: Any,  # noqa: F811
) -> None:
    srv, ctx = probe_server
    dev = simulated.describe()[0]
    with ctx.db.session() as s:
        installer = create_token(s, "installer", "browser-installer")
    login(page, srv.url + "/console/install", installer)
    page.wait_for_selector("#in-map.leaflet-container")

    # the device code is checked as it is typed
    page.fill("#in-device-id", "9903050000132")
    assert page.get_attribute("#in-device-id-hint", "data-ok") == "0"
    assert "13" in page.inner_text("#in-device-id-hint")
    page.fill("#in-device-id", dev["device_id"])
    assert page.get_attribute("#in-device-id-hint", "data-ok") == "1"
    assert dev["device_id"][:6] in page.inner_text("#in-device-id-hint")

    page.fill("#in-name", dev["name"])
    page.select_option("#in-kind", dev["kind"])
    page.select_option("#in-point-class", "2")
    page.fill("#in-onvif-host", dev["onvif"]["host"])
    page.fill("#in-onvif-port", str(dev["onvif"]["port"]))
    page.fill("#in-onvif-username", dev["onvif"]["username"])
    page.fill("#in-onvif-password", dev["onvif"]["password"])

    # no position yet: the page says so beside the map and sends nothing
    page.click("#in-submit")
    assert page.inner_text(".tw-field-error[data-field=lon]")
    assert page.get_attribute("#in-mode", "data-mode") == "new"

    # a click on the map places the camera and draws its sector with the handles
    mx, my = centre(page, "#in-map")
    page.mouse.click(mx - 60, my + 20)
    page.wait_for_selector("#in-handle-heading")
    lon, lat = number(page, "#in-lon"), number(page, "#in-lat")
    assert 113 < lon < 115 and 22 < lat < 23  # the map opens over the default city centre
    page.wait_for_timeout(300)  # the zoom to the camera settles

    # drag the middle of the arc due east of the camera: heading ≈ 90°, range from the distance
    ax, ay = centre(page, "#in-handle-apex")
    drag(page, centre(page, "#in-handle-heading"), (ax + 120, ay))
    heading = number(page, "#in-heading")
    assert abs(heading - 90) < 2, heading
    range_m = number(page, "#in-range")
    assert 60 < range_m < 400, range_m
    # drag an edge of the sector to the south-east: half the field of view is 45°
    drag(page, centre(page, "#in-handle-fov"), (ax + 90, ay + 90))
    hfov = number(page, "#in-hfov")
    assert abs(hfov - 90) < 3, hfov
    # the handles sit back on the sector they now describe
    hx, hy = centre(page, "#in-handle-heading")
    assert abs(hy - ay) < 3 and hx > ax + 60
    assert (number(page, "#in-lon"), number(page, "#in-lat")) == (lon, lat)
    shot(page, "install-placed")

    page.click("#in-submit")
    page.wait_for_selector("#in-mode[data-mode=edit]")
    assert page.inner_text("#in-saved")
    # the password was sent once and is gone from the page
    assert page.input_value("#in-onvif-password") == ""
    assert dev["onvif"]["password"] not in page.content()

    # stored with the clicked position and the dragged heading / field of view
    r = httpx.get(f"{srv.url}/api/v1/cameras/{dev['device_id']}", headers=auth(installer))
    assert r.status_code == 200, r.text
    cam = r.json()
    assert math.isclose(cam["lon"], lon, abs_tol=1e-7) and math.isclose(cam["lat"], lat, abs_tol=1e-7)
    assert math.isclose(cam["heading_deg"], heading, abs_tol=1e-6)
    assert math.isclose(cam["hfov_deg"], hfov, abs_tol=1e-6)
    assert math.isclose(cam["range_m"], range_m, abs_tol=1e-6)
    assert cam["point_class"] == 2 and cam["direction_type"] == 1  # east
    assert cam["onvif"]["has_password"] is True and cam["status"] == "registered"

    # the probe: verdict, the steps, and the test picture from the object store
    page.click("#in-probe")
    page.wait_for_selector("#in-verdict[data-verdict=ok]", timeout=30_000)
    assert "✓" in page.inner_text("#in-probe-table")
    page.wait_for_function(
        "() => { const i = document.getElementById('in-snapshot');"
        " return i && !i.hidden && i.complete && i.naturalWidth > 0; }"
    )
    width = page.evaluate("document.getElementById('in-snapshot').naturalWidth")
    assert f"{width}x" in dev["resolution"]
    steps = page.locator("#in-steps tbody tr")
    assert steps.count() == 5
    shot(page, "install-probed")

    r = httpx.get(f"{srv.url}/api/v1/cameras/{dev['device_id']}", headers=auth(installer))
    probed = r.json()
    assert probed["last_probe_at"] is not None and probed["manufacturer"]

    # on a phone: the same camera opened for a position fix, a tap moves it, saving stores it
    phone = browser.new_context(
        viewport={"width": 390, "height": 844}, device_scale_factor=2, is_mobile=True, has_touch=True
    )
    try:
        p = phone.new_page()
        errors: list[str] = []
        p.on("pageerror", lambda e: errors.append(str(e)))
        p.set_default_timeout(15_000)
        login(p, f"{srv.url}/console/install?device_id={dev['device_id']}", installer)
        p.wait_for_selector("#in-mode[data-mode=edit]")
        p.wait_for_selector("#in-handle-apex")
        assert number(p, "#in-heading") == heading
        assert p.input_value("#in-onvif-password") == ""  # never filled from the server
        # nothing wider than the screen
        assert p.evaluate("document.documentElement.scrollWidth") <= 390
        p.locator("#in-map").scroll_into_view_if_needed()
        bx, by = centre(p, "#in-map")
        p.touchscreen.tap(bx + 40, by - 60)
        p.wait_for_function(f"() => Number(document.getElementById('in-lon').value) !== {lon}")
        new_lon, new_lat = number(p, "#in-lon"), number(p, "#in-lat")
        assert new_lon > lon and new_lat > lat
        shot(p, "install-phone")
        p.click("#in-submit")
        p.wait_for_selector("#in-saved:not(:empty)")
        assert not errors, errors
    finally:
        phone.close()
    cam = httpx.get(f"{srv.url}/api/v1/cameras/{dev['device_id']}", headers=auth(installer)).json()
    assert math.isclose(cam["lon"], new_lon, abs_tol=1e-7) and math.isclose(cam["lat"], new_lat, abs_tol=1e-7)
    assert cam["onvif"]["has_password"] is True  # the position fix kept the stored password


def test_installer_sees_server_errors_beside_the_fields(live_server: Any, page: Any) -> None:  # noqa: F811
    srv, ctx = live_server
    with ctx.db.session() as s:
        installer = create_token(s, "installer", "browser-installer")
    login(page, srv.url + "/console/install", installer)
    page.wait_for_selector("#in-map.leaflet-container")
    page.fill("#in-device-id", "44030500001320000042")
    page.fill("#in-name", "东门")
    page.select_option("#in-point-class", "3")
    page.fill("#in-onvif-host", "http://10.0.0.1/")  # a URL, not a host
    mx, my = centre(page, "#in-map")
    page.mouse.click(mx, my)
    page.wait_for_selector("#in-handle-heading")
    page.click("#in-submit")
    page.wait_for_selector(".tw-field-error[data-field='onvif.host']:not(:empty)")
    assert page.get_attribute("#in-mode", "data-mode") == "new"
    assert "host" in page.inner_text("#in-errors").lower() or page.inner_text("#in-errors")
    # fixed, it registers; a second registration of the same code is refused with the reason
    page.fill("#in-onvif-host", "10.0.0.1")
    page.click("#in-submit")
    page.wait_for_selector("#in-mode[data-mode=edit]")
    page.click("#in-new")
    assert page.get_attribute("#in-mode", "data-mode") == "new" and page.input_value("#in-device-id") == ""
    page.fill("#in-device-id", "44030500001320000042")
    page.fill("#in-name", "东门 2")
    page.select_option("#in-point-class", "3")
    page.mouse.click(mx + 10, my + 10)
    page.click("#in-submit")
    page.wait_for_selector("#in-errors:not(:empty)")
    assert "already registered" in page.inner_text("#in-errors")
    shot(page, "install-errors")
