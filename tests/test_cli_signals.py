"""Signals for the whole command, with real subprocesses: Ctrl-C / SIGTERM / SIGHUP while
onnxruntime imports is "interrupted" with 128 + N (not a false "not installed", not "Aborted!");
a burst of Ctrl-C while the run finishes loses neither the MP4 nor --stats-json, and prints no
traceback. (A single signal mid-run: tests/test_cli_run.py.)"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from band_model import make_band_package
from conftest import REPO, structured_frames, write_video

SLOW_ONNXRUNTIME = """
import os, time
open(os.environ["FAKE_ORT_MARKER"], "w").close()
try:
    time.sleep(120)
except KeyboardInterrupt:
    if os.environ.get("FAKE_ORT_MODE") == "importerror":
        raise ImportError("onnxruntime_pybind11_state: initialization failed")  # as a C extension
    raise
"""


def spawn(args, tmp_path: Path, extra_path: Path | None = None, env=None) -> subprocess.Popen:
    path = [str(extra_path)] if extra_path else []
    return subprocess.Popen(
        [sys.executable, "-m", "rtseg", *map(str, args)],
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONPATH": os.pathsep.join([*path, str(REPO)]), **(env or {})},
    )


def wait_for(predicate, proc: subprocess.Popen, timeout_s: float = 90.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not predicate():
        assert proc.poll() is None, proc.communicate()
        assert time.monotonic() < deadline, "the command never got there"
        time.sleep(0.02)


@pytest.fixture(scope="module")
def band_package(tmp_path_factory):
    return make_band_package(tmp_path_factory.mktemp("band"), height=64, width=96)


@pytest.mark.slow
@pytest.mark.parametrize(
    "signum, mode",
    [
        (signal.SIGINT, "keyboardinterrupt"),
        (signal.SIGINT, "importerror"),
        (signal.SIGTERM, "importerror"),
        (signal.SIGHUP, "keyboardinterrupt"),
    ],
)
def test_a_signal_while_onnxruntime_imports_is_interrupted(signum, mode, tmp_path, tiny_video, band_package):
    fake = tmp_path / "fake"
    (fake / "onnxruntime").mkdir(parents=True)
    (fake / "onnxruntime" / "__init__.py").write_text(SLOW_ONNXRUNTIME)
    marker, out = tmp_path / "importing", tmp_path / "out.mp4"
    args = ["run", "--video", tiny_video, "--model", band_package.onnx_path, "--output", out]
    args += ["--backend", "onnxruntime"]  # not auto: it could take OpenVINO, cached healthy
    proc = spawn(args, tmp_path, fake, env={"FAKE_ORT_MARKER": str(marker), "FAKE_ORT_MODE": mode})
    try:
        wait_for(marker.exists, proc)
        proc.send_signal(signum)
        _, stderr = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    name = signal.Signals(signum).name
    assert proc.returncode == 128 + signum, stderr
    assert stderr.strip().splitlines() == [f"rtseg: interrupted by {name}"], stderr
    assert not out.exists()  # nothing was opened yet


@pytest.mark.slow
def test_a_burst_of_ctrl_c_while_the_run_finishes_loses_nothing(tmp_path, band_package):
    video = write_video(tmp_path / "long.mp4", structured_frames(60, 120, 160, seed=3), fps=20)
    out, stats_file = tmp_path / "out.mp4", tmp_path / "stats.json"
    args = ["run", "--video", video, "--realtime", "--model", band_package.onnx_path, "--threads", 1]
    proc = spawn([*args, "--output", out, "--stats-json", stats_file], tmp_path)
    try:
        wait_for(lambda: any(tmp_path.glob("out.partial*.mp4")), proc)  # recording (rtseg.video.durable)
        time.sleep(0.5)
        for _ in range(8):  # the first stops the run; the rest land in its closing and report
            proc.send_signal(signal.SIGINT)
            time.sleep(0.05)
        stdout, stderr = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 130, stderr
    assert "Traceback" not in stderr and "Exception ignored" not in stderr, stderr
    assert stderr.strip().splitlines()[-1].startswith("rtseg: interrupted by SIGINT"), stderr
    stats = json.loads(stats_file.read_text())
    assert stats["stopped_by"] == "SIGINT" and 1 <= stats["frames"] < 60

    import av

    with av.open(str(out)) as container:
        assert sum(1 for _ in container.decode(video=0)) == stats["frames"]
