"""The code tables of the checkpoint standards, and GA/T 1400 passes stored by them.

Each expected table below is written from the public source named above it (see docs/standards.md),
not from the platform's own tables, so a table copied wrong in the code fails here.
"""

from __future__ import annotations

import datetime as dt
import itertools
import json
import unicodedata
from typing import Any

import pytest
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import select

from tests.conftest import auth
from tests.sightings_support import CP1, seed, viid_object
from tianwang.cameras.schemas import DirectionType, direction_type_for
from tianwang.checkpoints import codes, plates, viid
from tianwang.context import AppContext
from tianwang.protocol.sightings import EXTRA_WARNINGS
from tianwang.storage.models import Checkpoint, Pass

# Compass bearings of the eight directions, degrees clockwise from north.
BEARING = {"北": 0, "东北": 45, "东": 90, "东南": 135, "南": 180, "西南": 225, "西": 270, "西北": 315}

# GA/T 1400.3 §B.3.52 行驶方向, as 648540858/wvp-GB28181-pro src/main/resources/gb_dict.json
# (directionType) and OverwindSlash/CargoX .../Entities/Vehicles/Motor.cs (Direction) list it:
# code → (from, to).
GAT1400_DIRECTION = {
    "1": ("西", "东"),
    "2": ("东", "西"),
    "3": ("北", "南"),
    "4": ("南", "北"),
    "5": ("西南", "东北"),
    "6": ("东北", "西南"),
    "7": ("西北", "东南"),
    "8": ("东南", "西北"),
}

# GB/T 28181 监视方位 (DirectionType), as 648540858/wvp-GB28181-pro
# .../gb28181/bean/CommonGBChannel.java (gbDirectionType) lists it.
GB28181_DIRECTION = {1: "东", 2: "西", 3: "南", 4: "北", 5: "东南", 6: "东北", 7: "西南", 8: "西北"}

# GA/T 1400 ColorType, as gb_dict.json ("color") and CargoX Motor.cs (PlateColor) list it.
COLOR_TYPE = {
    "1": "黑",
    "2": "白",
    "3": "灰",
    "4": "红",
    "5": "蓝",
    "6": "黄",
    "7": "橙",
    "8": "棕",
    "9": "绿",
    "10": "紫",
    "11": "青",
    "12": "粉",
    "13": "透明",
    "99": "其他",
}

# 号牌种类 (GA 24.7), as gb_dict.json (plateClassType) lists it, with 18 and 19 from
# LookingDreamer/JavaCompile .../model/PlateType.java.
PLATE_CLASS = {
    "01": "大型汽车号牌",
    "02": "小型汽车号牌",
    "03": "使馆汽车号牌",
    "04": "领馆汽车号牌",
    "05": "境外汽车号牌",
    "06": "外籍汽车号牌",
    "07": "普通摩托车号牌",
    "08": "轻便摩托车号牌",
    "09": "使馆摩托车号牌",
    "10": "领馆摩托车号牌",
    "11": "境外摩托车号牌",
    "12": "外籍摩托车号牌",
    "13": "低速车号牌",
    "14": "拖拉机号牌",
    "15": "挂车号牌",
    "16": "教练汽车号牌",
    "17": "教练摩托车号牌",
    "18": "试验汽车号牌",
    "19": "试验摩托车号牌",
    "20": "临时入境汽车号牌",
    "21": "临时入境摩托车号牌",
    "22": "临时行驶车号牌",
    "23": "警用汽车号牌",
    "24": "警用摩托车号牌",
    "25": "原农机号牌",
    "26": "香港入出境号牌",
    "27": "澳门入出境号牌",
    "31": "武警号牌",
    "32": "军队号牌",
    "99": "其他号牌",
}

# GA/T 1400.3 §B.3.54 ImageType, as gb_dict.json (imageType) lists it.
IMAGE_TYPE = {
    "01": "车辆大图",
    "02": "车牌彩色小图",
    "03": "车牌二值化图",
    "04": "驾驶员面部特征图",
    "05": "副驾驶面部特征图",
    "06": "车标",
    "07": "违章合成图",
    "08": "过车合成图",
    "09": "车辆特写图",
    "10": "人员图",
    "11": "人脸图",
    "12": "非机动车图",
    "13": "物品图",
    "14": "场景图",
    "100": "一般图片",
}

