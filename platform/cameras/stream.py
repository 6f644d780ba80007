"""The `stream` fault of a camera (码流故障), derived from its latest stream check (码流检测) with its
reason; pure. The agent measures and judges the stream; `stream_evidence` stores what it sent."""

from __future__ import annotations

from typing import Any

# what each stream fault means, for the reason staff read
FAULT_TEXT = {
    "no_stream": "no stream",
    "codec": "codec differs from the profile",
    "resolution": "resolution differs from the profile",
    "low_fps": "frame rate below the profile",
    "bitrate": "bitrate over the profile's limit",
    "decode_errors": "decode errors",
    "frozen": "frozen picture",
    "black": "black picture",
    "stopped": "stream stops",
}


def stream_reason(faults: list[Any] | None, error: str | None = None) -> str | None:
    """The reason of a `stream` fault from the latest check's faults (pure); None when it passed."""
    if not faults:
        return None
    what = ", ".join(FAULT_TEXT.get(str(f), str(f)) for f in faults)
    return f"stream fails its check (码流): {what}" + (f" ({error})" if error else "")
