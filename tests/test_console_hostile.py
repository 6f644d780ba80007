"""Stored XSS: hostile names, notes, plates and case numbers through every console page, in Chromium.

Everything a user or a device typed is registered through the API with markup that would call
`PWN(n)` if a page put it in as HTML (`n` names the field): cameras (name, address, catalog fields),
areas, roads, key sites, checkpoints, fences, health errors, plates and person ids of ingested
sightings, a hotlist's name, reason and entry notes, and the case number (and, served by the
browser, an analysis answer whose fields are markup). Each page that shows them is opened, its map
popups and tooltips opened (the installer's camera dot hovered with the mouse, as in the attack that
found it), its rows and evidence clicked. The test fails when a payload
runs (`window.__pwned`), when the page's Content-Security-Policy refuses anything (a payload that
reached the DOM as markup is refused there: the `securitypolicyviolation` listener records it), or on
any JavaScript error; and each page must show the hostile text as text, so the data was really there.

The CSP headers themselves are checked without a browser.
"""

from __future__ import annotations

import datetime as dt
import json
import re
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient

from simulator.city import CityParams, generate_city
from tests.browser_support import browser, page, shot  # noqa: F401  (fixtures)
from tests.conftest import auth
from tests.sightings_support import pass_item
from tianwang.auth.tokens import create_token
from tianwang.config import Settings
from tianwang.context import AppContext
from tianwang.web.console import PAGES

SQLITE_ONLY = pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)


def evil(n: int) -> str:
    """Markup that calls PWN(n) in an element body or an attribute (quoted either way), if parsed as HTML."""
    return f"\"'><img src=x onerror=PWN({n})><svg onload=PWN({n})>"


# Plates are upper-cased and lose spaces, dots, dashes and underscores on ingest; person ids take no
# whitespace: the same markup without them (HTML takes `/` between attributes, and its names in any case).
def evil_plate(n: int) -> str:
    return f"<IMG/SRC=X/ONERROR=PWN({n})>"


def evil_person(n: int) -> str:
    return f"<svg/onload=PWN({n})>"


CASE = "<img src=x onerror=PWN(1)>'\"><svg onload=PWN(1)>"
PLATE = "粤B12345"
HOSTILE_PLATE = evil_plate(2)
HOSTILE_PERSON = evil_person(3)
IMSI = "460001111111111"
FACE_CAMERA = "44030300001320000099"

WATCH = """
window.__pwned = [];
window.__csp = [];
window.PWN = (n) => window.__pwned.push(n);
document.addEventListener("securitypolicyviolation", (e) =>
  window.__csp.push([e.violatedDirective, e.sample, e.sourceFile, e.lineNumber, e.columnNumber].join(" ")));
"""
HOOK_MAPS = "() => { window.__maps = []; L.Map.addInitHook(function () { window.__maps.push(this); }); }"
# open every popup and tooltip of every map of the page, collecting what they show
OPEN_ALL = """
() => {
  const shown = [];
  for (const m of window.__maps) {
    m.eachLayer((l) => {
      if (l.getPopup && l.getPopup()) {
        l.openPopup();
        const c = l.getPopup().getElement();
        if (c) shown.push(c.textContent);
      }
      if (l.getTooltip && l.getTooltip()) {
        l.openTooltip();
        const el = l.getTooltip().getElement();
        if (el) shown.push(el.textContent);
        l.closeTooltip();
      }
    });
    m.closePopup();
    const names = m.getContainer().querySelectorAll(".leaflet-control-layers-overlays label");
    for (const c of names) shown.push(c.textContent);
  }
  return shown;
}
"""


def _city() -> Any:
    """A small synthetic city with every name replaced by markup (numbers 10…)."""
    city = generate_city(CityParams(cameras=4, seed=3))
    n = 10
    for group in (city.areas, city.key_sites, city.checkpoints, city.cameras):
        for rec in group:
            rec["name"] = evil(n)
            n += 1
    for cam in city.cameras:
        cam.update(
            address=evil(n),
            police_station=evil(n + 1),
            maintenance_unit=evil(n + 2),
            management_unit=evil(n + 3),
            construction_batch=evil(n + 4)[:100],
        )
        n += 5
    return city