# 车辆类型 (GA 24.4), as gb_dict.json (vehicleClassType) lists it: a row of every group, the
# groups' first and last codes, and the size of the table (166 codes: K 24, H 43, Q 9, Z 6, D 2,
# M 9, N 1, T 5, J 3, G 29, B 34, X 1).
VEHICLE_CLASS_ROWS = {
    "K10": "大型客车",
    "K17": "大型专用客车",
    "K27": "中型专用客车",
    "K33": "小型轿车",
    "K43": "微型轿车",
    "H10": "重型货车",
    "H19": "重型仓栅式货车",
    "H35": "轻型平板货车",
    "H37": "轻型自卸货车",
    "H47": "微型仓栅式货车",
    "H55": "仓栅式低速货车",
    "Q11": "重型半挂牵引车",
    "Q32": "轻型全挂牵引车",
    "Z11": "大型专项作业车",
    "Z71": "轻型专项作业车",
    "D11": "无轨电车",
    "D12": "有轨电车",
    "M15": "侧三轮摩托车",
    "M22": "轻便二轮摩托车",
    "N11": "三轮汽车",
    "T23": "手扶变形运输机",
    "J13": "轮式平地机械",
    "G10": "重型全挂车",
    "G38": "轻型专项作业全挂车",
    "B1A": "重型专项作业半挂车",
    "B2B": "中型低平板半挂车",
    "B39": "轻型低平板半挂车",
    "X99": "其他",
}
VEHICLE_CLASS_ABSENT = ("K26", "H36", "Z61", "B1C", "X00")  # gaps in the source's table


def test_gat1400_direction_table() -> None:
    assert set(codes.DIRECTIONS) == set(GAT1400_DIRECTION) | {"9"}
    for code, (frm, to) in GAT1400_DIRECTION.items():
        heading, name = codes.DIRECTIONS[code]
        assert heading == BEARING[to], code  # the vehicle heads towards `to`
        assert (BEARING[to] - BEARING[frm]) % 360 == 180, code  # … coming from the opposite side
        assert name.startswith(frm) and name.endswith(to), (code, name)
    assert codes.DIRECTIONS["9"] == (None, "其他")
    assert {c: codes.DIRECTIONS[c][0] for c in codes.DIRECTIONS} == viid.DIRECTION_DEG


def test_gb28181_direction_type_table() -> None:
    english = {
        "东": "east",
        "西": "west",
        "南": "south",
        "北": "north",
        "东南": "southeast",
        "东北": "northeast",
        "西南": "southwest",
        "西北": "northwest",
    }
    assert {m.value: m.name for m in DirectionType} == {c: english[zh] for c, zh in GB28181_DIRECTION.items()}
    for code, zh in GB28181_DIRECTION.items():
        assert direction_type_for(BEARING[zh]) is DirectionType(code)  # a camera looking that way


def test_colour_type_table() -> None:
    assert {code: zh for code, (_en, zh) in plates.COLOURS.items()} == COLOR_TYPE
    for code, zh in COLOR_TYPE.items():
        assert plates.colour_code(zh) == code
        assert plates.colour_code(code) == code


@pytest.mark.parametrize(("table", "expected"), [("PLATE_CLASSES", PLATE_CLASS), ("IMAGE_TYPES", IMAGE_TYPE)])
def test_two_digit_tables(table: str, expected: dict[str, str]) -> None:
    assert getattr(codes, table) == expected


def test_vehicle_class_table() -> None:
    assert len(codes.VEHICLE_CLASSES) == 24 + 43 + 9 + 6 + 2 + 9 + 1 + 5 + 3 + 29 + 34 + 1
    for code, name in VEHICLE_CLASS_ROWS.items():
        assert codes.VEHICLE_CLASSES[code] == name
        assert codes.vehicle_class(code.lower()) == code
    for code in VEHICLE_CLASS_ABSENT:
        assert codes.vehicle_class(code) is None
    assert codes.vehicle_class("car") is None
    assert all(len(c) == 3 and c[0] in "KHQZDMNTJGBX" for c in codes.VEHICLE_CLASSES)


def test_plate_class_lookup() -> None:
    assert codes.plate_class("2") == "02" and codes.plate_class(2) == "02" and codes.plate_class("02") == "02"
    assert (
        codes.plate_class("28") is None and codes.plate_class("0") is None and codes.plate_class("²") is None
    )


# ---- GA/T 1400 passes stored by these tables ------------------------------------------------


def _local(hours_ago: float = 2) -> str:
    t = dt.datetime.now(viid.CST) - dt.timedelta(hours=hours_ago)
    return t.strftime("%Y%m%d%H%M%S")


def _post(client: TestClient, token: str, objs: list[Any]) -> list[dict[str, Any]]:
    r = client.post(
        "/VIID/MotorVehicles",
        content=json.dumps({"MotorVehicleListObject": {"MotorVehicleObject": objs}}),
        headers={**auth(token), "Content-Type": "application/VIID+JSON"},
    )
    assert r.status_code == 200, r.text
    out: list[dict[str, Any]] = r.json()["ResponseStatusListObject"]["ResponseStatusObject"]
    return out


def _mid(n: int) -> str:
    return f"65010000001190000001022026112212{n:016d}"


