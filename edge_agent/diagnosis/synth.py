"""Seeded street-scene snapshots with planted faults, to test and benchmark diagnosis without cameras.

A camera is a `StreetScene` (a static layout rendered once, seeded); each `frame()` adds traffic,
sensor noise and optionally one planted fault, in a day / night / fog / IR variant.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import cv2
import numpy as np

VARIANTS = ("day", "night", "fog", "ir")
PLANTED = ("signal_loss", "blur", "brightness_high", "brightness_low", "color_cast", "occlusion", "noise",
           "frozen", "scene_change")  # fmt: skip
_MARGIN = 0.12  # the canvas is larger than the view so the camera can be moved within it
_CASTS = {  # BGR gains of a white-balance failure, by hue
    "red": (0.70, 0.88, 1.40), "green": (0.78, 1.30, 0.75), "blue": (1.45, 0.95, 0.68),
    "yellow": (0.62, 1.12, 1.22), "magenta": (1.28, 0.70, 1.25), "cyan": (1.25, 1.18, 0.62),
}  # fmt: skip


def encode_jpeg(img: np.ndarray, quality: int = 85) -> bytes:
    ok, buf = cv2.imencode(".jpg", img, [cv2.IMWRITE_JPEG_QUALITY, int(quality)])
    if not ok:
        raise RuntimeError("JPEG encoding failed")
    return buf.tobytes()


def _smooth_noise(rng: np.random.Generator, shape: tuple[int, int], cells: int) -> np.ndarray:
    small = rng.standard_normal((max(2, shape[0] * cells // shape[1]), cells)).astype(np.float32)
    return cv2.resize(small, (shape[1], shape[0]), interpolation=cv2.INTER_CUBIC)


@dataclass
class StreetScene:
    """One camera's view of a street: sky, buildings with windows, a road, lamps, trees."""

    seed: int
    size: tuple[int, int] = (1280, 720)
    _day: np.ndarray = field(init=False, repr=False)
    _night: np.ndarray = field(init=False, repr=False)
    _road: tuple[int, int, int, int] = field(
        init=False, repr=False
    )  # horizon y, bottom y, x centre, half width

    def __post_init__(self) -> None:
        self._render()

    # --- static layout -------------------------------------------------------------------------
    def _render(self) -> None:
        rng = np.random.default_rng(self.seed)
        w, h = self.size
        cw, ch = int(w * (1 + 2 * _MARGIN)), int(h * (1 + 2 * _MARGIN))
        s = w / 1280.0
        day = np.zeros((ch, cw, 3), np.float32)
        night = np.zeros((ch, cw, 3), np.float32)
        horizon = int(ch * rng.uniform(0.38, 0.5))
        # sky: blue to pale towards the horizon, with soft clouds
        t = np.linspace(0, 1, horizon, dtype=np.float32)[:, None]
        top = rng.uniform([190, 130, 70], [235, 170, 120]).astype(np.float32)
        low = np.array([225, 215, 205], dtype=np.float32)
        sky = top[None, None, :] * (1 - t[..., None]) + low[None, None, :] * t[..., None]
        clouds = np.clip(_smooth_noise(rng, (horizon, cw), 8), 0, None)[..., None] * 35
        day[:horizon] = sky + clouds
        night[:horizon] = np.array([40, 26, 18], dtype=np.float32) + 45 * t[..., None] * np.array(
            [0.6, 0.8, 1.0], dtype=np.float32
        )
        # ground: pavement, grass verges, road in perspective
        day[horizon:] = (115, 118, 112)
        night[horizon:] = (48, 50, 52)
        cx = int(cw * rng.uniform(0.4, 0.6))
        road = np.array(
            [[cx - 30 * s, horizon], [cx + 30 * s, horizon], [cx + cw * 0.55, ch], [cx - cw * 0.55, ch]]
        )
        cv2.fillPoly(day, [road.astype(np.int32)], (88, 90, 92))
        cv2.fillPoly(night, [road.astype(np.int32)], (40, 42, 46))
        for side in (-1, 1):
            grass = np.array([[cx + side * 200 * s, horizon], [cx + side * cw, horizon], [cx + side * cw, ch],
                              [cx + side * cw * 0.8, ch]])  # fmt: skip
            cv2.fillPoly(day, [grass.astype(np.int32)], (60, 125, 75))
            cv2.fillPoly(night, [grass.astype(np.int32)], (30, 44, 34))
        for k in range(12):  # dashed centre line, longer dashes nearer the camera
            y0 = horizon + (ch - horizon) * (k / 12) ** 1.6
            y1 = horizon + (ch - horizon) * ((k + 0.5) / 12) ** 1.6
            half = 1 + 6 * s * (k / 12)
            cv2.rectangle(day, (int(cx - half), int(y0)), (int(cx + half), int(y1)), (225, 225, 225), -1)
            cv2.rectangle(night, (int(cx - half), int(y0)), (int(cx + half), int(y1)), (120, 120, 120), -1)
        # buildings along the horizon, with window grids
        x = 0
        while x < cw:
            bw = int(rng.uniform(70, 260) * s)
            bh = int(rng.uniform(0.12, 0.34) * ch)
            y0 = max(0, horizon - bh)
            colour = rng.choice([(120, 135, 165), (150, 150, 150), (95, 110, 150), (170, 160, 140),
                                 (185, 190, 195), (130, 100, 85)])  # fmt: skip
            cv2.rectangle(day, (x, y0), (x + bw, horizon), tuple(float(c) for c in colour), -1)
            cv2.rectangle(night, (x, y0), (x + bw, horizon), tuple(float(c) * 0.3 for c in colour), -1)
            win_w, win_h = int(rng.uniform(10, 18) * s), int(rng.uniform(12, 22) * s)
            for wy in range(y0 + int(10 * s), horizon - win_h - int(6 * s), int(win_h * 1.8)):
                for wx in range(x + int(8 * s), x + bw - win_w - int(4 * s), int(win_w * 1.9)):
                    glass = (
                        float(rng.uniform(40, 90)),
                        float(rng.uniform(45, 80)),
                        float(rng.uniform(35, 70)),
                    )
                    cv2.rectangle(day, (wx, wy), (wx + win_w, wy + win_h), glass, -1)
                    lit = rng.random() < 0.45
                    light = (
                        float(rng.uniform(90, 170)),
                        float(rng.uniform(170, 230)),
                        float(rng.uniform(200, 255)),
                    )
                    cv2.rectangle(
                        night, (wx, wy), (wx + win_w, wy + win_h), light if lit else (20, 20, 24), -1
                    )
            x += bw + int(rng.uniform(0, 25) * s)
        # trees on the verges
        for _ in range(int(rng.integers(3, 8))):
            tx = int(rng.choice([rng.uniform(0, cx - 250 * s), rng.uniform(cx + 250 * s, cw)]))
            ty = int(horizon + rng.uniform(0.0, 0.25) * (ch - horizon))
            r = int(rng.uniform(30, 70) * s * (1 + (ty - horizon) / (ch - horizon)))
            cv2.rectangle(day, (tx - r // 8, ty), (tx + r // 8, ty + 2 * r), (40, 60, 80), -1)
            cv2.circle(day, (tx, ty), r, (40, float(rng.uniform(90, 130)), 50), -1)
            cv2.circle(night, (tx, ty), r, (18, 30, 20), -1)
        # street lamps: a pole by day, a light with a glow by night
        glow = np.zeros((ch, cw), np.float32)
        for k in range(1, 6):
            yy = int(horizon + (ch - horizon) * (k / 6) ** 1.5)
            off = int(30 + 0.6 * cw * (k / 6) ** 1.5)
            for lx in (cx - off, cx + off):
                top_y = int(yy - (40 + 200 * (k / 6) ** 1.5) * s)
                cv2.line(day, (lx, yy), (lx, top_y), (70, 70, 75), max(1, int(3 * s * k / 3)))
                cv2.circle(glow, (lx, top_y), max(2, int(6 * s * k / 3)), 1.0, -1)
        small = cv2.resize(glow, (cw // 8, ch // 8), interpolation=cv2.INTER_AREA)
        spread = cv2.resize(cv2.GaussianBlur(small, (0, 0), 5 * s), (cw, ch), interpolation=cv2.INTER_LINEAR)
        halo = np.asarray(spread, dtype=np.float32) / max(float(spread.max()), 1e-6)
        night += np.array([150, 200, 235], dtype=np.float32) * np.clip(glow + 0.8 * halo, 0, 1.4)[..., None]
        # fine texture everywhere: asphalt grain, facades, foliage
        grain = cv2.GaussianBlur(rng.standard_normal((ch, cw)).astype(np.float32), (0, 0), 1.0) * 9
        day += grain[..., None]
        night += grain[..., None] * 0.5
        self._day = np.clip(day, 0, 255).astype(np.uint8)
        self._night = np.clip(night, 0, 255).astype(np.uint8)
        self._road = (horizon, ch, cx, int(cw * 0.55))
        # A bank of unit sensor noise; each frame reads it at its own offset (cheaper than drawing anew).
        self._unit_noise = rng.standard_normal((h + 64, w + 64, 3)).astype(np.float32)
        self._banks: dict[float, np.ndarray] = {}

    # --- one snapshot --------------------------------------------------------------------------
    def _view(self, canvas: np.ndarray, dx: float, dy: float, angle: float) -> np.ndarray:
        w, h = self.size
        ox, oy = (canvas.shape[1] - w) // 2 + dx, (canvas.shape[0] - h) // 2 + dy
        if angle == 0 and float(ox).is_integer() and float(oy).is_integer():
            return canvas[int(oy) : int(oy) + h, int(ox) : int(ox) + w].copy()
        m = cv2.getRotationMatrix2D((ox + w / 2, oy + h / 2), angle, 1.0)
        m[:, 2] -= (ox, oy)
        return cv2.warpAffine(canvas, m, (w, h), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT)

    def _traffic(self, img: np.ndarray, rng: np.random.Generator, night: bool) -> None:
        w, h = self.size
        horizon, ch, cx, half = self._road
        off_y = (ch - h) / 2
        off_x = (int(w * (1 + 2 * _MARGIN)) - w) / 2
        for _ in range(int(rng.integers(2, 7))):
            f = rng.uniform(0.1, 1.0)
            y = horizon + (ch - horizon) * f - off_y
            x = cx - off_x + rng.uniform(-0.8, 0.8) * half * f
            vw, vh = 40 + 260 * f * w / 1280, 30 + 160 * f * w / 1280
            x0, y0 = int(x - vw / 2), int(y - vh)
            body = tuple(float(c) for c in rng.integers(20, 230, 3))
            if night:
                body = tuple(c * 0.3 for c in body)
            cv2.rectangle(img, (x0, y0), (int(x0 + vw), int(y)), body, -1)
            glass = (25, 25, 30) if not night else (10, 10, 12)
            top_left, bottom_right = (
                (int(x0 + vw * 0.15), int(y0 + vh * 0.1)),
                (int(x0 + vw * 0.85), int(y0 + vh * 0.45)),
            )
            cv2.rectangle(img, top_left, bottom_right, glass, -1)
            if night:
                r = max(2, int(vw * 0.06))
                for hx in (x0 + vw * 0.18, x0 + vw * 0.82):
                    cv2.circle(img, (int(hx), int(y - vh * 0.25)), r, (235, 245, 255), -1)

    def frame(
        self,
        frame_seed: int,
        variant: str = "day",
        fault: str | None = None,
        move: tuple[float, float, float] = (0.0, 0.0, 0.0),
        traffic: bool = True,
    ) -> np.ndarray:
        """A BGR snapshot; `move` = (dx, dy in pixels, angle in degrees) of the camera's aim."""
        if variant not in VARIANTS:
            raise ValueError(f"unknown variant {variant!r}")
        rng = np.random.default_rng((self.seed, frame_seed))
        night = variant == "night"
        img = self._view(self._night if night else self._day, *move)
        if traffic:
            self._traffic(img, np.random.default_rng((self.seed, frame_seed, 7)), night)
        sigma = {"day": 2.0, "night": 3.5, "fog": 2.0, "ir": 3.0}[variant]
        h, w = img.shape[:2]
        oy, ox = (int(v) for v in rng.integers(0, 64, 2))
        if sigma not in self._banks:
            self._banks[sigma] = np.rint(self._unit_noise * sigma).astype(np.int16)
        noise = self._banks[sigma][oy : oy + h, ox : ox + w]
        if variant == "fog":
            t = np.linspace(rng.uniform(0.12, 0.25), rng.uniform(0.45, 0.65), h, dtype=np.float32)[
                :, None, None
            ]
            haze = (np.float32(rng.uniform(195, 225)) + np.array([3, 0, -2], dtype=np.float32)) * (1 - t)
            img = np.clip(img * t + haze, 0, 255).astype(np.uint8)
        elif variant == "ir":
            luma = cv2.cvtColor(img, cv2.COLOR_BGR2GRAY).astype(np.float32)
            grey = 255 * (luma / 255) ** 0.8 * rng.uniform(0.75, 0.95)
            # IR pictures are monochrome: the sensor noise has no colour either
            grey = np.clip(grey + noise[:, :, 0], 0, 255).astype(np.uint8)
            img = cv2.cvtColor(grey, cv2.COLOR_GRAY2BGR)
        if variant != "ir":
            img = np.clip(img.astype(np.int16) + noise, 0, 255).astype(np.uint8)
        if fault is not None:
            img = plant(img, fault, rng)
        return img


def _exposure(img: np.ndarray, gain: float) -> np.ndarray:
    lin = (np.arange(256, dtype=np.float32) / 255.0) ** 2.2 * gain
    lut = (np.clip(lin, 0, 1) ** (1 / 2.2) * 255).astype(np.uint8)
    return cv2.LUT(img, lut)


def plant(img: np.ndarray, fault: str, rng: np.random.Generator) -> np.ndarray:
    """Apply one picture fault to a BGR frame. `frozen` and `scene_change` are not picture faults:
    they are made by re-sending a frame and by `StreetScene.frame(move=...)`."""
    h, w = img.shape[:2]
    if fault == "signal_loss":
        colour = [(16, 16, 16), (190, 40, 20), (30, 160, 40), (128, 128, 128), (0, 0, 0)][
            int(rng.integers(0, 5))
        ]
        out = np.empty_like(img)
        out[:] = colour
        if rng.random() < 0.5:  # the "no video" caption many recorders draw
            font = cv2.FONT_HERSHEY_SIMPLEX
            cv2.putText(out, "NO SIGNAL", (w // 3, h // 2), font, w / 900, (235, 235, 235), max(1, w // 500))
        return out
    if fault == "blur":
        return cv2.GaussianBlur(img, (0, 0), w * rng.uniform(0.0035, 0.008))
    if fault == "brightness_high":
        # exposure far above what the scene needs: a dark scene needs more gain to wash out
        base = max(float(img.mean()), 10.0)
        return _exposure(img, rng.uniform(5.0, 12.0) * max(1.0, (115 / base) ** 2.2))
    if fault == "brightness_low":
        return _exposure(img, rng.uniform(0.03, 0.08))
    if fault == "color_cast":
        names = sorted(_CASTS)
        gains = np.array(_CASTS[names[int(rng.integers(0, len(names)))]], dtype=np.float32)
        strength = rng.uniform(0.8, 1.2)
        gains = 1 + (gains - 1) * strength
        return np.clip(img.astype(np.float32) * gains, 0, 255).astype(np.uint8)
    if fault == "occlusion":
        mask = np.zeros((h, w), np.float32)
        where = int(rng.integers(0, 4))
        rx, ry = int(w * rng.uniform(0.35, 0.55)), int(h * rng.uniform(0.5, 0.8))
        if where == 3:  # in the middle of the lens: a smaller blob covers as much
            rx, ry = int(rx * 0.6), int(ry * 0.6)
        centre = [
            (0, h),
            (w, h),
            (w // 2, h),
            (int(w * rng.uniform(0.35, 0.65)), int(h * rng.uniform(0.45, 0.7))),
        ][where]
        cv2.ellipse(mask, centre, (rx, ry), float(rng.uniform(0, 180)), 0, 360, 1.0, -1)
        soft = cv2.GaussianBlur(mask, (0, 0), w * 0.01)[..., None]  # close to the lens: out of focus
        tone = float(img.mean()) * rng.uniform(0.1, 0.5)  # tape, a hand, dirt: darker than the scene
        cover = np.array([tone * rng.uniform(0.8, 1.1), tone, tone * rng.uniform(0.9, 1.3)], dtype=np.float32)
        return (img.astype(np.float32) * (1 - soft) + cover * soft).astype(np.uint8)
    if fault == "noise":
        if rng.random() < 0.6:
            n = rng.normal(0.0, float(rng.uniform(10, 25)), img.shape).astype(np.float32)
            return np.clip(img.astype(np.float32) + n, 0, 255).astype(np.uint8)
        out = img.copy()
        density = rng.uniform(0.01, 0.04)
        pick = rng.random((h, w))
        out[pick < density / 2] = 0
        out[pick > 1 - density / 2] = 255
        return out
    raise ValueError(f"not a picture fault: {fault!r}")
