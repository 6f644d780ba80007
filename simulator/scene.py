"""Synthetic camera pictures: a per-device street scene (seeded by device id), picture faults, JPEG.

The static part (sky, buildings, road) is drawn once per (seed, size, kind) and kept in a small
cache; vehicles move with the device clock and the OSD shows the device time, so consecutive
frames differ as a live camera's do.
"""

from __future__ import annotations

import datetime as dt
import functools
import hashlib
import math
import random
from collections.abc import Mapping
from typing import Any

import cv2
import numpy as np
from numpy.typing import NDArray

Frame = NDArray[Any]
CST = dt.timezone(dt.timedelta(hours=8))  # Chinese cameras overlay local time


def seed_of(device_id: str) -> int:
    return int.from_bytes(hashlib.sha256(device_id.encode()).digest()[:8], "big")


@functools.lru_cache(maxsize=16)  # bounded: 16 × 1080p ≈ 100 MB at most
def _background(seed: int, width: int, height: int, checkpoint: bool, night: bool) -> Frame:
    rng = random.Random(seed)
    img = np.zeros((height, width, 3), np.uint8)
    horizon, cx, top_half, bottom_half, lanes = _road_geometry(seed, width, height, checkpoint)
    # sky: vertical gradient
    top = np.array([40, 20, 10] if night else [235, 200, 150], np.float32)
    bottom = np.array([70, 50, 40] if night else [250, 235, 215], np.float32)
    ramp = np.linspace(0, 1, max(horizon, 1), dtype=np.float32)[:, None]
    img[:horizon] = (top + (bottom - top) * ramp)[:, None, :].astype(np.uint8)
    # ground
    img[horizon:] = (45, 50, 48) if night else (95, 110, 105)
    # buildings along the horizon, with window grids (texture a blur check can see)
    x = -rng.randint(0, 40)
    while x < width:
        bw = rng.randint(width // 16, width // 6)
        bh = rng.randint(height // 8, int(horizon * 0.95))
        shade = rng.randint(90, 190)
        colour: tuple[int, ...] = (shade - rng.randint(0, 40), shade - rng.randint(0, 30), shade)
        if night:
            colour = tuple(c // 4 for c in colour)
        cv2.rectangle(img, (x, horizon - bh), (x + bw, horizon), colour, -1)
        step = max(6, width // 90)
        for wy in range(horizon - bh + step, horizon - step, step * 2):
            for wx in range(x + step // 2, x + bw - step, step * 2):
                lit = rng.random() < (0.35 if night else 0.0)
                win = (90, 220, 250) if lit else ((30, 30, 30) if night else (120, 90, 60))
                cv2.rectangle(img, (wx, wy), (wx + step, wy + step), win, -1)
        x += bw + rng.randint(0, width // 40)
    # road in perspective: a trapezoid from the horizon to the bottom edge
    road = np.array(
        [
            [cx - top_half, horizon],
            [cx + top_half, horizon],
            [cx + bottom_half, height],
            [cx - bottom_half, height],
        ]
    )
    cv2.fillPoly(img, [road], (35, 35, 38) if night else (70, 70, 72))
    for k in range(1, lanes):
        f = k / lanes
        x0 = int(cx - top_half + 2 * top_half * f)
        x1 = int(cx - bottom_half + 2 * bottom_half * f)
        for s in np.linspace(0, 1, 14)[::2]:
            s2 = s + 1 / 14
            p0 = (int(x0 + (x1 - x0) * s), int(horizon + (height - horizon) * s))
            p1 = (int(x0 + (x1 - x0) * s2), int(horizon + (height - horizon) * s2))
            cv2.line(img, p0, p1, (200, 200, 200), max(1, width // 400))
    # trees at the road side
    for _ in range(rng.randint(3, 8)):
        side = rng.choice((-1, 1))
        s = rng.uniform(0.1, 0.9)
        ty = int(horizon + (height - horizon) * s)
        tx = int(cx + side * (top_half + (bottom_half - top_half) * s) * rng.uniform(1.1, 1.5))
        r = int(10 + 60 * s * width / 1280)
        cv2.circle(img, (tx, ty - r), r, (30, 70, 35) if night else (40, 120, 50), -1)
    if checkpoint:
        # the gantry the checkpoint camera hangs from
        gy = horizon + (height - horizon) // 5
        cv2.rectangle(img, (0, gy - height // 60), (width, gy), (60, 60, 60), -1)
    img.setflags(write=False)
    return img


def _road_geometry(seed: int, width: int, height: int, checkpoint: bool) -> tuple[int, int, int, int, int]:
    """Where the horizon and the road are: (horizon y, road centre x, half width at top, at bottom, lanes)."""
    rng = random.Random(f"road:{seed}")
    horizon = int(height * (0.30 if checkpoint else rng.uniform(0.28, 0.42)))
    cx = width // 2 + (0 if checkpoint else rng.randint(-width // 6, width // 6))
    bottom_half = int(width * (0.55 if checkpoint else rng.uniform(0.35, 0.6)))
    lanes = 3 if checkpoint else rng.choice((2, 3, 4))
    return horizon, cx, width // 14, bottom_half, lanes


def plate_for(seed: int, k: int) -> str:
    """The k-th plate a checkpoint sees: 粤B + five letters/digits (no I or O, as on real plates)."""
    rng = random.Random(f"plate:{seed}:{k}")
    letters = "ABCDEFGHJKLMNPQRSTUVWXYZ"
    tail = "".join(rng.choice(letters + "0123456789" * 3) for _ in range(5))
    return "粤" + rng.choice("BBBBBAC") + tail


def _vehicles(img: Frame, seed: int, t: float, checkpoint: bool, night: bool) -> None:
    height, width = img.shape[:2]
    horizon, cx, top_half, bottom_half, _ = _road_geometry(seed, width, height, checkpoint)
    rng = random.Random(f"vehicles:{seed}")
    cars = []
    for i in range(3 if checkpoint else rng.randint(3, 6)):
        period = rng.uniform(4.0, 9.0)
        s = ((t / period) + rng.random()) % 1.0  # 0 at the horizon, 1 at the bottom edge
        lane = rng.uniform(-0.6, 0.6)
        colour: tuple[int, ...] = rng.choice(
            [(40, 40, 200), (200, 200, 200), (30, 30, 30), (180, 120, 40), (60, 160, 220)]
        )
        cars.append((s, i, period, lane, colour))
    for s, i, period, lane, colour in sorted(cars):  # far ones first, so near ones hide them
        half = top_half + (bottom_half - top_half) * s
        vx = int(cx + lane * half)
        vy = int(horizon + (height - horizon) * s)
        vw = int((12 + 260 * s) * width / 1280)
        vh = int(vw * 0.7)
        if night:
            colour = tuple(c // 3 for c in colour)
        cv2.rectangle(img, (vx - vw // 2, vy - vh), (vx + vw // 2, vy), colour, -1)
        cv2.rectangle(img, (vx - vw // 3, vy - vh), (vx + vw // 3, vy - vh * 2 // 3), (90, 80, 70), -1)
        if night:
            for hx in (vx - vw // 3, vx + vw // 3):
                cv2.circle(img, (hx, vy - vh // 4), max(2, vw // 10), (220, 255, 255), -1)
        if checkpoint and vw > 80:
            # the plate a recogniser reads: blue plate, white text (Hershey fonts have no 粤)
            plate = plate_for(seed, int(t / period) * 7 + i)[1:]
            pw, ph = vw // 3, max(8, vw // 12)
            p0 = (vx - pw // 2, vy - ph - vh // 10)
            cv2.rectangle(img, p0, (p0[0] + pw, p0[1] + ph), (160, 60, 0), -1)
            cv2.putText(
                img, plate, (p0[0] + 3, p0[1] + ph - 3), cv2.FONT_HERSHEY_SIMPLEX, ph / 32, (255, 255, 255), 1
            )


def _osd(img: Frame, device_time: float, name: str) -> None:
    height, width = img.shape[:2]
    scale = width / 1280
    stamp = dt.datetime.fromtimestamp(device_time, CST).strftime("%Y-%m-%d %H:%M:%S")
    for text, y in ((stamp, int(40 * scale)), (name, height - int(20 * scale))):
        org = (int(20 * scale), y)
        cv2.putText(img, text, org, cv2.FONT_HERSHEY_SIMPLEX, 1.0 * scale, (0, 0, 0), max(1, int(4 * scale)))
        cv2.putText(
            img, text, org, cv2.FONT_HERSHEY_SIMPLEX, 1.0 * scale, (255, 255, 255), max(1, int(2 * scale))
        )


def render(
    seed: int,
    width: int,
    height: int,
    device_time: float,
    *,
    checkpoint: bool = False,
    mode: str = "day",
    faults: Mapping[str, bool | float] | None = None,
    label: str = "",
    noise_seed: int | None = None,
) -> Frame:
    """One frame of the device's scene at `device_time` (epoch seconds on the device's clock)."""
    faults = faults or {}
    frame: Frame
    if "signal_loss_black" in faults:
        frame = np.full((height, width, 3), 3, np.uint8)
        return _sensor_noise(frame, 2, noise_seed)
    if "signal_loss_blue" in faults:
        frame = np.zeros((height, width, 3), np.uint8)
        frame[:] = (200, 20, 10)  # the "no video" screen of DVRs and encoders (BGR)
        cv2.putText(
            frame,
            "NO VIDEO",
            (width // 2 - 120, height // 2),
            cv2.FONT_HERSHEY_SIMPLEX,
            1.5,
            (255, 255, 255),
            3,
        )
        return frame
    night = mode in ("night", "ir")
    frame = _background(seed, width, height, checkpoint, night).copy()
    _vehicles(frame, seed, device_time, checkpoint, night)
    if "moved" in faults:
        angle = float(faults["moved"])
        m = cv2.getRotationMatrix2D((width * 0.3, height * 0.6), angle, 1.15)
        m[0, 2] += width * 0.08
        m[1, 2] -= height * 0.06
        frame = cv2.warpAffine(frame, m, (width, height), borderMode=cv2.BORDER_REPLICATE)
    if mode == "ir":
        grey = cv2.cvtColor(frame, cv2.COLOR_BGR2GRAY)
        grey = cv2.convertScaleAbs(grey, alpha=2.2, beta=25)
        frame = cv2.cvtColor(grey, cv2.COLOR_GRAY2BGR)
    if "overexposed" in faults:
        frame = cv2.convertScaleAbs(frame, alpha=1.6, beta=150)
    if "underexposed" in faults:
        frame = cv2.convertScaleAbs(frame, alpha=0.12, beta=0)
    if "color_cast" in faults:
        f = frame.astype(np.float32)
        f[..., 0] *= 0.55
        f[..., 1] = f[..., 1] * 0.9 + 70
        f[..., 2] *= 0.55
        frame = np.clip(f, 0, 255).astype(np.uint8)
    if "occlusion" in faults:
        share = float(faults["occlusion"])
        # a flat, low-texture blob over the lower-left (a bag, a leaf, paint on the dome)
        ow, oh = int(width * math.sqrt(share) * 1.05), int(height * math.sqrt(share) * 1.05)
        cv2.ellipse(
            frame, (ow // 2, height - oh // 2), (ow // 2 + 10, oh // 2 + 10), 0, 0, 360, (38, 42, 40), -1
        )
        cv2.rectangle(frame, (0, height - oh), (ow, height), (38, 42, 40), -1)
    if "blur" in faults:
        sigma = max(0.5, float(faults["blur"]))
        frame = cv2.GaussianBlur(frame, (0, 0), sigma)
    frame = _sensor_noise(frame, int(faults.get("noise", 0)) or 2, noise_seed)
    _osd(frame, device_time, label)
    return frame


def _sensor_noise(frame: Frame, sigma: int, noise_seed: int | None) -> Frame:
    rng = np.random.default_rng(noise_seed)
    noise = rng.normal(0, sigma, size=(*frame.shape[:2], 1)).astype(np.int16)
    return np.clip(frame.astype(np.int16) + noise, 0, 255).astype(np.uint8)


def encode_jpeg(frame: Frame, quality: int = 85) -> bytes:
    ok, buf = cv2.imencode(".jpg", frame, [cv2.IMWRITE_JPEG_QUALITY, quality])
    if not ok:
        raise RuntimeError("OpenCV could not encode the frame as JPEG")
    return buf.tobytes()
