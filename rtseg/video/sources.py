"""Open any video input by URI: file, frames folder or glob, camera, stream URL, lavfi graph.

| URI                                          | source                        | live |
|----------------------------------------------|-------------------------------|------|
| `road.mp4` (mp4, mkv, avi, mov, webm, ...)   | PyAV, threaded decode         | no   |
| `frames/`, `frames/*.png`, `img.png`         | images, natural sort, OpenCV  | no   |
| `0`, `/dev/video0`                           | OpenCV VideoCapture           | yes  |
| `rtsp://`, `rtmp://`, `http(s)://`, `udp://` | PyAV, timeouts                | yes  |
| `lavfi:testsrc2=size=640x480:rate=30`        | PyAV lavfi, paced at its rate | yes  |

Every frame is `(H, W, 3) uint8 RGB`, C-contiguous. Every open failure is an InputError whose
one-line message names the input.
"""

from __future__ import annotations

from pathlib import Path

from rtseg.core.frames import IMAGE_SUFFIXES
from rtseg.errors import InputError
from rtseg.video.base import FrameSource, natural_sort_key
from rtseg.video.camera import CameraSource, parse_camera
from rtseg.video.image_source import ImageSequenceSource

__all__ = ["FrameSource", "open_source", "natural_sort_key", "DEFAULT_FOLDER_FPS"]

DEFAULT_FOLDER_FPS = 25.0  # pace of a frames folder with realtime=True and no fps given
_GLOB_CHARS = "*?["
URL_SCHEMES = ("rtsp", "rtsps", "rtmp", "rtmps", "http", "https", "udp", "tcp", "srt", "rtp")


def open_source(
    uri: str,
    *,
    live: bool | None = None,
    realtime: bool = False,
    camera_size: tuple[int, int] | None = None,
    fps: float | None = None,
    timeout: float = 10.0,
    strict: bool = False,
    decoder: str | None = None,
) -> FrameSource:
    """Open a video input (see the module table). The caller closes it (context manager).

    live: override the source's default liveness (what the pipeline does with a full queue:
      live = the newest frame wins, otherwise every frame in order).
    realtime: pace a file or frames folder to its frame rate, a stand-in for a live source
      (live defaults to True then). lavfi sources are always paced; cameras and streams are
      paced by nature.
    camera_size: (height, width) to ask a camera for.
    fps: frame rate of a frames folder (None: unknown; DEFAULT_FOLDER_FPS when paced).
    timeout: seconds a stream URL may take to open or deliver data before it counts as gone.
    strict: the first damage (a corrupt packet, an undecodable frame, a file cut short of what
      its header declares, a cut JPEG) raises InputError; by default it is counted in
      `source.damage` and reading goes on, as players do.
    decoder: what decodes a video stream (rtseg.video.hw_decode.DECODERS; None: "auto").
    """
    uri = str(uri)
    if not uri:
        raise InputError("empty input: give a video file, frames folder, camera or URL")
    source = _open_by_kind(uri, camera_size, fps, timeout, strict, decoder)
    if realtime and not source.live:
        if source.fps is None:
            source.fps = DEFAULT_FOLDER_FPS
        source.pace(True)
        source.live = True
    if live is not None:
        source.live = live
    return source


def _open_by_kind(uri: str, camera_size, fps, timeout, strict: bool, decoder: str | None) -> FrameSource:
    if uri.startswith("lavfi:"):
        from rtseg.video.av_source import AvSource

        return AvSource.open_lavfi(uri[len("lavfi:") :], strict=strict)
    if _is_url(uri):
        from rtseg.video.av_source import AvSource

        return AvSource.open_url(uri, timeout=timeout, strict=strict, decoder=decoder)
    camera = parse_camera(uri)
    if camera is not None:
        return CameraSource(camera, camera_size)
    path = Path(uri)
    if path.is_dir() or (any(c in uri for c in _GLOB_CHARS) and not path.exists()):
        return ImageSequenceSource.from_uri(uri, fps, strict)
    if not path.exists():
        raise InputError(f"{uri}: no such file or folder")
    if not path.is_file():
        raise InputError(f"{uri}: not a regular file")
    if path.stat().st_size == 0:
        raise InputError(f"{uri}: empty file (0 bytes)")
    if path.suffix.lower() in IMAGE_SUFFIXES:
        return ImageSequenceSource.from_uri(uri, fps, strict)
    from rtseg.video.av_source import AvSource

    return AvSource.open_file(path, strict=strict, decoder=decoder)


def _is_url(uri: str) -> bool:
    scheme, sep, _ = uri.partition("://")
    return bool(sep) and scheme.lower() in URL_SCHEMES
