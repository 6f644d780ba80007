"""Test data for passes and sightings: a few registered sensors and record builders (no simulator)."""

from __future__ import annotations

import datetime as dt
from typing import Any

from tianwang.context import AppContext
from tianwang.storage.models import Camera, Checkpoint, Fence

# three checkpoints on a line east–west, 1 km apart; a face camera; two phone fences
CHECKPOINTS = {
    "44030500001210000001": (114.000, 22.540),
    "44030500001210000002": (114.010, 22.540),
    "44030500001210000003": (114.020, 22.540),
}
FACE_CAMERA = "44030500001320000009"
FENCES = {"F-NS-01": (114.001, 22.541), "F-NS-02": (114.019, 22.539)}
CP1, CP2, CP3 = CHECKPOINTS


def seed(ctx: AppContext) -> None:
    with ctx.db.session() as s:
        for cid, (lon, lat) in CHECKPOINTS.items():
            s.add(
                Checkpoint(
                    checkpoint_id=cid,
                    name=cid[-3:],
                    lon=lon,
                    lat=lat,
                    direction_deg=90,
                    lanes=4,
                    area_code="440305",
                )
            )
        s.add(
            Camera(
                device_id=FACE_CAMERA,
                name="face",
                kind="face",
                lon=114.005,
                lat=22.541,
                heading_deg=0,
                hfov_deg=60,
                range_m=30,
                point_class=1,
                area_code="440305",
            )
        )
        for fid, (lon, lat) in FENCES.items():
            s.add(Fence(fence_id=fid, name=fid, lon=lon, lat=lat, radius_m=200))


def base_time() -> dt.datetime:
    """Yesterday noon UTC: inside retention and inside the partitions the migration made."""
    d = dt.datetime.now(dt.UTC) - dt.timedelta(days=1)
    return d.replace(hour=12, minute=0, second=0, microsecond=0)


def pass_item(key: str, plate: str, ts: dt.datetime, cp: str = CP1, **kw: Any) -> dict[str, Any]:
    return {
        "key": key,
        "checkpoint_id": cp,
        "lane": 2,
        "ts": ts.isoformat(),
        "plate_no": plate,
        "plate_color": "5",
        "speed_kmh": 48.5,
        **kw,
    }


def viid_object(mid: str, plate: str, local: str, tollgate: str = CP1, **kw: Any) -> dict[str, Any]:
    return {
        "MotorVehicleID": mid,
        "TollgateID": tollgate,
        "DeviceID": "44030500001320000001",
        "LaneNo": 1,
        "PassTime": local,
        "PlateNo": plate,
        "PlateColor": "5",
        "VehicleColor": "2",
        "Speed": 61,
        "Direction": "1",  # 行驶方向 1: 西→东, heading east (90°), as the checkpoints here face
        "StorageUrl1": "http://10.0.0.9/pic/1.jpg",
        **kw,
    }
