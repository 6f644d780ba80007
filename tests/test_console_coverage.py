"""The coverage dashboard and the map page in a real browser (Debian Chromium + Playwright) against a live
API on 127.0.0.1, over a small synthetic city loaded through the API with a known health history:

- 30 cameras answered every check for 12 hours, 10 went down 6 hours ago (offline), 5 came up 3 hours
  ago, 5 answer but their last picture failed diagnosis (fault), 10 were never checked (registered).

The dashboard's figures are compared with the API's JSON for the same query (same window), the fault
list and its evidence are opened, the map's layers are counted, and the requests the pages make are
watched: nothing leaves the server's origin unless TIANWANG_MAP_TILE_URL names a tile server.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import re
from collections.abc import Iterator
from typing import Any

import cv2
import httpx
import numpy as np
import pytest
from sqlalchemy import update

from simulator.city import CityParams, generate_city
from tests.browser_support import browser, login, page, shot  # noqa: F401  (fixtures)
from tests.conftest import auth
from tianwang.auth.tokens import create_token
from tianwang.context import AppContext
from tianwang.storage.models import Camera

pytestmark = pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)

CITY = generate_city(CityParams(cameras=60, seed=3))
FIGURES = {
    "online_rate": 3600.0,  # shown in device-hours
    "online_now": 1.0,
    "intact_rate": 1.0,
    "road_coverage_rate": 1000.0,  # shown in km
    "key_site_coverage_rate": 1.0,
    "grid_coverage_rate": 1.0,
}
DECIMALS = {"online_rate": 1, "road_coverage_rate": 2}
TILE_HOST = "http://tiles.gis.test"
PNG_1PX = bytes.fromhex(
    "89504e470d0a1a0a0000000d4948445200000001000000010806000000"
    "1f15c4890000000d49444154789c6360f8cf000000030101005c2b8a6b0000000049454e44ae426082"
)


def jpeg() -> bytes:
    img = np.full((90, 160, 3), 40, np.uint8)
    cv2.putText(img, "cam", (20, 60), cv2.FONT_HERSHEY_SIMPLEX, 1.5, (255, 255, 255), 3)
    ok, buf = cv2.imencode(".jpg", img)
    assert ok
    return buf.tobytes()


def load_world(url: str, ctx: AppContext) -> dict[str, Any]:
    """The city through the API, a 12-hour health history and two snapshots; returns tokens and groups."""
    with ctx.db.session() as s:
        tok = {r: create_token(s, r, f"cov-{r}") for r in ("staff", "installer", "agent")}
    staff, inst, agent = auth(tok["staff"]), auth(tok["installer"]), auth(tok["agent"])
    with httpx.Client(base_url=url, timeout=30) as c:
        for a in CITY.areas:
            assert c.post("/api/v1/areas", json=a, headers=staff).status_code == 201
        r = c.post("/api/v1/roads", json=CITY.roads_geojson(), headers=staff).json()
        assert r["rejected"] == []
        for site in CITY.key_sites:
            assert c.post("/api/v1/key-sites", json=site, headers=staff).status_code == 201
        for cp in CITY.checkpoints:
            body = {k: v for k, v in cp.items() if k != "camera_ids"}
            assert c.post("/api/v1/checkpoints", json=body, headers=inst).status_code == 201
        for cam in CITY.cameras:
            # checked every 10 minutes: an answer speaks for 30 minutes (3 misses)
            r2 = c.post("/api/v1/cameras", json=dict(cam, health_interval_s=600), headers=inst)
            assert r2.status_code == 201, r2.text
        now = dt.datetime.now(dt.UTC).replace(microsecond=0)
        with ctx.db.session() as s:
            s.execute(update(Camera).values(created_at=now - dt.timedelta(hours=13)))
        ids = [cam["device_id"] for cam in CITY.cameras]
        groups = {
            "up": ids[0:30],
            "down": ids[30:40],
            "recovered": ids[40:45],
            "fault": ids[45:50],
            "unchecked": ids[50:60],
        }
        items = []
        for k in range(72):  # every 10 minutes from 12 h ago to a minute ago
            t = now - dt.timedelta(hours=12) + dt.timedelta(minutes=10 * k)
            t = min(t, now - dt.timedelta(minutes=1))
            for g, devs in groups.items():
                if g == "unchecked":
                    continue
                up = {
                    "up": True,
                    "fault": True,
                    "down": t < now - dt.timedelta(hours=6),
                    "recovered": t >= now - dt.timedelta(hours=3),
                }[g]
                for d in devs:
                    items.append(
                        {
                            "key": f"h-{d}-{k}",
                            "device_id": d,
                            "ts": t.isoformat(),
                            "reachable": up,
                            "authenticated": up,
                            "latency_ms": 20.0 + k % 7 if up else None,
                            "error": None if up else "connect timeout",
                        }
                    )
        r = c.post("/api/v1/ingest/health", json={"items": items}, headers=agent).json()
        assert r["rejected"] == [] and r["accepted"] == len(items)
        # pictures: every "fault" camera's last one failed diagnosis; one good camera has a good one
        data = jpeg()
        sha = hashlib.sha256(data).hexdigest()
        shots = [(d, "fault") for d in groups["fault"]] + [(groups["up"][0], "ok")]
        snap_items = []
        for d, verdict in shots:
            ts = (now - dt.timedelta(seconds=30)).isoformat()
            pre = c.post(
                "/api/v1/ingest/snapshots/presign",
                json={"device_id": d, "ts": ts, "sha256": sha, "size": len(data)},
                headers=agent,
            ).json()
            assert c.put(pre["url"], content=data, headers={"Content-Type": "image/jpeg"}).status_code == 200
            faults = ["blur", "occlusion"] if verdict == "fault" else []
            snap_items.append(
                {
                    "key": pre["key"],
                    "device_id": d,
                    "ts": ts,
                    "sha256": sha,
                    "width": 160,
                    "height": 90,
                    "quality": {"blur": 0.9 if faults else 0.1, "verdict": verdict, "faults": faults},
                }
            )
        r = c.post("/api/v1/ingest/snapshots", json={"items": snap_items}, headers=agent).json()
        assert r["accepted"] == len(snap_items), r
    return {"staff": tok["staff"], "groups": groups}


def api(url: str, token: str, path: str, **params: Any) -> Any:
    r = httpx.get(url + path, params=params, headers=auth(token), timeout=60)
    assert r.status_code == 200, r.text
    return r.json()


def numbers(text: str) -> list[float]:
    return [float(x.replace(",", "")) for x in re.findall(r"-?[\d,]+(?:\.\d+)?", text)]


def same_figure(el: Any, fig: dict[str, Any]) -> None:
    """An element's data-rate / data-numerator / data-denominator equal the API's figure exactly."""
    for k in ("rate", "numerator", "denominator"):
        assert float(el.get_attribute("data-" + k) or "nan") == fig[k], (k, fig)


def check_summary(page: Any, url: str, token: str) -> dict[str, Any]:  # noqa: F811
    """The page's KPI cards against GET /coverage/summary for the window and area the page used."""
    frm = page.get_attribute("#cov-summary", "data-from")
    to = page.get_attribute("#cov-summary", "data-to")
    area = page.get_attribute("#cov-summary", "data-area") or None
    s = api(
        url,
        token,
        "/api/v1/coverage/summary",
        **{"from": frm, "to": to},
        **({"area_code": area} if area else {}),
    )
    assert s["window"]["from"] == frm and s["window"]["to"] == to
    for key, scale in FIGURES.items():
        fig = s["figures"][key]
        card = page.locator(f"[data-testid='kpi-{key}']")
        same_figure(card, fig)
        # what a person reads: the rate to 0.1 %, numerator / denominator in the unit shown
        shown_rate = numbers(page.inner_text(f"[data-testid='kpi-{key}-rate']"))[0]
        assert shown_rate == pytest.approx(100 * fig["rate"], abs=0.051)
        num, den = numbers(page.inner_text(f"[data-testid='kpi-{key}-frac']"))[:2]
        tol = 0.51 * 10 ** -DECIMALS.get(key, 0)
        assert num == pytest.approx(fig["numerator"] / scale, abs=tol)
        assert den == pytest.approx(fig["denominator"] / scale, abs=tol)
    return s


