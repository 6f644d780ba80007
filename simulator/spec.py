"""What a virtual device is (DeviceSpec), and the seeded generator of a small synthetic city's devices.

Device ids are GB/T 28181 codes: division 440304 (深圳市福田区), industry 00 (public-security road)
for cameras and 05 (traffic checkpoint) for checkpoints, type 132 (IP camera) / 121 (video
checkpoint), network 0, and a 6-digit serial.
"""

from __future__ import annotations

import random
import string
from dataclasses import dataclass, field

DIVISION = "440304"  # GB/T 2260: 广东省深圳市福田区
CENTRE_LON, CENTRE_LAT = 114.05, 22.54

ROADS = [
    "深南大道",
    "福华路",
    "益田路",
    "彩田路",
    "金田路",
    "新洲路",
    "福中路",
    "红荔路",
    "滨河大道",
    "香蜜湖路",
]
KIND_NAMES = {
    "bullet": "枪机",
    "dome": "半球",
    "ptz": "球机",
    "turret": "筒机",
    "fisheye": "鱼眼",
    "checkpoint": "卡口",
}
# (hfov, range, model) per kind: plausible figures for each form factor
KIND_OPTICS = {
    "bullet": (75.0, 120.0, "SIM-IPC-B2040"),
    "dome": (95.0, 40.0, "SIM-IPC-D3120"),
    "ptz": (58.0, 250.0, "SIM-SD-P4225"),
    "turret": (85.0, 60.0, "SIM-IPC-T2240"),
    "fisheye": (360.0, 25.0, "SIM-IPC-F5360"),
    "checkpoint": (30.0, 45.0, "SIM-ITC-K9400"),
}
CAMERA_KINDS = ("bullet", "bullet", "bullet", "dome", "ptz", "turret", "fisheye")


@dataclass
class DeviceSpec:
    """One virtual device as registered: identity, map sector, account, picture size, faults."""

    device_id: str
    name: str
    kind: str
    lon: float
    lat: float
    heading_deg: float
    hfov_deg: float
    range_m: float
    point_class: int
    username: str = "admin"
    password: str = "admin12345"  # noqa: S105 - a virtual device's default account
    width: int = 1280
    height: int = 720
    # the main stream as declared in GetProfiles and served over RTSP (with --rtsp)
    fps: int = 25
    bitrate_kbps: int = 4096
    gov_length: int = 50
    mode: str = "day"  # scene mode: day | night | ir (not a fault)
    model: str = "SIM-IPC"
    faults: dict[str, bool | float] = field(default_factory=dict)
    # "host:port" the device believes it has behind NAT or a port forward: while the nat fault is
    # set its answers name it instead of the address it is reached at (None: faults.NAT_LAN_ADDRESS)
    lan_address: str | None = None

    @property
    def is_checkpoint(self) -> bool:
        return self.kind == "checkpoint"

    @property
    def serial(self) -> str:
        return self.device_id[-8:]


def _password(rng: random.Random) -> str:
    alphabet = string.ascii_letters + string.digits
    return "Sim" + "".join(rng.choice(alphabet) for _ in range(9))


def make_specs(
    n_cameras: int, n_checkpoints: int, seed: int = 1, division: str = DIVISION
) -> list[DeviceSpec]:
    """Cameras first, then checkpoints; the same seed always gives the same devices and passwords."""
    if n_cameras < 0 or n_checkpoints < 0 or n_cameras + n_checkpoints > 100_000:
        raise ValueError("device counts must be between 0 and 100000 in total")
    if len(division) != 6 or not division.isdigit():
        raise ValueError(f"division {division!r} must be 6 digits (GB/T 2260)")
    rng = random.Random(f"city:{seed}")
    grassroots = f"{seed % 100:02d}"  # different seeds give different ids
    specs: list[DeviceSpec] = []
    for i in range(n_cameras + n_checkpoints):
        checkpoint = i >= n_cameras
        kind = "checkpoint" if checkpoint else CAMERA_KINDS[rng.randrange(len(CAMERA_KINDS))]
        serial = i + 1 if not checkpoint else i - n_cameras + 1
        industry, type_code = ("05", "121") if checkpoint else ("00", "132")
        device_id = f"{division}{grassroots}{industry}{type_code}0{serial:06d}"
        hfov, range_m, model = KIND_OPTICS[kind]
        a, b = rng.sample(ROADS, 2)
        name = f"{a}{b}卡口 {serial:03d}" if checkpoint else f"{a}{b}路口 {KIND_NAMES[kind]} {serial:03d}"
        big = checkpoint or kind == "ptz"
        specs.append(
            DeviceSpec(
                device_id=device_id,
                name=name,
                kind=kind,
                lon=round(CENTRE_LON + rng.uniform(-0.03, 0.03), 6),
                lat=round(CENTRE_LAT + rng.uniform(-0.02, 0.02), 6),
                heading_deg=0.0 if hfov >= 360 else float(rng.randrange(0, 360)),
                hfov_deg=hfov,
                range_m=range_m,
                point_class=1 if checkpoint or kind == "ptz" else rng.choice((1, 2, 2, 3)),
                username="admin",
                password=_password(rng),
                width=1920 if big else 1280,
                height=1080 if big else 720,
                model=model,
            )
        )
    return specs
