"""Video files, stream URLs and lavfi test sources, decoded with PyAV (threaded decode).

Damage is handled as players handle it: a packet FFmpeg flags corrupt (the join of two
concatenated MPEG-TS recordings, the partial last packet of a cut file) is decoded all the same,
a packet that does not decode is skipped, and both are counted in `source.damage`. A file that
ends before what its header declares (frame count, or duration) adds a warning there. With
`strict=True` the first of these raises `InputError("<file>: ... at frame N")` instead. A read
error (the demuxer fails, the file disappears) raises InputError for files, after the frames the
decoder still held are delivered; live sources (URLs, lavfi) end with `None` then.

Frames come out upright: the display matrix (phones, dashcams) is applied as players apply it
(see `orientation`).
"""

from __future__ import annotations

from collections import deque
from fractions import Fraction
from pathlib import Path

import av

from rtseg.core.notices import warn_once
from rtseg.errors import InputError
from rtseg.video.base import FrameSource, format_fps
from rtseg.video.decoded import ArrayFrame, AvFrame, DecodedFrame, ModelScaler, to_rgb_array
from rtseg.video.hw_decode import choose_decoder, ffmpeg_reason
from rtseg.video.orientation import (
    apply_transform,
    display_transform,
    frame_display_matrix,
    turn_video_frame,
)

DEFAULT_URL_TIMEOUT_S = 10.0
_END = object()  # the demuxer has no more packets
# containers whose header declares the duration (others estimate it from what they read)
DURATION_IN_HEADER = {"mov", "mp4", "matroska", "webm", "avi"}