def no_outside_requests(page: Any, origin: str) -> list[str]:  # noqa: F811
    outside: list[str] = []
    page.on("request", lambda r: outside.append(r.url) if not r.url.startswith(origin + "/") else None)
    return outside


@pytest.fixture
def no_tile_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("TIANWANG_MAP_TILE_URL", raising=False)


@pytest.fixture
def tile_env(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setenv("TIANWANG_MAP_TILE_URL", TILE_HOST + "/{z}/{x}/{y}.png")
    monkeypatch.setenv("TIANWANG_MAP_TILE_ATTRIBUTION", "Police GIS")
    yield


def test_dashboard_numbers_equal_the_api_and_faults_show_evidence(no_tile_env, live_server, page) -> None:  # noqa: F811
    srv, ctx = live_server
    w = load_world(srv.url, ctx)
    token, groups = w["staff"], w["groups"]
    outside = no_outside_requests(page, srv.url)
    login(page, srv.url + "/console/coverage", token)
    page.wait_for_selector("#cov-status[data-state=ready]")

    s = check_summary(page, srv.url, token)
    # the figures are not trivial: some of the fleet is down, some faulty, some never checked
    assert s["devices_total"] == 60 and s["online"] == 40 and s["intact"] == 35
    assert 0.3 < s["online_rate"] < 0.95 and s["intact_rate"] == pytest.approx(35 / 60, abs=1e-6)

    # rates per district: every row's figures equal the API's rows for the same window
    frm, to = page.get_attribute("#cov-summary", "data-from"), page.get_attribute("#cov-summary", "data-to")
    rows = api(srv.url, token, "/api/v1/coverage/areas", level="district", **{"from": frm, "to": to})["items"]
    assert len(rows) >= 2 and page.locator("#cov-areas tbody tr[data-area]").count() == len(rows)
    for r in rows:
        tr = page.locator(f"#cov-areas tr[data-area='{r['area_code']}']")
        assert numbers(tr.locator("[data-field=devices_total]").inner_text()) == [r["devices_total"]]
        for key in FIGURES:
            td = tr.locator(f"[data-field={key}]")
            same_figure(td, r["figures"][key])

    # the chart: one dot per step and series where the step has a rate; the down / recovered groups show
    h = api(srv.url, token, "/api/v1/coverage/history", step="1h", **{"from": frm, "to": to})
    assert page.get_attribute("#cov-history", "data-points") == str(len(h["points"])) == "24"
    want = sum(p["scheduled_s"] > 0 for p in h["points"]) + sum(p["devices"] > 0 for p in h["points"])
    assert page.locator("#cov-history svg circle").count() == want
    rates = [p["online_rate"] for p in h["points"] if p["scheduled_s"] > 0]
    assert max(rates) - min(rates) > 0.05

    # the fault list: offline and faulty devices, each with its evidence
    faults = api(srv.url, token, "/api/v1/faults")
    assert page.locator("#cov-faults tbody tr[data-device]").count() == len(faults) == 15
    down, faulty = groups["down"][0], groups["fault"][0]
    assert page.get_attribute(f"[data-testid='fault-{down}']", "data-status") == "offline"
    assert page.get_attribute(f"[data-testid='fault-{faulty}']", "data-status") == "fault"
    page.click(f"[data-testid='evidence-btn-{faulty}']")
    ev = page.locator(f"[data-testid='evidence-{faulty}'][data-state=ready]")
    ev.wait_for()
    img = ev.locator("[data-testid=snapshot-img]")
    img.wait_for()
    page.wait_for_function("(el) => el.complete && el.naturalWidth === 160", arg=img.element_handle())
    assert "blur" in ev.locator("[data-testid=snapshot-verdict]").inner_text()
    assert ev.locator("[data-testid=health-row]").count() == 10
    page.click(f"[data-testid='evidence-btn-{down}']")
    ev2 = page.locator(f"[data-testid='evidence-{down}'][data-state=ready]")
    ev2.wait_for()
    assert "connect timeout" in ev2.locator("[data-testid=health]").inner_text()
    assert ev2.locator(".tw-bad-row").count() == 10
    assert ev2.locator("[data-testid=snapshot-img]").count() == 0
    # the dashboard's map: the faulty devices as dots, the road blind spots of the scope
    blind = api(srv.url, token, "/api/v1/coverage/blind-spots", what="roads")
    assert page.get_attribute("#cov-map-note", "data-faults") == "15"
    assert page.get_attribute("#cov-map-note", "data-blind") == str(len(blind["features"]))
    shot(page, "coverage")

    # one district: the figures follow the choice
    district = rows[0]["area_code"]
    page.select_option("#cov-area", district)
    page.wait_for_selector("#cov-status[data-state=ready]")
    assert check_summary(page, srv.url, token)["area_code"] == district
    page.click("#tw-lang")
    assert page.inner_text("[data-testid='kpi-intact_rate'] small") == "Intact rate"
    page.set_viewport_size({"width": 390, "height": 844})
    # the chart is redrawn at the phone's width (its labels keep their size)
    page.wait_for_function("() => document.querySelector('#cov-history svg').viewBox.baseVal.width < 500")
    shot(page, "coverage-phone")
    assert outside == []


def test_map_draws_every_layer_from_the_api(no_tile_env, live_server, page) -> None:  # noqa: F811
    srv, ctx = live_server
    w = load_world(srv.url, ctx)
    token = w["staff"]
    outside = no_outside_requests(page, srv.url)
    login(page, srv.url + "/console/map", token)
    page.wait_for_selector("#map-status[data-state=ready]")
    counts = page.evaluate(
        "() => Object.fromEntries(TW.mapPage.map.names().map((n) => [n, TW.mapPage.map.count(n)]))"
    )
    city = next(a["code"] for a in CITY.areas if a["kind"] == "city")
    districts = [a for a in CITY.areas if a["kind"] == "district"]
    enc = api(srv.url, token, "/api/v1/coverage/enclosure", area_code=city)
    blind = api(srv.url, token, "/api/v1/coverage/blind-spots", area_code=city, what="roads")
    assert counts["roads"] == len(CITY.roads_geojson()["features"])
    assert counts["cameras"] == counts["sectors"] == 60
    assert counts["checkpoints"] == len(CITY.checkpoints)
    assert counts["areas"] == len(districts)
    assert counts["keysites"] == len(CITY.key_sites)
    assert counts["scope"] == 1
    assert counts["blind"] == len(blind["features"]) > 0
    assert counts.get("leaks", 0) == len(enc["leaks"]["features"])
    # the legend says the same, and the cameras by state
    for name, n in counts.items():
        assert page.get_attribute(f"[data-testid='count-{name}']", "data-count") == str(n)
    by_state = {s: int(page.get_attribute(f"[data-testid='status-{s}']", "data-count") or -1) for s in
                ("online", "offline", "fault", "registered")}  # fmt: skip
    assert by_state == {"online": 35, "offline": 10, "fault": 5, "registered": 10}
    assert page.get_attribute("[data-testid=enclosure-closed]", "data-closed") == str(enc["closed"]).lower()
    # drawn on a canvas, with no tile layer
    assert page.locator("#map canvas").count() >= 1
    assert page.locator("#map .leaflet-tile").count() == 0
    # a sector's colour is its camera's state
    colours = page.evaluate(
        """() => { const out = {}; TW.mapPage.map.layer('sectors').eachLayer((l) => {
             out[l.feature.properties.status] = l.options.color; }); return out; }"""
    )
    assert colours["online"] != colours["offline"] and len(set(colours.values())) == 4
    shot(page, "map")

    # one district: its enclosure, its cameras (by recorded area code)
    d = districts[0]["code"]
    page.select_option("#map-area", d)
    page.wait_for_selector("#map-status[data-state=ready]")
    enc_d = api(srv.url, token, "/api/v1/coverage/enclosure", area_code=d)
    n_leaks = page.evaluate("() => TW.mapPage.map.count('leaks')")
    assert n_leaks == len(enc_d["leaks"]["features"])
    in_d = sum(c["area_code"].startswith(d) for c in CITY.cameras)
    assert page.evaluate("() => TW.mapPage.map.count('cameras')") == in_d

    # more than the page draws: it draws the cap and says so
    page.goto(srv.url + "/console/map?level=district&cap=20")
    page.wait_for_selector("#map-status[data-state=ready]")
    for name, n in (("cameras", 20), ("sectors", 20), ("roads", 20), ("checkpoints", len(CITY.checkpoints))):
        li = page.locator(f"[data-testid='count-{name}']")
        assert li.get_attribute("data-count") == str(n)
        assert li.get_attribute("data-capped") == ("true" if n == 20 else "false")
    assert "20" in page.inner_text("[data-testid='count-roads'] small")
    assert outside == []


def test_tiles_come_only_from_the_configured_tile_server(tile_env, live_server, page) -> None:  # noqa: F811
    srv, ctx = live_server
    with ctx.db.session() as s:
        token = create_token(s, "installer", "cov-installer")
    tiles: list[str] = []
    others: list[str] = []

    def fulfil(route: Any) -> None:
        tiles.append(route.request.url)
        route.fulfill(status=200, content_type="image/png", body=PNG_1PX)

    page.route(TILE_HOST + "/**", fulfil)
    page.on(
        "request",
        lambda r: others.append(r.url) if not r.url.startswith((srv.url + "/", TILE_HOST + "/")) else None,
    )
    login(page, srv.url + "/console/map", token)
    page.wait_for_selector("#map-status[data-state=ready]")
    page.wait_for_selector("#map .leaflet-tile-loaded")
    assert tiles and all(re.fullmatch(re.escape(TILE_HOST) + r"/\d+/\d+/\d+\.png", u) for u in tiles)
    assert "Police GIS" in page.inner_text("#map .leaflet-control-attribution")
    assert others == []
    # an installer sees the registry layers, not the coverage answers (staff and admin only)
    assert page.evaluate("() => TW.mapPage.map.layer('blind')") is None
    assert page.is_hidden("#map-blind")
