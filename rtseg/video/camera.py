"""A camera through OpenCV's VideoCapture: by index ("0") or by device path ("/dev/video0").

Live: a camera that stops delivering (unplugged, stream ended) ends the source with `None`.
On Linux a missing `/dev/videoN` is reported before OpenCV is asked, so the error is one clear
line instead of OpenCV's warnings.
"""

from __future__ import annotations

import os
import sys

import cv2
import numpy as np

from rtseg.errors import InputError
from rtseg.video.base import FrameSource, format_fps


def parse_camera(uri: str) -> int | str | None:
    """The camera an URI names: an int index ("0"), a device path ("/dev/video2"), or None."""
    if uri.isdigit():
        return int(uri)
    if uri.startswith("/dev/video"):
        return uri
    return None


def camera_device_path(camera: int | str) -> str | None:
    """The V4L2 device file of a camera on Linux, None elsewhere."""
    if isinstance(camera, str):
        return camera
    return f"/dev/video{camera}" if sys.platform.startswith("linux") else None


class CameraSource(FrameSource):
    """Frames from a camera, converted BGR -> `(H, W, 3) uint8 RGB`.

    camera: index or device path. camera_size: requested (height, width); the camera may pick
    another size, which `frame_size` then reports.
    """

    def __init__(self, camera: int | str, camera_size: tuple[int, int] | None = None):
        super().__init__()
        self.live = True
        self.name = f"camera {camera}" if isinstance(camera, int) else camera
        device = camera_device_path(camera)
        if device is not None and not os.path.exists(device):
            raise InputError(f"{self.name}: no camera at {device}")
        capture = cv2.VideoCapture(camera)
        if not capture.isOpened():
            capture.release()
            raise InputError(f"{self.name} cannot be opened (busy, no permission, or not a camera)")
        self._capture = capture
        capture.set(cv2.CAP_PROP_BUFFERSIZE, 1)  # the newest frame, not a stale queue
        if camera_size is not None:
            capture.set(cv2.CAP_PROP_FRAME_HEIGHT, camera_size[0])
            capture.set(cv2.CAP_PROP_FRAME_WIDTH, camera_size[1])
        width = int(capture.get(cv2.CAP_PROP_FRAME_WIDTH))
        height = int(capture.get(cv2.CAP_PROP_FRAME_HEIGHT))
        self.frame_size = (height, width) if width and height else None
        self.fps = float(capture.get(cv2.CAP_PROP_FPS)) or None
        size = f"{width}x{height}" if self.frame_size else "?x?"
        self.description = f"{self.name} (camera {size} {format_fps(self.fps)}, live)"

    def _read_impl(self) -> tuple[np.ndarray, float | None] | None:
        ok, bgr = self._capture.read()
        if not ok or bgr is None:
            return None
        if bgr.ndim == 2:
            return cv2.cvtColor(bgr, cv2.COLOR_GRAY2RGB), None
        return cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB), None

    def _close_impl(self) -> None:
        self._capture.release()
