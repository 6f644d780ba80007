"""The investigation page (研判) in a real browser against a live API on 127.0.0.1 (SQLite).

An investigator gives the case number first, draws a plate's trajectory (markers = the API's points,
the timeline lists them, "load more" follows next_cursor), makes a hotlist through the page and sees
the alarm of a matching pass appear live (SSE read with fetch, no reload); the audit log holds every
call of the page under the case number. The fusion and analysis panels are checked against the
contract with answers served by the browser (page.route), errors included, and the fusion panel once
more against the real route.
"""

from __future__ import annotations

import datetime as dt
import json
import time
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient

from tests.browser_support import browser, login, page, shot  # noqa: F401  (fixtures)
from tests.conftest import auth
from tests.sightings_support import CHECKPOINTS, CP1, CP2, CP3, FENCES, base_time, pass_item, seed
from tianwang.auth.tokens import create_token
from tianwang.context import AppContext

SQLITE_ONLY = pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)  # the browser tests

CASE = "A4403052026120001"
PLATE = "粤B12345"
IMSI = "460001234567890"
# the plate's passes: two trips (a gap of more than 30 min between the third and the fourth)
ROUTE = [(0, CP1), (4, CP2), (8, CP3), (200, CP3), (204, CP2)]


def _tokens(ctx: Any) -> dict[str, str]:
    with ctx.db.session() as s:
        out = {r: create_token(s, r, f"inv-{r}") for r in ("investigator", "agent", "admin")}
        # the test's own reads, apart from the page's in the audit log
        out["checker"] = create_token(s, "investigator", "inv-checker")
        return out


def _ingest(url: str, token: str, what: str, items: list[dict[str, Any]]) -> dict[str, Any]:
    r = httpx.post(f"{url}/api/v1/ingest/{what}", json={"items": items}, headers=auth(token), timeout=10)
    assert r.status_code == 200, r.text
    return dict(r.json())


def _seed_records(url: str, agent: str, t: dt.datetime) -> None:
    passes = [
        pass_item(f"ci-{n:06d}", PLATE, t + dt.timedelta(minutes=m), cp) for n, (m, cp) in enumerate(ROUTE)
    ]
    passes.append(pass_item("ci-x00001", "粤B99999", t + dt.timedelta(minutes=1), CP1))
    assert _ingest(url, agent, "passes", passes)["accepted"] == len(ROUTE) + 1
    phones = [
        {"key": f"ci-ph{n:04d}", "fence_id": f, "ts": (t + dt.timedelta(minutes=n)).isoformat(), "imsi": IMSI}
        for n, f in enumerate(FENCES)
    ]
    assert _ingest(url, agent, "phones", phones)["accepted"] == len(FENCES)


def _local(page: Any, when: dt.datetime) -> str:  # noqa: F811
    """The datetime-local value the browser shows for `when` (its own time zone)."""
    return str(page.evaluate("iso => TW.toLocalInput(new Date(iso))", when.isoformat()))


def _markers(page: Any) -> int:  # noqa: F811
    return int(page.evaluate("document.querySelectorAll('#inv-map .inv-marker').length"))


