"""An OpenCV window for the live view, and whether one can be shown at all.

HighGUI windows must be driven from one thread: create, show and close the WindowDisplay from
the main thread only.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import functools
import importlib.util
import os
import re
import subprocess
import sys
import tempfile
from pathlib import Path

import cv2
import numpy as np

from rtseg.errors import OutputError
from rtseg.video.base import Display

ESCAPE_KEY = 27  # what show() returns when the user closes the window
SCREEN_FILL = 0.9  # the most of the screen a new window takes (room for the title bar and panels)
# Font folders Qt can use: OpenCV's wheels point Qt at a fonts folder they no longer ship, and Qt
# then prints "QFontDatabase: Cannot find font directory ..." on every window.
FONT_DIRS = ("/usr/share/fonts/truetype/dejavu", "/usr/share/fonts", "/usr/local/share/fonts")


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


def screen_size() -> tuple[int, int] | None:
    """(height, width) of the X screen in pixels, from libX11; None where it cannot be asked
    (no libX11, no X server, Wayland without XWayland)."""
    name = ctypes.util.find_library("X11")
    if name is None or not os.environ.get("DISPLAY"):
        return None
    try:
        x11 = ctypes.CDLL(name)
    except OSError:
        return None
    x11.XOpenDisplay.restype, x11.XOpenDisplay.argtypes = ctypes.c_void_p, [ctypes.c_char_p]
    for call in (x11.XDefaultScreen, x11.XCloseDisplay):
        call.argtypes = [ctypes.c_void_p]
    for call in (x11.XDisplayWidth, x11.XDisplayHeight):
        call.argtypes = [ctypes.c_void_p, ctypes.c_int]
    display = x11.XOpenDisplay(None)
    if not display:
        return None
    try:
        screen = x11.XDefaultScreen(display)
        return int(x11.XDisplayHeight(display, screen)), int(x11.XDisplayWidth(display, screen))
    finally:
        x11.XCloseDisplay(display)


def fitted_size(frame: tuple[int, int], screen: tuple[int, int] | None, fill: float = SCREEN_FILL):
    """(height, width) of a window for a `frame` (height, width): the frame's own size, scaled
    down (aspect kept) to fit `fill` of the `screen` (height, width) when it is larger."""
    h, w = frame
    if screen is None:
        return h, w
    scale = min(1.0, fill * screen[0] / h, fill * screen[1] / w)
    return max(1, round(h * scale)), max(1, round(w * scale))


def qt_font_dir() -> str:
    """A fonts folder that exists, for Qt (QT_QPA_FONTDIR): the one set if it exists, else the
    system's, else matplotlib's DejaVu fonts, else an empty folder (the window draws no text)."""
    current = os.environ.get("QT_QPA_FONTDIR")
    if current and os.path.isdir(current):
        return current
    candidates = list(FONT_DIRS)
    spec = importlib.util.find_spec("matplotlib")
    if spec is not None and spec.submodule_search_locations:
        candidates.append(str(Path(spec.submodule_search_locations[0]) / "mpl-data" / "fonts" / "ttf"))
    return next((d for d in candidates if os.path.isdir(d)), tempfile.gettempdir())


class WindowDisplay(Display):
    """A resizable OpenCV window. `show((H, W, 3) uint8 RGB)` returns the key pressed or -1.

    The window opens at the first frame's size, scaled down to fit the screen (fitted_size),
    keeps the frame's aspect when resized, and has no toolbar or status bar; Qt is given a
    fonts folder that exists, so it prints nothing. Raises OutputError at construction when no
    window can be shown (check_display), and when the window fails later (the display went
    away): the pipeline then still closes its other outputs. When the user closes the window,
    `show` returns ESCAPE_KEY (27) and `closed_by_user` becomes True.
    """

    def __init__(self, title: str = "rtseg"):
        check_display()
        self.title = title
        self.closed_by_user = False
        self._created = False

    def _show_impl(self, rgb: np.ndarray) -> int:
        """Draw one frame and poll the keyboard for 1 ms. Returns the key code or -1."""
        try:
            if not self._created:
                self._create(rgb.shape[:2])
            cv2.imshow(self.title, cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))
            return self._wait_key()
        except cv2.error as exc:
            raise OutputError(f"--show: the window failed ({_first_line(exc)})") from None

    def _create(self, frame_size: tuple[int, int]) -> None:
        os.environ["QT_QPA_FONTDIR"] = qt_font_dir()  # read by Qt when the first window opens
        cv2.namedWindow(self.title, cv2.WINDOW_NORMAL | cv2.WINDOW_KEEPRATIO | cv2.WINDOW_GUI_NORMAL)
        height, width = fitted_size(frame_size, screen_size())
        cv2.resizeWindow(self.title, width, height)
        self._created = True

    def _poll_key_impl(self) -> int:
        """Process window events for 1 ms without a new frame. Returns the key code or -1
        (ESCAPE_KEY once the user closed the window); -1 before the first frame."""
        if not self._created:
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

    def _close_impl(self) -> None:
        """Destroy the window."""
        if self._created and not self.closed_by_user:
            cv2.destroyWindow(self.title)
            cv2.waitKey(1)


def _first_line(exc: Exception) -> str:
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    return lines[-1] if lines else type(exc).__name__
