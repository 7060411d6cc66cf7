"""Frames spread evenly over a video, read through the same source as `rtseg run` (rtseg.video's
PyAV source: frames upright, damaged packets counted), for INT8 calibration, parity checks and
the bench. Frames are `(H, W, 3) uint8 RGB`."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from rtseg.core.frames import evenly_spaced, resize_frame
from rtseg.errors import InputError
from rtseg.video.sources import open_source


def count_video_frames(path: Path) -> int:
    """Frames of the first video stream by demuxing (no decoding), when the header has no count."""
    import av

    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        return sum(1 for packet in container.demux(stream) if packet.size)


def sample_video_frames(
    path: str | Path,
    count: int,
    size: tuple[int, int] | None = None,
    seed: int = 0,
    purpose: str = "calibration",
) -> list[np.ndarray]:
    """Up to `count` frames at `evenly_spaced` picks over the video, each resized to `size`
    (height, width) when given; only the picked frames are converted to RGB. InputError naming
    the `purpose` when the video cannot be read."""
    import av

    path = Path(path)
    try:
        with open_source(str(path)) as source:
            total = source.frame_count or count_video_frames(path)
            wanted = set(evenly_spaced(total, count, seed))
            frames = []
            index = 0
            while len(frames) < len(wanted) and (frame := source.read_frame()) is not None:
                if index in wanted:
                    rgb = frame.rgb()
                    frames.append(rgb if size is None else resize_frame(rgb, size))
                index += 1
    except (InputError, av.error.FFmpegError, IndexError) as exc:
        raise InputError(f"cannot read {purpose} video {path}: {exc}") from exc
    return frames
