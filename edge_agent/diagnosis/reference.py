"""What diagnosis remembers between snapshots: the previous frame's state and a per-camera reference.

`FrameState` is small (a grey thumbnail, a native patch, a hash) and feeds the frozen check;
`Reference` holds ORB features and block texture of a known-good frame for the scene-change and
occlusion checks, kept per camera and per mode (day / night / IR) by `ReferenceStore`.
"""

from __future__ import annotations

import io
import json
from dataclasses import dataclass

import numpy as np

MODES = ("day", "night", "ir")


@dataclass(frozen=True, slots=True)
class FrameState:
    """Enough of a frame to tell whether the next one of the same camera changed."""

    thumb: np.ndarray  # grey uint8, 64x36-ish, from the working frame
    patch: np.ndarray  # grey uint8, native resolution, centre square
    noise_sigma: float
    dhash: int  # 64-bit difference hash of the structure
    width: int
    height: int


@dataclass(frozen=True, slots=True)
class Reference:
    """A known-good frame of one camera in one mode, reduced to what the comparisons need."""

    mode: str
    work_size: tuple[int, int]  # (width, height) of the working frame the points live in
    points: np.ndarray  # float32 (N, 2) ORB keypoint positions
    descriptors: np.ndarray  # uint8 (N, 32) ORB descriptors
    texture: np.ndarray  # float32 (rows, cols) block texture relative to the frame's 90th percentile
    means: np.ndarray  # float32 (rows, cols) block mean luminance relative to the frame's median block
    dhash: int


class ReferenceStore:
    """References per (camera, mode) in memory, serialisable to bytes so an agent can persist them."""

    _FORMAT = 1

    def __init__(self) -> None:
        self._refs: dict[tuple[str, str], Reference] = {}

    def __len__(self) -> int:
        return len(self._refs)

    def get(self, camera: str, mode: str) -> Reference | None:
        return self._refs.get((camera, mode))

    def for_camera(self, camera: str) -> dict[str, Reference]:
        """The camera's references by mode, to pass to `diagnose_jpeg(reference=...)`."""
        return {mode: ref for (cam, mode), ref in self._refs.items() if cam == camera}

    def set(self, camera: str, reference: Reference) -> None:
        if reference.mode not in MODES:
            raise ValueError(f"unknown mode {reference.mode!r}")
        self._refs[(camera, reference.mode)] = reference

    def forget(self, camera: str, mode: str | None = None) -> None:
        """Drop a camera's references (after an operator accepts a new view), or one mode's."""
        for key in [k for k in self._refs if k[0] == camera and (mode is None or k[1] == mode)]:
            del self._refs[key]

    def to_bytes(self) -> bytes:
        arrays: dict[str, np.ndarray] = {}
        index = []
        for i, ((camera, mode), ref) in enumerate(sorted(self._refs.items())):
            index.append({"camera": camera, "mode": mode, "work_size": list(ref.work_size),
                          "dhash": ref.dhash})  # fmt: skip
            arrays[f"p{i}"] = ref.points.astype(np.float32)
            arrays[f"d{i}"] = ref.descriptors.astype(np.uint8)
            arrays[f"t{i}"] = ref.texture.astype(np.float32)
            arrays[f"m{i}"] = ref.means.astype(np.float32)
        meta = json.dumps({"format": self._FORMAT, "refs": index}).encode()
        arrays["meta"] = np.frombuffer(meta, dtype=np.uint8)
        out = io.BytesIO()
        np.savez_compressed(out, **arrays)  # type: ignore[arg-type]
        return out.getvalue()

    @classmethod
    def from_bytes(cls, data: bytes) -> ReferenceStore:
        try:
            with np.load(io.BytesIO(data), allow_pickle=False) as z:
                meta = json.loads(z["meta"].tobytes())
                if meta.get("format") != cls._FORMAT:
                    raise ValueError(f"unsupported reference store format {meta.get('format')!r}")
                store = cls()
                for i, item in enumerate(meta["refs"]):
                    points, desc, tex, means = z[f"p{i}"], z[f"d{i}"], z[f"t{i}"], z[f"m{i}"]
                    if points.ndim != 2 or points.shape[1:] != (2,) or desc.shape[0] != points.shape[0]:
                        raise ValueError(f"reference {i}: inconsistent feature arrays")
                    if tex.shape != means.shape or tex.ndim != 2:
                        raise ValueError(f"reference {i}: inconsistent block grids")
                    store.set(
                        str(item["camera"]),
                        Reference(mode=str(item["mode"]), work_size=(int(item["work_size"][0]),
                                  int(item["work_size"][1])), points=points, descriptors=desc,
                                  texture=tex, means=means, dhash=int(item["dhash"])),
                    )  # fmt: skip
                return store
        except (
            OSError,
            ValueError,
            KeyError,
            TypeError,
            IndexError,
        ) as exc:  # JSONDecodeError is a ValueError
            raise ValueError(f"not a reference store: {exc}") from exc
