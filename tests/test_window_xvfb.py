"""The real OpenCV window under a virtual X server: `rtseg run --show` on a live lavfi source
with a model whose output is known, checked by screenshots of the X display, driven by keys.

Needs the Debian packages `xvfb` (Xvfb) and `xdotool` (keys), and Pillow with XCB support
(screenshots; the manylinux wheels have it). Skipped, with the reason, only where they are absent.
"""

from __future__ import annotations

import json
import os
import select
import shutil
import subprocess
import sys
import time
from pathlib import Path

import cv2
import numpy as np
import pytest
from band_model import band_ids, make_band_package
from conftest import REPO

from rtseg.data.labels import CAMVID
from rtseg.video.display import opencv_has_gui

XVFB, XDOTOOL = shutil.which("Xvfb"), shutil.which("xdotool")
SCREEN_W, SCREEN_H = 800, 600
FRAME_W, FRAME_H = 320, 240
COLOUR = "0xC83020"  # the lavfi frame colour: red 200 -> band class 8
SOURCE = f"lavfi:color=c={COLOUR}:size={FRAME_W}x{FRAME_H}:rate=30"
TOLERANCE = 3  # per channel: scaling a flat area by the window leaves it flat, up to rounding
MIN_PIXELS = FRAME_W * FRAME_H // 4  # a quarter of the frame: the window area, not a stray pixel


def pillow_grab_reason() -> str | None:
    try:
        from PIL import features
    except ImportError:
        return "Pillow is not installed (screenshots)"
    return None if features.check("xcb") else "this Pillow has no XCB support (screenshots)"


pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(XVFB is None, reason="Xvfb is not installed (Debian package xvfb)"),
    pytest.mark.skipif(not opencv_has_gui(), reason="this OpenCV has no GUI backend"),
    pytest.mark.skipif(pillow_grab_reason() is not None, reason=str(pillow_grab_reason())),
]


