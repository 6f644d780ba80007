"""Thresholds of picture quality diagnosis (视频质量诊断), in one typed object.

Every score keeps its natural unit (a share, a grey level, a ratio); the threshold beside it says
where that score becomes a fault. docs/diagnosis.md explains each default.
"""

from __future__ import annotations

from dataclasses import dataclass, fields


@dataclass(frozen=True, slots=True)
class DiagnosisConfig:
    """Thresholds and sizes for :func:`edge_agent.diagnosis.diagnose_jpeg` and :class:`FaultTracker`."""

    # Decoding: the colour frame is decoded reduced (JPEG DCT scaling) to at least this width,
    # then brought to exactly this width so every score is comparable across resolutions.
    work_width: int = 320
    # Native-resolution centre crop (pixels, square) used for noise and for the frozen check.
    noise_crop: int = 256

    # signal loss: share of pixels within `signal_loss_tolerance` grey levels (every channel) of the
    # frame's median colour; a blank test card or a black/blue "no video" screen is ~1.0.
    signal_loss_tolerance: int = 6
    signal_loss_share: float = 0.95

    # blur: re-blur ratio (Crete et al. 2007), 0 = sharp, 1 = flat; contrast cancels out of it.
    blur_max: float = 0.37
    # Blocks whose mean absolute gradient (grey levels) is below this have too little structure
    # for the ratio and are left out.
    blur_min_gradient: float = 0.8

    # brightness: mean luminance (0..255) together with the share of clipped pixels.
    bright_clip_level: int = 250
    bright_clip_share: float = 0.20
    bright_mean_high: float = 200.0
    dark_clip_level: int = 16  # reported only (details.clipped_low)
    dark_mean_low: float = 25.0
    # ... or nothing in the frame reaches this (the 99th percentile): no light source, no sky.
    dark_p99: float = 110.0

    # colour cast: K = D / M in Lab (D distance of the mean a*b* from neutral, M the chroma spread).
    cast_factor: float = 1.0
    cast_min_offset: float = 8.0  # a*/b* units: fainter tints are invisible and never a cast

    # day / night / IR mode: IR when the 95th percentile of HSV saturation is below this (0..255);
    # night when the 80th percentile of luminance is below `night_p80`.
    ir_saturation_p95: float = 18.0
    night_p80: float = 90.0

    # occlusion: the frame is cut into a grid; a block is flat when its mean gradient is below
    # `occlusion_flat_rel` of the 90th percentile over blocks (so fog and blur scale it away) and
    # below `occlusion_flat_abs`. Score = area share of the largest 4-connected flat region.
    occlusion_grid: tuple[int, int] = (16, 9)
    occlusion_flat_rel: float = 0.12
    occlusion_flat_abs: float = 4.0
    occlusion_share: float = 0.10
    # Without a reference only the picture speaks, and sky, road or lawn can be as flat as an object
    # on the lens: ask for a larger region that reaches the bottom or a side edge and is either much
    # darker than the rest of the frame (block mean luminance at most `occlusion_no_ref_dark` of the
    # median of the other blocks) or has next to no gradient (mean below `occlusion_no_ref_still`
    # grey levels). Sensitive detection is left to the reference comparison.
    occlusion_share_no_ref: float = 0.20
    occlusion_no_ref_dark: float = 0.55
    occlusion_no_ref_still: float = 0.5
    # With a reference, a block only counts when it was textured in it (relative texture above this).
    occlusion_ref_textured: float = 0.25
    # ... or when its mean luminance (relative to the frame's median block) moved by this share.
    occlusion_mean_change: float = 0.35

    # noise: sigma (grey levels) by the MAD of Immerkær's mask on the native crop; impulses are
    # pixels further than `impulse_level` from their 3x3 median.
    noise_sigma: float = 3.0
    impulse_level: int = 70
    impulse_share: float = 0.005

    # frozen: the change against the previous frame, relative to what sensor noise alone would
    # give; frozen when it is below `frozen_change_ratio` and the thumbnail barely moved.
    frozen_change_ratio: float = 0.15
    frozen_thumb_diff: float = 0.35
    frozen_min_noise: float = 0.7  # assume at least this sigma, so a very clean camera is not frozen

    # scene change: ORB features against the reference of the same camera and mode.
    orb_features: int = 300
    scene_min_inliers: int = 15
    scene_min_inlier_share: float = 0.10
    # Mean displacement of the frame corners under the fitted transform, as a share of the diagonal.
    scene_shift: float = 0.02

    # hysteresis (FaultTracker): raise after `raise_after` consecutive faulty checks, clear after
    # `clear_after` consecutive good ones.
    raise_after: int = 3
    clear_after: int = 2

    def __post_init__(self) -> None:
        for f in fields(self):
            value = getattr(self, f.name)
            if isinstance(value, int | float) and not isinstance(value, bool) and value < 0:
                raise ValueError(f"DiagnosisConfig.{f.name} must not be negative, got {value}")
        if self.work_width < 64:
            raise ValueError("DiagnosisConfig.work_width must be at least 64")
        if self.raise_after < 1 or self.clear_after < 1:
            raise ValueError("DiagnosisConfig.raise_after and clear_after must be at least 1")
