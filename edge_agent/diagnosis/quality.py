"""Picture quality diagnosis (视频质量诊断) of one JPEG snapshot: a score and a verdict per check.

Pure computation on numpy/OpenCV: bytes in, a `Diagnosis` out; the caller keeps the previous
`FrameState` and the camera's `Reference` (see reference.py). docs/diagnosis.md explains each check.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import cv2
import numpy as np

from edge_agent.diagnosis.config import DiagnosisConfig
from edge_agent.diagnosis.decode import decode
from edge_agent.diagnosis.reference import FrameState, Reference

CHECKS = ("signal_loss", "blur", "brightness", "color_cast", "occlusion", "noise", "frozen", "scene_change")
FAULTS = ("signal_loss", "blur", "brightness_low", "brightness_high", "color_cast", "occlusion", "noise",
          "frozen", "scene_change")  # fmt: skip
# When the picture itself is degraded, a failed feature match says nothing about the camera's aim.
_DEGRADING = frozenset({"blur", "brightness_low", "brightness_high", "noise", "occlusion"})
_DEFAULT = DiagnosisConfig()
# Immerkær's mask: the difference of two Laplacians, blind to planes and ramps; its weights square to 36.
_IMMERKAER = np.array([[1, -2, 1], [-2, 4, -2], [1, -2, 1]], dtype=np.float32)
_THUMB = (64, 36)
_PATCH = 96
_ORB_CACHE: dict[int, Any] = {}


@dataclass(frozen=True, slots=True)
class Diagnosis:
    """Scores and verdict of one snapshot, plus what the next check of the same camera needs."""

    scores: dict[str, float]
    faults: list[str]
    mode: str
    width: int
    height: int
    decode_scale: int
    skipped: list[str]
    details: dict[str, Any]
    state: FrameState
    _points: np.ndarray = field(repr=False)
    _descriptors: np.ndarray = field(repr=False)
    _texture: np.ndarray = field(repr=False)
    _means: np.ndarray = field(repr=False)
    _work_size: tuple[int, int] = (0, 0)

    @property
    def verdict(self) -> str:
        return "fault" if self.faults else "ok"

    def as_dict(self) -> dict[str, Any]:
        """The wire shape of docs/api.md (`quality: {...}`), with mode and decode size added."""
        out: dict[str, Any] = {name: round(float(self.scores[name]), 4) for name in CHECKS}
        out.update(verdict=self.verdict, faults=list(self.faults), mode=self.mode,
                   decode_scale=self.decode_scale, skipped=list(self.skipped))  # fmt: skip
        return out

    def as_reference(self) -> Reference:
        """This frame as the camera's reference for its mode (take it from a fault-free frame)."""
        return Reference(mode=self.mode, work_size=self._work_size, points=self._points,
                         descriptors=self._descriptors, texture=self._texture, means=self._means,
                         dhash=self.state.dhash)  # fmt: skip


def _percentile_u8(img: np.ndarray, q: float) -> float:
    hist = cv2.calcHist([img], [0], None, [256], [0, 256]).ravel()
    cum = np.cumsum(hist)
    return float(np.searchsorted(cum, q / 100.0 * cum[-1]))


def _dhash(grey: np.ndarray) -> int:
    small = cv2.resize(grey, (9, 8), interpolation=cv2.INTER_AREA).astype(np.int16)
    bits = (small[:, 1:] > small[:, :-1]).ravel()
    return int(sum(1 << i for i, b in enumerate(bits) if b))


def _orb(n: int) -> Any:
    if n not in _ORB_CACHE:
        _ORB_CACHE[n] = cv2.ORB.create(
            nfeatures=n, nlevels=3, fastThreshold=10, edgeThreshold=15, patchSize=15
        )
    return _ORB_CACHE[n]


def _mode(sat: np.ndarray, grey: np.ndarray, cfg: DiagnosisConfig) -> str:
    # IR illumination leaves no colour anywhere; a colour night scene still has saturated lights.
    if _percentile_u8(sat, 95) < cfg.ir_saturation_p95:
        return "ir"
    return "night" if _percentile_u8(grey, 80) < cfg.night_p80 else "day"


