"""Hostile, careless and unlucky command lines: each ends with exit status 1 and exactly one
`rtseg: error: ...` line on stderr, and leaves every input byte for byte as it was (and no file
in the inputs' folders).

Each case builds its command from `World` (a video, a frames folder, a model package, a
checkpoint and packages whose sidecars lie, all under `world.inputs`) and a fresh output folder.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import cv2
import pytest
from band_model import make_band_package
from click.testing import CliRunner
from conftest import REPO, structured_frames
from hostile_models import argmax_graph, float_input_graph, rank4_ids_graph, sidecar, write_package

from rtseg.cli import main
from rtseg.video.display import opencv_has_gui

LONG = "n" * 300
PALETTE_TAIL = [[0, 0, 0]] * 10


@dataclass(frozen=True)
class World:
    inputs: Path
    video: Path
    frames: Path
    model: Path
    checkpoint: Path
    bad: dict[str, Path]  # name -> ONNX path of a lying package


LYING = {
    "palette-300": (argmax_graph(11), sidecar(palette=[[300, 0, 0], *PALETTE_TAIL])),
    "palette-word": (argmax_graph(11), sidecar(palette=[["red", 0, 0], *PALETTE_TAIL])),
    "version-string": (argmax_graph(11), sidecar(format_version="1")),
    "palette-short": (argmax_graph(11), sidecar(palette=PALETTE_TAIL)),
    "input-size": (argmax_graph(11, 32, 32), sidecar()),
    "input-float": (float_input_graph(), sidecar()),
    "output-rank4": (rank4_ids_graph(), sidecar()),
    "logits-claimed": (argmax_graph(11), sidecar(**{"output.kind": "logits"})),
    "classes-differ": (argmax_graph(3), sidecar()),
}


@pytest.fixture(scope="module")
def world(tmp_path_factory, tiny_video, tiny_checkpoint) -> World:
    inputs = tmp_path_factory.mktemp("hostile") / "in"
    inputs.mkdir()
    video = Path(shutil.copy(tiny_video, inputs / "video.mp4"))
    frames = inputs / "frames"
    frames.mkdir()
    for i, frame in enumerate(structured_frames(3, 60, 80)):
        cv2.imwrite(str(frames / f"{i:06d}.png"), frame)
    model = make_band_package(inputs / "model").onnx_path
    checkpoint = Path(shutil.copy(tiny_checkpoint, inputs / "tiny.pth"))
    bad = {name: write_package(inputs / name, graph, meta) for name, (graph, meta) in LYING.items()}
    (inputs / "video-link.mp4").symlink_to(video)
    os.link(video, inputs / "video-hard.mp4")
    return World(inputs, video, frames, model, checkpoint, bad)


def run_args(w: World, *extra, video=None):
    return ["run", "--video", video or w.video, "--model", w.model, "--threads", 1, "-q", *extra]


# (case id, (world, output folder) -> command line, what the error line must name)
CASES = [
    ("output is the video", lambda w, o: run_args(w, "--output", w.video), "is the input --video"),
    (
        "output is the video via ..",
        lambda w, o: run_args(w, "--output", w.frames / ".." / "video.mp4"),
        "is the input",
    ),
    (
        "output is a symlink to the video",
        lambda w, o: run_args(w, "--output", w.inputs / "video-link.mp4"),
        "is the input",
    ),
    (
        "output is a hard link of the video",
        lambda w, o: run_args(w, "--output", w.inputs / "video-hard.mp4"),
        "is the input",
    ),
    (
        "video by a link, output by its name",
        lambda w, o: run_args(w, "--output", w.video, video=w.inputs / "video-link.mp4"),
        "is the input",
    ),
    (
        "stats json is the output",
        lambda w, o: run_args(w, "--output", o / "a.mp4", "--stats-json", o / "a.mp4"),
        "same file",
    ),
    (
        "stats json is the sidecar",
        lambda w, o: run_args(w, "--stats-json", w.model.with_suffix(".json")),
        "is the input --model",
    ),
    ("output is the model", lambda w, o: run_args(w, "--output", w.model), "is the input --model"),
    (
        "masks into the frames folder",
        lambda w, o: ["run", "--frames", w.frames, "--model", w.model, "-q", "--masks", w.frames],
        "is the input folder --frames",
    ),
    (
        "save-frames into the frames folder",
        lambda w, o: ["run", "--frames", w.frames, "--model", w.model, "-q", "--save-frames", w.frames],
        "is the input folder",
    ),
    (
        "masks into a glob's folder",
        lambda w, o: [
            "run",
            "--frames",
            str(w.frames / "*.png"),
            "--model",
            w.model,
            "-q",
            "--masks",
            w.frames / "sub" / "..",
        ],
        "could overwrite",
    ),
    (
        "stats json among the masks",
        lambda w, o: run_args(w, "--masks", o / "m", "--stats-json", o / "m" / "000001.png"),
        "lies in --masks",
    ),
    (
        "output name over 255 bytes",
        lambda w, o: run_args(w, "--output", o / f"{LONG}.mp4"),
        "file name too long",
    ),
    (
        "stats json name over 255 bytes",
        lambda w, o: run_args(w, "--stats-json", o / f"{LONG}.json"),
        "file name too long",
    ),
    ("masks folder name over 255 bytes", lambda w, o: run_args(w, "--masks", o / LONG), "file name too long"),
    ("video name over 255 bytes", lambda w, o: run_args(w, video=o / f"{LONG}.mp4"), "file name too long"),
    (
        "codec is an audio encoder",
        lambda w, o: run_args(w, "--output", o / "a.mp4", "--codec", "aac"),
        "encoder of audio",
    ),
    (
        "codec is a subtitle encoder",
        lambda w, o: run_args(w, "--output", o / "a.mp4", "--codec", "srt"),
        "encoder of subtitle",
    ),
    (
        "codec does not exist",
        lambda w, o: run_args(w, "--output", o / "a.mp4", "--codec", "h265000"),
        "not an encoder",
    ),
    ("output in a read-only folder", lambda w, o: run_args(w, "--output", "/proc/rtseg.mp4"), "not writable"),
    ("output under a file", lambda w, o: run_args(w, "--output", w.video / "a.mp4"), "cannot write into"),
    ("model missing", lambda w, o: ["run", "--video", w.video, "--model", o / "gone.onnx"], "does not exist"),
    ("video missing", lambda w, o: run_args(w, video=o / "gone.mp4"), "gone.mp4"),
    *(
        (
            f"lying sidecar: {name}",
            lambda w, o, n=name: [
                "run",
                "--video",
                w.video,
                "--model",
                w.bad[n],
                "-q",
                "--output",
                o / "a.mp4",
            ],
            fragment,
        )
        for name, fragment in (
            ("palette-300", "must be an integer in 0..255, got 300"),
            ("palette-word", "got 'red'"),
            ("version-string", "format_version must be the integer 1"),
            ("palette-short", "11 classes but 10 palette colours"),
            ("input-size", "(N, 32, 32, 3) uint8"),
            ("input-float", "float32"),
            ("output-rank4", "(N, 1, 64, 96) uint8"),
            ("logits-claimed", "the sidecar says logits"),
            ("classes-differ", "argmax over 3 channels"),
        )
    ),
    (
        "export into a read-only folder",
        lambda w, o: ["export", w.checkpoint, "-o", "/proc/x.onnx"],
        "not writable",
    ),
    (
        "export name over 255 bytes",
        lambda w, o: ["export", w.checkpoint, "-o", o / f"{LONG}.onnx"],
        "file name too long",
    ),
    (
        "export onto the package it reads",
        lambda w, o: ["export", w.checkpoint, "-o", w.model, "--parity-frames", w.model],
        "is the input",
    ),
    (
        "eval json is the sidecar",
        lambda w, o: [
            "eval",
            "--model",
            w.model,
            "--data-root",
            w.frames,
            "--json",
            w.model.with_suffix(".json"),
        ],
        "is the input --model",
    ),
    (
        "bench json is the csv",
        lambda w, o: ["bench", "--model", w.model, "--json", o / "r", "--csv", o / "r"],
        "same file",
    ),
    (
        "bench json is the video",
        lambda w, o: ["bench", "--model", w.model, "--video", w.video, "--json", w.video],
        "is the input --video",
    ),
    ("engine onto its onnx", lambda w, o: ["build-engine", w.model, "-o", w.model], "is the input MODEL"),
    (
        "timing cache is the sidecar",
        lambda w, o: ["build-engine", w.model, "--timing-cache", w.model.with_suffix(".json")],
        "is the input MODEL",
    ),
    (
        "train into the dataset",
        lambda w, o: ["train", "--data-root", w.frames, "--out-dir", w.frames, "--epochs", 1],
        "is the input folder --data-root",
    ),
]


def digest(folder: Path) -> dict[str, str]:
    return {
        str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(folder.rglob("*"))
        if p.is_file() and not p.is_symlink()
    }


@pytest.mark.parametrize("case", [c[0] for c in CASES])
def test_hostile_command_lines_fail_in_one_line_and_touch_no_input(case, world, tmp_path):
    build, fragment = next((c[1], c[2]) for c in CASES if c[0] == case)
    out = tmp_path / "out"
    out.mkdir()
    before = digest(world.inputs)
    result = CliRunner().invoke(main, [str(a) for a in build(world, out)])
    lines = result.stderr.strip().splitlines()
    assert result.exit_code == 1, (result.exit_code, result.output, result.exception)
    assert isinstance(result.exception, SystemExit), result.exception
    assert len(lines) == 1 and lines[0].startswith("rtseg: error: "), result.stderr
    assert fragment in lines[0], lines[0]
    assert "Traceback" not in result.output
    assert digest(world.inputs) == before  # every input byte as it was, no new file among them
    assert not [p for p in out.rglob("*") if p.is_file()], list(out.rglob("*"))  # nothing written


@pytest.mark.skipif(
    not sys.platform.startswith("linux") or not opencv_has_gui(), reason="needs an OpenCV with a GUI on Linux"
)
def test_show_with_an_unreachable_display_is_one_line_not_an_abort(world, tmp_path):
    out = tmp_path / "out.mp4"
    env = {**os.environ, "PYTHONPATH": str(REPO), "DISPLAY": ":97", "QT_QPA_PLATFORM": "xcb"}
    env.pop("WAYLAND_DISPLAY", None)
    cmd = [sys.executable, "-m", "rtseg", *map(str, run_args(world, "--output", out, "--show"))]
    done = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=120, cwd=tmp_path)
    lines = done.stderr.strip().splitlines()
    assert done.returncode == 1, (done.returncode, done.stderr)  # not -6 (SIGABRT)
    assert len(lines) == 1 and lines[0].startswith("rtseg: error: --show needs a display"), lines
    assert ":97" in lines[0] and not out.exists()
