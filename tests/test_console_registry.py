"""The registry page in a real browser: search and filter, edit (with the password rule), delete,
the checkpoint list, import of a CSV with its per-row report, export as a download."""

from __future__ import annotations

import csv
import io
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.browser_support import browser, login, page, shot  # noqa: F401  (fixtures)
from tests.conftest import auth
from tianwang.auth.tokens import create_token

pytestmark = pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)

EAST, WEST, AIRPORT, NEW = (
    "44030500001320000001",
    "44030500001320000002",
    "44030600001320000003",
    "44030500001320000010",
)
CHECKPOINT = "44030500001210000009"
# a Chinese sheet's headers (platform/cameras/bulk.py COLUMNS)
HEADER = [
    "设备编码",
    "设备名称",
    "设备类型",
    "经度",
    "纬度",
    "监视方向",
    "水平视场角",
    "监视距离",
    "点位类型",
]


def camera(device_id: str, name: str, kind: str, **more: Any) -> dict[str, Any]:
    return {
        "device_id": device_id,
        "name": name,
        "kind": kind,
        "lon": 113.95,
        "lat": 22.54,
        "heading_deg": 90,
        "hfov_deg": 60,
        "range_m": 50,
        "point_class": 2,
        **more,
    }


def rows(p: Any) -> list[str]:
    return [r.get_attribute("data-id") for r in p.query_selector_all("#rg-table tbody tr[data-id]")]


def wait_rows(p: Any, ids: list[str]) -> None:
    want = sorted(ids)
    p.wait_for_function(
        "want => JSON.stringify(Array.from(document.querySelectorAll('#rg-table tbody tr[data-id]'))"
        ".map(r => r.dataset.id).sort()) === JSON.stringify(want)",
        arg=want,
    )