def _signal_loss(color: np.ndarray, cfg: DiagnosisConfig) -> tuple[float, str]:
    med = np.array([_percentile_u8(np.ascontiguousarray(color[:, :, c]), 50) for c in range(3)])
    scalar = (float(med[0]), float(med[1]), float(med[2]), 0.0)
    dev = cv2.absdiff(color, scalar)  # type: ignore[call-overload]  # the stubs miss the scalar form
    dev = cv2.max(cv2.max(dev[:, :, 0], dev[:, :, 1]), dev[:, :, 2])
    share = float(np.count_nonzero(dev <= cfg.signal_loss_tolerance)) / dev.size
    b, g, r = med
    if max(b, g, r) < 40:
        name = "black"
    elif max(b, g, r) - min(b, g, r) < 30:
        name = "white" if min(b, g, r) > 200 else "grey"
    elif b >= g and b >= r:
        name = "blue"
    elif g >= r:
        name = "green"
    else:
        name = "red"
    return share, name


def _blur(grey: np.ndarray, cfg: DiagnosisConfig) -> tuple[float, np.ndarray, bool]:
    """Crete et al. (2007) no-reference blur: how much a 9-tap re-blur still removes.

    A sharp picture loses much of its pixel-to-pixel variation when re-blurred; a blurred one
    loses little. The ratio cancels contrast, so dark and hazy frames score like clear-day ones.
    It is taken per block and the median kept, so one soft edge (an occluder out of focus, a
    bloom around a lamp) does not make the frame blurred. Returns the score, the gradient
    magnitude, and whether enough blocks had structure for the ratio to mean anything.
    """
    f = grey.astype(np.float32)
    bv = cv2.blur(f, (1, 9))
    bh = cv2.blur(f, (9, 1))
    dfv = np.abs(f[1:, :-1] - f[:-1, :-1])
    dfh = np.abs(f[:-1, 1:] - f[:-1, :-1])
    vv = np.maximum(dfv - np.abs(bv[1:, :-1] - bv[:-1, :-1]), 0)
    vh = np.maximum(dfh - np.abs(bh[:-1, 1:] - bh[:-1, :-1]), 0)
    grid = cfg.occlusion_grid

    def cells(a: np.ndarray) -> np.ndarray:
        return cv2.resize(a, grid, interpolation=cv2.INTER_AREA)

    sfv, sfh, svv, svh = cells(dfv), cells(dfh), cells(vv), cells(vh)
    grad = dfv + dfh
    usable = (sfv > 0) & (sfh > 0) & ((sfv + sfh) / 2 >= cfg.blur_min_gradient)
    if np.count_nonzero(usable) >= 0.1 * usable.size:
        per_block = np.maximum(1 - svv[usable] / sfv[usable], 1 - svh[usable] / sfh[usable])
        return float(np.median(per_block)), grad, True
    # Too few structured blocks (dense fog, a blurred haze): fall back to the whole-frame ratio.
    tv, th = float(sfv.sum()), float(sfh.sum())
    if tv <= 0 or th <= 0:
        return 1.0, grad, False
    return max(1 - float(svv.sum()) / tv, 1 - float(svh.sum()) / th), grad, True


def _color_cast(color: np.ndarray) -> tuple[float, float]:
    """Cast factor K = D / M (the equivalent-circle method): D is how far the mean a*b* sits from
    neutral, M how widely the chroma spreads around it. A natural scene spreads wide (K < 1); a
    cast pulls everything one way. Near-black pixels carry no reliable chroma and are left out."""
    lab = cv2.cvtColor(color, cv2.COLOR_BGR2Lab)
    lit = lab[:, :, 0] > 40
    if np.count_nonzero(lit) < 0.1 * lit.size:
        lit[:] = True
    a = lab[:, :, 1][lit].astype(np.float32) - 128.0
    b = lab[:, :, 2][lit].astype(np.float32) - 128.0
    da, db = float(a.mean()), float(b.mean())
    d = float(np.hypot(da, db))
    m = float(np.hypot(np.abs(a - da).mean(), np.abs(b - db).mean()))
    return d / max(m, 0.5), d


