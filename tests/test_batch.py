"""`rtseg batch` without Ray: inputs, output plan, manifest, the worker on one video."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from band_model import make_band_package
from click.testing import CliRunner
from conftest import structured_frames, write_video
from test_cli_run import assert_one_line_error, read_masks, rtseg_run

from rtseg.batch import Manifest, OutputPlan, VideoOptions, expand_inputs, model_identity, parse_output_kinds
from rtseg.batch.config import BatchConfig, kill_at_from_env
from rtseg.batch.manifest import input_identity, same_identity
from rtseg.batch.report import BatchReport
from rtseg.batch.worker import VideoWorker
from rtseg.cli import main
from rtseg.errors import InputError, ModelError, OutputError


@pytest.fixture(scope="module")
def band_package(tmp_path_factory):
    return make_band_package(tmp_path_factory.mktemp("band"), height=64, width=96)


def touch_videos(root: Path, *names: str) -> list[Path]:
    paths = []
    for name in names:
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(b"x")
        paths.append(path)
    return paths


# --- inputs --------------------------------------------------------------------------------


def test_folder_is_searched_recursively_and_names_mirror_the_tree(tmp_path):
    touch_videos(tmp_path / "arch", "day1/b.mp4", "day1/a10.mkv", "day1/a2.MOV", "day2/c.avi", "notes.txt")
    touch_videos(tmp_path / "arch", ".hidden/d.mp4", "day2/.e.mp4")
    items = expand_inputs([str(tmp_path / "arch")])
    assert [i.name for i in items] == ["day1/a2", "day1/a10", "day1/b", "day2/c"]
    assert all(i.path.is_absolute() and i.path.is_file() for i in items)


def test_files_globs_and_lists_share_one_root(tmp_path, monkeypatch):
    a, b, c = touch_videos(tmp_path, "x/one.mp4", "y/two.mp4", "y/z/three.mp4")
    (tmp_path / "list.txt").write_text("# a comment\n\nx/one.mp4\n")
    monkeypatch.chdir(tmp_path)
    items = expand_inputs(["@list.txt", "y/*.mp4", str(c), "x/one.mp4"])
    assert [i.name for i in items] == ["x/one", "y/two", "y/z/three"]  # de-duplicated
    assert [i.name for i in expand_inputs([str(c)])] == ["three"]


def test_the_output_folder_is_never_an_input(tmp_path):
    touch_videos(tmp_path, "clips/a.mp4", "clips/out/a.annotated.mp4")
    items = expand_inputs([str(tmp_path / "clips")], exclude=tmp_path / "clips" / "out")
    assert [i.name for i in items] == ["a"]


@pytest.mark.parametrize(
    "spec, message",
    [
        ("missing.mp4", "no such file or folder"),
        ("*.nothing", "no videos match"),
        ("@nolist.txt", "cannot read"),
    ],
)
def test_inputs_that_name_nothing(tmp_path, monkeypatch, spec, message):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(InputError, match=message):
        expand_inputs([spec])


def test_a_folder_without_videos(tmp_path):
    touch_videos(tmp_path, "a.txt")
    with pytest.raises(InputError, match="no videos in this folder"):
        expand_inputs([str(tmp_path)])


# --- outputs and manifest ------------------------------------------------------------------


def test_output_kinds():
    assert parse_output_kinds("mp4, masks,mp4") == ("mp4", "masks")
    with pytest.raises(OutputError, match="comma-separated list of mp4, masks, stats"):
        parse_output_kinds("mp4,jpeg")


def test_commit_replaces_old_outputs_and_discard_leaves_them(tmp_path):
    plan = OutputPlan(tmp_path, "a/clip", ("mp4", "masks"))
    plan.prepare()
    plan.partial("mp4").write_text("old")
    plan.partial("masks").mkdir()
    (plan.partial("masks") / "000000.png").write_text("old")
    plan.commit()
    assert plan.complete() and plan.final("mp4").read_text() == "old"
    plan.prepare()
    plan.partial("mp4").write_text("new")
    plan.partial("masks").mkdir()
    (plan.partial("masks") / "000001.png").write_text("new")
    plan.discard()  # a failed attempt: the old complete outputs stay
    assert plan.final("mp4").read_text() == "old" and not plan.partial("mp4").exists()
    plan.partial("masks").mkdir()
    (plan.partial("masks") / "000001.png").write_text("new")
    plan.partial("mp4").write_text("new")
    plan.commit()
    assert sorted(p.name for p in plan.final("masks").iterdir()) == ["000001.png"]
    assert sorted(p.name for p in plan.folder.iterdir()) == ["clip.annotated.mp4", "clip.masks"]
    assert plan.relative_outputs() == ["a/clip.annotated.mp4", "a/clip.masks"]


def test_manifest_round_trip_and_what_counts_as_done(tmp_path):
    video = touch_videos(tmp_path, "a.mp4")[0]
    identity = input_identity(video)
    manifest = Manifest.load(tmp_path)
    manifest.record({"name": "a.mp4", "status": "done", "identity": identity, "settings": "s1"})
    again = Manifest.load(tmp_path)
    assert again.is_done("a.mp4", identity, "s1", outputs_complete=True)
    assert not again.is_done("a.mp4", identity, "s2", outputs_complete=True)  # other model/settings
    assert not again.is_done("a.mp4", identity, "s1", outputs_complete=False)  # outputs deleted
    assert not again.is_done("b.mp4", identity, "s1", outputs_complete=True)
    video.write_bytes(b"xy")
    assert not again.is_done("a.mp4", input_identity(video), "s1", outputs_complete=True)
    assert [p.name for p in tmp_path.iterdir() if p.name.endswith(".tmp")] == []


def test_identity_by_hash_ignores_a_touch(tmp_path):
    video = touch_videos(tmp_path, "a.mp4")[0]
    before = input_identity(video, with_hash=True)
    after = {**before, "mtime_ns": before["mtime_ns"] + 1}
    assert same_identity(before, after)
    assert not same_identity(before, {**after, "sha256": "0" * 64})
    assert not same_identity({k: v for k, v in before.items() if k != "sha256"}, after)


def test_a_damaged_manifest_is_an_input_error(tmp_path):
    (tmp_path / "rtseg-batch.json").write_text("{not json")
    with pytest.raises(InputError, match="unreadable batch manifest"):
        Manifest.load(tmp_path)
    (tmp_path / "rtseg-batch.json").write_text(json.dumps({"format": "other"}))
    with pytest.raises(InputError, match="not an rtseg batch manifest"):
        Manifest.load(tmp_path)


def test_settings_key_follows_what_changes_outputs(tmp_path):
    base = VideoOptions.of(model=tmp_path / "m.onnx", model_identity="onnx:1")
    assert (
        base.settings_key()
        == VideoOptions.of(model=tmp_path / "m.onnx", model_identity="onnx:1", threads=4).settings_key()
    )
    assert (
        base.settings_key()
        != VideoOptions.of(model=tmp_path / "m.onnx", model_identity="onnx:2").settings_key()
    )
    assert (
        base.settings_key()
        != VideoOptions.of(model=tmp_path / "m.onnx", model_identity="onnx:1", mode="mask").settings_key()
    )


def test_model_identity_checks_the_model(tmp_path, band_package):
    assert model_identity(band_package.onnx_path).startswith("onnx:")
    with pytest.raises(ModelError):
        model_identity(tmp_path / "missing.onnx")


def test_config_checks(tmp_path, monkeypatch):
    video = VideoOptions.of(model=tmp_path / "m.onnx")
    with pytest.raises(InputError, match="--cpus-per-worker"):
        BatchConfig(inputs=("a",), out_dir=tmp_path, video=video, cpus_per_worker=0)
    assert BatchConfig(inputs=("a",), out_dir=tmp_path, video=video).worker_gpus == 0.0
    trt = VideoOptions.of(model=tmp_path / "m.onnx", backend="tensorrt")
    assert BatchConfig(inputs=("a",), out_dir=tmp_path, video=trt).worker_gpus == 1.0
    monkeypatch.setenv("RTSEG_TEST_KILL_WORKER", "day1/a.mp4:5")
    assert kill_at_from_env() == ("day1/a.mp4", 5)
    monkeypatch.setenv("RTSEG_TEST_KILL_WORKER", "nonsense")
    with pytest.raises(InputError, match="RTSEG_TEST_KILL_WORKER"):
        kill_at_from_env()


def test_report_summary_and_failures(tmp_path):
    report = BatchReport(tmp_path / "rtseg-batch.json", workers=2, processing_s=2.0)
    report.entries = [
        {"name": "a.mp4", "status": "done", "frames": 10},
        {"name": "b.mp4", "status": "skipped", "frames": 5},
        {"name": "c.mp4", "status": "failed", "frames": 0, "error": "corrupt"},
        {"name": "d.mp4", "status": "failed", "input": "/x/d.mp4", "error": "/x/d.mp4: cut"},
    ]
    assert not report.ok and report.failures() == ["c.mp4: corrupt", "/x/d.mp4: cut"]
    assert report.fps == 5.0
    text = report.summary()
    assert "done           1        10" in text and "failed         2         0" in text
    assert "10 frames segmented in 2.0 s, 5.0 fps with 2 workers" in text


# --- the worker on one video, without Ray --------------------------------------------------


def test_worker_output_equals_rtseg_run_and_a_corrupt_video_fails_alone(tmp_path, band_package):
    clip = write_video(tmp_path / "clip.mp4", structured_frames(10, 120, 160, seed=3))
    bad = tmp_path / "bad.mp4"
    bad.write_bytes(clip.read_bytes()[: clip.stat().st_size // 2])  # cut mid-file
    options = VideoOptions.of(model=band_package.onnx_path, threads=1, kinds=("mp4", "masks", "stats"))
    worker = VideoWorker(options, str(tmp_path / "out"))
    assert "error" not in worker.ready()
    done = worker.process("clip", str(clip))
    failed = worker.process("bad", str(bad))
    assert done["status"] == "done" and done["frames"] == 10 and done["error"] is None
    assert failed["status"] == "failed" and "bad.mp4" in failed["error"] and "\n" not in failed["error"]
    assert not list((tmp_path / "out").glob("*bad*"))  # nothing half-written is left
    stats = json.loads((tmp_path / "out/clip.stats.json").read_text())
    assert stats["frames"] == 10
    ran = rtseg_run("--video", clip, "--model", band_package.onnx_path, "--threads", 1,
                    "--masks", tmp_path / "run_masks", "--quiet")  # fmt: skip
    assert ran.exit_code == 0, ran.output
    names, expected = read_masks(tmp_path / "run_masks")
    got_names, got = read_masks(tmp_path / "out/clip.masks")
    assert got_names == names and len(names) == 10
    for a, b in zip(got, expected):
        np.testing.assert_array_equal(a, b)
    worker.close()


def test_without_ray_the_command_names_the_extra(tmp_path, band_package, monkeypatch):
    clip = write_video(tmp_path / "clip.mp4", structured_frames(2, 120, 160))
    monkeypatch.setitem(__import__("sys").modules, "ray", None)  # import ray -> ImportError
    result = CliRunner().invoke(main, ["batch", str(clip), "--out", str(tmp_path / "out"),
                                       "--model", str(band_package.onnx_path)])  # fmt: skip
    assert_one_line_error(result, "ray is required for rtseg batch", "pip install 'rtseg[ray]'")
    assert json.loads((tmp_path / "out/rtseg-batch.json").read_text())["entries"] == []


def test_bad_arguments_are_one_line_errors(tmp_path, band_package):
    clip = write_video(tmp_path / "clip.mp4", structured_frames(2, 120, 160))
    run = lambda *a: CliRunner().invoke(main, ["batch", *map(str, a)])  # noqa: E731
    assert_one_line_error(run(clip, "--out", tmp_path / "o", "--model", band_package.onnx_path,
                              "--output-kind", "gif"), "--output-kind")  # fmt: skip
    assert_one_line_error(run(tmp_path / "nope", "--out", tmp_path / "o", "--model", band_package.onnx_path),
                          "no such file or folder")  # fmt: skip
    assert_one_line_error(run(clip, "--out", tmp_path / "o", "--model", tmp_path / "m.onnx"), "m.onnx")
