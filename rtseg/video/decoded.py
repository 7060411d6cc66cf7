"""A decoded frame, converted only as far as its consumers need.

The decoder's picture (an FFmpeg frame, usually yuv420p) travels through the pipeline as it came
out of the decoder. The capture stage asks for the model's input: one swscale step does the
colour conversion and the resize together (`model_input`). The overlay stage renders straight
into yuv420p planes for the H.264 encoder (`yuv420p_planes`). The full-size RGB picture
(`rgb()`) is made only when something needs its pixels (an image sink, the window,
side-by-side mode), once per frame.

Frames from sources that deliver arrays (cameras, image folders) are wrapped in `ArrayFrame`,
which offers the same three calls.
"""

from __future__ import annotations

import threading

import numpy as np

from rtseg.core.frames import resize_frame


def plane_view(frame, index: int, channels: int = 1) -> np.ndarray:
    """A writable numpy view of plane `index` of an av.VideoFrame, without its line padding:
    `(h, w)` uint8 for one channel, `(h, w, channels)` for packed formats (rgb24: 3)."""
    plane = frame.planes[index]
    rows = np.frombuffer(plane, np.uint8).reshape(plane.height, plane.line_size)
    width = plane.width
    if channels == 1:
        return rows[:, :width]
    return rows[:, : width * channels].reshape(plane.height, width, channels)


def to_rgb_array(frame) -> np.ndarray:
    """An av.VideoFrame as `(H, W, 3) uint8 RGB`, C-contiguous (one swscale conversion)."""
    return np.ascontiguousarray(frame.to_ndarray(format="rgb24"))


class DecodedFrame:
    """One frame of a source. `size`: (H, W).

    rgb(): `(H, W, 3) uint8 RGB`, C-contiguous, made on first use and kept (thread-safe).
    model_input(out): write the frame resized to `out`'s size into `out`, a C-contiguous
        `(h, w, 3) uint8 RGB` array (area averaging when shrinking both sides, else bilinear);
        called from one thread (the capture stage).
    yuv420p_planes(): `(Y (H, W), U (H/2, W/2), V (H/2, W/2))` uint8 read-only views of the
        decoder's own yuv420p picture, or None when it has none (other pixel formats, odd sizes,
        array sources): the renderer then works on `rgb()`.
    """

    size: tuple[int, int]

    def rgb(self) -> np.ndarray:
        raise NotImplementedError

    def model_input(self, out: np.ndarray) -> None:
        raise NotImplementedError

    def yuv420p_planes(self) -> tuple[np.ndarray, np.ndarray, np.ndarray] | None:
        return None


class ArrayFrame(DecodedFrame):
    """A frame that already is an `(H, W, 3) uint8 RGB` array."""

    def __init__(self, rgb: np.ndarray):
        self._rgb = rgb
        self.size = rgb.shape[:2]

    def rgb(self) -> np.ndarray:
        return self._rgb

    def model_input(self, out: np.ndarray) -> None:
        resize_frame(self._rgb, out.shape[:2], out=out)


def _flags(name: str):
    from av.video.reformatter import Interpolation

    return Interpolation[name] | Interpolation.ACCURATE_RND | Interpolation.FULL_CHR_H_INT


class ModelScaler:
    """swscale from any decoder format straight to model-size RGB, its context kept between
    frames (making one costs more than the conversion). One per source; not thread-safe."""

    def __init__(self):
        from av.video.reformatter import VideoReformatter

        self._reformatter = VideoReformatter()
        self._area, self._bilinear = _flags("AREA"), _flags("BILINEAR")

    def scale(self, frame, out: np.ndarray) -> None:
        """av.VideoFrame -> `out` `(h, w, 3) uint8 RGB`; the interpolation follows resize_frame."""
        height, width = out.shape[:2]
        shrink = frame.height > height and frame.width > width
        small = self._reformatter.reformat(
            frame,
            width,
            height,
            "rgb24",
            interpolation=self._area if shrink else self._bilinear,
            threads=1,  # the capture thread's share of the cores; other stages use the rest
        )
        np.copyto(out, plane_view(small, 0, 3))


class AvFrame(DecodedFrame):
    """An av.VideoFrame from the decoder; `scaler` makes the model input (capture thread)."""

    def __init__(self, frame, scaler: ModelScaler):
        self.frame = frame
        self.size = (frame.height, frame.width)
        self._scaler = scaler
        self._rgb: np.ndarray | None = None
        self._lock = threading.Lock()

    def rgb(self) -> np.ndarray:
        with self._lock:
            if self._rgb is None:
                self._rgb = to_rgb_array(self.frame)
            return self._rgb

    def model_input(self, out: np.ndarray) -> None:
        self._scaler.scale(self.frame, out)

    def yuv420p_planes(self) -> tuple[np.ndarray, np.ndarray, np.ndarray] | None:
        height, width = self.size
        if self.frame.format.name != "yuv420p" or height % 2 or width % 2:
            return None
        planes = tuple(plane_view(self.frame, i) for i in range(3))
        for plane in planes:
            plane.flags.writeable = False  # the decoder's picture: never drawn on
        return planes


def as_decoded(frame) -> DecodedFrame:
    """`frame` as a DecodedFrame (an `(H, W, 3) uint8 RGB` array is wrapped)."""
    return frame if isinstance(frame, DecodedFrame) else ArrayFrame(frame)


def new_yuv420p_frame(size: tuple[int, int]):
    """A new av.VideoFrame in yuv420p of `size` (height, width; both even) and writable numpy
    views of its planes `(Y (H, W), U (H/2, W/2), V (H/2, W/2))`, to draw into before encoding."""
    import av

    height, width = size
    frame = av.VideoFrame(width, height, "yuv420p")
    return frame, tuple(plane_view(frame, i) for i in range(3))