def _blocks(
    grad: np.ndarray, grey: np.ndarray, grid: tuple[int, int]
) -> tuple[np.ndarray, float, np.ndarray]:
    """Block texture (mean gradient), its 90th percentile, and block mean luminance."""
    tex = cv2.resize(grad, grid, interpolation=cv2.INTER_AREA)
    means = cv2.resize(grey.astype(np.float32), grid, interpolation=cv2.INTER_AREA)
    return tex, float(np.percentile(tex, 90)), means


def _occlusion(tex: np.ndarray, p90: float, means: np.ndarray, ref: Reference | None,
               cfg: DiagnosisConfig) -> float:  # fmt: skip
    # Blown-out blocks are flat because of exposure, not because something covers the lens.
    flat = (tex < min(cfg.occlusion_flat_rel * p90, cfg.occlusion_flat_abs)) & (means < 240)
    means = means / max(float(np.median(means)), 1.0)
    with_ref = ref is not None and ref.texture.shape == tex.shape
    if ref is not None and with_ref:
        # Only blocks that changed from the reference count: a flat sky or a dark night field is
        # part of the view; a flat patch where buildings stood, or a road turned dark, is not.
        changed = np.abs(means - ref.means) > cfg.occlusion_mean_change * np.maximum(ref.means, 0.2)
        flat &= (ref.texture > cfg.occlusion_ref_textured) | changed
    n, labels, stats, _ = cv2.connectedComponentsWithStats(flat.astype(np.uint8), connectivity=4)
    rows, cols = tex.shape
    best = 0
    for i in range(1, n):
        area = int(stats[i, cv2.CC_STAT_AREA])
        if area <= best:
            continue
        if not with_ref:
            # Without a reference only the picture speaks, and a clear sky, a wet road or a lawn
            # can be as flat as tape on the lens. Something on the lens is held at the housing's
            # edge, so it reaches the bottom or a side (a region hanging from the top is sky), and
            # it is unlike the view: much darker than the rest (unlit from behind) or with next
            # to no gradient at all (out of focus).
            x, y, w, h = (int(stats[i, k]) for k in (cv2.CC_STAT_LEFT, cv2.CC_STAT_TOP,
                                                    cv2.CC_STAT_WIDTH, cv2.CC_STAT_HEIGHT))  # fmt: skip
            if not (y + h == rows or x == 0 or x + w == cols):
                continue
            inside = labels == i
            rest = means[~inside]
            darker = float(means[inside].mean()) <= cfg.occlusion_no_ref_dark * float(
                np.median(rest) if rest.size else 1.0
            )
            still = float(tex[inside].mean()) <= cfg.occlusion_no_ref_still
            if not (darker or still):
                continue
        best = area
    return best / tex.size


def _noise(crop: np.ndarray, cfg: DiagnosisConfig) -> tuple[float, float]:
    """Sigma by the median absolute response of Immerkær's mask (robust to the edges that make the
    plain mean overestimate), and the share of impulse (salt-and-pepper) pixels."""
    if crop.shape[0] < 8 or crop.shape[1] < 8:
        return 0.0, 0.0
    f = crop.astype(np.float32)
    resp = np.abs(cv2.filter2D(f, -1, _IMMERKAER, borderType=cv2.BORDER_REPLICATE))[1:-1, 1:-1]
    # Median by histogram in quarter grey levels: exact enough and far cheaper than a sort.
    q = np.minimum(resp * 4, 4095).astype(np.uint16)
    hist = np.bincount(q.ravel(), minlength=4096)
    median = float(np.searchsorted(np.cumsum(hist), q.size / 2)) / 4
    sigma = 1.4826 * median / 6.0
    med = cv2.medianBlur(crop, 3)
    impulses = cv2.absdiff(crop, med) > cfg.impulse_level
    return sigma, float(np.count_nonzero(impulses)) / impulses.size


def _frozen(state: FrameState, prev: FrameState | None, cfg: DiagnosisConfig) -> tuple[float, bool] | None:
    if prev is None:
        return None
    if (prev.width, prev.height) != (state.width, state.height) or prev.patch.shape != state.patch.shape:
        return 0.0, False
    thumb_diff = float(cv2.absdiff(prev.thumb, state.thumb).mean())
    patch_diff = float(cv2.absdiff(prev.patch, state.patch).mean())
    # Two live captures differ by at least their sensor noise: E|n1 - n2| = 2σ/√π ≈ 1.128σ.
    sigma = max(prev.noise_sigma, state.noise_sigma, cfg.frozen_min_noise)
    ratio = patch_diff / (1.128 * sigma)
    score = max(0.0, 1.0 - ratio)
    return score, ratio < cfg.frozen_change_ratio and thumb_diff < cfg.frozen_thumb_diff