def _load(url: str, ctx: AppContext) -> dict[str, Any]:
    city = _city()
    with ctx.db.session() as s:
        tok = {r: create_token(s, r, f"xss-{r}") for r in ("staff", "installer", "agent", "investigator")}
    staff, agent, inv = auth(tok["staff"]), auth(tok["agent"]), auth(tok["investigator"])
    cps = [cp["checkpoint_id"] for cp in city.checkpoints]
    with httpx.Client(base_url=url, timeout=30) as c:
        for a in city.areas:
            assert c.post("/api/v1/areas", json=a, headers=staff).status_code == 201
        roads = city.roads_geojson()
        for k, f in enumerate(roads["features"]):
            f["properties"]["name"] = evil(500 + k)
        assert c.post("/api/v1/roads", json=roads, headers=staff).json()["rejected"] == []
        for site in city.key_sites:
            assert c.post("/api/v1/key-sites", json=site, headers=staff).status_code == 201
        for cp in city.checkpoints:
            body = {k: v for k, v in cp.items() if k != "camera_ids"}
            assert c.post("/api/v1/checkpoints", json=body, headers=staff).status_code == 201, body
        for cam in city.cameras:
            r = c.post("/api/v1/cameras", json=dict(cam, health_interval_s=600), headers=staff)
            assert r.status_code == 201, r.text
        lon, lat = city.checkpoints[0]["lon"], city.checkpoints[0]["lat"]
        face = {
            "device_id": FACE_CAMERA,
            "name": evil(90),
            "kind": "face",
            "lon": lon + 0.001,
            "lat": lat,
            "heading_deg": 0,
            "hfov_deg": 60,
            "range_m": 30,
            "point_class": 1,
            "address": evil(91),
        }
        assert c.post("/api/v1/cameras", json=face, headers=staff).status_code == 201
        for k, cp in enumerate(city.checkpoints):
            fence = {
                "fence_id": f"F-X-{k}",
                "name": evil(95 + k),
                "lon": cp["lon"],
                "lat": cp["lat"],
                "radius_m": 200,
            }
            assert c.post("/api/v1/fences", json=fence, headers=staff).status_code in (200, 201)

        # health: two cameras down with a hostile error text (the fault list and its evidence)
        now = dt.datetime.now(dt.UTC).replace(microsecond=0)
        down = [cam["device_id"] for cam in city.cameras[:2]]
        health = [
            {
                "key": f"h-{d}-{k}",
                "device_id": d,
                "ts": (now - dt.timedelta(minutes=10 * k + 1)).isoformat(),
                "reachable": False,
                "authenticated": False,
                "error": evil(100 + k),
            }
            for d in down
            for k in range(3)
        ]
        r = c.post("/api/v1/ingest/health", json={"items": health}, headers=agent).json()
        assert r["accepted"] == len(health), r

        # a hotlist under the hostile case number, with hostile name, reason and notes
        hotlist = {
            "name": evil(110),
            "reason": evil(111),
            "case_no": CASE,
            "valid_from": (now - dt.timedelta(days=3)).isoformat(),
            "valid_to": (now + dt.timedelta(days=3)).isoformat(),
            "priority": 5,
            "entries": [
                {"plate_no": PLATE, "note": evil(112)},
                {"person_id": HOSTILE_PERSON, "note": evil(113)},
                {"imsi": IMSI, "note": evil(114)},
            ],
        }
        r2 = c.post("/api/v1/hotlists", json=hotlist, headers=inv)
        assert r2.status_code == 201, r2.text

        # sightings (after the hotlist: they raise alarms): the plate, a hostile plate a few seconds
        # behind it, the hostile person at the face camera and the phone at the fences, on two days
        passes, faces, phones = [], [], []
        for d, day in enumerate((now - dt.timedelta(days=1), now - dt.timedelta(minutes=30))):
            for n, cp in enumerate(cps):
                ts = day + dt.timedelta(seconds=90 * n)
                passes.append(pass_item(f"xss-pass{d}{n}", PLATE, ts, cp))
                passes.append(
                    pass_item(f"xss-hostile{d}{n}", HOSTILE_PLATE, ts + dt.timedelta(seconds=5), cp)
                )
                phones.append(
                    {
                        "key": f"xss-phone{d}{n}",
                        "fence_id": f"F-X-{n}",
                        "ts": (ts + dt.timedelta(seconds=20)).isoformat(),
                        "imsi": IMSI,
                    }
                )
            faces.append(
                {
                    "key": f"xss-face{d}",
                    "camera_id": FACE_CAMERA,
                    "ts": (day + dt.timedelta(seconds=25)).isoformat(),
                    "person_id": HOSTILE_PERSON,
                    "confidence": 0.9,
                }
            )
        for what, items in (("passes", passes), ("faces", faces), ("phones", phones)):
            r3 = c.post(f"/api/v1/ingest/{what}", json={"items": items}, headers=agent).json()
            assert r3["accepted"] == len(items), (what, r3)
        # an alarm acknowledged with a hostile note; a hotlist with a hostile scope, withdrawn with a
        # hostile reason
        first = c.get("/api/v1/alarms", headers=inv).json()["items"][0]["id"]
        ack = {"verdict": "false_positive", "note": evil(115)}
        assert c.post(f"/api/v1/alarms/{first}/ack", json=ack, headers=inv).status_code == 200
        scoped = {
            **hotlist,
            "name": "scoped",
            "entries": [{"plate_no": "粤B00001"}],
            "scope": {"checkpoint_ids": [evil(116)], "area_codes": ["4403"]},
            "retro_days": 0,
        }
        r4 = c.post("/api/v1/hotlists", json=scoped, headers=inv)
        assert r4.status_code == 201, r4.text
        r5 = c.delete(
            f"/api/v1/hotlists/{r4.json()['id']}", params={"case_no": CASE, "reason": evil(117)}, headers=inv
        )
        assert r5.status_code == 200, r5.text
    return {"tok": tok, "city": city, "down": down, "now": now}


