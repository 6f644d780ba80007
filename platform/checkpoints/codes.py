"""Code tables of the checkpoint standards, each with the public source it was checked against.

The standards themselves (GA/T 1400.3 视图库 data dictionary, GA 24.4 / GA 24.7 机动车登记信息代码)
are not freely published, so every table here was checked against two kinds of public
implementation: a data dictionary shipped by an open VIID platform and the entity documentation of
an open VIID server. docs/standards.md lists the tables, their sources and where they differ.

Sources (cited below by these short names):

- [wvp-dict]   648540858/wvp-GB28181-pro, src/main/resources/gb_dict.json (the dictionary of its
               GA/T 1400 module: directionType, color, plateClassType, vehicleClassType, imageType,
               tollgateCatType, tollgateUsageType);
- [cargox]     OverwindSlash/CargoX, src/Pensees.CargoX.Core/Entities/Vehicles/Motor.cs (the
               MotorVehicle object: 行驶方向 Direction, PlateColor, PlateClass, PlateNo conventions,
               PlateCharReliability), Entities/Lanes/Lane.cs (lane direction, CityPass),
               Entities/Apes/Ape.cs (names GA/T 1400.3 §B.3.52 水平方向 HDirectionType),
               Entities/Tollgates/Tollgate.cs (卡口类型 TollgateCat, 卡口用途 TollgateCat2),
               Entities/Common/SubImageInfo.cs (names §B.3.54 图像类型 ImageType);
- [javacompile] LookingDreamer/JavaCompile, project/src/cm/src/main/java/com/zzb/cm/Interface/entity/
               model/PlateType.java (号牌种类 in code order, the only public list here with 18/19).
"""

from __future__ import annotations

# 行驶方向 (GA/T 1400.3 §B.3.52 水平方向, HDirectionType): code → (heading of travel in degrees
# clockwise from north, or None for 9 其他; the standard's wording). Sources: [wvp-dict]
# directionType and [cargox] Motor.cs / Lane.cs, which agree code for code. The direction is the one
# the vehicle travels *towards*: 1 西→东 is heading east (90°).
# NB: this is not GB/T 28181's 监视方位 (DirectionType, cameras.schemas.DirectionType), where the
# diagonals run 5 东南, 6 东北, 7 西南, 8 西北 and the code names where the camera looks.
DIRECTIONS: dict[str, tuple[float | None, str]] = {
    "1": (90.0, "西向东"),
    "2": (270.0, "东向西"),
    "3": (180.0, "北向南"),
    "4": (0.0, "南向北"),
    "5": (45.0, "西南到东北"),
    "6": (225.0, "东北到西南"),
    "7": (135.0, "西北到东南"),
    "8": (315.0, "东南到西北"),
    "9": (None, "其他"),
}

