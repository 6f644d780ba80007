"""Bulk import/export of the camera registry (CSV, XLSX) on SQLite and PostgreSQL: library, API and CLI."""

from __future__ import annotations

import csv
import datetime as dt
import io
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import openpyxl
import pytest
from cryptography.fernet import Fernet
from fastapi.testclient import TestClient
from hypothesis import given
from hypothesis import strategies as st
from sqlalchemy import Engine, func, select
from typer.testing import CliRunner

from tests.conftest import auth
from tianwang.auth.secrets_box import SecretBox
from tianwang.cameras import bulk
from tianwang.cameras.service import spec_of
from tianwang.cli import app as cli_app
from tianwang.config import get_settings
from tianwang.context import AppContext
from tianwang.errors import PayloadTooLarge, ValidationFailed
from tianwang.storage.db import make_engine
from tianwang.storage.models import Camera

MB = 10 * 1024 * 1024
ZH = {c.key: c.zh for c in bulk.COLUMNS}
FIELDS = [
    "device_id", "name", "kind", "lon", "lat", "heading_deg", "hfov_deg", "range_m", "point_class",
    "address", "police_station", "install_time", "supply_light_type", "room_type", "onvif_host",
    "onvif_port", "onvif_username", "onvif_password", "lifecycle",
]  # fmt: skip
# sheet rows (header = row 1) of the bad rows in `bad_sheet`, and the field each one is refused for
BAD_ROWS = {12: "device_id", 22: "device_id", 32: "lon", 42: "name", 52: "device_id", 62: "device_id"}


def did(i: int) -> str:
    return f"44030500001320{i:06d}"  # Shenzhen Futian, road, IP camera (132), serial i


def cam(i: int, zh: bool = True) -> dict[str, Any]:
    return {
        "device_id": did(i),
        "name": f"福田测试点位{i}" if zh else f"camera {i}",
        "kind": ("枪机", "球机", "半球")[i % 3] if zh else ("bullet", "ptz", "dome")[i % 3],
        "lon": round(114.0 + i * 1e-4, 6),
        "lat": round(22.5 + i * 1e-4, 6),
        "heading_deg": float(i % 360),
        "hfov_deg": 60.0,
        "range_m": 80.0,
        "point_class": ("一类", "二类", "三类")[i % 3] if zh else 1 + i % 3,
        "address": f"深圳市福田区测试路{i}号",
        "police_station": "福田派出所",
        "install_time": "2024-05-01 08:00:00",
        "supply_light_type": "红外补光" if zh else 2,
        "room_type": "室外" if zh else 1,
        "onvif_host": f"10.0.{i // 250}.{i % 250 + 1}",
        "onvif_port": 80,
        "onvif_username": "admin",
        "onvif_password": f"pw-secret-{i}",
        "lifecycle": "在用" if zh else "in_use",
    }


def bad_sheet(n: int = 1000) -> list[dict[str, Any]]:
    rows = [cam(i) for i in range(n)]
    rows[10]["device_id"] = "4403050000132000001"  # 19 digits
    rows[20]["kind"] = "卡口"  # a checkpoint needs type code 121, the id says 132
    rows[30]["lon"] = 200
    rows[40]["name"] = ""
    rows[60]["device_id"] = rows[50]["device_id"]  # the same camera twice: ambiguous
    return rows


def csv_bytes(rows: list[dict[str, Any]], lang: str = "zh", encoding: str = "utf-8-sig") -> bytes:
    buf = io.StringIO()
    keys = list(rows[0])
    w = csv.writer(buf)
    w.writerow([ZH.get(k, k) if lang == "zh" else k for k in keys])
    for r in rows:
        w.writerow(["" if r[k] is None else r[k] for k in keys])
    return buf.getvalue().encode(encoding)


