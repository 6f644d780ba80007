"""Bulk import and export of the camera registry as a sheet (一机一档台账): CSV or XLSX.

Every row goes through `CameraSpec`, so a sheet obeys exactly the rules of the API; valid rows are
written in one transaction, in chunks, with bulk SQL.
"""

from __future__ import annotations

import codecs
import csv
import datetime as dt
import io
import re
import unicodedata
import zipfile
from collections.abc import Callable, Generator, Iterator, Sequence
from contextlib import closing
from dataclasses import dataclass
from types import SimpleNamespace
from typing import Any, BinaryIO, Literal, cast

from pydantic import BaseModel, ValidationError
from sqlalchemy import Connection, Engine, Row, bindparam, insert, or_, select, update
from sqlalchemy.exc import IntegrityError

from tianwang.auth.secrets_box import SecretBox
from tianwang.cameras.schemas import CameraSpec, direction_type_for
from tianwang.cameras.service import ADDRESS_MOVED, apply_spec, password_must_be_repeated, spec_of
from tianwang.errors import Conflict, PayloadTooLarge, TianwangError, ValidationFailed
from tianwang.storage.models import Camera, Checkpoint, utcnow

# Chinese sheets carry local wall-clock times without an offset: they are read as China Standard
# Time, and exported with an explicit +08:00 so a round trip is exact.
CST = dt.timezone(dt.timedelta(hours=8))
CHUNK = 1000
# Cells Excel would run as a formula; escaped with a leading ' in CSV exports (CSV injection).
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")

Lang = Literal["zh", "en"]
Format = Literal["csv", "xlsx"]


@dataclass(frozen=True)
class Column:
    """One sheet column: its field (`onvif_*` for the nested ONVIF record) and its spellings."""

    key: str
    zh: str
    aliases: tuple[str, ...] = ()
    # (stored value, spellings…): the first spelling is what a Chinese export writes
    choices: tuple[tuple[Any, tuple[str, ...]], ...] = ()
    # free text, kept as written (no full-width folding)
    text: bool = False
    # a code of digits that a spreadsheet may have turned into a number
    code: bool = False


def _c(value: Any, *names: str) -> tuple[Any, tuple[str, ...]]:
    return (value, names)


