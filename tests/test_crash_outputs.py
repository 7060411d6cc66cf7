"""Real `python -m rtseg run` processes killed with SIGKILL, and run into a real full disk.

SIGKILL: the recording left at `OUT.partial.mp4` plays and holds every frame the sinks took,
but for the last fragment (half a second) and the encoder's delay; frames written are counted
by the mask PNGs on disk (each renamed into place once complete). A full disk (a 2 MiB tmpfs,
root only): exit 1, one line on stderr and nothing from OpenCV / libpng / FFmpeg, the partial
recording plays, every mask PNG present reads. The 20-trial figure is benchmarks/crash_recording.py.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import cv2
import numpy as np
import pytest
from band_model import make_band_package
from conftest import REPO, structured_frames, write_video
from test_durable_outputs import decodable

pytestmark = pytest.mark.slow
FPS = 20


@pytest.fixture(scope="module")
def package(tmp_path_factory):
    return make_band_package(tmp_path_factory.mktemp("band"), height=64, width=96)


def rtseg_process(*args) -> subprocess.Popen:
    cmd = [sys.executable, "-m", "rtseg", "run", *map(str, args), "--threads", "1", "--quiet"]
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    return subprocess.Popen(cmd, cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def masks_on_disk(folder: Path) -> int:
    return sum(1 for name in os.listdir(folder) if name.endswith(".png")) if folder.is_dir() else 0


@pytest.mark.parametrize("after_masks", [25, 50])
def test_sigkill_leaves_a_playable_recording_of_all_but_the_last_fragment(tmp_path, package, after_masks):
    video = write_video(tmp_path / "long.mp4", structured_frames(200, 120, 160, seed=10), fps=FPS)
    out, masks = tmp_path / "out.mp4", tmp_path / "masks"
    proc = rtseg_process(
        "--video", video, "--realtime", "--model", package.onnx_path, "--output", out, "--masks", masks
    )
    try:
        deadline = time.monotonic() + 90
        while masks_on_disk(masks) < after_masks and proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.01)
        assert proc.poll() is None, proc.communicate()
        proc.send_signal(signal.SIGKILL)
        proc.wait(30)
    finally:
        if proc.poll() is None:
            proc.kill()
    written = masks_on_disk(masks)
    partial = tmp_path / "out.partial.mp4"
    assert not out.exists() and partial.exists()
    kept = decodable(partial)
    assert written - FPS - 20 <= kept <= written + 1, (kept, written)  # half a second + encoder delay


def can_mount_tmpfs(folder: Path) -> bool:
    if os.geteuid() != 0:
        return False
    folder.mkdir(exist_ok=True)
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=2m", "tmpfs", str(folder)], capture_output=True
    )
    return done.returncode == 0


def test_a_full_disk_stops_with_one_line_and_leaves_valid_outputs(tmp_path, package):
    disk = tmp_path / "small_disk"
    if not can_mount_tmpfs(disk):
        pytest.skip("needs root to mount a 2 MiB tmpfs")
    try:
        noise = np.random.default_rng(0).integers(0, 60, (300, 240, 320, 3), dtype=np.uint8)
        video = write_video(tmp_path / "noisy.mp4", structured_frames(300, 240, 320, seed=11) + noise, fps=25)
        out, masks = disk / "out.mp4", disk / "masks"
        proc = rtseg_process(
            "--video", video, "--model", package.onnx_path, "--output", out, "--masks", masks
        )
        _, stderr = proc.communicate(timeout=300)
        assert proc.returncode == 1
        lines = stderr.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("rtseg: error: ") and "disk full" in lines[0], stderr
        assert not out.exists() and decodable(disk / "out.partial.mp4") >= 1
        names = os.listdir(masks)
        assert names and all(name.endswith(".png") for name in names)  # no temporary file left
        assert all(cv2.imread(str(masks / name), cv2.IMREAD_UNCHANGED) is not None for name in names)
    finally:
        subprocess.run(["umount", str(disk)], check=False)