def _scene_change(points: np.ndarray, desc: np.ndarray, size: tuple[int, int], ref: Reference | None,
                  cfg: DiagnosisConfig) -> tuple[float, str] | None:  # fmt: skip
    """Corner displacement of the similarity fitted between reference and frame, as a share of the
    diagonal; 1.0 when too few features match to fit one (a different view)."""
    if ref is None or len(ref.points) < 2 * cfg.scene_min_inliers:
        return None
    if len(points) < 4:
        return 1.0, "no features"
    matcher = cv2.BFMatcher(cv2.NORM_HAMMING)
    pairs = matcher.knnMatch(ref.descriptors, desc, k=2)
    good = [p[0] for p in pairs if len(p) == 2 and p[0].distance < 0.8 * p[1].distance]
    if len(good) < cfg.scene_min_inliers:
        return 1.0, f"{len(good)} matches"
    sx, sy = size[0] / ref.work_size[0], size[1] / ref.work_size[1]
    src = np.array([ref.points[m.queryIdx] for m in good], dtype=np.float32) * np.array(
        [sx, sy], dtype=np.float32
    )
    dst = np.array([points[m.trainIdx] for m in good], dtype=np.float32)
    matrix, inliers = cv2.estimateAffinePartial2D(src, dst, method=cv2.RANSAC, ransacReprojThreshold=3.0)
    n_in = int(inliers.sum()) if inliers is not None else 0
    if matrix is None or n_in < cfg.scene_min_inliers or n_in < cfg.scene_min_inlier_share * len(ref.points):
        return 1.0, f"{n_in} inliers"
    w, h = size
    corners = np.array([[0, 0, 1], [w, 0, 1], [0, h, 1], [w, h, 1]], dtype=np.float32)
    moved = corners @ matrix.T.astype(np.float32)
    shift = float(np.linalg.norm(moved - corners[:, :2], axis=1).mean()) / float(np.hypot(w, h))
    return min(shift, 1.0), f"{n_in} inliers"