class AvSource(FrameSource):
    """Frames from anything FFmpeg opens: a file, a stream URL, or a lavfi filter graph.

    Use the `open_file`, `open_url` and `open_lavfi` constructors; they map every open failure
    to an InputError naming the input. A file source decodes its first frame at open, so
    `frame_size` is the upright size.
    """

    def __init__(
        self,
        container: av.container.InputContainer,
        name: str,
        *,
        live: bool,
        strict: bool = False,
        decoder: str | None = "cpu",
    ):
        super().__init__()
        self.name = name
        self.live = live
        self.strict = strict
        self._container = container
        videos = container.streams.video
        if not videos:
            container.close()
            raise InputError(f"{name}: no video stream")
        self._stream = stream = videos[0]
        # frame threads hide a damaged packet's decode error (and can lose the frames in flight
        # with it); strict decoding wants every error where it happens: slice threads only
        stream.thread_type = "SLICE" if strict else "AUTO"
        self._decoder = choose_decoder(stream, decoder, name)  # NVDEC or the stream's own (CPU)
        rate = stream.average_rate or stream.guessed_rate
        self.fps = float(rate) if rate else None
        if stream.width and stream.height:
            self.frame_size = (stream.height, stream.width)
        self.frame_count = stream.frames or None
        self._packets = container.demux(stream)
        self._held = None  # a packet read ahead (or _END, or a read error)
        self._pending: deque[tuple[DecodedFrame, float | None]] = deque()
        self._scaler = ModelScaler()
        self._error: InputError | None = None
        self._ended = False
        self._frames_decoded = 0
        self._packets_read = 0
        self._pts_span: list[int] = []  # [first pts, end pts] of the packets read (stream time base)
        self._transforms: dict[tuple[int, ...], str] = {}  # display matrix -> transform name
        # The frames' display matrix comes from the stream (the same on every frame) or from a
        # packet's side data (a change mid-stream): it is read from the first frame and from
        # the frames of a packet that carries one, never from every frame: PyAV's
        # `frame.side_data` makes a reference cycle per frame that only a full garbage
        # collection frees (RSS grew ~20 bytes per frame; benchmarks/soak_memory.py).
        self._matrix: tuple[int, ...] | None = None
        self._matrix_in_packet = False
        self._warned_tilt = False
        self.transform = "identity"  # how the first frame was turned upright
        if not live:
            self._peek()
        self.description = self._describe()

    # ----- constructors -------------------------------------------------------------------
    @classmethod
    def open_file(cls, path: Path, strict: bool = False, decoder: str | None = None) -> AvSource:
        """A video file (mp4, mkv, avi, mov, webm, ...). Not live. `decoder`: see hw_decode."""
        name = path.name
        try:
            container = av.open(str(path))
        except av.error.InvalidDataError as e:
            raise InputError(f"{path}: not a video or corrupt header ({_reason(e)})") from None
        except av.error.PermissionError:
            raise InputError(f"{path}: cannot read (permission denied)") from None
        except av.error.FFmpegError as e:
            raise InputError(f"{path}: cannot open as a video ({_reason(e)})") from None
        return cls(container, name, live=False, strict=strict, decoder=decoder)

    @classmethod
    def open_url(
        cls,
        url: str,
        timeout: float = DEFAULT_URL_TIMEOUT_S,
        strict: bool = False,
        decoder: str | None = None,
    ) -> AvSource:
        """A network stream. Live unless the server reports a frame count (a file over HTTP)."""
        options = {"rtsp_transport": "tcp"} if url.startswith(("rtsp:", "rtsps:")) else {}
        try:
            container = av.open(url, options=options, timeout=(timeout, timeout))
        except av.error.FFmpegError as e:
            raise InputError(f"{url}: cannot open stream ({_reason(e)})") from None
        source = cls(container, url, live=True, strict=strict, decoder=decoder)
        if source.frame_count and url.startswith(("http:", "https:")):
            source.live = False
            source.description = source._describe()
        return source

    @classmethod
    def open_lavfi(cls, graph: str, strict: bool = False) -> AvSource:
        """An FFmpeg lavfi source graph, e.g. `testsrc2=size=640x480:rate=30`. Live and paced
        at its own rate, like the camera it stands in for."""
        try:
            container = av.open(graph, format="lavfi")
        except av.error.FFmpegError as e:
            raise InputError(f"lavfi:{graph}: invalid filter graph ({_reason(e)})") from None
        source = cls(container, f"lavfi:{graph}", live=True, strict=strict)
        source.pace(True)
        return source

    # ----- reading --------------------------------------------------------------------------
    def _read_impl(self) -> tuple[DecodedFrame, float | None] | None:
        while not self._pending:
            if self._error is not None:
                error, self._error = self._error, None
                self._ended = True
                raise error
            if self._ended:
                return None
            self._decode_next_packet()
        return self._pending.popleft()

    def _peek(self) -> None:
        """Decode up to the first frame (its upright size is `frame_size`); errors wait for read."""
        while not self._pending and self._error is None and not self._ended:
            self._decode_next_packet()
        if self._pending:
            self.frame_size = tuple(self._pending[0][0].size)  # (height, width)

    def _decode_next_packet(self) -> None:
        packet = self._read_packet()
        if packet is None:
            return
        if packet.size:
            self._packets_read += 1
            self._track_span(packet)
        if packet.is_corrupt:
            if self._damaged("damaged_packets", "damaged packet (flagged corrupt)"):
                return
            if self._is_last_packet():  # the partial last packet of a cut file
                self.damage.undecodable_frames += 1  # frame threading would lose good frames on it
                self._end_of_input()
                return
        self._matrix_in_packet = packet.has_sidedata("display_matrix")
        try:
            frames = self._decode(packet)
        except av.error.FFmpegError as e:
            self._damaged("undecodable_frames", f"undecodable packet ({_reason(e)})")
            return
        self._deliver(frames)

    def _decode(self, packet: av.Packet) -> list:
        """`packet` through the chosen decoder; NVDEC failing before its first frame hands the
        stream to the CPU decoder (one warning line) and the packet is decoded there."""
        try:
            return self._decoder.decode(packet)
        except av.error.FFmpegError as e:
            if self._decoder is self._stream.codec_context or self._frames_decoded:
                raise
            warn_once(f"{self.name}: NVDEC ({self._decoder.name}) failed ({_reason(e)}); decoding on the CPU")
            self._decoder = self._stream.codec_context
            return self._decoder.decode(packet)

    @property
    def decoder(self) -> str:
        """The FFmpeg decoder that reads the stream: "h264" (the CPU), "h264_cuvid" (NVDEC), ..."""
        return self._decoder.name

    def _read_packet(self) -> av.Packet | None:
        """The next packet (a held one first); None at the end or on a read error (handled)."""
        item, self._held = (self._held if self._held is not None else self._next_packet()), None
        if item is _END:
            self._end_of_input()
            return None
        if isinstance(item, Exception):
            self._fail(f"read error at frame {{frame}}: {_reason(item)}")
            return None
        return item

    def _next_packet(self):
        """A packet, `_END`, or the read error (an exception instance)."""
        try:
            return next(self._packets)
        except StopIteration:
            return _END
        except (av.error.FFmpegError, OSError) as e:
            return e

    def _is_last_packet(self) -> bool:
        """Whether no packet with data follows (PyAV ends a stream with an empty flush packet)."""
        self._held = self._next_packet()
        return self._held is _END or (isinstance(self._held, av.Packet) and not self._held.size)

    def _deliver(self, frames) -> None:
        for frame in frames:
            if frame.is_corrupt and self._damaged("damaged_frames", "frame decoded with errors"):
                return
            self._pending.append((self._upright(frame), frame.time))
            self._frames_decoded += 1

    def _damaged(self, kind: str, what: str) -> bool:
        """Count one damage of `kind`; when strict, fail and return True (stop reading)."""
        setattr(self.damage, kind, getattr(self.damage, kind) + 1)
        if not self.strict:
            return False
        self._fail(f"{what} at frame {{frame}} (--strict stops at the first damage)", error=True)
        return True

    def _fail(self, message: str, error: bool = False) -> None:
        """Deliver what the decoder still holds, then end (live) or raise at the next read.

        `message` may hold `{frame}`: the index of the first frame not delivered."""
        if self._ended:  # already failing (a flushed frame was damaged too)
            return
        self._flush_decoder()
        if error or not self.live:
            self._error = InputError(f"{self.name}: {message.format(frame=self._frames_decoded)}")

    def _flush_decoder(self) -> None:
        """End: deliver every frame the (threaded) decoder still holds."""
        self._ended = True
        try:
            frames = self._decoder.decode(None)
        except av.error.FFmpegError:
            frames = []
        self._deliver(frames)

    def _end_of_input(self) -> None:
        self._flush_decoder()
        if self.live:
            return
        cut = self._truncation()
        if cut is None:
            return
        if self.strict:
            self._error = InputError(f"{self.name}: {cut} (--strict)")
        else:
            self.damage.warnings.append(f"{self.name}: {cut}")

    # ----- what the header declares vs what was read -------------------------------------------
    def _track_span(self, packet: av.Packet) -> None:
        if packet.pts is None:
            return
        step = packet.duration or 0
        if not step and self.fps:
            step = round(1 / (self.fps * self._stream.time_base))
        end = packet.pts + step
        if not self._pts_span:
            self._pts_span = [packet.pts, end]
        else:
            self._pts_span = [min(self._pts_span[0], packet.pts), max(self._pts_span[1], end)]

    def _truncation(self) -> str | None:
        """ "ends after N of the M frames its header declares ..." when the file looks cut, else None."""
        declared = self._stream.frames
        if declared and self._packets_read < declared:
            read = self._packets_read
            return f"ends after {read} of the {declared} frames its header declares (cut short?)"
        declared_s = self._declared_duration_s()
        if declared_s is None or not self._pts_span:
            return None
        read_s = float((self._pts_span[1] - self._pts_span[0]) * self._stream.time_base)
        tolerance = 0.01 * declared_s + (2 / self.fps if self.fps else 0.1)
        if read_s < declared_s - tolerance:
            return f"ends at {read_s:.2f} s of the {declared_s:.2f} s its header declares (cut short?)"
        return None

    def _declared_duration_s(self) -> float | None:
        """The video stream's duration as the container header states it, in seconds, or None."""
        if not DURATION_IN_HEADER & set(self._container.format.name.split(",")):
            return None
        stream = self._stream
        if stream.duration:
            return float(stream.duration * stream.time_base)
        tag = stream.metadata.get("DURATION")  # Matroska's per-stream statistics tag
        if tag:
            hours, minutes, seconds = tag.split(":")
            return int(hours) * 3600 + int(minutes) * 60 + float(Fraction(seconds))
        if self._container.duration and len(self._container.streams) == 1:
            return self._container.duration / av.time_base
        return None

    # ----- orientation ----------------------------------------------------------------------------
    def _upright(self, frame: av.VideoFrame) -> DecodedFrame:
        """The frame as a player shows it: as decoded (converted later, only as far as it is
        used) when no rotation applies, else `(H, W, 3) uint8 RGB` with the display matrix
        applied."""
        if self._frames_decoded == 0 or self._matrix_in_packet:
            self._matrix = frame_display_matrix(frame)
        matrix = self._matrix
        if matrix is None:
            return AvFrame(frame, self._scaler)
        transform = self._transforms.get(matrix)
        if transform is None:
            transform = display_transform(matrix)
            if transform is None:
                if not self._warned_tilt:  # once: a hostile file may change it every frame
                    self._warned_tilt = True
                    self.damage.warnings.append(
                        f"{self.name}: display matrix asks for a rotation that is not a quarter "
                        "turn; frames are used as stored"
                    )
                transform = "identity"
            if len(self._transforms) >= 8:  # a handful of distinct matrices at most, in practice one
                self._transforms.clear()
            self._transforms[matrix] = transform
            if self._frames_decoded == 0:
                self.transform = transform
        if transform == "identity":
            return AvFrame(frame, self._scaler)
        turned = turn_video_frame(frame, transform)
        if turned is not None:  # in the decoder's format: the same fast path as upright frames
            return AvFrame(turned, self._scaler)
        return ArrayFrame(apply_transform(to_rgb_array(frame), transform))

    def _close_impl(self) -> None:
        self._container.close()

    def _describe(self) -> str:
        codec = self._decoder.name
        codec = "raw" if codec == "wrapped_avframe" else codec
        size = f"{self.frame_size[1]}x{self.frame_size[0]}" if self.frame_size else "?x?"  # shown WxH
        count = f", {self.frame_count} frames" if self.frame_count else ""
        kind = ", live" if self.live else ""
        turned = f", shown {self.transform.replace('_', ' ')}" if self.transform != "identity" else ""
        return f"{self.name} ({codec} {size} {format_fps(self.fps)}{count}{kind}{turned})"


_reason = ffmpeg_reason