def xlsx_bytes(rows: list[dict[str, Any]], lang: str = "zh") -> bytes:
    wb = openpyxl.Workbook()
    ws = wb.active
    assert ws is not None
    keys = list(rows[0])
    ws.append([ZH.get(k, k) if lang == "zh" else k for k in keys])
    for r in rows:
        ws.append([r[k] for k in keys])
    out = io.BytesIO()
    wb.save(out)
    return out.getvalue()


@pytest.fixture
def engine(db_url: str) -> Iterator[Engine]:
    e = make_engine(db_url)
    yield e
    e.dispose()


@pytest.fixture
def box() -> SecretBox:
    return SecretBox(Fernet.generate_key())


def run(
    engine: Engine, box: SecretBox, data: bytes, filename: str = "cams.csv", **kw: Any
) -> bulk.ImportReport:
    return bulk.import_cameras(engine, io.BytesIO(data), box, filename=filename, max_bytes=MB, **kw)


def count(engine: Engine) -> int:
    with engine.connect() as c:
        return int(c.scalar(select(func.count()).select_from(Camera)) or 0)


def stored(engine: Engine) -> dict[str, tuple[dict[str, Any], bytes | None]]:
    """Every camera's user-settable record and its encrypted password."""
    with engine.connect() as c:
        rows = c.execute(select(Camera.__table__)).all()
    return {r.device_id: (spec_of(r), r.onvif_password_enc) for r in rows}  # type: ignore[arg-type]


def rejected_fields(report: bulk.ImportReport) -> dict[int, set[str]]:
    return {r.row: {e.field for e in r.errors} for r in report.rejected}


# ---------------------------------------------------------------- importing


def test_1000_rows_with_bad_rows_gives_the_exact_report(engine: Engine, box: SecretBox) -> None:
    data = csv_bytes(bad_sheet())
    report = run(engine, box, data)
    assert (report.rows, report.created, report.updated, report.unchanged) == (1000, 994, 0, 0)
    assert report.written and not report.dry_run and report.warnings == []
    assert {row: fields for row, fields in rejected_fields(report).items()} == {
        row: {field} for row, field in BAD_ROWS.items()
    }
    by_row = {r.row: r for r in report.rejected}
    assert "20 digits" in by_row[12].errors[0].message
    assert "121" in by_row[22].errors[0].message  # type code vs kind
    assert "rows 52, 62" in by_row[52].errors[0].message and by_row[62].device_id == did(50)
    assert count(engine) == 994
    text = report.model_dump_json()
    assert "pw-secret" not in text
    with engine.connect() as c:
        row = c.execute(select(Camera.__table__).where(Camera.device_id == did(7))).one()
        assert not c.scalar(select(func.count()).where(Camera.device_id.in_([did(50), did(60)])))
    assert (row.kind, row.point_class, row.supply_light_type, row.room_type) == ("ptz", 2, 2, 1)
    assert row.install_time == dt.datetime(2024, 5, 1, 0, 0, tzinfo=dt.UTC)  # read as +08:00
    assert row.status == "registered" and row.lifecycle == "in_use" and row.area_code == "440305"
    assert box.decrypt(row.onvif_password_enc) == "pw-secret-7"


def test_dry_run_writes_nothing(engine: Engine, box: SecretBox) -> None:
    report = run(engine, box, csv_bytes(bad_sheet()), dry_run=True)
    assert (report.created, len(report.rejected), report.dry_run, report.written) == (994, 6, True, False)
    assert count(engine) == 0
    # a dry run against a filled registry reports updates, and still changes nothing
    run(engine, box, csv_bytes([cam(i) for i in range(5)]))
    before = stored(engine)
    again = run(engine, box, csv_bytes([cam(i) | {"name": "renamed"} for i in range(8)]), dry_run=True)
    assert (again.created, again.updated, again.written) == (3, 5, False)
    assert stored(engine) == before


