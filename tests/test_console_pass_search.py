"""The investigation page's pass search panel (过车查询) in a real browser against the live API: a
partial plate with look-alikes gives the API's answer in the table and on the map, pages follow
next_cursor, the export downloads the same passes, a bad pattern shows the API's reason, and every
call is audited under the case number."""

from __future__ import annotations

import csv
import datetime as dt
import io
from typing import Any

import httpx
import pytest

from tests.browser_support import browser, login, page, shot  # noqa: F401  (fixtures)
from tests.conftest import auth
from tests.sightings_support import CP1, CP2, CP3, base_time, pass_item, seed
from tianwang.auth.tokens import create_token

SQLITE_ONLY = pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
CASE = "A4403052026120077"
# the plate, two misreads of it, a plate that only looks like the pattern's shape, and others
PLATES = ["粤B10380", "粤B1O38O", "粤BI0380", "粤B10381", "粤B20380", "粤C10380", "粤B19999"]


@SQLITE_ONLY
def test_pass_search_panel(live_server, page, tmp_path) -> None:  # noqa: F811
    srv, ctx = live_server
    seed(ctx)
    with ctx.db.session() as s:
        tok = {r: create_token(s, r, f"ps-{r}") for r in ("investigator", "agent", "admin")}
    t = base_time()
    items = [
        pass_item(f"psc-{i:05d}", p, t + dt.timedelta(minutes=i), [CP1, CP2, CP3][i % 3])
        for i, p in enumerate(PLATES * 3)
    ]
    r = httpx.post(
        f"{srv.url}/api/v1/ingest/passes", json={"items": items}, headers=auth(tok["agent"]), timeout=10
    )
    assert r.status_code == 200 and r.json()["accepted"] == len(items), r.text

    login(page, srv.url + "/console/investigation", tok["investigator"])
    page.wait_for_selector("#inv-case-gate:not([hidden])")
    page.fill("#inv-case-no", CASE)
    page.click("#inv-case-submit")
    page.wait_for_selector("#inv-work:not([hidden])")
    local = lambda when: page.evaluate("iso => TW.toLocalInput(new Date(iso))", when.isoformat())  # noqa: E731
    page.fill("#ps-from", local(t - dt.timedelta(hours=1)))
    page.fill("#ps-to", local(t + dt.timedelta(hours=2)))

    # a bad pattern: the API's reason, nothing drawn
    page.fill("#ps-plate", "粤B1%")
    page.click("#ps-run")
    page.wait_for_selector("#ps-error:not(:empty)")
    assert "plate" in page.inner_text("#ps-error")

    page.fill("#ps-plate", "粤B1?38*")
    page.check("#ps-lookalike")
    page.click("#ps-run")
    page.wait_for_selector("[data-testid=pass-search] tbody tr")
    frm = page.evaluate("v => new Date(v).toISOString()", page.input_value("#ps-from"))
    to = page.evaluate("v => new Date(v).toISOString()", page.input_value("#ps-to"))
    api = httpx.get(
        f"{srv.url}/api/v1/passes",
        params={
            "plate": "粤B1?38*",
            "lookalike": "true",
            "from": frm,
            "to": to,
            "case_no": CASE,
            "limit": 1000,
        },
        headers=auth(tok["investigator"]),
        timeout=10,
    ).json()
    want = {it["key"] for it in api["items"]}
    # the plate and both misreads (O for 0, I for 1), three passes each; never 粤B20380 or 粤C10380
    assert {it["plate_no"] for it in api["items"]} == {"粤B10380", "粤B1O38O", "粤BI0380", "粤B10381"}
    rows = page.query_selector_all("[data-testid=pass-search] tbody tr")
    assert {r.get_attribute("data-key") for r in rows} == want
    assert page.evaluate("TW.inv.map.count('passes')") == len(want)
    assert str(len(want)) in page.inner_text("#ps-summary")
    shot(page, "investigation-pass-search")

    # the export: the same passes, downloaded with the token
    with page.expect_download() as dl:
        page.click("#ps-export")
    path = tmp_path / "passes.csv"
    dl.value.save_as(path)
    table = list(csv.DictReader(io.StringIO(path.read_text(encoding="utf-8-sig"))))
    assert {row["key"] for row in table} == want

    # audited: the searches and the export, under the case number
    log = httpx.get(f"{srv.url}/api/v1/audit", headers=auth(tok["admin"]), timeout=10).json()["items"]
    mine: list[dict[str, Any]] = [
        e for e in log if e["user"] == "ps-investigator" and e["route"].startswith("passes.")
    ]
    assert {e["route"] for e in mine} == {"passes.search", "passes.export"}
    assert {e["case_no"] for e in mine} == {CASE}