def _login(p: Any, url: str, token: str) -> None:
    """As browser_support.login, with the pages' maps recorded (they are made after log-in)."""
    if p.url.startswith("http"):
        p.evaluate("sessionStorage.clear()")  # log in again, after the maps are hooked
    p.goto(url)
    p.evaluate(HOOK_MAPS)
    p.fill("#tw-token", token)
    p.click("#tw-login-form button[type=submit]")
    p.wait_for_selector("#tw-main:not([hidden])")


def _clean(p: Any, where: str) -> None:
    """No payload ran and the CSP refused nothing on this page."""
    p.wait_for_timeout(300)  # let a late image error or load fire
    assert p.evaluate("window.__pwned") == [], f"{where}: a payload ran"
    assert p.evaluate("window.__csp") == [], f"{where}: the CSP refused something"


@pytest.fixture
def hostile_page(browser: Any) -> Any:  # noqa: F811
    ctx = browser.new_context(viewport={"width": 1280, "height": 900}, locale="zh-CN")
    ctx.add_init_script(WATCH)
    p = ctx.new_page()
    errors: list[str] = []
    p.on("pageerror", lambda e: errors.append(str(e)))
    p.on("console", lambda m: errors.append(m.text) if "Content Security Policy" in m.text else None)
    p.set_default_timeout(15_000)
    try:
        yield p
    finally:
        ctx.close()
    assert not errors, f"JavaScript errors or CSP reports on the page: {errors}"


