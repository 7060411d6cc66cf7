"""An OpenCV window for the live view, and whether one can be shown at all.

HighGUI windows must be driven from one thread: create, show and close the WindowDisplay from
the main thread only.
"""

from __future__ import annotations

import functools
import os
import re
import subprocess
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


PROBE_TIMEOUT_S = 20.0
_PROBE = (
    "import cv2; cv2.namedWindow('rtseg-probe', cv2.WINDOW_NORMAL); cv2.waitKey(1); "
    "cv2.destroyAllWindows(); cv2.waitKey(1)"
)


@functools.cache
def _window_failure(display: str) -> str | None:
    """Open and close a window in a child process: why it failed, or None. A display that is
    set but does not answer makes Qt abort its process (SIGABRT); it must not be this one."""
    try:
        done = subprocess.run(
            [sys.executable, "-c", _PROBE],
            capture_output=True,
            text=True,
            timeout=PROBE_TIMEOUT_S,
            check=False,
        )
    except subprocess.TimeoutExpired:
        return f"opening a window on {display} did not finish in {PROBE_TIMEOUT_S:.0f} s"
    except OSError as exc:
        return f"cannot start the window probe ({exc.strerror})"
    if done.returncode == 0:
        return None
    said = [line.strip() for line in done.stderr.splitlines() if line.strip()]
    reason = said[0] if said else f"exit status {done.returncode}"
    return f"no window could be opened on {display} ({reason})"


def check_display() -> None:
    """OutputError (one line) unless a window can really be opened here: a display is set, OpenCV
    has a GUI and the display answers (probed once per process in a child process)."""
    reason = _no_display_reason()
    if reason is None:
        display = os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY") or "the display"
        reason = _window_failure(display)
    if reason is not None:
        raise OutputError(f"--show needs a display, but {reason}")


class WindowDisplay:
    """A resizable OpenCV window. `show((H, W, 3) uint8 RGB)` returns the key pressed or -1.

    Raises OutputError at construction when no window can be shown (check_display), and when
    the window fails later (the display went away): the pipeline then still closes its other
    outputs. When the user closes the window, `show` returns ESCAPE_KEY (27) and
    `closed_by_user` becomes True.
    """

    def __init__(self, title: str = "rtseg"):
        check_display()
        self.title = title
        self.closed_by_user = False
        self._created = False
        self._closed = False

    def show(self, rgb: np.ndarray) -> int:
        """Draw one frame and poll the keyboard for 1 ms. Returns the key code or -1."""
        if self._closed:
            return -1
        try:
            if not self._created:
                cv2.namedWindow(self.title, cv2.WINDOW_NORMAL | cv2.WINDOW_KEEPRATIO)
                self._created = True
            cv2.imshow(self.title, cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))
            return self._wait_key()
        except cv2.error as exc:
            raise OutputError(f"--show: the window failed ({_first_line(exc)})") from None

    def poll_key(self) -> int:
        """Process window events for 1 ms without a new frame. Returns the key code or -1
        (ESCAPE_KEY once the user closed the window); -1 before the first frame."""
        if self._closed or not self._created:
            return -1
        try:
            return self._wait_key()
        except cv2.error as exc:
            raise OutputError(f"--show: the window failed ({_first_line(exc)})") from None

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


def _first_line(exc: Exception) -> str:
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    return lines[-1] if lines else type(exc).__name__