@SQLITE_ONLY
def test_investigator_draws_a_trajectory_and_an_alarm_appears_live(live_server, page) -> None:  # noqa: F811
    srv, ctx = live_server
    seed(ctx)
    tok = _tokens(ctx)
    t = base_time()
    _seed_records(srv.url, tok["agent"], t)
    api_calls: list[str] = []
    page.on("request", lambda r: api_calls.append(r.url) if "/api/v1/" in r.url else None)

    # the case number comes first: nothing but /me is asked before it is given
    login(page, srv.url + "/console/investigation", tok["investigator"])
    page.wait_for_selector("#inv-case-gate:not([hidden])")
    assert page.is_hidden("#inv-work") and page.is_hidden("#inv-case-badge")
    page.fill("#inv-case-no", "   ")  # blank once trimmed
    page.click("#inv-case-submit")
    assert "1–64" in page.inner_text("#inv-case-error")
    assert [u.split("?")[0].removeprefix(srv.url) for u in api_calls] == ["/api/v1/me"]
    shot(page, "investigation-case-first")
    page.fill("#inv-case-no", CASE)
    page.click("#inv-case-submit")
    page.wait_for_selector("#inv-work:not([hidden])")
    assert page.inner_text("#inv-case-shown") == CASE
    page.wait_for_selector("#inv-alarm-status[data-state=live]")

    # search the plate (as typed by hand: normalised by the API), a small page size to use "load more";
    # first a plate seen once (one point: the map centres on it)
    frm, to = _local(page, t - dt.timedelta(hours=1)), _local(page, t + dt.timedelta(hours=5))
    page.select_option("#inv-kind", "vehicle")
    page.fill("#inv-subject", "粤B99999")
    page.fill("#inv-from", frm)
    page.fill("#inv-to", to)
    page.click("#inv-search")
    page.wait_for_function("() => document.querySelectorAll('#inv-map .inv-marker').length === 1")
    assert len(page.query_selector_all("[data-testid=timeline-row]")) == 1
    page.fill("#inv-subject", "粤b-12345")
    page.fill("#inv-from", frm)
    page.fill("#inv-to", to)
    page.fill("#inv-limit", "3")
    page.click("#inv-search")
    page.wait_for_function("() => document.querySelectorAll('#inv-map .inv-marker').length === 3")
    assert page.is_visible("#inv-more")
    page.click("#inv-more")
    page.wait_for_function("() => document.querySelectorAll('#inv-map .inv-marker').length === 5")
    assert page.is_hidden("#inv-more")
    answer = httpx.get(
        f"{srv.url}/api/v1/trajectories/vehicle/{PLATE}",
        params={
            "from": page.evaluate("v => new Date(v).toISOString()", frm),
            "to": page.evaluate("v => new Date(v).toISOString()", to),
            "case_no": CASE,
        },
        headers=auth(tok["checker"]),
        timeout=10,
    ).json()
    points = answer["points"]
    assert len(points) == len(ROUTE) == _markers(page)
    rows = page.query_selector_all("[data-testid=timeline-row]")
    assert len(rows) == len(points)
    assert [r.query_selector_all("td")[2].inner_text() for r in rows] == [p["checkpoint_id"] for p in points]
    assert [r.query_selector_all("td")[4].inner_text() for r in rows] == ["1", "1", "1", "2", "2"]
    assert "粤B12345" in page.inner_text("#inv-summary") and "2" in page.inner_text("#inv-summary")
    # a timeline row pans the map to its point and marks its marker
    rows[2].click()
    page.wait_for_function(  # the map pans (animated) to the point
        "([lon, lat]) => { const c = TW.inv.map.leaflet.getCenter();"
        " return Math.abs(c.lng - lon) < 1e-4 && Math.abs(c.lat - lat) < 1e-4; }",
        arg=list(CHECKPOINTS[CP3]),
    )
    assert page.inner_text("#inv-map .inv-marker.sel") == "3"
    assert "sel" in (rows[2].get_attribute("class") or "")
    # and a marker marks its row (markers 2 and 5 share a checkpoint: the event goes to 5 itself)
    page.dispatch_event("#inv-map .inv-marker:text-is('5')", "click")
    page.wait_for_selector("[data-testid=timeline-row][data-index='4'].sel")
    assert [
        r.get_attribute("data-index") for r in page.query_selector_all("[data-testid=timeline-row].sel")
    ] == ["4"]
    assert page.inner_text("#inv-map .inv-marker.sel") == "5"
    shot(page, "investigation-trajectory")

    # a hotlist made through the page; bad entries are named by their line first
    page.fill("#hl-name", "嫌疑车辆")
    page.fill("#hl-reason", "抢劫案嫌疑车辆")
    page.fill("#hl-priority", "5")
    page.fill("#hl-entries", f"plate 粤B12345 银色轿车\nplate 粤B1\n{IMSI}")
    page.click("#hl-create")
    page.wait_for_selector("#hl-error:not(:empty)")
    assert "第 2 行" in page.inner_text("#hl-error")
    page.fill("#hl-entries", f"plate 粤B12345 银色轿车\n{IMSI}")
    # limited to one checkpoint; the past days (the default) are matched on creation
    page.fill("#hl-checkpoints", CP2)
    assert page.query_selector_all("[data-testid=alarm]") == []
    page.click("#hl-create")
    row = page.wait_for_selector("[data-testid=hotlist-row]:has-text('嫌疑车辆')")
    assert row.query_selector("[data-testid=hotlist-state]").get_attribute("data-state") == "active"
    assert PLATE in row.inner_text() and IMSI in row.inner_text() and CASE in row.inner_text()
    assert CP2 in row.query_selector("[data-testid=hotlist-scope]").inner_text()
    # the plate's two past passes at that checkpoint, marked as from the past
    page.wait_for_function("document.querySelectorAll('[data-testid=alarm-retro]').length === 2")
    assert len(page.query_selector_all("[data-testid=alarm]")) == 2

    # a matching pass arrives through the API (as an agent): the alarm shows live, with no reload
    page.evaluate("window.__same_page = true")
    sent = time.monotonic()
    now = dt.datetime.now(dt.UTC)
    _ingest(srv.url, tok["agent"], "passes", [pass_item("ci-live001", "粤B12345", now, CP2)])
    alarm = page.wait_for_selector("[data-testid=alarm]:not(:has([data-testid=alarm-retro]))", timeout=5000)
    latency = time.monotonic() - sent
    print(f"alarm shown {latency:.2f} s after the ingest answered")
    assert page.evaluate("window.__same_page") is True
    text = alarm.inner_text()
    assert PLATE in text and CP2 in text and CASE in text
    assert "inv-new" in (alarm.get_attribute("class") or "")
    shot(page, "investigation-alarm-live")
    # a click on the alarm shows where it was seen
    alarm.click()
    assert page.evaluate("TW.inv.map.layer('alarm') !== null")
    # acknowledged on the page (签收): the verdict, who and the note replace the buttons
    live_id = alarm.get_attribute("data-id")
    alarm.query_selector("[data-testid=alarm-ack-note]").fill("车主已核实 <b>ok</b>")
    alarm.query_selector("[data-testid=alarm-ack-confirmed]").click()
    acked = page.wait_for_selector(f"[data-testid=alarm][data-id='{live_id}'] [data-testid=alarm-ack]")
    assert acked.get_attribute("data-verdict") == "confirmed"
    assert "inv-investigator" in acked.inner_text() and "车主已核实 <b>ok</b>" in acked.inner_text()

    # withdrawn through the page (two clicks, no dialog), with a reason: a later pass raises nothing
    page.fill("#hl-withdraw-reason", "车辆已找回")
    btn = row.query_selector("[data-testid=hotlist-withdraw]")
    btn.click()
    assert btn.inner_text() in ("确认撤控？", "Confirm withdraw?")
    btn.click()
    page.wait_for_selector("[data-testid=hotlist-row] [data-state=revoked]")
    assert "车辆已找回" in page.inner_text("[data-testid=hotlist-row]:has-text('嫌疑车辆')")
    later = dt.datetime.now(dt.UTC)
    _ingest(srv.url, tok["agent"], "passes", [pass_item("ci-live002", "粤B12345", later, CP2)])
    # another investigator's reads do not include this case's alarms; an admin's do
    alarms = httpx.get(f"{srv.url}/api/v1/alarms", headers=auth(tok["checker"]), timeout=10).json()
    assert alarms["items"] == []
    alarms = httpx.get(f"{srv.url}/api/v1/alarms", headers=auth(tok["admin"]), timeout=10).json()
    assert [(a["record_key"], a["retro"]) for a in alarms["items"]] == [
        ("ci-000001", True),
        ("ci-000004", True),
        ("ci-live001", False),
    ]
    assert alarms["items"][2]["ack"]["note"] == "车主已核实 <b>ok</b>"

    # the audit log: every call of the page under the case number
    log = httpx.get(f"{srv.url}/api/v1/audit", headers=auth(tok["admin"]), timeout=10).json()["items"]
    mine = [e for e in log if e["user"] == "inv-investigator"]
    routes = [e["route"] for e in mine]
    for route in (
        "hotlists.list",
        "alarms.stream",
        "alarms.list",
        "trajectories.vehicle",
        "hotlists.create",
        "alarms.ack",
        "hotlists.withdraw",
    ):
        assert route in routes, (route, routes)
    assert {e["case_no"] for e in mine} == {CASE}
    vehicle = [e for e in mine if e["route"] == "trajectories.vehicle"]
    assert [(e["params"]["subject"], e["result_size"]) for e in vehicle] == [
        ("粤B99999", 1),
        (PLATE, 3),
        (PLATE, 2),
    ]
    assert "cursor" not in vehicle[1]["params"] and "cursor" in vehicle[2]["params"]

    # in English, the page's own rows too
    page.click("#tw-lang")
    assert "5 points, 2 trips" in page.inner_text("#inv-summary")
    assert page.inner_text("#inv-alarm-status") == "live"
    assert "withdrawn" in page.inner_text("[data-testid=hotlist-row] [data-testid=hotlist-state]")

    # on a phone screen the page stays within the width
    page.set_viewport_size({"width": 390, "height": 844})
    page.wait_for_timeout(200)
    wide = page.evaluate(
        "Array.from(document.querySelectorAll('body *')).filter(e => e.getBoundingClientRect().right > 391"
        " && e.offsetParent !== null).slice(0, 8).map(e => e.tagName + '#' + e.id + '.' + e.className + ' '"
        " + Math.round(e.getBoundingClientRect().right))"
    )
    assert page.evaluate("document.documentElement.scrollWidth") <= 390, wide
    shot(page, "investigation-phone")