@SQLITE_ONLY
def test_no_hostile_value_runs_on_any_console_page(live_server, hostile_page) -> None:
    srv, ctx = live_server
    w = _load(srv.url, ctx)
    tok, city, p = w["tok"], w["city"], hostile_page
    cam = city.cameras[0]

    # 地图: every layer's popups and tooltips, and the layer switch's names
    _login(p, srv.url + "/console/map", tok["staff"])
    p.wait_for_selector("#map-status[data-state=ready]")
    shown = p.evaluate(OPEN_ALL)
    assert any("onerror=PWN(" in s for s in shown), shown[:5]  # the areas' names, as text
    assert any(cam["name"] in s for s in shown)
    p.select_option("#map-area", city.areas[1]["code"])  # a district: its outline, blind spots, enclosure
    p.evaluate("document.querySelector('#map-status').dataset.state = 'stale'")
    p.click("#map-reload")
    p.wait_for_selector("#map-status[data-state=ready]")
    p.evaluate(OPEN_ALL)
    assert evil(10) in p.inner_text("#map-area")
    shot(p, "hostile-map")
    _clean(p, "map")

    # 安装调试: hover the camera's dot, as the attack did
    _login(p, srv.url + "/console/install", tok["staff"])
    p.wait_for_function(
        "() => window.__maps.length && window.__maps[0]._layers && "
        "Object.values(window.__maps[0]._layers).some(l => l.getTooltip && l.getTooltip())"
    )
    p.evaluate(
        "([lat, lon]) => window.__maps[0].setView([lat, lon], 17, {animate: false})", [cam["lat"], cam["lon"]]
    )
    where = (
        "([lat, lon]) => { const m = window.__maps[0]; const pt = m.latLngToContainerPoint([lat, lon]);"
        " const b = m.getContainer().getBoundingClientRect(); return [b.left + pt.x, b.top + pt.y]; }"
    )
    for _ in range(20):  # the map may still be settling (its size, the view): move onto the dot again
        x, y = p.evaluate(where, [cam["lat"], cam["lon"]])
        p.mouse.move(x - 30, y - 30)
        p.mouse.move(x, y, steps=6)
        if p.query_selector(".leaflet-tooltip"):
            break
        p.wait_for_timeout(250)
    if not p.query_selector(".leaflet-tooltip"):
        # on a loaded machine the dot may still be moving under the mouse: open the camera's own
        # tooltip as a hover would (the same bound content; what is checked is how it is shown)
        p.evaluate(
            "([lat, lon]) => Object.values(window.__maps[0]._layers).find(l => l.getTooltip && "
            "l.getTooltip() && l.getLatLng && l.getLatLng().distanceTo([lat, lon]) < 1).openTooltip()",
            [cam["lat"], cam["lon"]],
        )
    tip = p.wait_for_selector(".leaflet-tooltip", state="attached")
    _clean(p, "install, the camera hovered")
    assert tip.inner_text() == f"{cam['name']} {cam['device_id']}"
    shown = p.evaluate(OPEN_ALL)
    assert any(evil(90) in s for s in shown)
    shot(p, "hostile-install")
    _clean(p, "install")
    # the installer page opened on a hostile camera fills its form with the text
    p.goto(srv.url + f"/console/install?device_id={cam['device_id']}")
    p.wait_for_function("(v) => document.querySelector('#in-name').value === v", arg=cam["name"])
    _clean(p, "install?device_id")

    # 设备档案: the list, a record opened, the checkpoints
    _login(p, srv.url + "/console/registry", tok["staff"])
    p.wait_for_selector(f"#rg-table tbody tr[data-id='{cam['device_id']}']")
    assert cam["address"] in p.inner_text("#rg-table") or cam["name"] in p.inner_text("#rg-table")
    p.click(f"#rg-table tbody tr[data-id='{cam['device_id']}']")
    p.wait_for_selector("#rg-edit:not([hidden])")
    assert p.input_value("#rg-e-name") == cam["name"]
    cp = city.checkpoints[0]
    p.wait_for_selector(f"#rg-checkpoints tbody tr[data-id='{cp['checkpoint_id']}']")
    assert cp["name"] in p.inner_text("#rg-checkpoints")
    shot(p, "hostile-registry")
    _clean(p, "registry")

    # 覆盖总览: the fault list and its evidence, the area table, the map (a district chosen: its outline)
    _login(p, srv.url + f"/console/coverage?area={city.areas[1]['code']}", tok["staff"])
    down = w["down"][0]
    p.click(f"[data-testid='evidence-btn-{down}']")
    p.wait_for_selector(f"[data-testid='evidence-{down}'][data-state=ready]")
    assert evil(100) in p.inner_text(f"[data-testid='evidence-{down}']")
    assert city.cameras[0]["name"] in p.inner_text(f"[data-testid='fault-{down}']")
    p.wait_for_function("() => window.__maps.length && Object.keys(window.__maps[0]._layers).length > 3")
    p.wait_for_timeout(500)
    shown = p.evaluate(OPEN_ALL)
    assert any(city.areas[1]["name"] in s for s in shown), shown[:8]
    shot(p, "hostile-coverage")
    _clean(p, "coverage")

    # 研判: the hostile case number, a trajectory through hostile checkpoints, fusion both ways (hostile
    # person and plate drawn on the map), the hotlist and its alarms
    _login(p, srv.url + "/console/investigation", tok["investigator"])
    p.fill("#inv-case-no", CASE)
    p.click("#inv-case-submit")
    p.wait_for_selector("#inv-work:not([hidden])")
    assert p.inner_text("#inv-case-shown") == CASE
    local = "iso => TW.toLocalInput(new Date(iso))"
    frm = p.evaluate(local, (w["now"] - dt.timedelta(days=2)).isoformat())
    to = p.evaluate(local, (w["now"] + dt.timedelta(minutes=5)).isoformat())
    p.select_option("#inv-kind", "vehicle")
    p.fill("#inv-subject", PLATE)
    p.fill("#inv-from", frm)
    p.fill("#inv-to", to)
    p.click("#inv-search")
    p.wait_for_selector("[data-testid=timeline-row]")
    for row in p.query_selector_all("[data-testid=timeline-row]")[:3]:
        row.click()
    p.evaluate(OPEN_ALL)

    def fusion(kind: str, subject: str, hostile: str) -> None:
        p.select_option("#inv-kind", kind)
        p.fill("#inv-subject", subject)
        p.fill("#inv-from", frm)
        p.fill("#inv-to", to)
        p.click("#inv-fusion-run")
        p.wait_for_selector(f"[data-testid=fusion-assoc][data-id='{hostile}']")
        item = p.query_selector(f"[data-testid=fusion-assoc][data-id='{hostile}']")
        assert item is not None and hostile in item.inner_text()
        item.query_selector("summary").click()
        item.query_selector("[data-testid=fusion-draw]").click()
        p.wait_for_timeout(500)
        p.evaluate(OPEN_ALL)

    # the person's own trajectory cannot be fetched by that id (its `/` ends the path): the browser
    # answers it, so the association is drawn and its name goes into the map's layer switch
    cam_lon, cam_lat = city.checkpoints[0]["lon"] + 0.001, city.checkpoints[0]["lat"]
    point = {"ts": w["now"].isoformat(), "camera_id": FACE_CAMERA, "lon": cam_lon, "lat": cam_lat}
    p.route(
        "**/api/v1/trajectories/person/**",
        lambda route: route.fulfill(
            status=200,
            content_type="application/json",
            body=json.dumps({"points": [point], "geojson": {"type": "FeatureCollection", "features": []}}),
        ),
    )
    fusion("vehicle", PLATE, HOSTILE_PERSON)
    assert HOSTILE_PERSON in p.inner_text("#inv-map .leaflet-control-layers")
    fusion("phone", IMSI, HOSTILE_PLATE)

    # an analysis answer with markup in its field names and values (the browser serves it: the real
    # analyses keep only valid plates), shown as a table and drawn on the map
    hostile_row = {evil(800): evil(801), "plate_no": HOSTILE_PLATE, "lon": cam_lon, "lat": cam_lat}
    p.route(
        "**/api/v1/analysis/**",
        lambda route: route.fulfill(
            status=200, content_type="application/json", body=json.dumps({"items": [hostile_row]})
        ),
    )
    p.select_option("#inv-an-kind", "night")
    p.fill("#inv-an-from", frm)
    p.fill("#inv-an-to", to)
    p.click("#inv-an-run")
    p.wait_for_selector("[data-testid=analysis-row]")
    p.click("[data-testid=analysis-row]")
    table = p.inner_text("#inv-an-result")
    assert evil(800) in table and evil(801) in table and HOSTILE_PLATE in table
    p.evaluate(OPEN_ALL)

    row = p.wait_for_selector("[data-testid=hotlist-row]:has-text('PWN(110)')")
    text = row.inner_text()
    assert evil(110) in text and HOSTILE_PERSON in text and CASE in text
    listed = p.inner_text("#hl-list")
    assert evil(116) in listed and evil(117) in listed
    p.wait_for_selector("[data-testid=alarm]")
    for a in p.query_selector_all("[data-testid=alarm]"):
        a.click()
    p.wait_for_selector("[data-testid=alarm]:has-text('PWN(3)')")
    alarms = p.inner_text("#inv-alarm-list")
    assert HOSTILE_PERSON in alarms and CASE in alarms and evil(115) in alarms
    p.evaluate(OPEN_ALL)
    shot(p, "hostile-investigation")
    _clean(p, "investigation")


