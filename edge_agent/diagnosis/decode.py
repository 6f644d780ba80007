"""JPEG decoding for diagnosis: the size from the header, a reduced colour frame, a native grey crop.

The colour frame is decoded with JPEG DCT scaling (``IMREAD_REDUCED_COLOR_2/4/8``), which skips most
of the inverse transform; only noise needs native pixels, because any downscaling averages it away.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

# Start-of-frame markers carry the size; C4 (Huffman tables), C8 (reserved) and CC (arithmetic
# conditioning) share the range but are not frames.
_SOF_MARKERS = frozenset(range(0xC0, 0xD0)) - {0xC4, 0xC8, 0xCC}
_MAX_SIDE = 16384
_REDUCED_COLOR = {1: cv2.IMREAD_COLOR, 2: cv2.IMREAD_REDUCED_COLOR_2, 4: cv2.IMREAD_REDUCED_COLOR_4,
                  8: cv2.IMREAD_REDUCED_COLOR_8}  # fmt: skip


class InvalidSnapshot(ValueError):
    """The bytes are not a decodable JPEG snapshot of a plausible size."""


def jpeg_dimensions(data: bytes) -> tuple[int, int]:
    """Width and height from the JPEG's start-of-frame segment, without decoding the picture."""
    if len(data) < 4 or data[0] != 0xFF or data[1] != 0xD8:
        raise InvalidSnapshot("not a JPEG: missing start-of-image marker")
    i = 2
    n = len(data)
    while i + 4 <= n:
        if data[i] != 0xFF:
            raise InvalidSnapshot(f"corrupt JPEG: expected a marker at byte {i}")
        marker = data[i + 1]
        if marker == 0xFF:  # fill byte before a marker
            i += 1
            continue
        if marker in (0x01, *range(0xD0, 0xD8)):  # markers without a length
            i += 2
            continue
        if marker in (0xD9, 0xDA):  # end of image or start of scan before any frame header
            break
        length = int.from_bytes(data[i + 2 : i + 4], "big")
        if length < 2:
            raise InvalidSnapshot(f"corrupt JPEG: segment length {length} at byte {i}")
        if marker in _SOF_MARKERS:
            if i + 9 > n:
                break
            height = int.from_bytes(data[i + 5 : i + 7], "big")
            width = int.from_bytes(data[i + 7 : i + 9], "big")
            if not (8 <= width <= _MAX_SIDE and 8 <= height <= _MAX_SIDE):
                raise InvalidSnapshot(f"implausible JPEG size {width}x{height}")
            return width, height
        i += 2 + length
    raise InvalidSnapshot("corrupt JPEG: no start-of-frame segment")


def image_dimensions(data: bytes) -> tuple[int, int]:
    """Width and height from a JPEG, PNG or BMP header, without decoding the picture."""
    if data[:2] == b"\xff\xd8":
        return jpeg_dimensions(data)
    if data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) >= 24 and data[12:16] == b"IHDR":
        width, height = int.from_bytes(data[16:20], "big"), int.from_bytes(data[20:24], "big")
    elif data[:2] == b"BM" and len(data) >= 26:
        width = int.from_bytes(data[18:22], "little", signed=True)
        height = abs(int.from_bytes(data[22:26], "little", signed=True))
    else:
        raise InvalidSnapshot("not a JPEG, PNG or BMP picture")
    if not (8 <= width <= _MAX_SIDE and 8 <= height <= _MAX_SIDE):
        raise InvalidSnapshot(f"implausible picture size {width}x{height}")
    return width, height


def reduction_for(width: int, work_width: int) -> int:
    """The largest DCT scale (1, 2, 4, 8) that still leaves at least `work_width` columns."""
    for factor in (8, 4, 2):
        if width // factor >= work_width:
            return factor
    return 1


@dataclass(frozen=True, slots=True)
class Decoded:
    width: int  # native size, from the header
    height: int
    scale: int  # JPEG reduction factor used for the colour frame
    color: np.ndarray  # BGR at exactly work_width wide
    native_crop: np.ndarray  # grey, native resolution, centre square


def decode(data: bytes, work_width: int, crop: int) -> Decoded:
    """Decode `data` into a working colour frame and a native-resolution grey centre crop.

    JPEG is decoded at a reduced DCT scale; PNG and BMP (lossless, no such shortcut) at full size.
    """
    width, height = image_dimensions(data)
    buf = np.frombuffer(data, dtype=np.uint8)
    scale = reduction_for(width, work_width) if data[:2] == b"\xff\xd8" else 1
    decoded = cv2.imdecode(buf, _REDUCED_COLOR[scale])
    if decoded is None or decoded.ndim != 3:
        raise InvalidSnapshot("picture could not be decoded")
    color: np.ndarray = decoded
    if scale == 1:
        grey = cv2.cvtColor(color, cv2.COLOR_BGR2GRAY)
    else:
        # The grey-only decode skips colour upsampling and conversion: cheaper than full colour.
        full = cv2.imdecode(buf, cv2.IMREAD_GRAYSCALE)
        if full is None:
            raise InvalidSnapshot("JPEG could not be decoded at full size")
        grey = full
    gh, gw = grey.shape[:2]
    side = min(crop, gh, gw)
    y0, x0 = (gh - side) // 2, (gw - side) // 2
    native_crop = grey[y0 : y0 + side, x0 : x0 + side]
    work_height = max(8, round(color.shape[0] * work_width / color.shape[1]))
    if color.shape[1] != work_width:
        color = cv2.resize(color, (work_width, work_height), interpolation=cv2.INTER_AREA)
    return Decoded(width=width, height=height, scale=scale, color=color, native_crop=native_crop)