# 号牌种类 (GA 24.7; GA/T 1400 MotorVehicle.PlateClass, two digits). Source: [wvp-dict]
# plateClassType (01–17, 20–27, 31, 32, 99); [cargox] Motor.cs agrees on 01–07. 18 and 19 are
# missing from [wvp-dict]; they are taken from [javacompile] (试验汽车 / 试验摩托车, between 教练摩托车
# and 临时入境汽车). 13 was 农用运输车号牌 in older editions ([javacompile]), 低速车号牌 now.
PLATE_CLASSES: dict[str, str] = {
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

# 图像类型 (GA/T 1400.3 §B.3.54 ImageType; SubImageInfo.Type). Source: [wvp-dict] imageType; the
# section number from [cargox] SubImageInfo.cs.
IMAGE_TYPES: dict[str, str] = {
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
# Which picture of a pass to keep when it comes only in SubImageList: the whole vehicle first,
# then its close-up, the composite, the scene; a plate crop only when there is nothing else.
IMAGE_PREFERENCE = ("01", "09", "08", "14", "100", "07", "02", "03")

# 车辆类型 (GA 24.4 机动车车辆类型, cited as GA/T 16.4 by [cargox] Motor.cs; GA/T 1400
# MotorVehicle.VehicleClass, three characters). Source: [wvp-dict] vehicleClassType. One code and
# its name a line: K 客车, H 货车, Q 牵引车, Z 专项作业车, D 电车, M 摩托车, N 三轮汽车, T 拖拉机,
# J 轮式机械, G 全挂车, B 半挂车, X 其他.
_VEHICLE_CLASS_LINES = """
K10 大型客车
K11 大型普通客车
K12 大型双层客车
K13 大型卧铺客车
K14 大型铰接客车
K15 大型越野客车
K16 大型轿车
K17 大型专用客车
K20 中型客车
K21 中型普通客车
K22 中型双层客车
K23 中型卧铺客车
K24 中型铰接客车
K25 中型越野客车
K27 中型专用客车
K30 小型客车
K31 小型普通客车
K32 小型越野客车
K33 小型轿车
K34 小型专用客车
K40 微型客车
K41 微型普通客车
K42 微型越野客车
K43 微型轿车
H10 重型货车
H11 重型普通货车
H12 重型厢式货车
H13 重型封闭货车
H14 重型罐式货车
H15 重型平板货车
H16 重型集装厢车
H17 重型自卸货车
H18 重型特殊结构货车
H19 重型仓栅式货车
H20 中型货车
H21 中型普通货车
H22 中型厢式货车
H23 中型封闭货车
H24 中型罐式货车
H25 中型平板货车
H26 中型集装厢车
H27 中型自卸货车
H28 中型特殊结构货车
H29 中型仓栅式货车
H30 轻型货车
H31 轻型普通货车
H32 轻型厢式货车
H33 轻型封闭货车
H34 轻型罐式货车
H35 轻型平板货车
H37 轻型自卸货车
H38 轻型特殊结构货车
H39 轻型仓栅式货车
H40 微型货车
H41 微型普通货车
H42 微型厢式货车
H43 微型封闭货车
H44 微型罐式货车
H45 微型自卸货车
H46 微型特殊结构货车
H47 微型仓栅式货车
H50 低速货车
H51 普通低速货车
H52 厢式低速货车
H53 罐式低速货车
H54 自卸低速货车
H55 仓栅式低速货车
Q10 重型牵引车
Q11 重型半挂牵引车
Q12 重型全挂牵引车
Q20 中型牵引车
Q21 中型半挂牵引车
Q22 中型全挂牵引车
Q30 轻型牵引车
Q31 轻型半挂牵引车
Q32 轻型全挂牵引车
Z11 大型专项作业车
Z21 中型专项作业车
Z31 小型专项作业车
Z41 微型专项作业车
Z51 重型专项作业车
Z71 轻型专项作业车
D11 无轨电车
D12 有轨电车
M10 三轮摩托车
M11 普通正三轮摩托车
M12 轻便正三轮摩托车
M13 正三轮载客摩托车
M14 正三轮载货摩托车
M15 侧三轮摩托车
M20 二轮摩托车
M21 普通二轮摩托车
M22 轻便二轮摩托车
N11 三轮汽车
T11 大型轮式拖拉机
T20 小型拖拉机
T21 小型轮式拖拉机
T22 手扶拖拉机
T23 手扶变形运输机
J11 轮式装载机械
J12 轮式挖掘机械
J13 轮式平地机械
G10 重型全挂车
G11 重型普通全挂车
G12 重型厢式全挂车
G13 重型罐式全挂车
G14 重型平板全挂车
G15 重型集装箱全挂车
G16 重型自卸全挂车
G17 重型仓栅式全挂车
G18 重型旅居全挂车
G19 重型专项作业全挂车
G20 中型全挂车
G21 中型普通全挂车
G22 中型厢式全挂车
G23 中型罐式全挂车
G24 中型平板全挂车
G25 中型集装箱全挂车
G26 中型自卸全挂车
G27 中型仓栅式全挂车
G28 中型旅居全挂车
G29 中型专项作业全挂车
G30 轻型全挂车
G31 轻型普通全挂车
G32 轻型厢式全挂车
G33 轻型罐式全挂车
G34 轻型平板全挂车
G35 轻型自卸全挂车
G36 轻型仓栅式全挂车
G37 轻型旅居全挂车
G38 轻型专项作业全挂车
B10 重型半挂车
B11 重型普通半挂车
B12 重型厢式半挂车
B13 重型罐式半挂车
B14 重型平板半挂车
B15 重型集装箱半挂车
B16 重型自卸半挂车
B17 重型特殊结构半挂车
B18 重型仓栅式半挂车
B19 重型旅居半挂车
B1A 重型专项作业半挂车
B1B 重型低平板半挂车
B20 中型半挂车
B21 中型普通半挂车
B22 中型厢式半挂车
B23 中型罐式半挂车
B24 中型平板半挂车
B25 中型集装箱半挂车
B26 中型自卸半挂车
B27 中型特殊结构半挂车
B28 中型仓栅式半挂车
B29 中型旅居半挂车
B2A 中型专项作业半挂车
B2B 中型低平板半挂车
B30 轻型半挂车
B31 轻型普通半挂车
B32 轻型厢式半挂车
B33 轻型罐式半挂车
B34 轻型平板半挂车
B35 轻型自卸半挂车
B36 轻型仓栅式半挂车
B37 轻型旅居半挂车
B38 轻型专项作业半挂车
B39 轻型低平板半挂车
X99 其他
"""
VEHICLE_CLASSES: dict[str, str] = dict(
    line.split(" ", 1) for line in _VEHICLE_CLASS_LINES.strip().splitlines()
)


def plate_class(value: object) -> str | None:
    """A 号牌种类 as its two-digit code (a vendor's `2` is `02`); None when it is no code of the table."""
    s = str(value).strip()
    if s.isdecimal() and len(s) == 1:
        s = "0" + s
    return s if s in PLATE_CLASSES else None


def vehicle_class(value: object) -> str | None:
    """A 车辆类型 as its code (upper case); None when it is no code of the table."""
    s = str(value).strip().upper()
    return s if s in VEHICLE_CLASSES else None


# 卡口类型 (GA/T 1400 Tollgate.TollgateCat). Source: [wvp-dict] tollgateCatType; [cargox]
# Entities/Tollgates/Tollgate.cs agrees.
TOLLGATE_TYPES: dict[str, str] = {
    "10": "国际",
    "20": "省际",
    "30": "市际",
    "31": "市区",
    "40": "县际",
    "41": "县区",
    "99": "其他",
}

# 卡口用途 (GA/T 1400 Tollgate.TollgateCat2). Source: [wvp-dict] tollgateUsageType; [cargox]
# Entities/Tollgates/Tollgate.cs agrees.
TOLLGATE_USES: dict[str, str] = {"80": "治安卡口", "81": "交通卡口", "82": "其他"}

# 车道出入城 (GA/T 1400 Lane.CityPass). Source: [cargox] Entities/Lanes/Lane.cs. A lane numbered
# 1 is the leftmost in the direction of travel (LaneNo, same source).
CITY_PASS: dict[int, str] = {1: "进城", 2: "出城", 3: "非进出城", 4: "进出城混合"}
# CityPass values of a lane that vehicles enter the city by.
CITY_ENTRY = frozenset({1, 4})
