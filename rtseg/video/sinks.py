"""Where annotated frames and class-id maps go: MP4, image files, mask PNGs, nowhere, a window.

Every sink checks its output path at construction (OutputError: folder cannot be created, not
writable, path is a directory) and is a context manager whose idempotent `close()` flushes, so
an MP4 is playable however the run stopped (success, exception, Ctrl-C), and even when the
process is killed: it is recorded as a fragmented `OUT.partial.mp4` and finished into `OUT.mp4`
at close (see `durable`). Image files are encoded in memory and renamed into place when
written, so a full disk leaves no broken image under a final name; a failed write is one
OutputError line (no output from OpenCV or libpng).
"""

from __future__ import annotations

import os
import threading
from fractions import Fraction
from pathlib import Path

import cv2
import numpy as np

from rtseg.core.paths import atomic_write_bytes, prepare_output_file, prepare_output_folder
from rtseg.errors import OutputError
from rtseg.video.display import WindowDisplay, display_available
from rtseg.video.durable import Recording, describe_os_error
from rtseg.video.encoders import apply_encoder_settings, check_encoder, check_encoder_settings, choose_encoder

__all__ = [
    "FrameSink",
    "check_encoder",
    "Mp4Sink",
    "FramesSink",
    "MaskSink",
    "NullSink",
    "WindowDisplay",
    "display_available",
    "prepare_output_file",
    "prepare_output_folder",
]

VIDEO_SUFFIXES = (".mp4", ".m4v", ".mov", ".mkv")
IMAGE_FORMATS = ("jpg", "jpeg", "png", "bmp", "webp")


class FrameSink:
    """Consumes the pipeline's results. `write(index, rendered, ids)`:

    index: the source frame's index (0-based; may skip numbers when a live source drops frames).
    rendered: `(H', W', 3) uint8 RGB` annotated frame (side-by-side makes W' = 2W); an
        av.VideoFrame in yuv420p instead when `accepts_yuv420p`; None when not `wants_rendered`.
    ids: `(H, W) uint8` class ids at the source frame's size.

    wants_rendered: the sink uses `rendered` (False: the pipeline draws nothing for it).
    accepts_yuv420p: the sink takes `rendered` as an av.VideoFrame in yuv420p (the pipeline then
        draws straight into the decoder's planes when every sink that wants pixels accepts it).
    """

    frames_written: int = 0
    wants_rendered: bool = True
    accepts_yuv420p: bool = False

    def write(self, index: int, rendered, ids: np.ndarray) -> None:
        """Check the frame's arguments (ValueError: a caller's bug), then `_write_impl` them.
        ids may be None for a sink that only takes pixels."""
        if (ids is not None or not self.wants_rendered) and (
            not isinstance(ids, np.ndarray) or ids.ndim != 2 or ids.dtype != np.uint8
        ):
            got = f"{ids.shape} {ids.dtype}" if isinstance(ids, np.ndarray) else type(ids).__name__
            raise ValueError(f"{type(self).__name__} expects (H, W) uint8 ids, got {got}")
        if index < 0 or (self.wants_rendered and rendered is None):
            raise ValueError(f"{type(self).__name__}: frame {index} needs an index >= 0 and its picture")
        self._write_impl(index, rendered, ids)

    def _write_impl(self, index: int, rendered, ids: np.ndarray) -> None:
        raise NotImplementedError

    def close(self) -> None:  # noqa: B027 - sinks holding nothing need no cleanup
        """Flush and release. Idempotent."""

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        self.close()


class NullSink(FrameSink):
    """Discards everything (benchmarks, `--show` only). Takes rendered frames like an MP4 sink
    would (yuv420p), so a benchmark through it still pays for drawing."""

    accepts_yuv420p = True

    def _write_impl(self, index: int, rendered: np.ndarray, ids: np.ndarray) -> None:
        self.frames_written += 1


class _ImageFolderSink(FrameSink):
    def __init__(self, folder: str | os.PathLike, ext: str):
        ext = ext.lower().lstrip(".")
        if ext not in IMAGE_FORMATS:
            raise OutputError(
                f"{folder}: unsupported image format '{ext}' (use one of {', '.join(IMAGE_FORMATS)})"
            )
        self.ext = ext
        self.folder = prepare_output_folder(folder)
        self.frames_written = 0
        self._closed = False

    def path_for(self, index: int) -> Path:
        """`folder/000042.<ext>` for frame 42."""
        return self.folder / f"{index:06d}.{self.ext}"

    def _write_image(self, index: int, image: np.ndarray, params: list[int]) -> None:
        """Encode in memory, then write through a temporary file renamed into place: a file
        under a frame's name is always complete (a full disk is one OutputError line)."""
        if self._closed:
            raise OutputError(f"{self.folder}: write after close")
        path = self.path_for(index)
        try:
            ok, encoded = cv2.imencode(f".{self.ext}", image, params)
        except cv2.error as e:
            raise OutputError(f"{path}: cannot encode image ({e.err})") from None
        if not ok:
            raise OutputError(f"{path}: cannot encode image")
        atomic_write_bytes(path, encoded)  # OutputError: "disk full (...)" and no broken file
        self.frames_written += 1

    def close(self) -> None:
        self._closed = True