COLUMNS: tuple[Column, ...] = (
    Column("device_id", "设备编码", ("设备编号", "国标编码", "国标编号", "gb_id"), code=True),
    Column("name", "设备名称", ("名称", "点位名称", "摄像机名称"), text=True),
    Column(
        "kind",
        "设备类型",
        ("类型",),
        choices=(
            _c("bullet", "枪机"),
            _c("ptz", "球机"),
            _c("dome", "半球"),
            _c("checkpoint", "卡口"),
            _c("face", "人脸"),
            _c("fisheye", "鱼眼"),
            _c("turret", "筒机"),
        ),
    ),
    Column("lon", "经度", ("longitude",)),
    Column("lat", "纬度", ("latitude",)),
    Column("heading_deg", "监视方向", ("方向角", "朝向", "heading")),
    Column("hfov_deg", "水平视场角", ("视场角", "hfov")),
    Column("range_m", "监视距离", ("可视距离", "range")),
    Column(
        "point_class",
        "点位类型",
        ("点位级别", "点位等级"),
        choices=(
            _c(1, "一类", "一类点", "一类点位"),
            _c(2, "二类", "二类点", "二类点位"),
            _c(3, "三类", "三类点", "三类点位"),
        ),
    ),
    Column("area_code", "行政区划", ("行政区划代码", "区划代码", "行政区域"), code=True),
    Column("address", "安装地址", ("地址", "安装位置"), text=True),
    Column("police_station", "所属派出所", ("派出所",), text=True),
    Column("maintenance_unit", "维护单位", ("运维单位",), text=True),
    Column("construction_batch", "建设批次", ("批次",), text=True),
    Column("management_unit", "管理单位", ("所属单位",), text=True),
    Column("install_time", "安装时间", ("安装日期",)),
    Column("record_retention_days", "录像保存天数", ("录像天数", "存储天数")),
    Column(
        "supply_light_type",
        "补光类型",
        ("补光属性",),
        choices=(
            _c(1, "无补光", "无"),
            _c(2, "红外补光", "红外"),
            _c(3, "白光补光", "白光"),
            _c(4, "激光补光", "激光"),
            _c(9, "其他", "其他补光"),
        ),
    ),
    Column(
        "ptz_type",
        "摄像机类型",
        ("摄像机结构类型", "ptz类型"),
        choices=(_c(1, "球机"), _c(2, "半球"), _c(3, "固定枪机", "枪机"), _c(4, "遥控枪机")),
    ),
    Column(
        "position_type",
        "位置类型",
        ("摄像机位置类型",),
        choices=(
            _c(1, "省际检查站"),
            _c(2, "党政机关"),
            _c(3, "车站码头"),
            _c(4, "中心广场"),
            _c(5, "体育场馆"),
            _c(6, "商业中心"),
            _c(7, "宗教场所"),
            _c(8, "校园周边"),
            _c(9, "治安复杂区域"),
            _c(10, "交通干线"),
        ),
    ),
    Column("room_type", "室内外", ("室内外类型", "室内或室外"), choices=(_c(1, "室外"), _c(2, "室内"))),
    Column(
        "direction_type",
        "监视方位",
        ("方位",),
        choices=(
            _c(1, "东"),
            _c(2, "西"),
            _c(3, "南"),
            _c(4, "北"),
            _c(5, "东南"),
            _c(6, "东北"),
            _c(7, "西南"),
            _c(8, "西北"),
        ),
    ),
    Column("resolution", "分辨率", (), text=True),
    Column("onvif_host", "ONVIF地址", ("IP地址", "设备IP", "ip", "onvif_ip"), text=True),
    Column("onvif_port", "ONVIF端口", ("端口",)),
    Column("onvif_username", "用户名", ("onvif用户名", "username"), text=True),
    Column("onvif_password", "密码", ("onvif密码", "password"), text=True),
    Column(
        "onvif_trust_device_addresses",
        "信任设备地址",
        ("trust_device_addresses", "使用设备自报地址"),
        choices=(_c(False, "否", "false", "no", "不信任"), _c(True, "是", "true", "yes", "信任")),
    ),
    Column("rtsp_url", "RTSP地址", ("取流地址", "视频流地址"), text=True),
    Column("snapshot_url", "抓图地址", ("快照地址",), text=True),
    Column("health_interval_s", "巡检间隔(秒)", ("巡检间隔", "health_interval")),
    Column("snapshot_interval_s", "抓图间隔(秒)", ("抓图间隔", "snapshot_interval")),
    Column("agent_id", "指定代理", ("代理", "agent"), text=True),
    Column("checkpoint_id", "所属卡口编码", ("卡口编码",), code=True),
    Column(
        "lifecycle",
        "生命周期",
        ("设备生命周期",),
        choices=(
            _c("in_use", "在用", "使用中"),
            _c("under_repair", "维修", "维修中"),
            _c("removed", "拆除", "已拆除"),
        ),
    ),
)
# never leaves the registry in a sheet
EXPORT_COLUMNS = tuple(c for c in COLUMNS if c.key != "onvif_password")
REQUIRED = tuple(n for n, f in CameraSpec.model_fields.items() if f.is_required())


def normalise_header(h: Any) -> str:
    """Header as matched: full-width folded, trimmed, case-free, without a trailing unit `(米)` or `*`."""
    s = unicodedata.normalize("NFKC", str(h)).strip().lower().strip("*").strip()
    s = re.sub(r"\([^()]*\)$", "", s)
    return re.sub(r"[\s_\-.]", "", s)


