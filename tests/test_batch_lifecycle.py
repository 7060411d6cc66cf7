"""`rtseg batch` ended from outside, with its own local Ray cluster (one per test: slow): SIGTERM
exits 143 with the manifest intact; after SIGKILL of the driver no process of its cluster is left;
a video given up after its worker died leaves no partial output."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest
from band_model import make_band_package
from conftest import REPO, structured_frames, write_video

pytest.importorskip("ray", reason="Ray is not installed (pip install 'rtseg[ray]')")
pytestmark = pytest.mark.slow

MARK = "RTSEG_RAY_SESSION"


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    root = tmp_path_factory.mktemp("lifecycle")
    band = make_band_package(root / "band", height=64, width=96)
    (root / "clips").mkdir()
    write_video(root / "clips" / "long.mp4", structured_frames(3000, 120, 160, seed=3))
    return root, band


def environment_of(pid: int) -> dict[bytes, bytes]:
    try:
        with open(f"/proc/{pid}/environ", "rb") as fh:
            pairs = [item.partition(b"=") for item in fh.read().split(b"\0") if item]
    except OSError:
        return {}
    return {key: value for key, _, value in pairs}


def cluster_processes(tag: str) -> list[tuple[int, str]]:
    """(pid, command line) of the processes of the test's cluster (its tag and Ray's mark)."""
    found = []
    for entry in os.scandir("/proc"):
        if entry.name.isdigit():
            env = environment_of(int(entry.name))
            if env.get(b"TEST_TAG") == tag.encode() and MARK.encode() in env:
                try:
                    cmd = Path(f"/proc/{entry.name}/cmdline").read_bytes().replace(b"\0", b" ").decode()
                except OSError:
                    continue
                found.append((int(entry.name), cmd))
    return found


def start_batch(root: Path, band, out: Path, tag: str, *extra, env=None) -> subprocess.Popen:
    args = [sys.executable, "-m", "rtseg", "batch", str(root / "clips"), "--out", str(out),
            "--model", str(band.onnx_path), "--workers", "1", "--threads", "1", "--quiet",
            *extra]  # fmt: skip
    environment = {**os.environ, "PYTHONPATH": str(REPO), "TEST_TAG": tag, **(env or {})}
    environment.pop(MARK, None)
    return subprocess.Popen(args, env=environment, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def wait_for_worker(tag: str, driver: subprocess.Popen, timeout: float = 240) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if any("VideoWorker" in cmd for _, cmd in cluster_processes(tag)):
            return
        assert driver.poll() is None, driver.communicate()
        time.sleep(0.2)
    raise AssertionError("no worker started")


def wait_until_none_left(tag: str, timeout: float = 30) -> list:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        left = cluster_processes(tag)
        if not left:
            return []
        time.sleep(0.5)
    return cluster_processes(tag)


def test_sigterm_exits_143_and_sigkill_leaves_no_cluster_process(setup, tmp_path):
    root, band = setup
    tag = uuid.uuid4().hex
    driver = start_batch(root, band, tmp_path / "term", tag)
    wait_for_worker(tag, driver)
    driver.send_signal(signal.SIGTERM)
    _, stderr = driver.communicate(timeout=120)
    assert driver.returncode == 143, stderr
    assert "interrupted by SIGTERM" in stderr and "Traceback" not in stderr
    assert json.loads((tmp_path / "term" / "rtseg-batch.json").read_text())["format"] == "rtseg-batch"
    assert wait_until_none_left(tag) == []

    tag = uuid.uuid4().hex
    driver = start_batch(root, band, tmp_path / "kill", tag)
    wait_for_worker(tag, driver)
    assert len(cluster_processes(tag)) >= 3  # GCS, raylet, agents, the worker
    driver.kill()
    driver.communicate(timeout=60)
    assert wait_until_none_left(tag) == []


def test_a_video_given_up_after_its_worker_died_leaves_no_partial(setup, tmp_path):
    root, band = setup
    out = tmp_path / "out"
    kill = {"RTSEG_TEST_KILL_WORKER": "long:20"}
    driver = start_batch(root, band, out, uuid.uuid4().hex, "--retries", "0", "--output-kind", "mp4,masks",
                         env=kill)  # fmt: skip
    _, stderr = driver.communicate(timeout=400)
    assert driver.returncode == 1, stderr
    assert "long: its worker died" in stderr and "tried 1 times" in stderr
    assert sorted(p.name for p in out.iterdir()) == ["rtseg-batch.json"]