def test_viid_direction_stored_for_every_code(
    client: TestClient, ctx: AppContext, tokens: dict[str, str]
) -> None:
    seed(ctx)
    stamp = _local()
    objs = [viid_object(_mid(n), f"粤B5432{n}", stamp, Direction=str(n)) for n in range(1, 10)]
    st_ = _post(client, tokens["agent"], objs)
    assert [s["StatusCode"] for s in st_] == [0] * 9
    assert [s["StatusString"] for s in st_] == ["OK"] * 9  # 9 其他 is a code, not a fault
    with ctx.db.session() as s:
        got = {p.key: p.direction_deg for p in s.scalars(select(Pass))}
    expected: dict[str, float | None] = {
        _mid(int(c)): float(BEARING[to]) for c, (_f, to) in GAT1400_DIRECTION.items()
    }
    expected[_mid(9)] = None
    assert got == expected
    assert got[_mid(1)] == 90.0  # the case: Direction 1 heads east


def test_viid_plate_conventions(client: TestClient, ctx: AppContext, tokens: dict[str, str]) -> None:
    seed(ctx)
    stamp = _local()
    sub = {
        "SubImageInfoObject": [
            {"Type": "02", "StoragePath": "http://10.0.0.9/plate.jpg"},
            {"Type": "01", "StoragePath": "http://10.0.0.9/vehicle.jpg"},
        ]
    }
    no_url = {k: v for k, v in viid_object(_mid(5), "粤B54325", stamp).items() if k != "StorageUrl1"}
    objs = [
        viid_object(_mid(1), "无车牌", stamp),
        viid_object(
            _mid(2),
            "粤B12-45",
            stamp,
            PlateClass="2",
            VehicleClass="k33",
            PlateCharReliability="粤-99,B-95,1-90,2-88,--0,4-67,5-87",
        ),
        viid_object(
            _mid(3), "粤B54323", stamp, PlateClass="28", VehicleClass="car", PlateCharReliability="粤-99,B-95"
        ),
        {k: v for k, v in viid_object(_mid(4), "", stamp, HasPlate="0").items() if k != "PlateNo"},
        {**no_url, "SubImageList": sub},
        viid_object(
            _mid(6), "苏B12345", stamp, PlateCharReliability="苏-80，B-90，1-90，2-88，3-90，4-67，5-87"
        ),
    ]
    st_ = _post(client, tokens["agent"], objs)
    assert [s["StatusCode"] for s in st_] == [0] * 6
    # the partial plate is named; its class, vehicle class and reliability are all taken
    assert st_[1]["StatusString"].startswith("OK (stored without: plate_no: '粤B12?45' 1 character unread")
    assert not any(
        f in st_[1]["StatusString"] for f in ("PlateClass", "VehicleClass", "PlateCharReliability")
    )
    warned = st_[2]["StatusString"]
    assert (
        "PlateClass: '28'" in warned and "VehicleClass: 'car'" in warned and "PlateCharReliability" in warned
    )
    with ctx.db.session() as s:
        got = {p.key: p for p in s.scalars(select(Pass))}
    assert (got[_mid(1)].plate_no, got[_mid(1)].plate_kind) == (plates.NO_PLATE, "none")
    p = got[_mid(2)]
    assert (p.plate_no, p.plate_kind, p.plate_valid) == ("粤B12?45", "other", False)
    assert (p.plate_class, p.vehicle_type, p.plate_char_reliability) == ("02", "K33", "99,95,90,88,0,67,87")
    q = got[_mid(3)]
    assert (q.plate_class, q.vehicle_type, q.plate_char_reliability) == (None, None, None)
    assert (got[_mid(4)].plate_no, got[_mid(4)].plate_kind) == (plates.NO_PLATE, "none")
    assert got[_mid(5)].image_key == "http://10.0.0.9/vehicle.jpg"  # 01 车辆大图 before 02 车牌小图
    assert got[_mid(6)].plate_char_reliability == "80,90,90,88,90,67,87"


def test_unread_characters_mapping() -> None:
    assert viid.plate_text("粤B12-45") == "粤B12" + plates.UNREADABLE + "45"
    assert viid.plate_text("-------") == "-------"  # nothing read at all: stored as unread
    assert plates.read(viid.plate_text("-------")).kind is plates.PlateKind.unread
    assert viid.plate_text(None, "0") == viid.NO_PLATE_TEXT and viid.plate_text(None, "1") is None
    assert plates.read("粤B1??45").why == "2 characters unread"


# ---- any record, whatever its codes, gets an answer (never a 500) ----------------------------

