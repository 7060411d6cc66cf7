"""Video files, stream URLs and lavfi test sources, decoded with PyAV (threaded decode).

Truncated or corrupt files: the frames that decode are delivered first, then `read()` raises
`InputError("<file>: corrupt or truncated at frame N: ...")`. FFmpeg flags the partial last
packet of a cut file as corrupt (threaded decode would otherwise hide it and end early), so a
cut file never passes for a short one. Live sources (URLs, lavfi) skip corrupt packets, and
end with `None` when the stream stops, times out or disappears.
"""

from __future__ import annotations

from collections import deque
from pathlib import Path

import av

from rtseg.errors import InputError
from rtseg.video.base import FrameSource, format_fps
from rtseg.video.decoded import AvFrame, ModelScaler

DEFAULT_URL_TIMEOUT_S = 10.0


class AvSource(FrameSource):
    """Frames from anything FFmpeg opens: a file, a stream URL, or a lavfi filter graph.

    Use the `open_file`, `open_url` and `open_lavfi` constructors; they map every open failure
    to an InputError naming the input.
    """

    def __init__(self, container: av.container.InputContainer, name: str, *, live: bool):
        super().__init__()
        self.name = name
        self.live = live
        self._container = container
        videos = container.streams.video
        if not videos:
            container.close()
            raise InputError(f"{name}: no video stream")
        self._stream = stream = videos[0]
        stream.thread_type = "AUTO"
        rate = stream.average_rate or stream.guessed_rate
        self.fps = float(rate) if rate else None
        if stream.width and stream.height:
            self.frame_size = (stream.width, stream.height)
        self.frame_count = stream.frames or None
        self._packets = container.demux(stream)
        self._pending: deque[tuple[AvFrame, float | None]] = deque()
        self._scaler = ModelScaler()
        self._packets_seen = 0
        self._error: InputError | None = None
        self._ended = False
        self.skipped_packets = 0  # corrupt packets dropped by a live source
        self.description = self._describe()

    # ----- constructors -------------------------------------------------------------------
    @classmethod
    def open_file(cls, path: Path) -> AvSource:
        """A video file (mp4, mkv, avi, mov, webm, ...). Not live."""
        name = path.name
        try:
            container = av.open(str(path))
        except av.error.InvalidDataError as e:
            raise InputError(f"{path}: not a video or corrupt header ({_reason(e)})") from None
        except av.error.PermissionError:
            raise InputError(f"{path}: cannot read (permission denied)") from None
        except av.error.FFmpegError as e:
            raise InputError(f"{path}: cannot open as a video ({_reason(e)})") from None
        return cls(container, name, live=False)

    @classmethod
    def open_url(cls, url: str, timeout: float = DEFAULT_URL_TIMEOUT_S) -> AvSource:
        """A network stream. Live unless the server reports a frame count (a file over HTTP)."""
        options = {"rtsp_transport": "tcp"} if url.startswith(("rtsp:", "rtsps:")) else {}
        try:
            container = av.open(url, options=options, timeout=(timeout, timeout))
        except av.error.FFmpegError as e:
            raise InputError(f"{url}: cannot open stream ({_reason(e)})") from None
        source = cls(container, url, live=True)
        if source.frame_count and url.startswith(("http:", "https:")):
            source.live = False
            source.description = source._describe()
        return source

    @classmethod
    def open_lavfi(cls, graph: str) -> AvSource:
        """An FFmpeg lavfi source graph, e.g. `testsrc2=size=640x480:rate=30`. Live and paced
        at its own rate, like the camera it stands in for."""
        try:
            container = av.open(graph, format="lavfi")
        except av.error.FFmpegError as e:
            raise InputError(f"lavfi:{graph}: invalid filter graph ({_reason(e)})") from None
        source = cls(container, f"lavfi:{graph}", live=True)
        source.pace(True)
        return source

    # ----- reading --------------------------------------------------------------------------
    def _next_frame(self) -> tuple[AvFrame, float | None] | None:
        while not self._pending:
            if self._error is not None:
                error, self._error = self._error, None
                self._ended = True
                raise error
            if self._ended:
                return None
            self._decode_next_packet()
        return self._pending.popleft()

    def _decode_next_packet(self) -> None:
        try:
            packet = next(self._packets)
        except StopIteration:
            self._ended = True
            return
        except (av.error.FFmpegError, OSError) as e:
            self._fail(f"read error at frame {self._packets_seen}: {_reason(e)}", flush=True)
            return
        if packet.is_corrupt:
            if self.live:
                self.skipped_packets += 1
                return
            self._fail(
                f"corrupt or truncated at frame {self._packets_seen}: "
                f"incomplete packet of {packet.size} bytes",
                flush=True,
            )
            return
        if packet.size:
            self._packets_seen += 1
        try:
            frames = packet.decode()
        except av.error.FFmpegError as e:
            if self.live:
                self.skipped_packets += 1
                return
            self._fail(f"corrupt or truncated at frame {self._packets_seen - 1}: {_reason(e)}")
            return
        self._keep(frames)

    def _keep(self, frames) -> None:
        """Queue decoded frames as they are: converted later, only as far as they are used."""
        self._pending.extend((AvFrame(f, self._scaler), f.time) for f in frames)

    def _fail(self, message: str, flush: bool = False) -> None:
        """Deliver what the decoder still holds, then end (live) or raise (files)."""
        if flush:
            try:
                frames = self._stream.codec_context.decode(None)
            except av.error.FFmpegError:
                frames = []
            self._keep(frames)
        if self.live:
            self._ended = True
        else:
            self._error = InputError(f"{self.name}: {message}")

    def _close(self) -> None:
        self._container.close()

    def _describe(self) -> str:
        codec = self._stream.codec_context.name
        codec = "raw" if codec == "wrapped_avframe" else codec
        size = f"{self.frame_size[0]}x{self.frame_size[1]}" if self.frame_size else "?x?"
        count = f", {self.frame_count} frames" if self.frame_count else ""
        kind = ", live" if self.live else ""
        return f"{self.name} ({codec} {size} {format_fps(self.fps)}{count}{kind})"


def _reason(error: Exception) -> str:
    """FFmpeg's own text of an error, without PyAV's errno and file name decoration."""
    return getattr(error, "strerror", None) or str(error)