class FramesSink(_ImageFolderSink):
    """Rendered frames as image files `folder/000000.jpg`, ... named by frame index."""

    def __init__(self, folder: str | os.PathLike, ext: str = "jpg", jpeg_quality: int = 95):
        super().__init__(folder, ext)
        self._params = [cv2.IMWRITE_JPEG_QUALITY, int(jpeg_quality)] if self.ext in ("jpg", "jpeg") else []

    def _write_impl(self, index: int, rendered: np.ndarray, ids: np.ndarray) -> None:
        self._write_image(index, cv2.cvtColor(rendered, cv2.COLOR_RGB2BGR), self._params)


class MaskSink(_ImageFolderSink):
    """Class ids as lossless 8-bit single-channel PNGs `folder/000000.png`, ... (pixel = class id).
    Needs no rendered frame: a masks-only run draws nothing."""

    wants_rendered = False

    def __init__(self, folder: str | os.PathLike):
        super().__init__(folder, "png")
        self._params = [cv2.IMWRITE_PNG_COMPRESSION, 1]  # fast; PNG is lossless at any level

    def _write_impl(self, index: int, rendered: np.ndarray, ids: np.ndarray) -> None:
        self._write_image(index, ids, self._params)


def scale_frame(rendered, size: tuple[int, int]):
    """`rendered` (`(h, w, 3) uint8 RGB` or a yuv420p av.VideoFrame) at `size` = (H, W): area
    averaging when shrinking, bilinear when enlarging (rtseg.core.frames.resize_frame)."""
    from rtseg.core.frames import resize_frame

    if isinstance(rendered, np.ndarray):
        return resize_frame(rendered, size)
    return rendered.reformat(width=size[1], height=size[0], format="yuv420p")