TILE_HOST = "http://tiles.gis.test"
PNG_1PX = bytes.fromhex(
    "89504e470d0a1a0a0000000d4948445200000001000000010806000000"
    "1f15c4890000000d49444154789c6360f8cf000000030101005c2b8a6b0000000049454e44ae426082"
)


@pytest.fixture
def hostile_tiles(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TIANWANG_MAP_TILE_URL", TILE_HOST + "/{z}/{x}/{y}.png")
    monkeypatch.setenv("TIANWANG_MAP_TILE_ATTRIBUTION", evil(700))


@SQLITE_ONLY
def test_tiles_load_under_the_csp_and_the_attribution_and_links_stay_inert(
    hostile_tiles: None,
    live_server: Any,
    hostile_page: Any,
) -> None:
    srv, ctx = live_server
    p = hostile_page
    with ctx.db.session() as s:
        staff = create_token(s, "staff", "xss-tiles")
    p.route(
        TILE_HOST + "/**", lambda route: route.fulfill(status=200, content_type="image/png", body=PNG_1PX)
    )
    _login(p, srv.url + "/console/map", staff)
    p.wait_for_selector("#map .leaflet-tile-loaded")  # the tile server is allowed by img-src
    assert evil(700) in p.inner_text("#map .leaflet-control-attribution")
    # TW.el refuses the other ways in: a javascript: link, an inline handler given as a string
    assert p.evaluate("TW.el('a', {href: 'javascript:PWN(701)'}, 'x').hasAttribute('href')") is False
    assert p.evaluate("TW.el('img', {src: ' JavaScript:PWN(702)'}).hasAttribute('src')") is False
    assert p.evaluate("TW.el('a', {href: '/console/map?x=1'}).getAttribute('href')") == "/console/map?x=1"
    assert p.evaluate(
        "(() => { try { TW.el('b', {onclick: 'PWN(703)'}); } catch (e) { return e.name; } })()"
    ) == ("TypeError")
    assert p.evaluate("TW.escapeHtml(`<a href=\"x\" title='y'>&</a>`)") == (
        "&lt;a href=&quot;x&quot; title=&#39;y&#39;&gt;&amp;&lt;/a&gt;"
    )
    _clean(p, "map with tiles")


# ---- the headers, without a browser


@SQLITE_ONLY
def test_console_pages_and_files_carry_the_csp(client: TestClient) -> None:
    for path in ["/console", *(f"/console/{k}" for k in PAGES), "/console/static/console.js"]:
        r = client.get(path)
        assert r.status_code == 200, path
        csp = r.headers.get("content-security-policy", "")
        directives = {d.strip().split(" ")[0]: d.strip().split(" ")[1:] for d in csp.split(";") if d.strip()}
        assert directives["script-src"] == ["'self'"], (path, csp)
        assert directives["default-src"] == ["'self'"]
        assert directives["object-src"] == ["'none'"] and directives["base-uri"] == ["'none'"]
        assert directives["frame-ancestors"] == ["'none'"]
        assert "'unsafe-inline'" not in csp and "'unsafe-eval'" not in csp
        assert r.headers["x-content-type-options"] == "nosniff"
        assert r.headers["referrer-policy"] == "no-referrer"
    # no inline script or handler is left in the pages: the one <script> without src is JSON data
    for path in ["/console", *(f"/console/{k}" for k in PAGES)]:
        html = client.get(path).text
        scripts = re.findall(r"<script\b[^>]*>", html)
        inline = [t for t in scripts if "src=" not in t and 'type="application/json"' not in t]
        assert scripts and inline == [], (path, inline)
        assert re.search(r"<[^>]*\son[a-z]+\s*=", html) is None, path
        assert "javascript:" not in html.lower(), path


def test_csp_lets_in_the_tile_server_and_the_object_store_and_nothing_else() -> None:
    from tianwang.web.console import security_headers

    s = Settings(
        map_tile_url="https://{s}.gis.example:8443/tiles/{z}/{x}/{y}.png",
        public_url="http://api.example:8000",
        object_store="s3://KEY:SECRET@minio.example:9000?secure=true",
    )
    csp = security_headers(s)["Content-Security-Policy"]
    img = next(d for d in csp.split("; ") if d.startswith("img-src")).split()[1:]
    assert img == [
        "'self'",
        "data:",
        "blob:",
        "https://*.gis.example:8443",
        "http://api.example:8000",
        "https://minio.example:9000",
    ]
    assert "SECRET" not in csp and "KEY" not in csp
    # no tile server, the directory store: pictures from the API's own public URL only
    plain = security_headers(Settings(public_url="http://127.0.0.1:8000"))["Content-Security-Policy"]
    assert "img-src 'self' data: blob: http://127.0.0.1:8000;" in plain
    # a tile server given with credentials does not put them in a header
    creds = security_headers(Settings(map_tile_url="http://u:pw@tiles.example/{z}/{x}/{y}.png"))
    assert (
        "pw" not in creds["Content-Security-Policy"]
        and "http://tiles.example" in creds["Content-Security-Policy"]
    )