def _fulfil(route: Any, status: int, body: Any) -> None:
    ctype = "application/json" if status < 400 else "application/problem+json"
    route.fulfill(status=status, content_type=ctype, body=json.dumps(body, ensure_ascii=False))


@SQLITE_ONLY
def test_fusion_and_analyses_render_the_contract_and_errors(live_server, page) -> None:  # noqa: F811
    srv, ctx = live_server
    seed(ctx)
    tok = _tokens(ctx)
    t = base_time()
    _seed_records(srv.url, tok["agent"], t)
    seen: dict[str, list[Any]] = {}
    answers: dict[str, tuple[int, Any]] = {}

    def handler(route: Any) -> None:
        req = route.request
        path = req.url.split("?")[0].removeprefix(srv.url)
        seen.setdefault(path, []).append((req.url, req.post_data))
        status, body = answers[path]
        _fulfil(route, status, body)

    page.route(lambda u: "/api/v1/trajectories/fusion" in u or "/api/v1/analysis/" in u, handler)
    login(page, srv.url + "/console/investigation", tok["investigator"])
    page.fill("#inv-case-no", CASE)
    page.click("#inv-case-submit")
    page.wait_for_selector("#inv-work:not([hidden])")
    page.fill("#inv-subject", PLATE)
    page.fill("#inv-from", _local(page, t - dt.timedelta(hours=1)))
    page.fill("#inv-to", _local(page, t + dt.timedelta(hours=5)))

    # fusion: associations ranked by score, evidence expandable, one drawn from its real trajectory
    # (the shapes of platform/analyses/fusion.py: sightings {kind, id, ts, key, <sensor>, lon, lat})
    cp1, f1 = CHECKPOINTS[CP1], FENCES["F-NS-01"]

    def sighting(kind: str, sid: str, sensor: tuple[str, str], where: tuple[float, float]) -> dict[str, Any]:
        return {
            "kind": kind,
            "id": sid,
            "ts": t.isoformat(),
            "key": "k",
            sensor[0]: sensor[1],
            "lon": where[0],
            "lat": where[1],
        }

    car = sighting("vehicle", PLATE, ("checkpoint_id", CP1), cp1)
    phone = sighting("phone", IMSI, ("fence_id", "F-NS-01"), f1)
    answers["/api/v1/trajectories/fusion"] = (
        200,
        {
            "subject": {"kind": "vehicle", "id": PLATE, "plate_no": PLATE, "sightings": 5},
            "associations": [
                {
                    "kind": "phone",
                    "id": IMSI,
                    "score": 0.42,
                    "co_occurrences": 2,
                    "sites": 2,
                    "days": 1,
                    "evidence": [
                        {"subject": car, "other": phone, "distance_m": 157.3, "dt_s": 12.0, "weight": 0.8},
                        {
                            "ts": t.isoformat(),
                            "checkpoint_id": CP3,
                            "note": "a shape the page did not expect",
                        },
                    ],
                },
                {"kind": "person", "id": "P-7", "score": 0.91, "co_occurrences": 5, "evidence": []},
            ],
            "timeline": [car, phone],
        },
    )
    page.click("#inv-fusion-run")
    page.wait_for_selector("[data-testid=fusion-assoc]")
    items = page.query_selector_all("[data-testid=fusion-assoc]")
    assert [i.get_attribute("data-id") for i in items] == ["P-7", IMSI]
    url = seen["/api/v1/trajectories/fusion"][0][0]
    q = httpx.URL(url).params
    assert (q["plate_no"], q["case_no"]) == (PLATE, CASE) and q["from"] and q["to"]
    assert page.is_hidden(f"[data-id='{IMSI}'] [data-testid=fusion-evidence]")
    items[1].query_selector("summary").click()
    ev = items[1].query_selector_all("[data-testid=fusion-evidence]")
    assert len(ev) == 2 and ev[0].is_visible()
    assert CP1 in ev[0].inner_text() and "F-NS-01" in ev[0].inner_text() and "157.3 m" in ev[0].inner_text()
    assert CP3 in ev[1].inner_text() and "a shape the page did not expect" in ev[1].inner_text()
    items[1].query_selector("[data-testid=fusion-draw]").click()
    page.wait_for_function(f"() => TW.inv.map.layer('assoc:phone:{IMSI}') !== null")
    drawn = page.evaluate(
        "name => { const l = TW.inv.map.layer(name).getLayers();"
        " return [l.length, l.map(x => x.options.color)]; }",
        f"assoc:phone:{IMSI}",
    )
    assert drawn[0] == len(FENCES) + 1  # a line through the two fences and one marker per sighting
    assert "#0b5cad" not in drawn[1] and len(set(drawn[1])) == 1
    swatch = page.query_selector(f"[data-id='{IMSI}'] [data-testid=fusion-swatch]")
    assert swatch.evaluate("e => e.style.background") != ""
    assert ev[0].is_visible()  # drawing did not fold the evidence opened
    assert "(2)" in page.inner_text("#inv-fusion-timeline summary")
    assert "人员" in items[0].inner_text() and "0.91" in items[0].inner_text()
    page.wait_for_timeout(300)  # the map's zoom animation, for a clean picture
    shot(page, "investigation-fusion")
    # not there (404) or refused (422): one readable line
    answers["/api/v1/trajectories/fusion"] = (
        404,
        {"type": "about:blank", "title": "Not Found", "status": 404, "detail": "Not Found"},
    )
    page.click("#inv-fusion-run")
    page.wait_for_selector("#inv-fusion-error:not(:empty)")
    assert "暂不可用" in page.inner_text("#inv-fusion-error")
    assert page.query_selector_all("[data-testid=fusion-assoc]") == []
    answers["/api/v1/trajectories/fusion"] = (
        422,
        {
            "title": "Invalid",
            "status": 422,
            "detail": "window too long",
            "errors": [{"field": "to", "message": "at most 31 days"}],
        },
    )
    page.click("#inv-fusion-run")
    page.wait_for_function(
        "() => document.querySelector('#inv-fusion-error').textContent.includes('31 days')"
    )
    assert "window too long" in page.inner_text("#inv-fusion-error")

    # analyses: a list answer, a {params, items} answer, an error, and a collision with two windows
    answers["/api/v1/analysis/cloned-plates"] = (
        200,
        [
            {
                "plate_no": "粤B77777",
                "a": {"checkpoint_id": CP1, "ts": t.isoformat(), "lon": cp1[0], "lat": cp1[1]},
                "b": {
                    "checkpoint_id": CP3,
                    "ts": t.isoformat(),
                    "lon": CHECKPOINTS[CP3][0],
                    "lat": CHECKPOINTS[CP3][1],
                },
                "distance_m": 2051.2,
                "seconds": 20,
                "implied_speed_kmh": 369.2,
            }
        ],
    )
    page.select_option("#inv-an-kind", "cloned")
    page.fill("#inv-an-speed", "150")
    page.click("#inv-an-run")
    page.wait_for_selector("[data-testid=analysis-row]")
    head = page.inner_text("#inv-an-result thead")
    assert "plate_no" in head and "implied_speed_kmh" in head
    assert "粤B77777" in page.inner_text("#inv-an-result tbody") and "369.2" in page.inner_text(
        "#inv-an-result tbody"
    )
    assert page.evaluate("TW.inv.map.layer('analysis') !== null")
    q = httpx.URL(seen["/api/v1/analysis/cloned-plates"][0][0]).params
    assert (q["max_speed_kmh"], q["case_no"]) == ("150", CASE)

    answers["/api/v1/analysis/companions"] = (
        200,
        {
            "params": {"plate_no": PLATE, "window_s": 60, "min_sites": 3},
            "items": [
                {"plate_no": "粤B22222", "sites": [CP1, CP2, CP3], "co_occurrences": 3},
                {"plate_no": "粤B33333", "sites": [CP1, CP2, CP3], "co_occurrences": 3},
            ],
        },
    )
    page.select_option("#inv-an-kind", "companions")
    assert page.input_value("#inv-an-subject") == ""  # no trajectory searched in this test
    page.fill("#inv-an-subject", PLATE)
    page.click("#inv-an-run")
    page.wait_for_function("() => document.querySelectorAll('[data-testid=analysis-row]').length === 2")
    assert "粤B33333" in page.inner_text("#inv-an-result")
    q = httpx.URL(seen["/api/v1/analysis/companions"][0][0]).params
    assert (q["plate_no"], q["window_s"], q["min_sites"], q["case_no"]) == (PLATE, "60", "3", CASE)

    answers["/api/v1/analysis/stay-points"] = (
        404,
        {"title": "Not Found", "status": 404, "detail": "Not Found"},
    )
    page.select_option("#inv-an-kind", "stay")
    page.select_option("#inv-an-skind", "phone")
    page.fill("#inv-an-subject", IMSI)
    page.click("#inv-an-run")
    page.wait_for_selector("#inv-an-error:not(:empty)")
    assert "暂不可用" in page.inner_text("#inv-an-error")
    assert page.query_selector_all("[data-testid=analysis-row]") == []
    assert httpx.URL(seen["/api/v1/analysis/stay-points"][0][0]).params["imsi"] == IMSI
    # the shape of platform/analyses/staypoints.py: a place per row, drawn on the map
    place = {
        "lon": f1[0],
        "lat": f1[1],
        "radius_m": 40.0,
        "nights": 3,
        "sensors": [{"id": "F-NS-01", "nights": 3}],
    }
    answers["/api/v1/analysis/stay-points"] = (
        200,
        {"params": {"kind": "phone"}, "items": [place], "clusters": 1},
    )
    page.select_option("#inv-an-skind", "person")
    page.fill("#inv-an-subject", "P-7")
    page.click("#inv-an-run")
    page.wait_for_selector("[data-testid=analysis-row]")
    assert "F-NS-01" in page.inner_text("#inv-an-result tbody") and page.inner_text("#inv-an-error") == ""
    assert page.evaluate("TW.inv.map.count('analysis')") == 1
    assert httpx.URL(seen["/api/v1/analysis/stay-points"][1][0]).params["person_id"] == "P-7"

    answers["/api/v1/analysis/collision"] = (200, {"ids": [PLATE]})
    page.select_option("#inv-an-kind", "collision")
    wins = page.query_selector_all("[data-testid=window]")
    assert len(wins) == 2
    wins[0].query_selector("[data-testid=window-ids]").fill(f"{CP1}, {CP2}")
    wins[1].query_selector("[data-testid=window-rect]").click()
    box = page.query_selector("#inv-map").bounding_box()
    page.mouse.click(box["x"] + box["width"] * 0.3, box["y"] + box["height"] * 0.4)
    page.mouse.click(box["x"] + box["width"] * 0.5, box["y"] + box["height"] * 0.7)
    assert "inv-set" in (wins[1].query_selector("[data-testid=window-rect]").get_attribute("class") or "")
    page.click("#inv-an-run")
    # the stay-point answer above had one row too: wait for this answer's own row
    page.wait_for_function(
        "p => { const rows = document.querySelectorAll('[data-testid=analysis-row]');"
        " return rows.length === 1 && rows[0].innerText.includes(p); }",
        arg=PLATE,
    )
    url, body = seen["/api/v1/analysis/collision"][0]
    assert httpx.URL(url).params["case_no"] == CASE
    sent = json.loads(body)
    assert sent["kind"] == "vehicle" and len(sent["windows"]) == 2
    assert sent["windows"][0]["checkpoint_ids"] == [CP1, CP2]
    assert sent["windows"][1]["area"]["type"] == "Polygon"
    ring = sent["windows"][1]["area"]["coordinates"][0]
    assert len(ring) == 5 and ring[0] == ring[-1] and ring[0][0] < ring[2][0] and ring[0][1] < ring[2][1]
    assert all(w["from"] < w["to"] for w in sent["windows"])
    shot(page, "investigation-analyses")