def test_registry_search_edit_delete_import_export(live_server: Any, page: Any) -> None:  # noqa: F811
    srv, ctx = live_server
    with ctx.db.session() as s:
        staff = create_token(s, "staff", "browser-staff")
    api = httpx.Client(base_url=srv.url, headers=auth(staff))
    try:
        onvif = {"host": "10.0.0.2", "port": 80, "username": "admin", "password": "s3cret-pw"}
        for body in (
            camera(EAST, "科技园东门", "bullet", address="科技南路 1 号"),
            camera(WEST, "科技园西门", "dome", onvif=onvif),
            camera(AIRPORT, "机场 T3", "ptz"),
        ):
            assert api.post("/api/v1/cameras", json=body).status_code == 201
        cp = {"checkpoint_id": CHECKPOINT, "name": "深南大道卡口", "lon": 113.96, "lat": 22.54}
        lanes = [{"lane_no": 1, "city_pass": 1, "speed_limit_kmh": 60}, {"lane_no": 2, "city_pass": 2}]
        extra = {"tollgate_type": "30", "tollgate_use": "81", "lane_list": lanes}
        r = api.post(
            "/api/v1/checkpoints", json={**cp, "direction_deg": 90, "lanes": 4, "road": "深南大道", **extra}
        )
        assert r.status_code == 201, r.text

        login(page, srv.url + "/console/registry", staff)
        wait_rows(page, [EAST, WEST, AIRPORT])
        page.wait_for_selector(f"#rg-checkpoints tbody tr[data-id='{CHECKPOINT}']")
        assert "深南大道" in page.inner_text("#rg-checkpoints")
        row = page.inner_text(f"#rg-checkpoints tbody tr[data-id='{CHECKPOINT}']")
        assert "市际 / 交通" in row and "1 进城 60 km/h · 2 出城" in row  # GA/T 1400 type, use, lanes
        shot(page, "registry-list")

        # search by name, then by code; filter by area and by kind
        page.fill("#rg-q", "西门")
        page.click("#rg-search")
        wait_rows(page, [WEST])
        page.fill("#rg-q", "13200000")  # a piece of every code
        page.fill("#rg-area", "440306")
        page.click("#rg-search")
        wait_rows(page, [AIRPORT])
        page.fill("#rg-area", "")
        page.select_option("#rg-kind", "dome")
        wait_rows(page, [WEST])
        page.select_option("#rg-kind", "")
        page.fill("#rg-q", "")
        page.click("#rg-search")
        wait_rows(page, [EAST, WEST, AIRPORT])

        # edit: open the row, the password is never shown, only that one is stored
        page.click(f"#rg-table tbody tr[data-id='{WEST}']")
        page.wait_for_selector("#rg-edit:not([hidden])")
        assert page.inner_text("#rg-edit-id") == WEST
        assert page.input_value("#rg-e-name") == "科技园西门"
        assert page.input_value("#rg-e-onvif-password") == ""
        assert "s3cret-pw" not in page.content()
        page.fill("#rg-e-name", "科技园西门（新）")
        page.fill("#rg-e-address", "科技南路 9 号")
        page.click("#rg-save")
        page.wait_for_selector("#rg-edit-saved:not(:empty)")
        got = api.get(f"/api/v1/cameras/{WEST}").json()
        assert (got["name"], got["address"]) == ("科技园西门（新）", "科技南路 9 号")
        assert got["onvif"] == {
            "host": "10.0.0.2",
            "port": 80,
            "username": "admin",
            "has_password": True,
            "trust_device_addresses": False,
        }
        page.wait_for_function(
            "id => document.querySelector(`#rg-table tr[data-id='${id}']`).textContent.includes('新')",
            arg=WEST,
        )

        # moving the device to another address without repeating the password is refused, beside the field
        page.fill("#rg-e-onvif-host", "10.0.0.99")
        assert "密码" in page.inner_text("#rg-e-password-hint")
        page.click("#rg-save")
        page.wait_for_selector(".tw-field-error[data-field='onvif.password']:not(:empty)")
        assert api.get(f"/api/v1/cameras/{WEST}").json()["onvif"]["host"] == "10.0.0.2"
        shot(page, "registry-edit-password-rule")
        page.fill("#rg-e-onvif-password", "new-pw")
        page.click("#rg-save")
        page.wait_for_selector("#rg-edit-saved:not(:empty)")
        got = api.get(f"/api/v1/cameras/{WEST}").json()
        assert got["onvif"]["host"] == "10.0.0.99" and got["onvif"]["has_password"] is True
        assert page.input_value("#rg-e-onvif-password") == ""

        # delete, after a confirmation
        page.click(f"#rg-table tbody tr[data-id='{AIRPORT}']")
        page.wait_for_function("id => document.getElementById('rg-edit-id').textContent === id", arg=AIRPORT)
        page.once("dialog", lambda d: d.accept())
        page.click("#rg-delete")
        wait_rows(page, [EAST, WEST])
        assert api.get(f"/api/v1/cameras/{AIRPORT}").status_code == 404

        # import: one good row, one with a bad code; the report names the bad row and why
        sheet = io.StringIO()
        w = csv.writer(sheet)
        w.writerow(HEADER)
        w.writerow([NEW, "留仙洞北", "枪机", "113.93", "22.58", "180", "70", "60", "三类"])
        w.writerow(["12345", "坏编码", "枪机", "113.93", "22.58", "180", "70", "60", "三类"])
        page.set_input_files(
            "#rg-import-file",
            files=[{"name": "cameras.csv", "mimeType": "text/csv", "buffer": sheet.getvalue().encode()}],
        )
        page.click("#rg-import")
        summary = page.wait_for_selector("#rg-import-summary")
        assert summary.get_attribute("data-created") == "1" and summary.get_attribute("data-rejected") == "1"
        assert summary.get_attribute("data-written") == "true"
        bad = page.wait_for_selector("#rg-import-rejected tbody tr[data-row='3']")
        assert "12345" in bad.inner_text() and "20" in bad.inner_text()
        wait_rows(page, [EAST, WEST, NEW])
        imported = api.get(f"/api/v1/cameras/{NEW}").json()
        assert (imported["name"], imported["heading_deg"], imported["point_class"]) == ("留仙洞北", 180, 3)
        shot(page, "registry-import")

        # export what the kind filter selects, as a download through the token
        page.select_option("#rg-kind", "bullet")
        wait_rows(page, [EAST, NEW])
        with page.expect_download() as dl:
            page.click("#rg-export")
        download = dl.value
        name = download.suggested_filename
        assert name.startswith("cameras-") and name.endswith(".csv")
        text = Path(download.path()).read_text(encoding="utf-8-sig")
        exported = {r["设备编码"] for r in csv.DictReader(io.StringIO(text))}
        assert exported == {EAST, NEW}
        assert "s3cret-pw" not in text and "new-pw" not in text
        page.wait_for_selector("#rg-export-status:not(:empty)")
        assert name in page.inner_text("#rg-export-status")

        # the labels follow the language switch, the rows with them
        page.click("#tw-lang")
        assert page.inner_text("#rg-search") == "Search"
        page.wait_for_function(
            "() => document.querySelector('#rg-table tbody tr td:nth-child(3)').textContent === 'bullet'"
        )
    finally:
        api.close()