def _index() -> dict[str, Column]:
    idx: dict[str, Column] = {}
    for col in COLUMNS:
        for name in (col.key, col.zh, *col.aliases):
            n = normalise_header(name)
            assert idx.get(n, col) is col, f"header {name!r} names two columns"
            idx[n] = col
    return idx


HEADERS = _index()
_BY_KEY = {c.key: c for c in COLUMNS}


def header_of(col: Column, lang: Lang) -> str:
    return col.zh if lang == "zh" else col.key


class RowError(BaseModel):
    field: str
    message: str


class RejectedRow(BaseModel):
    row: int  # the spreadsheet's row number; the header is row 1
    device_id: str | None
    errors: list[RowError]


class ImportReport(BaseModel):
    """What an import did (or, with `dry_run`, would do). `written` says whether it was committed."""

    rows: int = 0
    created: int = 0
    updated: int = 0
    unchanged: int = 0
    rejected: list[RejectedRow] = []
    warnings: list[str] = []
    dry_run: bool = False
    written: bool = False


# ---------------------------------------------------------------- reading a sheet


class _Sheet:
    """A CSV or XLSX file that can be read from the top again (the importer reads it twice)."""

    def __init__(self, f: BinaryIO, filename: str, max_bytes: int) -> None:
        self.f = f
        f.seek(0, io.SEEK_END)
        size = f.tell()
        f.seek(0)
        if size > max_bytes:
            raise PayloadTooLarge(
                f"the file is {size} bytes; the import limit is {max_bytes} (TIANWANG_IMPORT_MAX_BYTES)"
            )
        head = f.read(8)
        f.seek(0)
        name = filename.lower()
        if head.startswith(b"PK\x03\x04"):
            self.format: Format = "xlsx"
            self._check_zip(max_bytes)
        elif head.startswith(b"\xd0\xcf\x11\xe0"):
            raise ValidationFailed(
                "an old .xls or a password-protected workbook: save it as .xlsx (no password) or as CSV"
            )
        elif name.endswith((".xlsx", ".xlsm")):
            raise ValidationFailed(f"{filename} is not a readable .xlsx workbook (not a zip file)")
        else:
            self.format = "csv"
            self.encoding = _csv_encoding(f)
            self.delimiter = self._delimiter()

    def _check_zip(self, max_bytes: int) -> None:
        # openpyxl keeps shared strings in memory: refuse a zip that inflates far beyond the limit
        try:
            with zipfile.ZipFile(self.f) as z:
                inflated = sum(i.file_size for i in z.infolist())
        except (zipfile.BadZipFile, OSError, ValueError):
            raise ValidationFailed("the file looks like .xlsx but is not a readable zip workbook") from None
        finally:
            self.f.seek(0)
        if inflated > 20 * max_bytes:
            raise PayloadTooLarge(f"the workbook inflates to {inflated} bytes; refused")

    def _delimiter(self) -> str:
        text = io.TextIOWrapper(self.f, encoding=self.encoding, newline="")
        try:
            first = text.readline()
        finally:
            text.detach()
            self.f.seek(0)
        counts = {d: first.count(d) for d in (",", "\t", ";")}
        return max(counts, key=lambda d: counts[d]) if any(counts.values()) else ","

    def rows(self) -> Generator[tuple[int, Sequence[Any]], None, None]:
        """(row number, cells) from the header (row 1) down."""
        self.f.seek(0)
        if self.format == "csv":
            text = io.TextIOWrapper(self.f, encoding=self.encoding, newline="")
            try:
                yield from enumerate(csv.reader(text, delimiter=self.delimiter), 1)
            except csv.Error as e:
                raise ValidationFailed(f"the CSV cannot be read: {e}") from None
            finally:
                text.detach()
            return
        import openpyxl

        try:
            wb = openpyxl.load_workbook(self.f, read_only=True, data_only=True)
        except Exception as e:  # openpyxl raises many kinds on a damaged workbook
            raise ValidationFailed(f"the workbook cannot be read: {type(e).__name__}") from None
        try:
            ws = wb.active if wb.active is not None else wb.worksheets[0]
            if not hasattr(ws, "iter_rows"):
                raise ValidationFailed("the first sheet of the workbook is not a worksheet")
            ws.reset_dimensions()  # some writers store wrong dimensions; read to the real end
            rows = ws.iter_rows(values_only=True)
            n = 0
            while True:
                try:
                    cells = next(rows)
                except StopIteration:
                    break
                except Exception as e:
                    raise ValidationFailed(f"the workbook cannot be read: {type(e).__name__}") from None
                n += 1
                yield n, cells
        finally:
            wb.close()


