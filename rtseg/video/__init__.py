"""Video inputs (files, frames folders, cameras, stream URLs, lavfi) and outputs (MP4, images,
mask PNGs, a window). Frames are `(H, W, 3) uint8 RGB` everywhere; class ids `(H, W) uint8`."""

from rtseg.video.base import Display, FrameSource, natural_sort_key
from rtseg.video.sinks import (
    FrameSink,
    FramesSink,
    MaskSink,
    Mp4Sink,
    NullSink,
    WindowDisplay,
    display_available,
)
from rtseg.video.sources import open_source

__all__ = [
    "Display",
    "FrameSource",
    "open_source",
    "natural_sort_key",
    "FrameSink",
    "Mp4Sink",
    "FramesSink",
    "MaskSink",
    "NullSink",
    "WindowDisplay",
    "display_available",
]