def test_hotlist_list_is_newest_first_filtered_paginated_and_audited(
    client: TestClient, ctx: AppContext, tokens: dict[str, str]
) -> None:
    """GET /api/v1/hotlists (the page's list): both databases."""
    t = base_time()
    with ctx.db.session() as s:
        other = create_token(s, "investigator", "other-officer")

    def make(token: str, case: str, entries: list[dict[str, str]], days: tuple[int, int] = (-1, 3)) -> int:
        body = {
            "name": f"hl-{case}",
            "reason": "test",
            "case_no": case,
            "valid_from": (t + dt.timedelta(days=days[0])).isoformat(),
            "valid_to": (t + dt.timedelta(days=days[1])).isoformat(),
            "priority": 20,
            "entries": entries,
        }
        r = client.post("/api/v1/hotlists", json=body, headers=auth(token))
        assert r.status_code == 201, r.text
        return int(r.json()["id"])

    inv = tokens["investigator"]
    a = make(inv, "C1", [{"plate_no": f"粤B100{i:02d}"} for i in range(12)])
    b = make(other, "C2", [{"imsi": IMSI}])
    c = make(inv, "C1", [{"person_id": "P-1"}])
    d = make(inv, "C3", [{"plate_no": PLATE}], days=(-3, -2))  # expired
    assert (
        client.delete(f"/api/v1/hotlists/{c}", params={"case_no": "C1"}, headers=auth(inv)).status_code == 200
    )

    def ids(**params: Any) -> list[int]:
        r = client.get("/api/v1/hotlists", params={"case_no": "C1", **params}, headers=auth(inv))
        assert r.status_code == 200, r.text
        return [h["id"] for h in r.json()["items"]]

    assert ids() == [d, c, b, a]
    assert ids(only_case="true") == [c, a]
    assert ids(active="true") == [b, a]
    assert ids(active="false") == [d, c]
    assert ids(mine="true") == [d, c, a]
    first = client.get("/api/v1/hotlists", params={"case_no": "C1", "limit": 3}, headers=auth(inv)).json()
    assert [h["id"] for h in first["items"]] == [d, c, b] and first["next_cursor"]
    rest = client.get(
        "/api/v1/hotlists",
        params={"case_no": "C1", "limit": 3, "cursor": first["next_cursor"]},
        headers=auth(inv),
    ).json()
    assert [h["id"] for h in rest["items"]] == [a] and rest["next_cursor"] is None
    big = rest["items"][0]
    assert big["entries_total"] == 12 and [e["value"] for e in big["entries"]] == [
        f"粤B100{i:02d}" for i in range(10)
    ]
    assert big["active"] is True and first["items"][1]["revoked_at"] is not None
    assert client.get("/api/v1/hotlists", headers=auth(inv)).json()["errors"][0]["field"] == "case_no"
    assert (
        client.get("/api/v1/hotlists", params={"case_no": "C1"}, headers=auth(tokens["staff"])).status_code
        == 403
    )
    log = client.get("/api/v1/audit", headers=auth(tokens["admin"])).json()["items"]
    listed = [
        (e["case_no"], e["result_size"])
        for e in log
        if e["route"] == "hotlists.list" and e["outcome"] == "ok"
    ]
    assert [e["reason"][:3] for e in log if e["outcome"] == "refused"] == ["422", "403"]  # refused: audited
    assert listed == [("C1", 4), ("C1", 2), ("C1", 2), ("C1", 2), ("C1", 3), ("C1", 3), ("C1", 1)]