_anything = st.one_of(
    st.none(),
    st.text(max_size=24),
    st.integers(min_value=-(10**12), max_value=10**12),
    st.floats(allow_nan=True, allow_infinity=True),
    st.booleans(),
    st.sampled_from(["1", "9", "0", "02", "99", "K33", "-", "无车牌", "粤B1-345", "²", "٣", "1e400"]),
    st.lists(st.text(max_size=4), max_size=3),
    st.dictionaries(st.text(max_size=4), st.text(max_size=4), max_size=2),
)
_FIELDS = (
    "Direction",
    "PlateClass",
    "VehicleClass",
    "PlateColor",
    "VehicleColor",
    "PlateCharReliability",
    "PlateNo",
    "HasPlate",
    "LaneNo",
    "Speed",
    "DeviceID",
    "StorageUrl1",
    "SubImageList",
)
_counter = itertools.count(1000)


def _corrupt(v: Any) -> bool:
    """A value no code table decides about: a structure, or text a database refuses to hold."""
    if isinstance(v, list | dict):
        return True
    return isinstance(v, str) and any(
        unicodedata.category(c) in ("Cc", "Cs") and c not in "\t\n\r" for c in v
    )


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(attrs=st.dictionaries(st.sampled_from(_FIELDS), _anything, max_size=len(_FIELDS)), when=_anything)
def test_viid_any_codes_never_fail_the_request(
    client: TestClient, ctx: AppContext, tokens: dict[str, str], attrs: dict[str, Any], when: Any
) -> None:
    with ctx.db.session() as s:
        seeded = s.scalar(select(Checkpoint.id).where(Checkpoint.checkpoint_id == CP1)) is not None
    if not seeded:
        seed(ctx)
    n = next(_counter)
    good = {**viid_object(_mid(n), "粤B54321", _local()), **attrs}
    odd_time = {**viid_object(_mid(n) + "T", "粤B54321", _local()), **attrs, "PassTime": when}
    r = client.post(
        "/VIID/MotorVehicles",
        content=json.dumps({"MotorVehicleListObject": {"MotorVehicleObject": [good, odd_time]}}),
        headers={**auth(tokens["agent"]), "Content-Type": "application/VIID+JSON"},
    )
    assert r.status_code == 200, r.text
    st_ = r.json()["ResponseStatusListObject"]["ResponseStatusObject"]
    assert len(st_) == 2 and all(s["StatusCode"] in (viid.OK, viid.INVALID_JSON_CONTENT) for s in st_)
    # a field holding a list, an object or a character no database stores refuses the object,
    # naming the field (tests/test_bad_input.py); nothing else may
    if any(_corrupt(v) for v in attrs.values()) and st_[0]["StatusCode"] != viid.OK:
        assert st_[0]["StatusString"].split(":")[0] in attrs, st_[0]
        return
    assert st_[0]["StatusCode"] == viid.OK, st_[0]  # the required fields are fine: always stored
    _item, more = viid.to_pass(good)
    assert set(more) <= {"device_id", "plate_class", "plate_char_reliability", EXTRA_WARNINGS}
    with ctx.db.session() as s:
        p = s.scalars(select(Pass).where(Pass.key == _mid(n))).one()
    assert p.checkpoint_id == CP1
    assert p.direction_deg in {d for d, _ in codes.DIRECTIONS.values()}
    assert p.plate_class is None or p.plate_class in codes.PLATE_CLASSES
    assert p.vehicle_type is None or p.vehicle_type in codes.VEHICLE_CLASSES


def test_viid_batch_through_copy_keeps_the_new_columns(
    client: TestClient, ctx: AppContext, tokens: dict[str, str]
) -> None:
    """A batch over the COPY threshold (binary COPY on PostgreSQL, which names its columns) stores
    PlateClass and PlateCharReliability too, and so does its replay (the staged path)."""
    seed(ctx)
    stamp = _local()
    n = ctx.settings.ingest_copy_threshold + 10
    objs = [
        viid_object(
            _mid(500 + i),
            f"粤B{10000 + i}",
            stamp,
            PlateClass="02",
            PlateCharReliability=",".join(f"{c}-{90 - k}" for k, c in enumerate(f"粤B{10000 + i}")),
        )
        for i in range(n)
    ]
    objs.append(viid_object(_mid(500 + n), "粤B99999", stamp, PlateClass="31"))
    for _ in range(2):  # first all new, then all already stored
        assert [s["StatusCode"] for s in _post(client, tokens["agent"], objs)] == [0] * (n + 1)
    with ctx.db.session() as s:
        rows = s.execute(select(Pass.key, Pass.plate_class, Pass.plate_char_reliability)).all()
    assert len(rows) == n + 1
    by_key = {k: (c, r) for k, c, r in rows}
    assert by_key[_mid(500)] == ("02", "90,89,88,87,86,85,84")
    assert by_key[_mid(500 + n)] == ("31", None)
    assert all(
        c == "02" and r == "90,89,88,87,86,85,84" for k, (c, r) in by_key.items() if k != _mid(500 + n)
    )