class Mp4Sink(FrameSink):
    """Rendered frames as an H.264 yuv420p video (MP4, or MOV/MKV by the file name).

    path: output file; checked at construction (OutputError). fps: nominal rate (None: 30).
    codec: "auto" (h264_nvenc when it opens, else libx264 ultrafast crf 23) or an FFmpeg encoder.
    preset / crf: override the encoder's speed preset (x264 names, or NVENC p1..p7; each mapped
    to the other's nearest step) and quality (x264 crf, NVENC cq; 0..51, lower is better).
    Takes yuv420p av.VideoFrames as they are (no conversion) and RGB arrays converted once.
    The container opens on the first frame, which sets the size; odd sizes are padded by one
    edge row/column to even. Timestamps follow the frame index (pts = index - first index, time
    base 1/fps), so frames a live source dropped keep the video in real time. Thread-safe
    between one writer and `close()`; close flushes the encoder and finishes the file.
    Until then the video is `partial` (`OUT.partial.mp4`, fragmented: a killed run leaves it
    playable up to its last half-second fragment); after a failed write (disk full) it stays
    there, cut to its last complete fragment, and `path` is not written.
    """

    accepts_yuv420p = True

    def __init__(
        self,
        path: str | os.PathLike,
        fps: float | None = 30.0,
        codec: str = "auto",
        preset: str | None = None,
        crf: int | None = None,
    ):
        self.path = prepare_output_file(path, VIDEO_SUFFIXES)
        try:
            check_encoder_settings(preset, crf)
        except OutputError as e:
            raise OutputError(f"{self.path}: {e}") from None
        self.preset, self.crf = preset, crf
        fps = 30.0 if fps is None else float(fps)
        if not fps > 0:
            raise OutputError(f"{self.path}: frame rate must be positive, got {fps}")
        check_encoder(codec, self.path)
        self.rate = Fraction(fps).limit_denominator(1001)
        self.requested_codec = codec
        self.codec: str | None = None  # chosen at the first frame
        self.options: dict[str, str] | None = None  # the encoder's options, set at the first frame
        self.frame_size: tuple[int, int] | None = None  # (height, width) of the input frames
        self.frames_written = 0
        self.frames_scaled = 0  # frames of another size than the first, scaled to it
        self._container = None
        self._stream = None
        self._first_index: int | None = None
        self._last_pts = -1
        self._closed = False
        self._failed = False  # a write failed: the recording was kept as it was, not finished
        self._recording = Recording(self.path)
        self._lock = threading.Lock()

    @property
    def partial(self) -> Path | None:
        """The file being recorded (None before the first frame)."""
        return self._recording.partial

    def _write_impl(self, index: int, rendered, ids: np.ndarray) -> None:
        """Encode one frame, `(H, W, 3) uint8 RGB` or an av.VideoFrame in yuv420p. The first frame
        sets the video's size; a later frame of another size (a stream whose resolution changes
        mid-way) is scaled to it, as players and FFmpeg carry on."""
        import av

        with self._lock:
            if self._closed or self._failed:
                after = "close" if self._closed else "a failed write"
                raise OutputError(f"{self.path}: write after {after}")
            if isinstance(rendered, np.ndarray):
                height, width = rendered.shape[:2]
            else:
                width, height = rendered.width, rendered.height
            if self._container is None:
                self._open(width, height)
                self._first_index = index
            elif (height, width) != self.frame_size:
                rendered = scale_frame(rendered, self.frame_size)
                self.frames_scaled += 1
            frame = rgb_to_yuv420p_frame(rendered) if isinstance(rendered, np.ndarray) else rendered
            self._last_pts = frame.pts = max(index - self._first_index, self._last_pts + 1)
            frame.time_base = 1 / self.rate
            try:
                for packet in self._stream.encode(frame):
                    self._container.mux(packet)
            except (av.error.FFmpegError, OSError) as e:
                raise self._give_up(e, f"at frame {index}") from None
            self.frames_written += 1

    def _give_up(self, error: BaseException, where: str) -> OutputError:
        """After a failed write: keep what the recording holds (`durable.Recording.abandon`) and
        say in one line what failed and where the video so far is."""
        container, self._container = self._container, None
        kept = self._recording.abandon(container)
        self._failed = True
        what = (
            f"the video so far is kept in {self.partial}" if kept else "no frame of the video could be kept"
        )
        return OutputError(
            f"{self.path}: writing the video failed {where}: {describe_os_error(error)}; {what}"
        )

    def _open(self, width: int, height: int) -> None:
        import av

        self.frame_size = (height, width)
        even_w, even_h = width + width % 2, height + height % 2
        self.codec, options = choose_encoder(self.requested_codec, even_w, even_h)
        options = apply_encoder_settings(self.codec, options, self.preset, self.crf)
        self.options = options
        try:
            self._container = self._recording.open_container()
        except (av.error.FFmpegError, OSError) as e:
            raise OutputError(f"{self.path}: cannot create video ({describe_os_error(e)})") from None
        try:
            stream = self._container.add_stream(self.codec, rate=self.rate, options=options)
            stream.width, stream.height, stream.pix_fmt = even_w, even_h, "yuv420p"
            stream.codec_context.time_base = 1 / self.rate
            stream.codec_context.open()
        except (av.error.FFmpegError, ValueError) as e:
            self._recording.discard(self._container)
            self._container = None
            raise OutputError(f"{self.path}: cannot open encoder {self.codec} ({e})") from None
        self._stream = stream

    def close(self) -> None:
        """Flush the encoder and finish the file (a normal MP4 at `path`). Idempotent. After a
        failed write, or when finishing fails (disk full), the recording stays at `partial`."""
        import av

        with self._lock:
            if self._closed:
                return
            self._closed = True
            if self._container is None:  # nothing written, or given up after a failed write
                return
            try:
                for packet in self._stream.encode():
                    self._container.mux(packet)
                self._recording.finish(self._container)
            except (av.error.FFmpegError, OSError) as e:
                raise self._give_up(e, "while finishing it") from None
            self._container = None


def rgb_to_yuv420p_frame(rgb: np.ndarray):
    """`(H, W, 3) uint8 RGB` -> an av.VideoFrame in yuv420p, padded to even size: one OpenCV
    BT.601 conversion straight into the frame's planes (PyAV's `from_ndarray` + swscale from
    rgb24 costs several times more)."""
    from rtseg.core.frames import rgb_to_yuv420p
    from rtseg.video.decoded import new_yuv420p_frame

    even = _pad_to_even(rgb)
    frame, planes = new_yuv420p_frame(even.shape[:2])
    for plane, values in zip(planes, rgb_to_yuv420p(even)):
        np.copyto(plane, values)
    return frame


def _pad_to_even(rgb: np.ndarray) -> np.ndarray:
    """`(H, W, 3)` -> even height and width by repeating the last row/column (yuv420p needs it)."""
    pad_h, pad_w = rgb.shape[0] % 2, rgb.shape[1] % 2
    if pad_h or pad_w:
        return cv2.copyMakeBorder(rgb, 0, pad_h, 0, pad_w, cv2.BORDER_REPLICATE)
    return np.ascontiguousarray(rgb)