@SQLITE_ONLY
def test_fusion_panel_on_the_real_route_ranks_the_owners_phone_first(live_server, page) -> None:  # noqa: F811
    """No answer served by the browser here: the page asks the API's fusion, which finds the plate's
    phone (heard at two fences beside the car's checkpoints on two days) first, with its evidence."""
    from tests.test_fusion import _scene

    srv, ctx = live_server
    t = _scene(ctx)
    tok = _tokens(ctx)
    login(page, srv.url + "/console/investigation", tok["investigator"])
    page.fill("#inv-case-no", CASE)
    page.click("#inv-case-submit")
    page.wait_for_selector("#inv-work:not([hidden])")
    page.fill("#inv-subject", PLATE)
    page.fill("#inv-from", _local(page, t - dt.timedelta(days=2)))
    page.fill("#inv-to", _local(page, t + dt.timedelta(hours=1)))
    page.click("#inv-fusion-run")
    page.wait_for_selector("[data-testid=fusion-assoc]")
    phones = [
        i.get_attribute("data-id")
        for i in page.query_selector_all("[data-testid=fusion-assoc]")
        if i.get_attribute("data-kind") in (None, "phone") and str(i.get_attribute("data-id")).isdigit()
    ]
    assert phones and phones[0] == "460001111111111", phones
    ids = [i.get_attribute("data-id") for i in page.query_selector_all("[data-testid=fusion-assoc]")]
    assert "460003333333333" not in ids  # at the same fences half an hour off: never with the car
    first = page.query_selector("[data-testid=fusion-assoc][data-id='460001111111111']")
    assert first is not None
    first.query_selector("summary").click()
    ev = first.query_selector_all("[data-testid=fusion-evidence]")
    assert ev and all(e.is_visible() for e in ev)
    shot(page, "investigation-fusion-real")
    r = httpx.get(
        f"{srv.url}/api/v1/audit", params={"limit": 1000}, headers=auth(tok["admin"]), timeout=10
    ).json()
    assert any(a["route"] == "trajectories.fusion" and a["case_no"] == CASE for a in r["items"])


