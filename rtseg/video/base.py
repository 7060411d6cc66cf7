"""The FrameSource interface every video input implements, and real-time pacing.

A source yields `(H, W, 3) uint8 RGB` C-contiguous frames, one per `read()`, and `None` at the
end. Live sources (camera, stream URL, lavfi test source, a file paced with `realtime=True`) end
cleanly with `None` when they stop or disappear; files and frames folders raise `InputError`
when they cannot be read further (after every frame before the failure was returned), so a
broken input is never mistaken for a short one. Damage a player would play through (a packet
flagged corrupt, a frame that does not decode, a file cut short of what its header declares)
is counted in `source.damage` and reading goes on, unless the source is `strict`: then the first
damage raises `InputError`.
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from dataclasses import dataclass, field

import numpy as np

from rtseg.core.closing import Closeable
from rtseg.errors import InputError
from rtseg.video.decoded import DecodedFrame, as_decoded

_DIGITS = re.compile(r"(\d+)")


def natural_sort_key(name: str) -> tuple:
    """Sort key that orders digit runs by value: `frame_2.png` before `frame_10.png`.

    `re.split` with a capturing group alternates text and digits, so the tuple alternates
    str and int at the same positions for every name and always compares cleanly.
    """
    parts = _DIGITS.split(name)
    return tuple(int(p) if i % 2 else p.lower() for i, p in enumerate(parts))


class Pacer:
    """Sleeps so that frames come out at their presentation time, like a camera delivers them.

    `wait(t)` with `t` the frame's time in seconds since the stream start. When the consumer
    falls behind by more than `max_lag` seconds the clock re-anchors instead of bursting frames.
    """

    def __init__(self, max_lag: float = 0.5, clock=time.monotonic, sleep=time.sleep):
        self.max_lag = max_lag
        self.clock, self.sleep = clock, sleep  # injectable: tests pace on a fake clock
        self._origin: float | None = None

    def wait(self, t: float) -> None:
        now = self.clock()
        if self._origin is None:
            self._origin = now - t
            return
        delay = self._origin + t - now
        if delay > 0:
            self.sleep(delay)
        elif delay < -self.max_lag:
            self._origin = now - t


@dataclass
class InputDamage:
    """What a source found wrong with its input while reading; counts since open.

    damaged_packets: packets the demuxer flagged corrupt (decoded all the same, as players do).
    damaged_frames: frames the decoder returned with concealed errors (corrupt frame flag).
    undecodable_frames: packets that did not decode (no frame came out of them).
    warnings: one line each, e.g. a file that ends before what its header declares.
    """

    damaged_packets: int = 0
    damaged_frames: int = 0
    undecodable_frames: int = 0
    warnings: list[str] = field(default_factory=list)

    def __bool__(self) -> bool:
        return bool(self.damaged_packets or self.damaged_frames or self.undecodable_frames or self.warnings)

    def to_json(self) -> dict:
        return {
            "damaged_packets": self.damaged_packets,
            "damaged_frames": self.damaged_frames,
            "undecodable_frames": self.undecodable_frames,
            "warnings": list(self.warnings),
        }

    def summary(self) -> str:
        """One line: "input damage: 1 damaged packet, 0 frames decoded with errors, 0 undecodable"."""
        return (
            f"input damage: {_count(self.damaged_packets, 'damaged packet')}, "
            f"{_count(self.damaged_frames, 'frame')} decoded with errors, "
            f"{self.undecodable_frames} undecodable"
        )


def _count(n: int, noun: str) -> str:
    return f"{n} {noun}{'' if n == 1 else 's'}"


class FrameSource(Closeable):
    """A video input: a context manager whose `read()` returns frames until `None`.

    Attributes (set by subclasses at open):
      live: True for camera / stream URL / lavfi / paced sources, False for files and folders.
      fps: nominal frame rate, or None when unknown.
      frame_size: (height, width) when known before the first read, else None.
      frame_count: total number of frames when known (files, folders), else None.
      description: one line for logs, e.g. "dashcam.mp4 (h264 960x540 25 fps, 221 frames)".
      frames_read: frames returned by `read()` so far.
      strict: raise InputError at the first damage instead of counting it (set at open).
      damage: InputDamage, what was found wrong so far (counts and warnings).
      decoder: the FFmpeg decoder reading the stream ("h264" on the CPU, "h264_cuvid" with
        NVDEC), None where nothing is decoded (frames folders, cameras read by OpenCV).

    Subclasses implement `_read_impl() -> (frame, time_s) | None` and `_close_impl()`, where
    frame is an `(H, W, 3) uint8 RGB` array (checked by `read_frame`: InputError otherwise) or a
    DecodedFrame; `time_s` is the frame's presentation time in seconds (None: use index / fps)
    and drives pacing.
    """

    live: bool = False
    fps: float | None = None
    frame_size: tuple[int, int] | None = None
    frame_count: int | None = None
    description: str = ""
    strict: bool = False
    decoder: str | None = None

    def __init__(self) -> None:
        self.frames_read = 0
        self.damage = InputDamage()
        self._closed = False
        self._pacer: Pacer | None = None

    def pace(self, enabled: bool = True) -> None:
        """Deliver frames at their presentation time (a live stand-in) when `enabled`."""
        self._pacer = Pacer() if enabled else None

    @property
    def paced(self) -> bool:
        return self._pacer is not None

    def read(self) -> np.ndarray | None:
        """The next frame, `(H, W, 3) uint8 RGB` C-contiguous, or None at the end (or after close)."""
        frame = self.read_frame()
        return None if frame is None else frame.rgb()

    def read_frame(self) -> DecodedFrame | None:
        """The next frame as decoded, converted on demand (`rgb()`, `model_input(out)`,
        `yuv420p_planes()`: see rtseg.video.decoded), or None at the end (or after close).
        What the pipeline reads: a run that needs no full-size RGB picture never makes one."""
        if self._closed:
            return None
        item = self._read_impl()
        if item is None:
            return None
        frame, time_s = item
        if not isinstance(frame, DecodedFrame):
            check_rgb_frame(frame, f"{self.description or type(self).__name__}: frame {self.frames_read}")
        if self._pacer is not None:
            if time_s is None:
                time_s = self.frames_read / self.fps if self.fps else 0.0
            self._pacer.wait(time_s)
        self.frames_read += 1
        return as_decoded(frame)

    def __iter__(self) -> Iterator[np.ndarray]:
        while (frame := self.read()) is not None:
            yield frame

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.description}>"

    # subclass hooks
    def _read_impl(self) -> tuple[np.ndarray | DecodedFrame, float | None] | None:
        raise NotImplementedError


def check_rgb_frame(frame, where: str) -> None:
    """InputError (one line naming `where`) unless `frame` is an `(H, W, 3) uint8` array."""
    if not isinstance(frame, np.ndarray) or frame.ndim != 3 or frame.shape[2] != 3 or frame.dtype != np.uint8:
        got = f"{frame.shape} {frame.dtype}" if isinstance(frame, np.ndarray) else type(frame).__name__
        raise InputError(f"{where}: expected (H, W, 3) uint8 RGB, got {got}")


class Display(Closeable):
    """A window the pipeline's main thread drives (rtseg.pipeline.live.LiveView).

    `show((H, W, 3) uint8 RGB) -> key` draws a picture and returns the key pressed (an OpenCV
    key code) or -1; `poll_key() -> key` lets the window process events without a new picture;
    `close()` is idempotent. The public methods check; subclasses implement `_show_impl(rgb)`,
    `_poll_key_impl()` (default: no key) and `_close_impl()`. After close, both return -1.
    """

    def show(self, rgb: np.ndarray) -> int:
        if not isinstance(rgb, np.ndarray) or rgb.ndim != 3 or rgb.shape[2] != 3 or rgb.dtype != np.uint8:
            raise ValueError(f"{type(self).__name__}.show expects (H, W, 3) uint8 RGB")
        return -1 if self._closed else self._show_impl(rgb)

    def poll_key(self) -> int:
        return -1 if self._closed else self._poll_key_impl()

    def _show_impl(self, rgb: np.ndarray) -> int:
        raise NotImplementedError

    def _poll_key_impl(self) -> int:
        return -1


def format_fps(fps: float | None) -> str:
    if not fps:
        return "? fps"
    return f"{fps:.3g} fps" if abs(fps - round(fps)) > 1e-3 else f"{round(fps)} fps"
