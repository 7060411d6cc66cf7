"""An OpenCV window for the live view, and whether one can be shown at all.

HighGUI windows must be driven from one thread: create, show and close the WindowDisplay from
the main thread only.
"""

from __future__ import annotations

import functools
import os
import re
import sys

import cv2
import numpy as np

from rtseg.errors import OutputError

ESCAPE_KEY = 27  # what show() returns when the user closes the window


@functools.cache
def opencv_has_gui() -> bool:
    """Whether this OpenCV build has a HighGUI backend (False for opencv-python-headless)."""
    match = re.search(r"^\s*GUI:\s*(\S+)", cv2.getBuildInformation(), re.MULTILINE)
    return match is not None and match.group(1).upper() != "NONE"


def _no_display_reason() -> str | None:
    if sys.platform.startswith("linux") and not (
        os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY")
    ):
        return "no DISPLAY or WAYLAND_DISPLAY is set"
    if not opencv_has_gui():
        return "this OpenCV is built without GUI support (opencv-python-headless?)"
    return None


def display_available() -> bool:
    """True when a window can be opened: a display is set and OpenCV has a GUI backend."""
    return _no_display_reason() is None


class WindowDisplay:
    """A resizable OpenCV window. `show((H, W, 3) uint8 RGB)` returns the key pressed or -1.

    Raises OutputError at construction when no window can be shown. When the user closes the
    window, `show` returns ESCAPE_KEY (27) and `closed_by_user` becomes True.
    """

    def __init__(self, title: str = "rtseg"):
        reason = _no_display_reason()
        if reason is not None:
            raise OutputError(f"--show needs a display, but {reason}")
        self.title = title
        self.closed_by_user = False
        self._created = False
        self._closed = False

    def show(self, rgb: np.ndarray) -> int:
        """Draw one frame and poll the keyboard for 1 ms. Returns the key code or -1."""
        if self._closed:
            return -1
        if not self._created:
            cv2.namedWindow(self.title, cv2.WINDOW_NORMAL | cv2.WINDOW_KEEPRATIO)
            self._created = True
        cv2.imshow(self.title, cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))
        return self._wait_key()

    def poll_key(self) -> int:
        """Process window events for 1 ms without a new frame. Returns the key code or -1
        (ESCAPE_KEY once the user closed the window); -1 before the first frame."""
        if self._closed or not self._created:
            return -1
        return self._wait_key()

    def _wait_key(self) -> int:
        key = cv2.waitKey(1)
        if key == -1 and cv2.getWindowProperty(self.title, cv2.WND_PROP_VISIBLE) < 1:
            self.closed_by_user = True
            return ESCAPE_KEY
        return key

    def close(self) -> None:
        """Destroy the window. Idempotent."""
        if self._closed:
            return
        self._closed = True
        if self._created and not self.closed_by_user:
            cv2.destroyWindow(self.title)
            cv2.waitKey(1)

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        self.close()