@SQLITE_ONLY
def test_night_active_analysis_from_the_page(live_server, page) -> None:  # noqa: F811
    """The analyses panel on a real route: a plate out at 23:00 local on two nights is night-active
    (昼伏夜出), a plate seen only at noon is not."""
    srv, ctx = live_server
    seed(ctx)
    tok = _tokens(ctx)
    t = base_time()  # noon UTC = 20:00 +08:00
    night = [t - dt.timedelta(days=d) + dt.timedelta(hours=3, minutes=m) for d in (0, 1) for m in (0, 5)]
    passes = [pass_item(f"night-{n:06d}", "粤B7N001", ts, CP1) for n, ts in enumerate(night)]
    passes += [pass_item(f"noon-{d:06d}", "粤B7D002", t - dt.timedelta(days=d, hours=4), CP2) for d in (0, 1)]
    assert _ingest(srv.url, tok["agent"], "passes", passes)["accepted"] == len(passes)
    login(page, srv.url + "/console/investigation", tok["investigator"])
    page.fill("#inv-case-no", CASE)
    page.click("#inv-case-submit")
    page.wait_for_selector("#inv-work:not([hidden])")
    page.select_option("#inv-an-kind", "night")
    page.fill("#inv-an-from", _local(page, t - dt.timedelta(days=3)))
    page.fill("#inv-an-to", _local(page, t + dt.timedelta(hours=12)))
    page.click("#inv-an-run")
    page.wait_for_selector("[data-testid=analysis-row]")
    text = page.inner_text("[data-testid=analysis-result]")
    assert "粤B7N001" in text and "粤B7D002" not in text
    shot(page, "investigation-night-active")