def _csv_encoding(f: BinaryIO) -> str:
    """UTF-8 (with or without BOM), else GB18030 (what Chinese Excel writes); else refused."""
    for enc in ("utf-8-sig", "gb18030"):
        f.seek(0)
        dec = codecs.getincrementaldecoder(enc)()
        try:
            while chunk := f.read(1 << 20):
                if b"\x00" in chunk:
                    raise ValidationFailed(
                        "the file is binary (NUL bytes), not CSV text or .xlsx: "
                        "save the sheet as CSV UTF-8 or .xlsx"
                    )
                dec.decode(chunk)
            dec.decode(b"", final=True)
            return enc
        except UnicodeDecodeError:
            continue
        finally:
            f.seek(0)
    raise ValidationFailed("the file is neither an .xlsx workbook nor CSV text in UTF-8 or GB18030")


@dataclass
class _Layout:
    columns: list[tuple[int, Column]]
    warnings: list[str]

    def device_id(self, cells: Sequence[Any]) -> str | None:
        for i, col in self.columns:
            if col.key == "device_id":
                v = _code_text(cells[i]) if i < len(cells) else None
                return v if isinstance(v, str) else None
        return None


def _layout(header: Sequence[Any]) -> _Layout:
    columns: list[tuple[int, Column]] = []
    seen: dict[str, Any] = {}
    unknown: list[str] = []
    for i, h in enumerate(header):
        if h is None or str(h).strip() == "":
            continue
        col = HEADERS.get(normalise_header(h))
        if col is None:
            unknown.append(str(h).strip())
            continue
        if col.key in seen:
            raise ValidationFailed(
                f"columns {seen[col.key]!r} and {str(h).strip()!r} both mean {col.key}: keep one",
                errors=[{"field": col.key, "message": "given twice"}],
            )
        seen[col.key] = str(h).strip()
        columns.append((i, col))
    missing = [k for k in REQUIRED if k not in seen]
    if missing:
        names = ", ".join(f"{_BY_KEY[k].zh} ({k})" for k in missing)
        raise ValidationFailed(
            f"missing required columns: {names}",
            errors=[{"field": k, "message": "required column missing"} for k in missing],
        )
    warnings = [f"unknown column {u!r} ignored" for u in unknown]
    return _Layout(columns, warnings)


def _blank(cells: Sequence[Any]) -> bool:
    return all(c is None or (isinstance(c, str) and not c.strip()) for c in cells)


def _code_text(raw: Any) -> Any:
    """A digit code as text; a number a spreadsheet has rounded is refused rather than guessed."""
    if raw is None:
        return None
    if isinstance(raw, bool):
        return raw
    if isinstance(raw, int):
        return str(raw)
    if isinstance(raw, float):
        if raw.is_integer() and abs(raw) < 2**53:
            return str(int(raw))
        raise ValueError(
            "stored as a number, which a spreadsheet rounds to 15 digits: format the column as text"
        )
    s = unicodedata.normalize("NFKC", str(raw)).strip()
    return s or None