@pytest.fixture()
def x_display():
    """A private Xvfb server on a free display number (-displayfd); yields ":N".

    `-noreset`: by default an X server resets when its last client disconnects, and refuses
    connections while it does; each screenshot and rtseg's display probe are such a client, so
    the window that opens next could find no display ("could not connect to display").
    """
    read_fd, write_fd = os.pipe()
    screen = f"{SCREEN_W}x{SCREEN_H}x24"
    server = subprocess.Popen(
        [XVFB, "-displayfd", str(write_fd), "-screen", "0", screen, "-nolisten", "tcp", "-noreset"],
        pass_fds=(write_fd,),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    os.close(write_fd)
    try:
        ready, _, _ = select.select([read_fd], [], [], 20)
        number = os.read(read_fd, 32).decode().strip() if ready else ""
        assert number.isdigit(), f"Xvfb did not start (exit status {server.poll()})"
        yield f":{number}"
    finally:
        os.close(read_fd)
        server.terminate()
        try:
            server.wait(10)
        except subprocess.TimeoutExpired:
            server.kill()


@pytest.fixture(scope="module")
def band_package(tmp_path_factory):
    return make_band_package(tmp_path_factory.mktemp("band"), height=64, width=96)


def expected_colours(alpha: float = 0.5) -> dict[str, np.ndarray]:
    """The frame's colour as decoded, its class colour (mask) and their blend (overlay)."""
    from rtseg.video import open_source

    with open_source(SOURCE) as source:
        frame = source.read()
    pixel = frame[FRAME_H // 2, FRAME_W // 2]
    assert (np.abs(frame.astype(int) - pixel).max()) <= 1  # a flat frame
    class_id = int(band_ids(frame[None, :1, :1])[0, 0, 0])
    palette = np.asarray(CAMVID.palette, np.uint8)
    mask = palette[class_id]
    overlay = cv2.addWeighted(pixel[None, None], 1 - alpha, mask[None, None], alpha, 0.0)[0, 0]
    return {"frame": pixel, "mask": mask, "overlay": overlay}


def screenshot(display: str) -> np.ndarray:
    """The whole X screen, (H, W, 3) uint8 RGB."""
    from PIL import ImageGrab

    return np.asarray(ImageGrab.grab(xdisplay=display).convert("RGB"))


def count_colour(image: np.ndarray, colour: np.ndarray, tolerance: int = TOLERANCE) -> int:
    return int((np.abs(image.astype(np.int16) - colour.astype(np.int16)).max(axis=2) <= tolerance).sum())


def wait_for_colour(
    display: str, colour: np.ndarray, proc, timeout_s: float = 30.0, tolerance: int = TOLERANCE
) -> np.ndarray:
    """Screenshots until `colour` covers at least MIN_PIXELS; the last screenshot.

    Qt now and then loses the first expose of a window on a bare X server (no window manager,
    a busy machine): the window is mapped, rtseg shows frame after frame, and nothing is ever
    painted (the same black window as opencv-python issue 362). A window manager maps a window
    again when it reparents it; after 3 s of an all-black screen this does the same, once."""
    start = time.monotonic()
    deadline, remapped = start + timeout_s, False
    while True:
        shot = screenshot(display)
        if count_colour(shot, colour, tolerance) >= MIN_PIXELS:
            return shot
        if not remapped and time.monotonic() - start > 3 and not shot.any() and XDOTOOL is not None:
            remapped = remap_windows(display)
        if proc.poll() is not None:
            pytest.fail(f"rtseg exited ({proc.returncode}) before showing {colour}: {proc.communicate()}")
        if time.monotonic() > deadline:
            values, counts = np.unique(shot.reshape(-1, 3), axis=0, return_counts=True)
            common = values[np.argsort(-counts)[:5]].tolist()
            pytest.fail(f"{colour} never covered the window; most common colours: {common}")
        time.sleep(0.2)


def remap_windows(display: str) -> bool:
    """Unmap and map again every window named rtseg, as a window manager does; True."""
    env = {**os.environ, "DISPLAY": display}
    found = subprocess.run([XDOTOOL, "search", "--name", "^rtseg$"], env=env, capture_output=True, text=True)
    for window in found.stdout.split():
        for action in ("windowunmap", "windowmap"):
            subprocess.run([XDOTOOL, action, "--sync", window], env=env, capture_output=True, timeout=20)
    return True


def start_rtseg(display: str, package, tmp_path: Path, source: str = SOURCE, *extra: str):
    cmd = [
        sys.executable,
        "-m",
        "rtseg",
        "run",
        "--source",
        source,
        "--model",
        str(package.onnx_path),
        "--threads",
        "1",
        "--show",
        "--no-legend",
        "--quiet",
        "--stats-json",
        str(tmp_path / "stats.json"),
        "--snapshot-dir",
        str(tmp_path),
        *extra,
    ]
    env = {**os.environ, "DISPLAY": display, "PYTHONPATH": str(REPO)}
    env.pop("WAYLAND_DISPLAY", None)
    return subprocess.Popen(
        cmd, cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )


def finish(proc, timeout_s: float = 30.0) -> tuple[str, str]:
    try:
        return proc.communicate(timeout=timeout_s)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()


def test_window_shows_the_overlay_until_the_live_source_ends(x_display, band_package, tmp_path):
    colours = expected_colours()
    assert count_colour(colours["overlay"][None, None], colours["frame"]) == 0  # distinguishable
    # 8 s of live frames: enough to outlast a slow start (imports, the model) on a busy machine
    proc = start_rtseg(x_display, band_package, tmp_path, SOURCE + ":duration=8")
    try:
        shot = wait_for_colour(x_display, colours["overlay"], proc)
        assert count_colour(shot, colours["frame"]) < MIN_PIXELS // 10  # the overlay, not the bare frame
        assert count_colour(shot, colours["mask"]) < MIN_PIXELS // 10
        stdout, stderr = finish(proc)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0, stderr
    assert "Traceback" not in stderr
    stats = json.loads((tmp_path / "stats.json").read_text())
    assert stats["stopped_by"] == "source_end" and stats["displayed"] >= 1
    assert 0 < stats["display_latency_ms"]["mean"] <= stats["display_latency_ms"]["max"]


def xdotool(display: str, *args: str) -> str:
    result = subprocess.run(
        [XDOTOOL, *args], env={**os.environ, "DISPLAY": display}, capture_output=True, text=True, timeout=20
    )
    assert result.returncode == 0, result.stderr
    return result.stdout


def press(display: str, window: str, key: str) -> None:
    xdotool(display, "windowfocus", window)
    xdotool(display, "key", "--clearmodifiers", key)


@pytest.mark.skipif(XDOTOOL is None, reason="xdotool is not installed (Debian package xdotool)")
def test_keys_in_the_window_mask_mode_snapshot_and_quit(x_display, band_package, tmp_path):
    colours = expected_colours()
    proc = start_rtseg(x_display, band_package, tmp_path)  # endless: only q can end it
    try:
        wait_for_colour(x_display, colours["overlay"], proc)
        window = xdotool(x_display, "search", "--sync", "--name", "^rtseg$").split()[0]
        press(x_display, window, "m")
        shot = wait_for_colour(x_display, colours["mask"], proc, timeout_s=10, tolerance=0)
        assert count_colour(shot, colours["overlay"]) < MIN_PIXELS // 10  # exact palette colours now
        press(x_display, window, "s")
        press(x_display, window, "q")
        stdout, stderr = finish(proc)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0, stderr
    snapshots = sorted(tmp_path.glob("rtseg_snapshot_*.png"))
    assert len(snapshots) == 1 and str(snapshots[0].name) in stdout
    saved = cv2.cvtColor(cv2.imread(str(snapshots[0])), cv2.COLOR_BGR2RGB)
    assert count_colour(saved, colours["mask"], tolerance=0) > FRAME_W * FRAME_H // 2
    stats = json.loads((tmp_path / "stats.json").read_text())
    assert stats["stopped_by"] == "user" and stats["displayed"] >= 1


def window_size(display: str) -> tuple[int, int]:
    """(height, width) of the rtseg window, once it is mapped (visible)."""
    window = xdotool(display, "search", "--sync", "--onlyvisible", "--name", "^rtseg$").split()[0]
    geometry = dict(
        line.split("=", 1) for line in xdotool(display, "getwindowgeometry", "--shell", window).split()
    )
    return int(geometry["HEIGHT"]), int(geometry["WIDTH"])


@pytest.mark.skipif(XDOTOOL is None, reason="xdotool is not installed (Debian package xdotool)")
@pytest.mark.parametrize(
    "frame,expected",
    [
        ((FRAME_H, FRAME_W), (FRAME_H, FRAME_W)),  # smaller than the screen: the frame's own size
        ((960, 1280), (540, 720)),  # larger: 90% of the 600-pixel screen height, aspect kept
    ],
)
def test_window_opens_at_the_frame_size_fitted_to_the_screen_and_qt_prints_nothing(
    x_display, band_package, tmp_path, frame, expected
):
    h, w = frame
    source = f"lavfi:color=c={COLOUR}:size={w}x{h}:rate=30"  # endless: q ends it, however slow the start
    proc = start_rtseg(x_display, band_package, tmp_path, source)
    try:
        assert window_size(x_display) == expected
        window = xdotool(x_display, "search", "--sync", "--onlyvisible", "--name", "^rtseg$").split()[0]
        press(x_display, window, "q")
        stdout, stderr = finish(proc)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0, stderr
    assert "QFont" not in stderr and "fonts" not in stderr, stderr  # Qt's font warnings