def test_all_or_nothing_writes_nothing_if_a_row_is_bad(engine: Engine, box: SecretBox) -> None:
    report = run(engine, box, csv_bytes(bad_sheet()), all_or_nothing=True)
    assert not report.written and len(report.rejected) == 6
    assert count(engine) == 0
    good = run(engine, box, csv_bytes([cam(i) for i in range(50)]), all_or_nothing=True)
    assert good.written and good.created == 50 and count(engine) == 50


def test_a_bad_file_never_loses_what_is_stored(engine: Engine, box: SecretBox) -> None:
    run(engine, box, csv_bytes([cam(i) for i in range(20)]))
    before = stored(engine)
    rows = [cam(i) | {"name": f"new {i}"} for i in range(20)]
    rows[3]["lat"] = 95  # bad row: its stored record must stay as it was
    report = run(engine, box, csv_bytes(rows))
    assert report.updated == 19 and rejected_fields(report) == {5: {"lat"}}
    after = stored(engine)
    assert after[did(3)] == before[did(3)]
    assert after[did(4)][0]["name"] == "new 4"


def test_reimport_updates_and_keeps_passwords(engine: Engine, box: SecretBox) -> None:
    assert run(engine, box, csv_bytes([cam(i) for i in range(100)])).created == 100
    rows = [cam(i) | {"onvif_password": ""} for i in range(100)]  # empty cells keep the stored password
    for i in range(10):
        rows[i]["name"] = f"改名{i}"
    rows.append(cam(100))
    report = run(engine, box, csv_bytes(rows))
    assert (report.created, report.updated, report.unchanged, report.rejected) == (1, 10, 90, [])
    with engine.connect() as c:
        got = {r.device_id: r for r in c.execute(select(Camera.__table__))}
    assert got[did(3)].name == "改名3" and got[did(30)].name == "福田测试点位30"
    assert box.decrypt(got[did(3)].onvif_password_enc) == "pw-secret-3"
    # no password column at all: also kept; a new password replaces the old one
    rows = [{k: v for k, v in cam(i).items() if k != "onvif_password"} for i in range(10, 13)]
    assert run(engine, box, csv_bytes(rows)).unchanged == 3
    run(engine, box, csv_bytes([cam(0) | {"onvif_password": "new-pw"}]))
    with engine.connect() as c:
        enc = c.scalar(select(Camera.onvif_password_enc).where(Camera.device_id == did(0)))
    assert box.decrypt(enc) == "new-pw"  # type: ignore[arg-type]


def test_a_moved_address_needs_the_password_again(engine: Engine, box: SecretBox) -> None:
    run(engine, box, csv_bytes([cam(1), cam(2)]))
    moved = [cam(1) | {"onvif_host": "10.9.9.9", "onvif_password": ""}, cam(2) | {"onvif_host": "10.9.9.8"}]
    report = run(engine, box, csv_bytes(moved))
    assert rejected_fields(report) == {2: {"onvif_password"}} and report.updated == 1
    with engine.connect() as c:
        hosts = dict(c.execute(select(Camera.device_id, Camera.onvif_host)).all())
    assert hosts[did(1)] == "10.0.0.2" and hosts[did(2)] == "10.9.9.8"


def test_heading_change_moves_a_derived_direction(engine: Engine, box: SecretBox) -> None:
    run(engine, box, csv_bytes([cam(90)]))  # heading 90 → east
    run(engine, box, csv_bytes([cam(90) | {"heading_deg": 180.0}]))
    with engine.connect() as c:
        assert c.scalar(select(Camera.direction_type).where(Camera.device_id == did(90))) == 3  # south


def test_english_headers_and_xlsx(engine: Engine, box: SecretBox) -> None:
    rows = [cam(i, zh=False) for i in range(200)]
    report = run(engine, box, xlsx_bytes(rows, "en"), "cams.xlsx")
    assert (report.created, report.rejected) == (200, [])
    zh_rows = bad_sheet(100)
    report = run(engine, box, xlsx_bytes(zh_rows, "zh"), "台账.xlsx")
    assert report.updated == 94 and rejected_fields(report) == {r: {f} for r, f in BAD_ROWS.items()}
    with engine.connect() as c:
        row = c.execute(select(Camera.__table__).where(Camera.device_id == did(4))).one()
    assert (row.kind, row.point_class, row.name) == ("ptz", 2, "福田测试点位4")


