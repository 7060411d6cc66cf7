"""`rtseg run`: outputs, order, stats JSON, every bad-input path, and Ctrl-C / SIGTERM mid-run."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import cv2
import numpy as np
import pytest
from band_model import band_ids, make_band_package
from click.testing import CliRunner
from conftest import REPO, structured_frames, write_video

from rtseg.cli import main


def rtseg_run(*args, env=None):
    return CliRunner().invoke(main, ["run", *map(str, args)], env=env)


def assert_one_line_error(result, *fragments):
    """Exit status 1, exactly one `rtseg: error: ...` line on stderr naming the problem."""
    assert result.exit_code == 1, (result.exit_code, result.output, result.exception)
    assert isinstance(result.exception, SystemExit), result.exception  # not a crash
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("rtseg: error: "), result.stderr
    assert "Traceback" not in result.output
    for fragment in fragments:
        assert fragment in lines[0], lines[0]


def decode_mp4(path: Path) -> list[np.ndarray]:
    import av

    with av.open(str(path)) as container:
        return [f.to_ndarray(format="rgb24") for f in container.decode(video=0)]


@pytest.fixture(scope="module")
def band_package(tmp_path_factory):
    """A package whose ids follow the frame content (the tiny random network's do not)."""
    return make_band_package(tmp_path_factory.mktemp("band"), height=64, width=96)


def expected_masks(package, frames) -> list[np.ndarray]:
    """What the model says on each frame (an RGB array or a source's decoded frame): the model
    input made as the pipeline makes it, infer, nearest back to the frame's size."""
    from rtseg.loading import open_model
    from rtseg.video.decoded import as_decoded

    h, w = package.input_size
    with open_model(package.onnx_path, threads=1).backend as backend:
        out = []
        for frame in map(as_decoded, frames):
            small = np.zeros((h, w, 3), np.uint8)
            frame.model_input(small)
            ids = backend.infer(small[None])[0]
            np.testing.assert_array_equal(ids, band_ids(small[None])[0])
            out.append(cv2.resize(ids, frame.size[::-1], interpolation=cv2.INTER_NEAREST_EXACT))
    return out


def read_masks(folder: Path) -> tuple[list[str], list[np.ndarray]]:
    names = sorted(p.name for p in folder.glob("*.png"))
    return names, [cv2.imread(str(folder / n), cv2.IMREAD_UNCHANGED) for n in names]


# --- outputs -------------------------------------------------------------------------------


def test_video_to_mp4_masks_and_stats(tmp_path, tiny_video, band_package):
    from rtseg.video import open_source

    out, masks, stats_file = tmp_path / "out.mp4", tmp_path / "masks", tmp_path / "stats.json"
    result = rtseg_run(
        "--video",
        tiny_video,
        "--model",
        band_package.onnx_path,
        "--threads",
        1,
        "--output",
        out,
        "--masks",
        masks,
        "--stats-json",
        stats_file,
    )
    assert result.exit_code == 0, result.output
    video = decode_mp4(out)
    assert len(video) == 24 and video[0].shape == (120, 160, 3)
    names, ids = read_masks(masks)
    assert names == [f"{i:06d}.png" for i in range(24)]
    with open_source(str(tiny_video)) as source:
        frames = list(iter(source.read_frame, None))
    expected = expected_masks(band_package, frames)
    for index, mask in enumerate(ids):  # mask i is frame i's inference: order and content
        assert mask.shape == (120, 160) and mask.dtype == np.uint8
        agreement = [(mask == e).mean() for e in expected]
        assert agreement[index] > 0.999 and int(np.argmax(agreement)) == index
    stats = json.loads(stats_file.read_text())
    assert {"frames", "fps", "stages", "latency_ms", "dropped"} <= set(stats)
    assert stats["frames"] == 24 and stats["dropped"] == 0 and stats["fps"] > 0
    assert stats["device"] == "cpu" and "CPU" in stats["backend"]  # the provider it ran on
    assert stats["stages"]["infer"]["busy_ms_mean"] > 0
    assert 0 < stats["latency_ms"]["mean"] <= stats["latency_ms"]["max"]
    assert "24 frames" in result.stdout and "fps end to end" in result.stdout


def test_max_frames_side_by_side_and_benchmark_mode(tmp_path, tiny_video, tiny_package):
    out = tmp_path / "sbs.mp4"
    result = rtseg_run(
        "--video",
        tiny_video,
        "--model",
        tiny_package.onnx_path,
        "--threads",
        1,
        "--output",
        out,
        "--mode",
        "side-by-side",
        "--max-frames",
        5,
        "--hud",
    )
    assert result.exit_code == 0, result.output
    video = decode_mp4(out)
    assert len(video) == 5 and video[0].shape == (120, 320, 3)
    result = rtseg_run(
        "--video", tiny_video, "--model", tiny_package.onnx_path, "--threads", 1, "--max-frames", 7
    )  # no output at all: timing only
    assert result.exit_code == 0, result.output
    assert "7 frames" in result.stdout and "dropped frames: 0" in result.stdout


def test_frames_folder_in_natural_order(tmp_path, band_package):
    folder, masks = tmp_path / "frames", tmp_path / "masks"
    folder.mkdir()
    frames = structured_frames(3, 120, 160, seed=4)
    for frame, name in zip(frames, ("frame_1.png", "frame_2.png", "frame_10.png")):
        cv2.imwrite(str(folder / name), cv2.cvtColor(frame, cv2.COLOR_RGB2BGR))
    result = rtseg_run(
        "--frames", folder, "--model", band_package.onnx_path, "--threads", 1, "--masks", masks, "--quiet"
    )
    assert result.exit_code == 0, result.output
    assert result.stdout == ""  # --quiet: no summary
    names, ids = read_masks(masks)
    assert names == ["000000.png", "000001.png", "000002.png"]
    expected = expected_masks(band_package, frames)
    for index, mask in enumerate(ids):
        agreement = [(mask == e).mean() for e in expected]
        assert agreement[index] > 0.999 and int(np.argmax(agreement)) == index


def test_live_lavfi_source(tmp_path, band_package):
    stats_file, masks = tmp_path / "stats.json", tmp_path / "masks"
    result = rtseg_run(
        "--source",
        "lavfi:testsrc2=size=160x120:rate=25",
        "--model",
        band_package.onnx_path,
        "--threads",
        1,
        "--max-frames",
        10,
        "--masks",
        masks,
        "--stats-json",
        stats_file,
        "--quiet",
    )
    assert result.exit_code == 0, result.output
    stats = json.loads(stats_file.read_text())
    assert stats["frames"] + stats["dropped"] == stats["frames_read"] == 10
    names, _ = read_masks(masks)
    assert len(names) == stats["frames"] and names[-1] == "000009.png"  # the newest frame wins


# --- bad input and faults: one line, exit 1, no traceback ------------------------------------


@pytest.fixture()
def bad_inputs(tmp_path, tiny_video):
    empty = tmp_path / "empty.mp4"
    empty.write_bytes(b"")
    corrupt = tmp_path / "corrupt.mp4"
    corrupt.write_bytes(np.random.default_rng(0).integers(0, 256, 20000, dtype=np.uint8).tobytes())
    truncated = tmp_path / "truncated.mp4"
    data = tiny_video.read_bytes()
    truncated.write_bytes(data[: len(data) // 2])  # index (moov) at the end: lost
    no_images = tmp_path / "no_images"
    no_images.mkdir()
    (no_images / "notes.txt").write_text("no frames here")
    broken = tmp_path / "broken_frames"
    broken.mkdir()
    cv2.imwrite(str(broken / "000.png"), structured_frames(1, 60, 80)[0])
    (broken / "001.png").write_bytes(b"\x89PNG\r\n\x1a\n this is not a png")
    return {
        "missing": ("--video", tmp_path / "nope.mp4", "nope.mp4"),
        "empty": ("--video", empty, "empty.mp4"),
        "corrupt": ("--video", corrupt, "corrupt.mp4"),
        "truncated": ("--video", truncated, "truncated.mp4"),
        "empty folder": ("--frames", no_images, "no_images"),
        "unreadable image": ("--frames", broken, "001.png"),
        "no such camera": ("--camera", "9", "9"),
    }


@pytest.mark.parametrize(
    "case",
    [
        "missing",
        "empty",
        "corrupt",
        "truncated",
        "empty folder",
        "unreadable image",
        "no such camera",
    ],
)
def test_bad_input(case, bad_inputs, band_package, tmp_path):
    option, value, named = bad_inputs[case]
    out = tmp_path / "out.mp4"
    result = rtseg_run(option, value, "--model", band_package.onnx_path, "--threads", 1, "--output", out)
    assert_one_line_error(result, named)
    if out.exists():  # failed mid-run: what was written is a playable video
        assert len(decode_mp4(out)) >= 1


def test_bad_model(tmp_path, tiny_video):
    text = tmp_path / "model.onnx"
    text.write_text("not a model")
    assert_one_line_error(rtseg_run("--video", tiny_video, "--model", text), "model.onnx", "sidecar")
    blob = tmp_path / "weights.bin"
    blob.write_bytes(b"\0" * 100)
    assert_one_line_error(
        rtseg_run("--video", tiny_video, "--model", blob), "weights.bin", "not a model package"
    )
    assert_one_line_error(
        rtseg_run("--video", tiny_video, "--model", tmp_path / "gone.onnx"), "gone.onnx", "does not exist"
    )
    result = rtseg_run("--video", tiny_video, env={"RTSEG_ENGINES": str(tmp_path / "no_engines")})
    assert_one_line_error(result, "no default model", "--model")


def test_unwritable_outputs(tmp_path, tiny_video, band_package):
    a_file = tmp_path / "file.txt"
    a_file.write_text("x")
    common = ("--video", tiny_video, "--model", band_package.onnx_path, "--threads", 1)
    for option, path in (
        ("--output", Path("/proc/x.mp4")),
        ("--output", a_file / "out.mp4"),
        ("--masks", a_file / "masks"),
        ("--save-frames", a_file / "frames"),
        ("--stats-json", a_file / "stats.json"),
        ("--stats-json", Path("/proc/s.json")),
    ):
        assert_one_line_error(rtseg_run(*common, option, path), str(path.parent))


def test_input_options_exactly_one(tiny_video, band_package):
    assert_one_line_error(rtseg_run("--model", band_package.onnx_path), "exactly one", "none")
    result = rtseg_run("--video", tiny_video, "--camera", "0", "--model", band_package.onnx_path)
    assert_one_line_error(result, "exactly one", "--video and --camera")


def test_show_without_a_display(tiny_video, band_package):
    result = rtseg_run(
        "--video",
        tiny_video,
        "--model",
        band_package.onnx_path,
        "--show",
        env={"DISPLAY": None, "WAYLAND_DISPLAY": None},
    )
    assert_one_line_error(result, "--show")


# --- Ctrl-C and SIGTERM mid-run ----------------------------------------------------------------


@pytest.mark.slow
@pytest.mark.parametrize(
    "signum, status", [(signal.SIGINT, 130), (signal.SIGTERM, 143), (signal.SIGHUP, 129)]
)
def test_signal_mid_run_leaves_a_playable_mp4(signum, status, tmp_path, tiny_package):
    video = write_video(tmp_path / "long.mp4", structured_frames(100, 120, 160, seed=2), fps=20)
    out, stats_file = tmp_path / "out.mp4", tmp_path / "stats.json"
    cmd = [
        sys.executable,
        "-m",
        "rtseg",
        "run",
        "--video",
        str(video),
        "--realtime",
        "--model",
        str(tiny_package.onnx_path),
        "--threads",
        "1",
        "--output",
        str(out),
        "--stats-json",
        str(stats_file),
    ]
    proc = subprocess.Popen(
        cmd,
        cwd=REPO,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONPATH": str(REPO)},
    )
    try:
        deadline = time.monotonic() + 60
        recording = out.with_name("out.partial.mp4")  # out.mp4 appears when it is finished
        while not recording.exists() and proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.05)
        time.sleep(1.0)  # a second into a five-second (real-time paced) video
        assert proc.poll() is None, proc.communicate()
        proc.send_signal(signum)
        stdout, stderr = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == status, stderr
    assert "Traceback" not in stderr and f"interrupted by {signal.Signals(signum).name}" in stderr
    stats = json.loads(stats_file.read_text())
    assert stats["stopped_by"] == signal.Signals(signum).name
    assert 1 <= stats["frames"] < 100 and "frames in" in stdout
    assert len(decode_mp4(out)) == stats["frames"] and not recording.exists()  # finished, complete
    assert len(decode_mp4(out)) == stats["frames"]