def diagnose_jpeg(
    data: bytes,
    previous: FrameState | None = None,
    reference: Reference | Mapping[str, Reference] | None = None,
    config: DiagnosisConfig | None = None,
) -> Diagnosis:
    """Diagnose one snapshot (JPEG, or PNG/BMP at full-size decoding cost). Raises `InvalidSnapshot`
    for bytes that are not a usable picture.

    `reference` is the camera's known-good frame, or its references by mode (day / night / ir, as
    `ReferenceStore.for_camera` gives them) so the one matching this frame's mode is used.
    """
    cfg = config or _DEFAULT
    dec = decode(data, cfg.work_width, cfg.noise_crop)
    color = dec.color
    grey = cv2.cvtColor(color, cv2.COLOR_BGR2GRAY)
    sat = cv2.cvtColor(color, cv2.COLOR_BGR2HSV)[:, :, 1]
    mode = _mode(np.ascontiguousarray(sat), grey, cfg)
    work_size = (color.shape[1], color.shape[0])
    if isinstance(reference, Mapping):
        reference = reference.get(mode)

    loss_share, loss_colour = _signal_loss(color, cfg)
    blur, grad, blur_measurable = _blur(grey, cfg)
    mean = float(grey.mean())
    total = grey.size
    clipped_high = float(np.count_nonzero(grey >= cfg.bright_clip_level)) / total
    clipped_low = float(np.count_nonzero(grey <= cfg.dark_clip_level)) / total
    cast, cast_offset = _color_cast(color)
    tex, p90, means = _blocks(grad, grey, cfg.occlusion_grid)
    sigma, impulse = _noise(dec.native_crop, cfg)

    ch, cw = dec.native_crop.shape
    side = min(_PATCH, ch, cw)
    y0, x0 = (ch - side) // 2, (cw - side) // 2
    state = FrameState(
        thumb=cv2.resize(grey, _THUMB, interpolation=cv2.INTER_AREA),
        patch=dec.native_crop[y0 : y0 + side, x0 : x0 + side].copy(),
        noise_sigma=sigma,
        dhash=_dhash(grey),
        width=dec.width,
        height=dec.height,
    )
    keypoints, desc = _orb(cfg.orb_features).detectAndCompute(cv2.equalizeHist(grey), None)
    points = np.array([k.pt for k in keypoints], dtype=np.float32).reshape(-1, 2)
    desc = desc if desc is not None else np.zeros((0, 32), np.uint8)

    faults: list[str] = []
    skipped: list[str] = []
    blank = loss_share >= cfg.signal_loss_share
    if blank and loss_colour != "white":
        faults.append("signal_loss")
    if blur_measurable and blur > cfg.blur_max:
        faults.append("blur")
    p99 = _percentile_u8(grey, 99)
    if mean <= cfg.dark_mean_low or p99 < cfg.dark_p99:
        faults.append("brightness_low")
    if (
        mean >= cfg.bright_mean_high
        or clipped_high >= cfg.bright_clip_share
        or (blank and loss_colour == "white")
    ):
        faults.append("brightness_high")
    # IR and grey night pictures carry no colour, so a tint there is the illuminator, not a cast.
    if mode != "ir" and cast > cfg.cast_factor and cast_offset >= cfg.cast_min_offset:
        faults.append("color_cast")
    if sigma >= cfg.noise_sigma or impulse >= cfg.impulse_share:
        faults.append("noise")

    frozen = _frozen(state, previous, cfg)
    if frozen is None:
        skipped.append("frozen")
        frozen_score = 0.0
    else:
        frozen_score = frozen[0]
        if frozen[1]:
            faults.append("frozen")

    occlusion = _occlusion(tex, p90, means, reference, cfg)
    occluded = occlusion >= (cfg.occlusion_share if reference is not None else cfg.occlusion_share_no_ref)
    scene = _scene_change(points, desc, work_size, reference, cfg)
    scene_note = ""
    moved = False
    if scene is None:
        skipped.append("scene_change")
        scene_score = 0.0
    else:
        scene_score, scene_note = scene
        moved = scene_score > cfg.scene_shift
        if moved and scene_score >= 1.0 and (occluded or _DEGRADING.intersection(faults)):
            moved = False  # no match, but the picture is too degraded to blame the aim
            scene_note += ", picture degraded"
        if moved:
            faults.append("scene_change")
    if moved:
        # A block comparison with the reference is meaningless once the view has changed.
        skipped.append("occlusion")
        occlusion = 0.0
    elif reference is None and mode == "night":
        skipped.append("occlusion")  # dark flat ground is normal at night: only a reference tells
    elif occluded:
        faults.append("occlusion")

    if "signal_loss" in faults:
        faults = ["signal_loss"]  # nothing else about a blank screen is worth reporting
    order = {name: i for i, name in enumerate(FAULTS)}
    faults.sort(key=order.__getitem__)
    return Diagnosis(
        scores={"signal_loss": loss_share, "blur": blur, "brightness": mean, "color_cast": cast,
                "occlusion": occlusion, "noise": sigma, "frozen": frozen_score, "scene_change": scene_score},
        faults=faults,
        mode=mode,
        width=dec.width,
        height=dec.height,
        decode_scale=dec.scale,
        skipped=skipped,
        details={"signal_colour": loss_colour, "clipped_high": clipped_high, "clipped_low": clipped_low,
                 "p99": p99, "cast_offset": cast_offset, "impulse_share": impulse,
                 "blur_measurable": blur_measurable, "features": len(points), "scene_match": scene_note},
        state=state,
        _points=points,
        _descriptors=desc,
        _texture=(tex / max(p90, 1e-6)).astype(np.float32),
        _means=(means / max(float(np.median(means)), 1.0)).astype(np.float32),
        _work_size=work_size,
    )  # fmt: skip


def diagnose_jpeg_dict(data: bytes) -> dict[str, Any]:
    """One-off diagnosis of a single snapshot (no previous frame, no reference), in the wire shape."""
    return diagnose_jpeg(data).as_dict()