def test_gb18030_csv_full_width_headers_and_unknown_columns(engine: Engine, box: SecretBox) -> None:
    rows = [cam(i) | {"remark": "备注"} for i in range(30)]
    data = csv_bytes(rows, encoding="gb18030")
    # headers as people type them: full-width parentheses and units, spaces, stars, other case
    data = data.replace("监视距离".encode("gb18030"), "监视距离（米）".encode("gb18030"), 1)
    data = data.replace("设备编码".encode("gb18030"), " *设备编码 ".encode("gb18030"), 1)
    data = data.replace(b"remark", "备注信息".encode("gb18030"), 1)
    with pytest.raises(UnicodeDecodeError):
        data.decode("utf-8")
    report = run(engine, box, data)
    assert (report.created, report.rejected) == (30, [])
    assert report.warnings == ["unknown column '备注信息' ignored"]
    with engine.connect() as c:
        assert c.scalar(select(Camera.police_station).where(Camera.device_id == did(1))) == "福田派出所"
    eng = "Device ID,NAME,Kind,Lon,Lat,Heading_Deg,HFOV_deg,range_m,point_class\n"
    eng += f"{did(500)},x,Bullet,１１４．０５,22.5,0,60,80,1\n"  # full-width digits folded
    assert run(engine, box, eng.encode()).created == 1


def test_missing_required_columns_reject_the_whole_file(engine: Engine, box: SecretBox) -> None:
    rows = [{k: v for k, v in cam(i).items() if k not in ("lon", "range_m")} for i in range(5)]
    with pytest.raises(ValidationFailed) as e:
        run(engine, box, csv_bytes(rows))
    assert "经度 (lon)" in e.value.detail and "监视距离 (range_m)" in e.value.detail
    assert {x["field"] for x in e.value.errors} == {"lon", "range_m"}
    with pytest.raises(ValidationFailed, match="both mean lon"):
        run(engine, box, "设备编码,经度,lon\n".encode())
    with pytest.raises(ValidationFailed, match="empty"):
        run(engine, box, b"")
    assert count(engine) == 0


