"""Synthetic camera pictures: a per-device street scene (seeded by device id), picture faults, JPEG.

The static part of a view (sky with clouds, textured facades, asphalt, verges and trees, lane
markings, shadows, lamps) is painted once per (seed, size, kind, mode) and kept in a cache bounded
in bytes; each frame adds the vehicles of the moment, sensor noise that differs from frame to frame,
and the OSD clock, so consecutive frames differ as a live camera's do (and a frozen one's do not).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import math
import random
import threading
from collections import OrderedDict
from collections.abc import Mapping
from typing import Any

import cv2
import numpy as np
from numpy.typing import NDArray

Frame = NDArray[Any]
CST = dt.timezone(dt.timedelta(hours=8))  # Chinese cameras overlay local time
MODES = ("day", "night", "ir")
# Painted backgrounds, most recently used last. A 1080p one is 6 MB: 192 MB holds ~30 of them, so
# a simulated site of a few dozen cameras polled in turn does not repaint on every request.
_CACHE_BYTES = 192 * 2**20
_cache: OrderedDict[tuple[int, int, int, bool, str], Frame] = OrderedDict()
_cache_lock = threading.Lock()
# Sensor noise is read from a fixed bank at a random offset per frame: drawing 6 M normal samples per
# 1080p frame would cost more than the rest of the frame. Split into the positive and negative part
# so saturating uint8 adds apply it without widening the frame.
_NOISE_MARGIN = 64
_NOISE_SIGMA = 1.3  # per slice; a frame sums 2 (day) or 3 (night, IR) slices at independent offsets
_noise_banks: dict[tuple[int, int], tuple[Frame, Frame]] = {}
_SLICES = {"day": 2, "night": 3, "ir": 3}
_FACADES = ((150, 160, 175), (120, 130, 150), (175, 170, 160), (110, 120, 140), (185, 185, 190),
            (90, 110, 150), (140, 150, 150))  # fmt: skip


def seed_of(device_id: str) -> int:
    return int.from_bytes(hashlib.sha256(device_id.encode()).digest()[:8], "big")


# --- the static view -------------------------------------------------------------------------------


def _road_geometry(seed: int, width: int, height: int, checkpoint: bool) -> tuple[int, int, int, int, int]:
    """Where the horizon and the road are: (horizon y, road centre x, half width at top, at bottom, lanes)."""
    rng = random.Random(f"road:{seed}")
    horizon = int(height * (0.30 if checkpoint else rng.uniform(0.28, 0.42)))
    cx = width // 2 + (0 if checkpoint else rng.randint(-width // 6, width // 6))
    bottom_half = int(width * (0.55 if checkpoint else rng.uniform(0.35, 0.6)))
    lanes = 3 if checkpoint else rng.choice((2, 3, 4))
    return horizon, cx, width // 14, bottom_half, lanes


def _fbm(
    rng: np.random.Generator, width: int, height: int, octaves: tuple[tuple[float, float], ...]
) -> Frame:
    """Value noise summed over octaves of (cell size in pixels, amplitude): coarse stains and fine grain."""
    out = np.zeros((height, width), np.float32)
    for cell, amp in octaves:
        gw, gh = max(2, int(width / cell) + 2), max(2, int(height / cell) + 2)
        small = rng.standard_normal((gh, gw)).astype(np.float32) * amp
        # INTER_CUBIC between cells: smooth at the cell scale, sharp enough to read as texture
        out += cv2.resize(small, (width, height), interpolation=cv2.INTER_CUBIC)
    return out


def _paint(seed: int, width: int, height: int, checkpoint: bool, mode: str) -> Frame:
    """The static view in one mode. Geometry and textures come from the seed alone, so the three
    modes of a device show the same street; only light differs."""
    rng = random.Random(seed)
    nrng = np.random.default_rng(seed % 2**63)
    k = width / 1280  # pixel sizes below are for 1280 wide
    horizon, cx, top_half, bottom_half, lanes = _road_geometry(seed, width, height, checkpoint)
    shape = (height, width)
    # Albedo (what the surfaces are) in float BGR 0..255, the windows lit at night, and a mask of
    # IR-bright surfaces (foliage reflects near-infrared strongly).
    alb = np.empty((height, width, 3), np.float32)
    lit_windows: list[tuple[tuple[int, int], tuple[int, int], tuple[float, float, float]]] = []
    foliage = np.zeros(shape, np.uint8)
    fine = _fbm(nrng, width, height, ((3.0 * k, 1.0), (7.0 * k, 0.8)))  # grain: asphalt, leaves
    coarse = _fbm(nrng, width, height, ((24.0 * k, 1.0), (80.0 * k, 1.2)))  # stains, patches, clouds

    # sky: gradient from zenith to a paler horizon, clouds where the coarse noise is high
    overcast = rng.random() < 0.3
    zenith = np.array((200, 185, 170) if overcast else (215, 160, 105), np.float32)
    low = np.array((215, 212, 208) if overcast else (235, 220, 200), np.float32)
    # all of it is smooth: compute on a quarter grid and scale up
    qh, qw = max(2, horizon // 4), max(2, width // 4)
    ramp = np.linspace(0, 1, qh, dtype=np.float32)[:, None, None]
    sky = zenith + (low - zenith) * ramp
    cloud = np.clip(cv2.resize(coarse[:horizon], (qw, qh), interpolation=cv2.INTER_AREA) * 0.6 - 0.2, 0, 1)
    sky = sky + (np.float32(245) - sky) * cloud[..., None] * (0.5 if overcast else 0.85)
    if horizon > 0:
        alb[:horizon] = cv2.resize(sky, (width, horizon), interpolation=cv2.INTER_LINEAR)
    sky_blue = alb[:horizon, :, 0].copy()

    # ground: pavement (tiles), then grass verges, then the road on top
    alb[horizon:] = (150, 155, 158)
    tile = max(6, int(18 * k))
    ground = alb[horizon:]
    ground[::tile] *= 0.8
    ground[:, ::tile] *= 0.85
    verges = []
    for side in (-1, 1):
        edge = rng.uniform(1.15, 1.5)
        far = cx + side * top_half * edge * 1.6
        near = cx + side * bottom_half * edge * 1.25
        outer = cx + side * width * 1.2
        verges.append(np.array([(far, horizon), (outer, horizon), (outer, height), (near, height)], np.int32))
    both = rng.random() < 0.75
    pick = rng.randrange(2)
    green = (55.0, rng.uniform(110, 140), 70.0)
    for j, verge in enumerate(verges):
        if both or j == pick:
            cv2.fillPoly(alb, [verge], green)
            cv2.fillPoly(foliage, [verge], 255)
    road = np.array([(cx - top_half, horizon), (cx + top_half, horizon), (cx + bottom_half, height),
                     (cx - bottom_half, height)], np.int32)  # fmt: skip
    asphalt = rng.uniform(78, 98)
    cv2.fillPoly(alb, [road], (asphalt, asphalt, asphalt + 3))
    cv2.fillPoly(foliage, [road], 0)
    # patched asphalt: darker repair squares and tyre tracks along the lanes
    for _ in range(rng.randint(2, 6)):
        s = rng.uniform(0.2, 0.95)
        py = int(horizon + (height - horizon) * s)
        half = top_half + (bottom_half - top_half) * s
        px = int(cx + rng.uniform(-0.8, 0.8) * half)
        pw, ph = int(rng.uniform(0.05, 0.2) * half), int(rng.uniform(0.01, 0.04) * height * s + 2)
        cv2.rectangle(alb, (px - pw, py - ph), (px + pw, py + ph), (asphalt * 0.8,) * 3, -1)
    lw = max(1, int(4 * k))
    for j in range(lanes + 1):
        f = j / lanes
        x0 = cx - top_half + 2 * top_half * f
        x1 = cx - bottom_half + 2 * bottom_half * f
        solid = j in (0, lanes)
        steps = 1 if solid else 16
        for s in range(0, steps, 1 if solid else 2):
            a, b = (s / steps) ** 1.3, ((s + 1) / steps) ** 1.3  # dashes grow towards the camera
            p0 = (int(x0 + (x1 - x0) * a), int(horizon + (height - horizon) * a))
            p1 = (int(x0 + (x1 - x0) * b), int(horizon + (height - horizon) * b))
            cv2.line(alb, p0, p1, (215, 218, 220) if not solid or j == 0 else (60, 190, 220), lw)
    if rng.random() < 0.5:  # a zebra crossing near the camera
        zy0, zy1 = int(height * rng.uniform(0.72, 0.8)), int(height * rng.uniform(0.84, 0.9))
        zs = (zy0 - horizon) / (height - horizon)
        half = int(top_half + (bottom_half - top_half) * zs)
        bar = max(4, int(22 * k))
        for bx in range(cx - half, cx + half, 2 * bar):
            cv2.rectangle(alb, (bx, zy0), (bx + bar, zy1), (210, 212, 215), -1)

    # buildings: a paler far row, then a near row with windows; facades textured
    sun = np.ones(shape, np.float32)
    for row, (paleness, hmin, hmax) in enumerate(((0.45, 0.15, 0.3), (0.0, 0.1, 0.26))):
        x = -rng.randint(0, int(40 * k) + 1)
        while x < width:
            bw = int(rng.uniform(90, 300) * k)
            bh = int(rng.uniform(hmin, hmax) * height)
            y0 = max(0, horizon - bh)
            base = np.array(rng.choice(_FACADES), np.float32)
            colour = base + (np.float32(215) - base) * paleness
            alb[y0:horizon, max(0, x) : x + bw] = colour
            if row == 1:
                win_w, win_h = int(rng.uniform(10, 20) * k) + 2, int(rng.uniform(12, 22) * k) + 2
                gap_x, gap_y = win_w + int(rng.uniform(6, 14) * k), win_h + int(rng.uniform(8, 16) * k)
                glass = rng.uniform(45, 85)
                for wy in range(y0 + int(10 * k), horizon - win_h - int(8 * k), gap_y):
                    cv2.line(alb, (x, wy - 3), (x + bw, wy - 3), tuple(float(c) * 0.85 for c in colour), 1)
                    for wx in range(x + int(8 * k), x + bw - win_w - int(4 * k), gap_x):
                        tint = glass + rng.uniform(-15, 25)
                        cv2.rectangle(
                            alb, (wx, wy), (wx + win_w, wy + win_h), (tint + 10, tint, tint - 5), -1
                        )
                        if rng.random() < 0.3:  # lit at night: warm light behind curtains
                            warm = rng.uniform(0.6, 1.0)
                            lit_windows.append(((wx, wy), (wx + win_w, wy + win_h),
                                                (120 * warm, 200 * warm, 250 * warm)))  # fmt: skip
                # the shaded side of the block
                sx = x + bw - max(2, int(bw * rng.uniform(0.08, 0.18)))
                sun[y0:horizon, max(0, sx) : max(0, x + bw)] *= 0.7
            x += bw + int(rng.uniform(0, 30) * k)

    # building shadows across the near ground (the sun is low on one side)
    side = rng.choice((-1, 1))
    depth = int((height - horizon) * rng.uniform(0.05, 0.2))
    start = 0 if side < 0 else int(width * rng.uniform(0.4, 0.7))
    end = int(width * rng.uniform(0.3, 0.6)) if side < 0 else width
    cv2.rectangle(sun, (start, horizon), (end, horizon + depth), 0.55, -1)

    # trees: trunks, canopies of overlapping blobs (foliage texture), shadows on the ground
    for _ in range(rng.randint(3, 8)):
        s = rng.uniform(0.1, 0.9)
        ty = int(horizon + (height - horizon) * s)
        tside = rng.choice((-1, 1))
        tx = int(cx + tside * (top_half + (bottom_half - top_half) * s) * rng.uniform(1.1, 1.6))
        r = int((10 + 60 * s) * k) + 2
        cv2.ellipse(sun, (tx + side * r, ty), (int(r * 1.4), max(2, r // 3)), 0, 0, 360, 0.6, -1)
        cv2.rectangle(alb, (tx - max(1, r // 8), ty - r), (tx + max(1, r // 8), ty), (40, 55, 70), -1)
        leaf = (45, rng.uniform(95, 135), 55)
        for _b in range(4):
            bx, by = tx + int(rng.uniform(-0.5, 0.5) * r), ty - r - int(rng.uniform(0.2, 0.9) * r)
            br = int(r * rng.uniform(0.6, 0.9)) + 1
            cv2.circle(alb, (bx, by), br, leaf, -1)
            cv2.circle(foliage, (bx, by), br, 255, -1)
            cv2.circle(sun, (bx + side * br // 3, by + br // 3), br // 2, 0.8, -1)  # self-shading

    # street lamps along both kerbs (poles by day, pools of light by night)
    lamps: list[tuple[int, int, int]] = []
    for j in range(1, 5):
        s = (j / 5) ** 1.4
        y = int(horizon + (height - horizon) * s)
        half = top_half + (bottom_half - top_half) * s
        pole = int((40 + 260 * s) * k)
        for lside in (-1, 1):
            lx = int(cx + lside * half * 1.08)
            cv2.line(alb, (lx, y), (lx, y - pole), (70, 72, 75), max(1, int(5 * s * k)))
            cv2.line(
                alb, (lx, y - pole), (lx - lside * pole // 6, y - pole), (70, 72, 75), max(1, int(4 * s * k))
            )
            lamps.append((lx - lside * pole // 6, y - pole, pole))
    if checkpoint:
        gy = horizon + (height - horizon) // 5
        gh = max(4, height // 50)
        cv2.rectangle(alb, (0, gy - gh), (width, gy), (95, 98, 100), -1)
        for px in (cx - bottom_half // 3, cx + bottom_half // 3):
            cv2.rectangle(
                alb, (px - gh // 2, gy), (px + gh // 2, gy + height // 40), (40, 40, 40), -1
            )  # cameras

    skymask = alb[:horizon, :, 0] == sky_blue  # what no building, tree or pole hides
    # texture: grain everywhere (strongest on foliage), stains on the ground, facade weathering
    leaves = foliage.astype(np.float32) * np.float32(1 / 255)
    amp = leaves * np.float32(9.0)
    amp[:horizon] += 5.0
    amp[horizon:] += 9.0
    amp[:horizon][skymask] = 1.0  # a clear sky has hardly any grain
    tex = fine * amp
    tex += coarse * np.float32(4.0)
    tex[horizon:] += coarse[horizon:] * np.float32(5.0)
    alb += tex[..., None]
    alb[..., 1] += fine * leaves * np.float32(5.0)  # leaves vary in hue, not only in brightness

    if mode == "day":
        img = alb
        img *= sun[..., None]
    elif mode == "night":
        # ambient moonlight, pools of warm light under each lamp, lit windows, a dark sky
        light = np.full(shape, 0.18, np.float32)
        pools = np.zeros(shape, np.float32)
        for lx, ly, pole in lamps:
            cv2.ellipse(pools, (lx, ly + pole), (int(pole * 0.9), int(pole * 0.35)), 0, 0, 360, 1.0, -1)
        small = cv2.resize(pools, (width // 8, height // 8), interpolation=cv2.INTER_AREA)
        spread = cv2.GaussianBlur(small, (0, 0), 3)
        light += 0.75 * cv2.resize(spread, (width, height), interpolation=cv2.INTER_LINEAR)
        # LED street lights are near white, and the camera's white balance takes out the rest
        img = alb
        img *= (light * np.float32(0.95))[..., None]
        sky = np.linspace(14, 36, max(horizon, 1), dtype=np.float32)[:, None, None] * np.array(
            (1.25, 1.0, 0.9), np.float32
        )
        top = img[:horizon]
        top[skymask] = (sky + fine[:horizon, :, None])[skymask]
        for p0, p1, glow in lit_windows:
            cv2.rectangle(img, p0, p1, glow, -1)
        for lx, ly, pole in lamps:
            cv2.circle(img, (lx, ly), max(2, int(pole / 30)), (190, 235, 255), -1)
    else:  # ir: grey, lit by the camera's own illuminator (strongest in the middle, falling off)
        grey = cv2.cvtColor(np.clip(alb, 0, 255).astype(np.uint8), cv2.COLOR_BGR2GRAY).astype(np.float32)
        grey += leaves * (grey * np.float32(0.5) + np.float32(25))  # foliage is bright in near-infrared
        yy, xx = np.mgrid[0:height:8, 0:width:8].astype(np.float32)
        d = np.hypot((xx - width / 2) / width, (yy - height * 0.6) / height)
        fall = cv2.resize(np.clip(1.25 - 1.4 * d, 0.3, 1.2), (width, height), interpolation=cv2.INTER_LINEAR)
        grey *= fall
        top = grey[:horizon]
        top[skymask] = top[skymask] * np.float32(0.25) + np.float32(10)  # the sky sends nothing back
        np.clip(grey, 0, 255, out=grey)
        out = cv2.cvtColor(grey.astype(np.uint8), cv2.COLOR_GRAY2BGR)
        out.setflags(write=False)
        return out
    np.clip(img, 0, 255, out=img)
    out = img.astype(np.uint8)
    out.setflags(write=False)
    return out


def _background(seed: int, width: int, height: int, checkpoint: bool, mode: str) -> Frame:
    key = (seed, width, height, checkpoint, mode)
    with _cache_lock:
        img = _cache.get(key)
        if img is not None:
            _cache.move_to_end(key)
            return img
    img = _paint(seed, width, height, checkpoint, mode)
    with _cache_lock:
        _cache[key] = img
        total = sum(v.nbytes for v in _cache.values())
        while total > _CACHE_BYTES and len(_cache) > 1:
            _, old = _cache.popitem(last=False)
            total -= old.nbytes
    return img


def plate_for(seed: int, k: int) -> str:
    """The k-th plate a checkpoint sees: 粤B + five letters/digits (no I or O, as on real plates)."""
    rng = random.Random(f"plate:{seed}:{k}")
    letters = "ABCDEFGHJKLMNPQRSTUVWXYZ"
    tail = "".join(rng.choice(letters + "0123456789" * 3) for _ in range(5))
    return "粤" + rng.choice("BBBBBAC") + tail


# --- what moves -----------------------------------------------------------------------------------


def _vehicles(img: Frame, seed: int, t: float, checkpoint: bool, mode: str) -> None:
    height, width = img.shape[:2]
    horizon, cx, top_half, bottom_half, _ = _road_geometry(seed, width, height, checkpoint)
    rng = random.Random(f"vehicles:{seed}")
    cars = []
    for i in range(3 if checkpoint else rng.randint(3, 6)):
        period = rng.uniform(4.0, 9.0)
        s = ((t / period) + rng.random()) % 1.0  # 0 at the horizon, 1 at the bottom edge
        lane = rng.uniform(-0.6, 0.6)
        colour: tuple[float, ...] = rng.choice(
            [(40, 40, 200), (200, 200, 200), (30, 30, 30), (180, 120, 40), (60, 160, 220), (235, 235, 235)]
        )
        cars.append((s, i, period, lane, colour))
    night, ir = mode == "night", mode == "ir"
    for s, i, period, lane, colour in sorted(cars):  # far ones first, so near ones hide them
        half = top_half + (bottom_half - top_half) * s
        vx = int(cx + lane * half)
        vy = int(horizon + (height - horizon) * s)
        vw = max(6, int((12 + 260 * s) * width / 1280))
        vh = max(4, int(vw * 0.7))
        if night:
            colour = tuple(c * 0.25 for c in colour)
        elif ir:
            g = 0.3 * colour[0] + 0.5 * colour[1] + 0.2 * colour[2]
            colour = (g, g, g)
        dark = tuple(c * 0.6 for c in colour)
        x0, x1, y0 = vx - vw // 2, vx + vw // 2, vy - vh
        if mode == "day":  # the shadow under the car
            cv2.ellipse(img, (vx, vy), (vw // 2 + 2, max(2, vh // 8)), 0, 0, 360, (25, 25, 28), -1)
        cv2.rectangle(img, (x0, y0 + vh // 3), (x1, vy - vh // 10), colour, -1)
        cv2.rectangle(img, (x0 + vw // 8, y0), (x1 - vw // 8, y0 + vh // 3), dark, -1)
        glass = (15, 15, 18) if night else (70, 62, 58)
        cv2.rectangle(img, (x0 + vw // 5, y0 + vh // 14), (x1 - vw // 5, y0 + vh // 3), glass, -1)
        cv2.rectangle(img, (x0, vy - vh // 10), (x1, vy), (20, 20, 22), -1)  # bumper and wheels
        r = max(2, vw // 12)
        if night or ir:
            for hx in (x0 + vw // 6, x1 - vw // 6):  # headlights: towards the camera, white
                cv2.circle(img, (hx, vy - vh // 4), int(r * 1.8), (150, 180, 190), -1)
                cv2.circle(img, (hx, vy - vh // 4), r, (245, 252, 255), -1)
        else:
            for hx in (x0 + vw // 6, x1 - vw // 6):
                cv2.circle(img, (hx, vy - vh // 4), r, (200, 205, 210), -1)
        if checkpoint and vw > 80:
            # the plate a recogniser reads: blue plate, white text (Hershey fonts have no 粤)
            plate = plate_for(seed, int(t / period) * 7 + i)[1:]
            pw, ph = vw // 3, max(8, vw // 12)
            p0 = (vx - pw // 2, vy - ph - vh // 10)
            plate_bg = (160, 60, 0) if not ir else (90, 90, 90)
            cv2.rectangle(img, p0, (p0[0] + pw, p0[1] + ph), plate_bg, -1)
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


def _noise_bank(width: int, height: int) -> tuple[Frame, Frame]:
    key = (width, height)
    with _cache_lock:
        bank = _noise_banks.get(key)
    if bank is None:
        rng = np.random.default_rng(width * 100_003 + height)
        n = rng.normal(0, _NOISE_SIGMA, size=(height + _NOISE_MARGIN, width + _NOISE_MARGIN, 3))
        n = np.rint(n).astype(np.int16)
        bank = (np.clip(n, 0, 255).astype(np.uint8), np.clip(-n, 0, 255).astype(np.uint8))
        with _cache_lock:
            _noise_banks[key] = bank
    return bank


def _sensor_noise(frame: Frame, slices: int, noise_seed: int | None) -> Frame:
    """Add `slices` independent slices of the bank (σ ≈ 1.3·√slices), fresh offsets every frame."""
    height, width = frame.shape[:2]
    pos, neg = _noise_bank(width, height)
    rng = np.random.default_rng(noise_seed)
    grey = frame.ndim == 2
    for _ in range(slices):
        oy, ox = (int(v) for v in rng.integers(0, _NOISE_MARGIN, 2))
        channel = int(rng.integers(0, 3))
        p = pos[oy : oy + height, ox : ox + width]
        m = neg[oy : oy + height, ox : ox + width]
        if grey:
            p, m = p[:, :, channel], m[:, :, channel]
        frame = cv2.subtract(cv2.add(frame, p), m)
    return frame


def _exposure(frame: Frame, gain: float) -> Frame:
    """Scale exposure by `gain` in linear light (sRGB-ish gamma 2.2), clipping like a sensor."""
    lin = (np.arange(256, dtype=np.float32) / 255.0) ** 2.2 * gain
    lut = (np.clip(lin, 0, 1) ** (1 / 2.2) * 255).astype(np.uint8)
    return cv2.LUT(frame, lut)


def _fault_noise(frame: Frame, sigma: float, noise_seed: int | None) -> Frame:
    rng = np.random.default_rng(None if noise_seed is None else noise_seed + 1)
    noise = rng.normal(0, sigma, size=frame.shape).astype(np.float32)
    return np.clip(frame.astype(np.float32) + noise, 0, 255).astype(np.uint8)


def _occluder(frame: Frame, share: float, seed: int, mode: str) -> Frame:
    """Something stuck on the lens over the lower left: tape, a leaf, a bag. So close to the lens it
    is out of focus (soft edge, no texture) and lit from behind (dark), as in real footage."""
    height, width = frame.shape[:2]
    rng = random.Random(f"occluder:{seed}")
    ow, oh = int(width * math.sqrt(share) * 1.05), int(height * math.sqrt(share) * 1.05)
    sw, sh = max(8, width // 8), max(8, height // 8)
    mask = np.zeros((sh, sw), np.float32)
    fx, fy = sw / width, sh / height
    centre = (int(ow * fx / 2), int(sh - oh * fy / 2))
    cv2.ellipse(mask, centre, (int((ow / 2 + 10) * fx), int((oh / 2 + 10) * fy)), 0, 0, 360, 1.0, -1)
    cv2.rectangle(mask, (0, int(sh - oh * fy)), (int(ow * fx), sh), 1.0, -1)
    mask = cv2.GaussianBlur(mask, (0, 0), 0.8)
    alpha = cv2.resize(mask, (width, height), interpolation=cv2.INTER_LINEAR)[..., None]
    # black tape, a dark bag, a dead leaf, a grey bag, a brown leaf
    tone = np.array(
        rng.choice([(22, 22, 24), (38, 44, 52), (40, 50, 44), (60, 60, 66), (44, 50, 60)]), np.float32
    )
    if mode == "night":
        tone *= 0.35
    elif mode == "ir":
        tone[:] = float(tone.mean()) * 0.35  # grey, and outside the illuminator's cone
    # a gentle shading across the object, a few grey levels from one side to the other
    ramp = np.linspace(-3, 3, width, dtype=np.float32)[None, :, None]
    cover = tone + ramp
    out = frame.astype(np.float32) * (1 - alpha) + cover * alpha
    return np.clip(out, 0, 255).astype(np.uint8)


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
    """One frame of the device's scene at `device_time` (epoch seconds on the device's clock).

    `noise_seed` fixes the sensor noise (tests); None draws it fresh, as a live sensor does."""
    if mode not in MODES:
        raise ValueError(f"scene mode {mode!r} is not one of {', '.join(MODES)}")
    faults = faults or {}
    frame: Frame
    if "signal_loss_black" in faults:
        frame = np.full((height, width, 3), 3, np.uint8)
        return _sensor_noise(frame, 1, noise_seed)
    if "signal_loss_blue" in faults:
        frame = np.zeros((height, width, 3), np.uint8)
        frame[:] = (200, 20, 10)  # the "no video" screen of DVRs and encoders (BGR)
        scale = width / 1280
        cv2.putText(frame, "NO VIDEO", (width // 2 - int(120 * scale), height // 2), cv2.FONT_HERSHEY_SIMPLEX,
                    1.5 * scale, (255, 255, 255), max(1, int(3 * scale)))  # fmt: skip
        return frame
    frame = _background(seed, width, height, checkpoint, mode).copy()
    _vehicles(frame, seed, device_time, checkpoint, mode)
    if "moved" in faults:
        angle = float(faults["moved"])
        m = cv2.getRotationMatrix2D((width * 0.3, height * 0.6), angle, 1.15)
        m[0, 2] += width * 0.08
        m[1, 2] -= height * 0.06
        frame = cv2.warpAffine(frame, m, (width, height), borderMode=cv2.BORDER_REFLECT_101)
    if "occlusion" in faults:
        frame = _occluder(frame, float(faults["occlusion"]), seed, mode)
    if "overexposed" in faults:
        # exposure far above what the scene needs (a dark scene needs more gain to wash out)
        frame = _exposure(frame, 6.0 * max(1.0, (115 / max(float(frame.mean()), 10.0)) ** 2.2))
    if "underexposed" in faults:
        frame = _exposure(frame, 0.05)
    if "color_cast" in faults:
        f = frame.astype(np.float32)
        f[..., 0] *= 0.55
        f[..., 1] = f[..., 1] * 0.9 + 70
        f[..., 2] *= 0.55
        frame = np.clip(f, 0, 255).astype(np.uint8)
    if "blur" in faults:
        frame = cv2.GaussianBlur(frame, (0, 0), max(0.5, float(faults["blur"])))
    if mode == "ir" and "color_cast" not in faults:
        # IR pictures are monochrome, sensor noise included
        grey = _sensor_noise(cv2.cvtColor(frame, cv2.COLOR_BGR2GRAY), _SLICES[mode], noise_seed)
        frame = cv2.cvtColor(grey, cv2.COLOR_GRAY2BGR)
    else:
        frame = _sensor_noise(frame, _SLICES[mode], noise_seed)
    if "noise" in faults:
        frame = _fault_noise(frame, float(faults["noise"]), noise_seed)
    _osd(frame, device_time, label)
    return frame


def encode_jpeg(frame: Frame, quality: int = 85) -> bytes:
    ok, buf = cv2.imencode(".jpg", frame, [cv2.IMWRITE_JPEG_QUALITY, quality])
    if not ok:
        raise RuntimeError("OpenCV could not encode the frame as JPEG")
    return buf.tobytes()


def reencode(jpeg: bytes, ext: str) -> bytes:
    """The same picture in another format OpenCV writes (".png", ".bmp")."""
    frame = cv2.imdecode(np.frombuffer(jpeg, np.uint8), cv2.IMREAD_COLOR)
    if frame is None:
        raise RuntimeError("OpenCV could not decode the frame")
    ok, buf = cv2.imencode(ext, frame)
    if not ok:
        raise RuntimeError(f"OpenCV could not encode the frame as {ext}")
    return buf.tobytes()