def _parse_time(raw: Any) -> Any:
    if isinstance(raw, dt.datetime):
        return raw if raw.tzinfo else raw.replace(tzinfo=CST)
    if isinstance(raw, dt.date):
        return dt.datetime(raw.year, raw.month, raw.day, tzinfo=CST)
    s = str(raw).strip()
    try:
        t = dt.datetime.fromisoformat(s.replace("/", "-"))
    except ValueError:
        return s  # CameraSpec says what is wrong with it
    return t if t.tzinfo else t.replace(tzinfo=CST)


def parse_cell(col: Column, raw: Any) -> Any:
    """One cell as the value CameraSpec takes; None for an empty cell. Raises ValueError if unreadable."""
    if raw is None:
        return None
    if col.code:
        return _code_text(raw)
    if isinstance(raw, str):
        if col.text:
            s = raw.strip()
            if len(s) > 1 and s[0] == "'" and s[1] in _FORMULA_START:
                s = s[1:]  # our own CSV-injection escape, undone
            return s or None
        s = unicodedata.normalize("NFKC", raw).strip()
        if not s:
            return None
        raw = s
    elif col.text:
        return str(int(raw)) if isinstance(raw, float) and raw.is_integer() else str(raw)
    if col.key == "install_time":
        return _parse_time(raw)
    if col.choices:
        return _choice(col, raw)
    return raw


def _choice(col: Column, raw: Any) -> Any:
    key = str(raw).strip().lower()
    try:
        number: float | None = float(key)
    except ValueError:
        number = None
    for value, names in col.choices:
        if key == str(value).lower() or key in names:
            return value
        if isinstance(value, int) and number == value:
            return value
    allowed = ", ".join(f"{names[0]}/{value}" for value, names in col.choices)
    raise ValueError(f"unknown value {str(raw)[:40]!r}: one of {allowed}")


# ---------------------------------------------------------------- importing


def _merge(base: dict[str, Any], values: dict[str, Any]) -> dict[str, Any]:
    """The stored record (or nothing) overlaid with the row's columns; an empty cell clears its field,
    except the password, which an empty cell keeps."""
    out = dict(base)
    onvif: dict[str, Any] = dict(out.pop("onvif", None) or {})
    for key, v in values.items():
        if key.startswith("onvif_"):
            sub = key.removeprefix("onvif_")
            if v is not None:
                onvif[sub] = v
            elif sub != "password":
                onvif.pop(sub, None)
        elif v is None:
            out.pop(key, None)
        else:
            out[key] = v
    if onvif.get("host") is not None or onvif.get("username") or onvif.get("password"):
        out["onvif"] = onvif  # without a host, CameraSpec names onvif_host as missing
    return out


def _base(old: Row[Any] | None, values: dict[str, Any]) -> dict[str, Any]:
    """The stored record a row updates, without a direction that was only derived from an old heading."""
    if old is None:
        return {}
    base = spec_of(cast(Camera, old))
    derived = direction_type_for(old.heading_deg).value
    if old.direction_type == derived and values.get("direction_type", derived) == derived:
        # the direction only followed the heading: CameraSpec derives it again from the row's heading
        base.pop("direction_type", None)
        values.pop("direction_type", None)
    return base


def _field_of(loc: tuple[Any, ...]) -> str:
    if not loc:
        return "record"
    if loc[0] == "onvif":
        return f"onvif_{loc[1]}" if len(loc) > 1 else "onvif_host"
    return ".".join(str(p) for p in loc)


def _validate(merged: dict[str, Any]) -> tuple[CameraSpec | None, list[RowError]]:
    try:
        return CameraSpec.model_validate(merged), []
    except ValidationError as e:
        # the message only, never the input: a cell may hold a password
        return None, [
            RowError(field=_field_of(tuple(err["loc"])), message=str(err["msg"])) for err in e.errors()
        ]
    except TianwangError as e:  # InvalidDeviceId from the device-code rules
        errs = [
            RowError(field=x.get("field", "device_id"), message=x.get("message", e.detail)) for x in e.errors
        ]
        return None, errs or [RowError(field="device_id", message=e.detail)]