def test_unreadable_files_are_refused(engine: Engine, box: SecretBox) -> None:
    with pytest.raises(ValidationFailed, match="binary"):
        run(engine, box, b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR", "photo.png")
    with pytest.raises(ValidationFailed, match=r"\.xls"):
        run(engine, box, b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + b"\x00" * 100, "old.xls")
    with pytest.raises(ValidationFailed, match="zip"):
        run(engine, box, b"PK\x03\x04garbage", "broken.xlsx")
    with pytest.raises(ValidationFailed, match="not a readable"):
        run(engine, box, b"device_id\n1\n", "named.xlsx")
    with pytest.raises(ValidationFailed, match="UTF-8 or GB18030"):
        run(engine, box, b"device_id\n\xff\xfe\xff\n")
    with pytest.raises(PayloadTooLarge):
        bulk.import_cameras(engine, io.BytesIO(csv_bytes([cam(1)])), box, max_bytes=100)


def test_unknown_values_and_excel_rounded_codes_are_row_errors(engine: Engine, box: SecretBox) -> None:
    rows = [cam(i, zh=False) for i in range(3)]
    rows[0]["kind"] = "炮机"
    rows[1]["device_id"] = 4.4030500001320003e19  # what Excel keeps of a 20-digit number
    report = run(engine, box, xlsx_bytes(rows, "en"), "x.xlsx")
    errs = {r.row: {e.field: e.message for e in r.errors} for r in report.rejected}
    assert "枪机/bullet" in errs[2]["kind"] and "as text" in errs[3]["device_id"]
    assert report.created == 1


# ---------------------------------------------------------------- exporting


@pytest.mark.parametrize(("fmt", "lang"), [("csv", "zh"), ("xlsx", "en"), ("csv", "en"), ("xlsx", "zh")])
def test_export_round_trip_is_unchanged_and_has_no_password(
    engine: Engine, box: SecretBox, fmt: str, lang: str
) -> None:
    rows = [cam(i) for i in range(300)]
    rows[5]["name"] = '=HYPERLINK("http://evil","x")'  # a formula must stay text
    rows[6]["address"] = "-3层停车场"
    rows[7] |= {"onvif_host": "", "onvif_username": "", "onvif_password": ""}
    assert run(engine, box, csv_bytes(rows)).created == 300
    before = stored(engine)
    out = io.BytesIO()
    bulk.export_cameras(engine, out, fmt, lang)  # type: ignore[arg-type]
    data = out.getvalue()
    if fmt == "csv":
        assert data.startswith(b"\xef\xbb\xbf")
        text = data.decode("utf-8-sig")
        assert "'=HYPERLINK" in text and "pw-secret" not in text
        header = next(csv.reader(io.StringIO(text)))
    else:
        ws = openpyxl.load_workbook(io.BytesIO(data)).active
        assert ws is not None
        header = [c.value for c in ws[1]]
        cell = ws.cell(row=7, column=2)
        assert cell.value.startswith("=HYPERLINK") and cell.data_type == "s"  # type: ignore[union-attr]
        assert all("pw-secret" not in str(c.value) for r in ws.iter_rows() for c in r)
    assert ("设备编码" if lang == "zh" else "device_id") == header[0]
    assert "密码" not in header and "onvif_password" not in header
    report = run(engine, box, data, f"export.{fmt}")
    assert (report.created, report.updated, report.unchanged, report.rejected) == (0, 0, 300, [])
    assert stored(engine) == before
    # and into an empty registry it recreates the same records
    with engine.begin() as c:
        c.execute(Camera.__table__.delete())
    assert run(engine, box, data, f"export.{fmt}").created == 300
    assert {k: v[0] for k, v in stored(engine).items()} == {k: v[0] for k, v in before.items()}


def test_export_filters(engine: Engine, box: SecretBox) -> None:
    rows = [cam(i) for i in range(6)] + [cam(i) | {"device_id": f"44010600001320{i:06d}"} for i in range(4)]
    run(engine, box, csv_bytes(rows))
    recs = list(bulk.export_records(engine, "en", area_code="440106"))
    assert len(recs) == 5 and recs[0][0] == "device_id"
    assert len(list(bulk.export_records(engine, "en", kind="ptz"))) == 1 + 3  # header; i % 3 == 1: 1, 4 | 1


# ---------------------------------------------------------------- parsing (pure)


def test_header_normalisation() -> None:
    for h in (
        "设备编码",
        " 设备编码 ",
        "*设备编码",
        "DEVICE_ID",
        "Device ID",
        "device-id",
        "ｄｅｖｉｃｅ＿ｉｄ",
    ):
        assert bulk.HEADERS[bulk.normalise_header(h)].key == "device_id", h
    assert bulk.HEADERS[bulk.normalise_header("监视距离（米）")].key == "range_m"
    assert bulk.HEADERS[bulk.normalise_header("onvif端口")].key == "onvif_port"
    assert bulk.normalise_header("不认识") not in bulk.HEADERS


@given(
    st.sampled_from([c for c in bulk.EXPORT_COLUMNS if c.choices]), st.data(), st.sampled_from(["zh", "en"])
)
def test_choice_cells_round_trip(col: bulk.Column, data: st.DataObject, lang: str) -> None:
    value = data.draw(st.sampled_from([v for v, _ in col.choices]))
    cell = bulk.export_value(col, value, lang)  # type: ignore[arg-type]
    assert bulk.parse_cell(col, cell) == value
    assert bulk.parse_cell(col, str(cell)) == value  # as a CSV reads it back


@given(st.floats(min_value=-180, max_value=180, allow_nan=False))
def test_float_cells_round_trip_through_csv_text(x: float) -> None:
    buf = io.StringIO()
    csv.writer(buf).writerow([x])
    cell = next(csv.reader(io.StringIO(buf.getvalue())))[0]
    assert float(bulk.parse_cell(bulk.HEADERS["lon"], cell)) == x


@given(st.datetimes(timezones=st.just(dt.UTC), min_value=dt.datetime(1990, 1, 1)))
def test_install_time_round_trips(t: dt.datetime) -> None:
    col = bulk.HEADERS["installtime"]
    assert bulk.parse_cell(col, bulk.export_value(col, t, "zh")) == t


# ---------------------------------------------------------------- API


def _upload(data: bytes, name: str = "cams.csv") -> dict[str, Any]:
    return {"file": (name, data, "application/octet-stream")}


def test_api_import_and_export(client: TestClient, tokens: dict[str, str], ctx: AppContext) -> None:
    data = csv_bytes(bad_sheet(100))
    r = client.post(
        "/api/v1/cameras/import",
        files=_upload(data),
        params={"dry_run": "true"},
        headers=auth(tokens["installer"]),
    )
    assert r.status_code == 200, r.text
    assert (r.json()["created"], r.json()["written"]) == (94, False)
    r = client.post("/api/v1/cameras/import", files=_upload(data), headers=auth(tokens["staff"]))
    body = r.json()
    assert r.status_code == 200 and body["created"] == 94 and body["written"]
    assert {x["row"] for x in body["rejected"]} == set(BAD_ROWS)
    assert "pw-secret" not in r.text
    assert count(ctx.db.engine) == 94
    r = client.post(
        "/api/v1/cameras/import",
        files=_upload(data),
        params={"all_or_nothing": "true"},
        headers=auth(tokens["admin"]),
    )
    assert r.json()["unchanged"] == 94 and not r.json()["written"]
    denied = client.post("/api/v1/cameras/import", files=_upload(data), headers=auth(tokens["investigator"]))
    assert denied.status_code == 403

    r = client.get("/api/v1/cameras/export", headers=auth(tokens["investigator"]))
    assert r.status_code == 200, r.text
    assert r.headers["content-type"].startswith("text/csv")
    assert r.headers["content-disposition"].startswith('attachment; filename="cameras-')
    assert r.content.startswith(b"\xef\xbb\xbf\xe8\xae\xbe\xe5\xa4\x87")  # BOM, 设备…
    assert "pw-secret" not in r.text and r.text.count("\n") == 95
    x = client.get(
        "/api/v1/cameras/export", params={"format": "xlsx", "lang": "en"}, headers=auth(tokens["staff"])
    )
    assert x.status_code == 200 and x.content.startswith(b"PK")
    assert x.headers["content-disposition"].endswith('.xlsx"')
    ws = openpyxl.load_workbook(io.BytesIO(x.content), read_only=True).active
    assert ws is not None and len(list(ws.iter_rows())) == 95
    again = client.post(
        "/api/v1/cameras/import", files=_upload(x.content, "e.xlsx"), headers=auth(tokens["staff"])
    )
    assert again.json()["unchanged"] == 94 and again.json()["rejected"] == []
    bad = client.get("/api/v1/cameras/export", params={"format": "pdf"}, headers=auth(tokens["staff"]))
    assert bad.status_code == 422


def test_api_bad_uploads_are_problem_json(
    client: TestClient, tokens: dict[str, str], ctx: AppContext
) -> None:
    h = auth(tokens["installer"])
    for files in (_upload(b"\x89PNG\r\n\x1a\n\x00\x00", "x.png"), _upload(b"PK\x03\x04xx", "x.xlsx")):
        r = client.post("/api/v1/cameras/import", files=files, headers=h)
        assert r.status_code == 422, r.text
        assert r.headers["content-type"].startswith("application/problem+json")
        assert r.json()["status"] == 422 and r.json()["detail"]
    r = client.post("/api/v1/cameras/import", data={"other": "x"}, headers=h)
    assert r.status_code == 422 and r.json()["errors"][0]["field"] == "file"
    r = client.post("/api/v1/cameras/import", json={}, headers=h)
    assert r.status_code == 422
    r = client.post("/api/v1/cameras/import", files=_upload("设备编码,设备名称\n".encode()), headers=h)
    assert r.status_code == 422 and "missing required columns" in r.json()["detail"]
    ctx.settings = ctx.settings.model_copy(update={"import_max_bytes": 200})
    r = client.post("/api/v1/cameras/import", files=_upload(csv_bytes([cam(i) for i in range(5)])), headers=h)
    assert r.status_code == 413 and r.json()["status"] == 413
    big = csv_bytes([cam(i) for i in range(2000)])
    r = client.post("/api/v1/cameras/import", files=_upload(big), headers=h)
    assert r.status_code == 413
    assert count(ctx.db.engine) == 0


# ---------------------------------------------------------------- CLI


@pytest.fixture
def cli_env(tmp_path: Path, db_url: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    monkeypatch.setenv("TIANWANG_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("TIANWANG_DATABASE_URL", db_url)
    monkeypatch.setenv("TIANWANG_SECRET_KEY", Fernet.generate_key().decode())
    get_settings.cache_clear()
    yield tmp_path
    get_settings.cache_clear()


def test_cli_import_and_export(cli_env: Path, db_url: str) -> None:
    sheet = cli_env / "台账.csv"
    sheet.write_bytes(csv_bytes(bad_sheet(80), encoding="gb18030"))
    r = CliRunner().invoke(cli_app, ["cameras", "import", str(sheet), "--dry-run"])
    assert r.exit_code == 1, r.output
    assert "80 rows: 74 created, 0 updated, 0 unchanged, 6 rejected (dry run, nothing written)" in r.output
    assert "row 32 (44030500001320000030):" in r.output and "lon: Input should be" in r.output
    assert "pw-secret" not in r.output
    e = make_engine(db_url)
    try:
        assert count(e) == 0
        r = CliRunner().invoke(cli_app, ["cameras", "import", str(sheet), "--all-or-nothing"])
        assert r.exit_code == 1 and "(nothing written)" in r.output and count(e) == 0
        r = CliRunner().invoke(cli_app, ["cameras", "import", str(sheet)])
        assert r.exit_code == 1 and "74 created" in r.output and count(e) == 74
    finally:
        e.dispose()
    out = cli_env / "out.xlsx"
    r = CliRunner().invoke(cli_app, ["cameras", "export", "-o", str(out), "--lang", "en"])
    assert r.exit_code == 0, r.output
    ws = openpyxl.load_workbook(out, read_only=True).active
    assert ws is not None and next(ws.iter_rows(values_only=True))[0] == "device_id"
    r = CliRunner().invoke(cli_app, ["cameras", "import", str(out)])
    assert r.exit_code == 0, r.output
    assert "74 rows: 0 created, 0 updated, 74 unchanged, 0 rejected" in r.output
    r = CliRunner().invoke(cli_app, ["cameras", "export"])
    assert r.exit_code == 0 and "设备编码" in r.output and "pw-secret" not in r.output
    r = CliRunner().invoke(cli_app, ["cameras", "import", str(cli_env / "nope.csv")])
    assert r.exit_code == 1 and "no such file" in r.output
    junk = cli_env / "junk.csv"
    junk.write_bytes(b"a,b\n1,2\n")
    r = CliRunner().invoke(cli_app, ["cameras", "import", str(junk)])
    assert r.exit_code == 1 and "missing required columns" in r.output
    r = CliRunner().invoke(cli_app, ["cameras", "export", "--format", "pdf"])
    assert r.exit_code == 1 and "csv or xlsx" in r.output
