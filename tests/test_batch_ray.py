"""`rtseg batch` on a local Ray cluster (started once per session, 2 CPUs): a corrupt clip among
good ones, a worker killed mid-video, a rerun that skips, outputs against `rtseg run`."""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path

import numpy as np
import pytest
from band_model import make_band_package
from click.testing import CliRunner
from conftest import REPO, structured_frames, write_video
from test_cli_run import decode_mp4, read_masks, rtseg_run

from rtseg.cli import main

pytestmark = pytest.mark.slow

CLIPS = {"a/one.mp4": 12, "a/two.mp4": 9, "b/three.mp4": 7}
NAMES = {clip: clip.rsplit(".", 1)[0] for clip in CLIPS}  # a/one.mp4 -> a/one (its outputs' stem)


def output(out: Path, clip: str, kind: str) -> Path:
    """Where `rtseg batch` writes `kind` (annotated.mp4, masks, stats.json) of `clip`."""
    return out / f"{NAMES[clip]}.{kind}"


@pytest.fixture(scope="session")
def ray_cluster():
    """A local Ray cluster for the whole session; `rtseg batch` reuses an initialised Ray."""
    ray = pytest.importorskip("ray", reason="Ray is not installed (pip install 'rtseg[ray]')")
    previous = os.environ.get("PYTHONPATH")
    os.environ["PYTHONPATH"] = os.pathsep.join([str(REPO), *([previous] if previous else [])])  # workers
    ray.init(
        num_cpus=2,
        include_dashboard=False,
        logging_level=logging.ERROR,
        log_to_driver=False,
        object_store_memory=128 << 20,
        namespace="rtseg-tests",
    )
    yield ray
    ray.shutdown()
    if previous is None:
        os.environ.pop("PYTHONPATH", None)
    else:
        os.environ["PYTHONPATH"] = previous


@pytest.fixture(scope="module")
def archive(tmp_path_factory):
    """Three good clips in two folders, plus one that is no video and one cut mid-file."""
    root = tmp_path_factory.mktemp("archive")
    for seed, (name, frames) in enumerate(CLIPS.items()):
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        write_video(root / name, structured_frames(frames, 120, 160, seed=seed + 10))
    (root / "b/garbage.mp4").write_bytes(b"this is not a video" * 50)
    good = (root / "a/one.mp4").read_bytes()
    (root / "b/cut.mp4").write_bytes(good[: len(good) // 2])
    return root


@pytest.fixture(scope="module")
def band(tmp_path_factory):
    return make_band_package(tmp_path_factory.mktemp("band"), height=64, width=96)


@pytest.fixture(scope="module")
def reference(archive, band, tmp_path_factory):
    """`rtseg run --output --masks` of every good clip: name -> (mp4 frames, mask names, masks)."""
    out, refs = tmp_path_factory.mktemp("reference"), {}
    for i, name in enumerate(CLIPS):
        mp4, masks = out / f"{i}.mp4", out / f"masks{i}"
        result = rtseg_run("--video", archive / name, "--model", band.onnx_path, "--threads", 1,
                           "--output", mp4, "--masks", masks, "--quiet")  # fmt: skip
        assert result.exit_code == 0, result.output
        refs[name] = (decode_mp4(mp4), *read_masks(masks))
    return refs


def rtseg_batch(inputs, out: Path, model: Path, *extra, env=None):
    args = ["batch", *map(str, inputs), "--out", str(out), "--model", str(model), "--threads", "1",
            "--output-kind", "mp4,masks,stats", "--workers", "2", "--quiet", *extra]  # fmt: skip
    return CliRunner().invoke(main, args, env=env)


def manifest_of(out: Path) -> dict:
    data = json.loads((out / "rtseg-batch.json").read_text())
    return {e["name"]: e for e in data["entries"]}


def assert_outputs_equal_rtseg_run(out: Path, reference: dict, names) -> None:
    for name in names:
        frames, mask_names, masks = reference[name]
        got_frames = decode_mp4(output(out, name, "annotated.mp4"))
        assert len(got_frames) == len(frames) == CLIPS[name]
        for a, b in zip(got_frames, frames):
            np.testing.assert_array_equal(a, b)
        got_names, got_masks = read_masks(output(out, name, "masks"))
        assert got_names == mask_names
        for a, b in zip(got_masks, masks):
            np.testing.assert_array_equal(a, b)
        assert json.loads(output(out, name, "stats.json").read_text())["frames"] == CLIPS[name]
    assert not [p for p in out.rglob("*") if "partial" in p.name or p.name.endswith(".tmp")]


def test_corrupt_clips_fail_alone_and_a_rerun_skips(ray_cluster, archive, band, reference, tmp_path):
    out = tmp_path / "out"
    first = rtseg_batch([archive], out, band.onnx_path)
    assert first.exit_code == 1, first.output
    failures = [line for line in first.stderr.splitlines() if line.startswith("rtseg: failed: ")]
    assert len(failures) == 2 and "Traceback" not in first.output
    assert any("garbage.mp4" in line for line in failures) and any("cut.mp4" in line for line in failures)
    entries = manifest_of(out)
    assert {n: e["status"] for n, e in entries.items()} == {
        "a/one": "done", "a/two": "done", "b/three": "done", "b/cut": "failed", "b/garbage": "failed",
    }  # fmt: skip
    assert entries["a/one"]["frames"] == 12 and entries["a/one"]["identity"]["size"] > 0
    assert entries["b/cut"]["outputs"] == [] and not list(out.glob("b/cut.*"))
    assert entries["a/one"]["outputs"] == ["a/one.annotated.mp4", "a/one.masks", "a/one.stats.json"]
    assert_outputs_equal_rtseg_run(out, reference, CLIPS)
    written = {n: output(out, n, "annotated.mp4").stat().st_mtime_ns for n in CLIPS}

    second = rtseg_batch([archive], out, band.onnx_path)
    assert second.exit_code == 1, second.output
    entries = manifest_of(out)
    assert all(entries[NAMES[n]]["status"] == "skipped" for n in CLIPS)
    assert entries["b/cut"]["status"] == "failed"  # retried, still cut
    assert {n: output(out, n, "annotated.mp4").stat().st_mtime_ns for n in CLIPS} == written

    (archive / "b/garbage.mp4").unlink()
    (archive / "b/cut.mp4").unlink()
    third = rtseg_batch([archive], out, band.onnx_path)
    assert third.exit_code == 0, third.output


def test_a_worker_killed_mid_video_is_retried_to_a_complete_output(
    ray_cluster, archive, band, reference, tmp_path
):
    out = tmp_path / "out"
    names = list(CLIPS)
    kill = {"RTSEG_TEST_KILL_WORKER": "a/one:5"}
    inputs, report_file = [archive / n for n in names], tmp_path / "r.json"
    result = rtseg_batch(inputs, out, band.onnx_path, "--report-json", report_file, env=kill)
    assert result.exit_code == 0, result.output
    report = json.loads(report_file.read_text())
    assert report["counts"] == {"done": 3, "skipped": 0, "failed": 0} and report["workers"] == 2
    assert report["frames"] == sum(CLIPS.values()) and report["failures"] == []
    assert "a/one: its worker died" in result.stderr and "attempt 2" in result.stderr
    entries = manifest_of(out)
    assert entries["a/one"]["status"] == "done" and entries["a/one"]["attempts"] == 2
    assert all(entries[NAMES[n]]["attempts"] == 1 for n in names[1:])
    assert_outputs_equal_rtseg_run(out, reference, names)