@dataclass
class _Scan:
    layout: _Layout
    rows: int
    first_row: dict[str, int]
    repeats: dict[str, list[int]]


def _scan(sheet: _Sheet) -> _Scan:
    """First pass: the header and every device_id, so rows repeating one are known before writing."""
    with closing(sheet.rows()) as it:
        header = next(it, None)
        if header is None or _blank(header[1]):
            raise ValidationFailed("the file is empty: the first row must be the header")
        layout = _layout(header[1])
        first_row: dict[str, int] = {}
        repeats: dict[str, list[int]] = {}
        n = 0
        for rownum, cells in it:
            if _blank(cells):
                continue
            n += 1
            try:
                did = layout.device_id(cells)
            except ValueError:
                continue
            if did is None:
                continue
            if did in first_row:
                repeats.setdefault(did, [first_row[did]]).append(rownum)
            else:
                first_row[did] = rownum
    return _Scan(layout, n, first_row, repeats)


class _Writer:
    """Second pass: validate a chunk against what is stored, then write it with bulk SQL."""

    def __init__(
        self,
        conn: Connection,
        box: SecretBox,
        scan: _Scan,
        report: ImportReport,
        *,
        write: bool,
        all_or_nothing: bool,
    ) -> None:
        self.conn, self.box, self.scan, self.report = conn, box, scan, report
        self.write, self.all_or_nothing = write, all_or_nothing
        self.table = Camera.__table__
        self.insert = insert(self.table)
        self.update = update(self.table).where(self.table.c.device_id == bindparam("b_device_id"))

    def chunk(self, rows: list[tuple[int, Sequence[Any]]]) -> None:
        t = self.table
        parsed: list[tuple[int, dict[str, Any], list[RowError]]] = []
        for rownum, cells in rows:
            values: dict[str, Any] = {}
            errors: list[RowError] = []
            for i, col in self.scan.layout.columns:
                try:
                    values[col.key] = parse_cell(col, cells[i] if i < len(cells) else None)
                except ValueError as e:
                    errors.append(RowError(field=col.key, message=str(e)))
            parsed.append((rownum, values, errors))
        ids = {v["device_id"] for _, v, _ in parsed if isinstance(v.get("device_id"), str)}
        stored: dict[str, Row[Any]] = {}
        if ids:
            stored = {r.device_id: r for r in self.conn.execute(select(t).where(t.c.device_id.in_(ids)))}
        cps = {v["checkpoint_id"] for _, v, _ in parsed if isinstance(v.get("checkpoint_id"), str)}
        known_cps: set[str] = set()
        if cps:
            q = select(Checkpoint.checkpoint_id).where(Checkpoint.checkpoint_id.in_(cps))
            known_cps = set(self.conn.scalars(q))
        now = utcnow()
        inserts: list[dict[str, Any]] = []
        updates: list[dict[str, Any]] = []
        for rownum, values, errors in parsed:
            did = values.get("device_id")
            old = stored.get(did) if isinstance(did, str) else None
            if isinstance(did, str) and did in self.scan.repeats:
                rows_ = ", ".join(str(r) for r in self.scan.repeats[did])
                errors.append(
                    RowError(field="device_id", message=f"{did} is on rows {rows_}: ambiguous, all rejected")
                )
            for k in [e.field for e in errors]:
                values.pop(k, None)  # reported already; not reported again as "missing"
            spec, spec_errors = _validate(_merge(_base(old, values), values))
            bad = {e.field for e in errors}
            errors += [e for e in spec_errors if e.field not in bad]
            if spec is not None and spec.checkpoint_id and spec.checkpoint_id not in known_cps:
                errors.append(
                    RowError(
                        field="checkpoint_id", message=f"checkpoint {spec.checkpoint_id} is not registered"
                    )
                )
            if spec is not None and old is not None and password_must_be_repeated(old, spec):
                errors.append(RowError(field="onvif_password", message=ADDRESS_MOVED))
            if errors or spec is None:
                shown = did[:40] if isinstance(did, str) else None
                self.report.rejected.append(RejectedRow(row=rownum, device_id=shown, errors=errors))
                continue
            cols = self._columns(spec, old)
            if old is None:
                cols.update(device_id=spec.device_id, status="registered", created_at=now, updated_at=now)
                inserts.append(cols)
            elif any(cols[k] != getattr(old, k) for k in cols):
                cols.update(updated_at=now, b_device_id=spec.device_id)
                updates.append(cols)
            else:
                self.report.unchanged += 1
        self.report.created += len(inserts)
        self.report.updated += len(updates)
        # under all_or_nothing, once a row failed the transaction is rolled back: stop writing
        if self.write and not (self.all_or_nothing and self.report.rejected):
            if inserts:
                self.conn.execute(self.insert, inserts)
            if updates:
                self.conn.execute(self.update, updates)

    def _columns(self, spec: CameraSpec, old: Row[Any] | None) -> dict[str, Any]:
        """The row's stored columns, through the same `apply_spec` the API uses."""
        stored_pw = old.onvif_password_enc if old is not None else None
        # apply_spec only sets attributes; a plain namespace avoids an ORM object per row (it reads
        # the stored URLs and their credentials, which it keeps while the URLs' hosts stay)
        ns = SimpleNamespace(
            onvif_password_enc=stored_pw,
            rtsp_url=old.rtsp_url if old is not None else None,
            snapshot_url=old.snapshot_url if old is not None else None,
            url_credentials_enc=old.url_credentials_enc if old is not None else None,
        )
        apply_spec(cast(Camera, ns), spec, self.box, keep_password=True)
        cols: dict[str, Any] = vars(ns)
        if stored_pw is not None and spec.onvif is not None and spec.onvif.password is not None:
            try:
                same = self.box.decrypt(stored_pw) == spec.onvif.password.get_secret_value()
            except ValueError:
                same = False
            if same:
                cols["onvif_password_enc"] = stored_pw  # Fernet is randomised: keep the bytes
        return cols


def import_cameras(
    engine: Engine,
    f: BinaryIO,
    box: SecretBox,
    *,
    filename: str = "",
    max_bytes: int,
    dry_run: bool = False,
    all_or_nothing: bool = False,
    chunk_size: int = CHUNK,
    progress: Callable[[int, int], None] | None = None,
) -> ImportReport:
    """Import a CSV or XLSX sheet of cameras; see ImportReport. One transaction: all valid rows or none.

    `f` must be seekable (the file is read twice: device_ids first, then rows). Bad files raise
    ValidationFailed / PayloadTooLarge; bad rows are reported, never raised.
    """
    sheet = _Sheet(f, filename, max_bytes)
    scan = _scan(sheet)
    report = ImportReport(rows=scan.rows, warnings=list(scan.layout.warnings), dry_run=dry_run)
    if progress:
        progress(0, scan.rows)
    with engine.connect() as conn:
        trans = conn.begin()
        try:
            w = _Writer(conn, box, scan, report, write=not dry_run, all_or_nothing=all_or_nothing)
            buf: list[tuple[int, Sequence[Any]]] = []
            done = 0
            with closing(sheet.rows()) as it:
                next(it)  # header
                for rownum, cells in it:
                    if _blank(cells):
                        continue
                    buf.append((rownum, cells))
                    if len(buf) >= chunk_size:
                        w.chunk(buf)
                        done += len(buf)
                        buf = []
                        if progress:
                            progress(done, scan.rows)
            if buf:
                w.chunk(buf)
                done += len(buf)
                if progress:
                    progress(done, scan.rows)
            commit = not dry_run and not (all_or_nothing and report.rejected)
            if commit and (report.created or report.updated):
                trans.commit()
                report.written = True
            else:
                trans.rollback()
        except IntegrityError as e:
            trans.rollback()
            # another writer registered one of these device_ids meanwhile: nothing was written
            raise Conflict(
                f"the registry changed during the import; nothing was written, retry: {e.orig}"
            ) from None
        except BaseException:
            trans.rollback()
            raise
    return report


# ---------------------------------------------------------------- exporting


def _select(area_code: str | None, kind: str | None, status: str | None) -> Any:
    t = Camera.__table__
    q = select(t).order_by(t.c.id)
    if area_code:
        q = q.where(or_(t.c.area_code.startswith(area_code), t.c.device_id.startswith(area_code)))
    if kind:
        q = q.where(t.c.kind == kind)
    if status:
        q = q.where(t.c.status == status)
    return q


def export_value(col: Column, value: Any, lang: Lang) -> Any:
    """A stored value as its sheet cell; what parse_cell reads back to the same value."""
    if value is None:
        return None
    if isinstance(value, dt.datetime):
        return value.astimezone(CST).isoformat()
    if col.choices and lang == "zh":
        for v, names in col.choices:
            if v == value:
                return names[0]
    return value


def export_records(
    engine: Engine,
    lang: Lang = "zh",
    *,
    area_code: str | None = None,
    kind: str | None = None,
    status: str | None = None,
) -> Iterator[list[Any]]:
    """The header, then one list of cells per camera (never the password), streamed from the database."""
    yield [header_of(c, lang) for c in EXPORT_COLUMNS]
    with engine.connect() as conn:
        result = conn.execution_options(yield_per=CHUNK).execute(_select(area_code, kind, status))
        for r in result:
            m = r._mapping
            yield [export_value(c, m[c.key], lang) for c in EXPORT_COLUMNS]


def _csv_safe(v: Any) -> Any:
    if isinstance(v, str) and v.startswith(_FORMULA_START):
        return "'" + v
    return v


def iter_csv(records: Iterator[list[Any]], text_cols: list[bool] | None = None) -> Iterator[bytes]:
    """CSV in UTF-8 with a BOM (so Excel shows Chinese), yielded in chunks of rows; the first record
    is the header. Cells of `text_cols` (default: the registry's text columns) that Excel would run
    as a formula are escaped."""
    buf = io.StringIO()
    w = csv.writer(buf)
    buf.write("\ufeff")
    text_cols = text_cols if text_cols is not None else [c.text for c in EXPORT_COLUMNS]
    for n, rec in enumerate(records):
        w.writerow(rec if n == 0 else [_csv_safe(v) if t else v for v, t in zip(rec, text_cols, strict=True)])
        if n % CHUNK == 0:
            yield buf.getvalue().encode("utf-8")
            buf.seek(0)
            buf.truncate()
    if buf.tell():
        yield buf.getvalue().encode("utf-8")


def write_xlsx(records: Iterator[list[Any]], out: BinaryIO, sheet: str = "cameras") -> None:
    """An .xlsx workbook written in openpyxl's streaming (write-only) mode."""
    from openpyxl import Workbook
    from openpyxl.cell import WriteOnlyCell

    wb = Workbook(write_only=True)
    ws = wb.create_sheet(sheet)
    for rec in records:
        row: list[Any] = []
        for v in rec:
            if isinstance(v, str) and v.startswith("="):
                cell = WriteOnlyCell(ws, v)
                cell.data_type = "s"  # text, not a formula
                row.append(cell)
            else:
                row.append(v)
        ws.append(row)
    wb.save(out)


def export_cameras(
    engine: Engine, out: BinaryIO, fmt: Format = "csv", lang: Lang = "zh", **filters: Any
) -> None:
    records = export_records(engine, lang, **filters)
    if fmt == "xlsx":
        write_xlsx(records, out)
    else:
        for chunk in iter_csv(records):
            out.write(chunk)
