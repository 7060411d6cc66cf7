"""`rtseg batch` names and paths without Ray: an input keeps its name across runs into one DIR and
no other input can take it; every path the run reads is checked against every path it writes;
@lists that loop or are not UTF-8; hand-edited manifests."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from band_model import make_band_package
from click.testing import CliRunner

from rtseg.batch.config import BatchConfig, VideoOptions
from rtseg.batch.inputs import expand_inputs
from rtseg.batch.manifest import Manifest
from rtseg.batch.outputs import OutputPlan
from rtseg.batch.runner import archive_inputs
from rtseg.cli import main
from rtseg.errors import InputError


@pytest.fixture(scope="module")
def band_package(tmp_path_factory):
    return make_band_package(tmp_path_factory.mktemp("band"), height=64, width=96)


def touch(root: Path, *names: str) -> list[Path]:
    for name in names:
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_bytes(b"x")
    return [root / n for n in names]


def names_of_a_run(out: Path, *inputs) -> dict[str, str]:
    """{input file name relative to its folder's parent: name} after one (simulated) run into
    `out`: named as run_batch names them, every input recorded done in the manifest."""
    out.mkdir(exist_ok=True)
    manifest = Manifest.load(out)
    video = VideoOptions.of(model=Path("m.onnx"))
    config = BatchConfig(inputs=tuple(map(str, inputs)), out_dir=out, video=video)
    items = archive_inputs(config, out.resolve(), manifest)
    for item in items:
        manifest.put({"name": item.name, "input": str(item.path), "status": "done"})
    manifest.save()
    return {f"{item.path.parent.name}/{item.path.name}": item.name for item in items}


def test_a_different_input_never_takes_a_finished_ones_name(tmp_path):
    day1, day2 = touch(tmp_path, "day1/cam.mp4", "day2/cam.mp4")
    out = tmp_path / "seg"
    assert names_of_a_run(out, day1) == {"day1/cam.mp4": "cam"}
    assert names_of_a_run(out, day2) == {"day2/cam.mp4": "day2/cam"}  # the root widened
    assert names_of_a_run(out, day1) == {"day1/cam.mp4": "cam"}  # its name, kept
    entries = json.loads((out / "rtseg-batch.json").read_text())["entries"]
    assert sorted((e["name"], Path(e["input"]).parent.name) for e in entries) == [
        ("cam", "day1"),
        ("day2/cam", "day2"),
    ]
    plans = [OutputPlan(out, name, ("mp4", "stats")).relative_outputs() for name in ("cam", "day2/cam")]
    assert plans == [
        ["cam.annotated.mp4", "cam.stats.json"],
        ["day2/cam.annotated.mp4", "day2/cam.stats.json"],
    ]


def test_a_sub_folder_run_keeps_the_names_of_the_whole_archive(tmp_path):
    touch(tmp_path, "in/day1/a.mp4", "in/day2/b.mp4")
    out = tmp_path / "seg"
    assert names_of_a_run(out, tmp_path / "in") == {"day1/a.mp4": "day1/a", "day2/b.mp4": "day2/b"}
    touch(tmp_path, "in/day1/c.mp4")
    assert names_of_a_run(out, tmp_path / "in/day1") == {"day1/a.mp4": "day1/a", "day1/c.mp4": "day1/c"}


def test_two_videos_of_one_stem_get_two_names(tmp_path):
    touch(tmp_path, "cam.mp4", "cam.mkv", "cam.mkv.mp4")
    names = [i.name for i in expand_inputs([str(tmp_path)])]
    assert sorted(names) == ["cam", "cam.mkv", "cam.mkv-2"] or sorted(names) == ["cam", "cam.mkv", "cam.mp4"]
    assert len(set(names)) == 3


def test_a_list_that_names_itself_is_one_error(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    touch(tmp_path, "a.mp4")
    Path("self.txt").write_text("a.mp4\n@self.txt\n")
    with pytest.raises(InputError, match="names itself"):
        expand_inputs(["@self.txt"])
    Path("one.txt").write_text("@two.txt\n")
    Path("two.txt").write_text("@one.txt\n")
    with pytest.raises(InputError, match="names itself"):
        expand_inputs(["@one.txt"])
    Path("twice.txt").write_text("@sub.txt\n@sub.txt\n")  # the same list twice is no loop
    Path("sub.txt").write_text("a.mp4\n")
    assert [i.name for i in expand_inputs(["@twice.txt"])] == ["a"]


def test_a_latin1_list_names_a_latin1_file(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    name = "caf\xe9.mp4".encode("latin-1")
    (tmp_path / os.fsdecode(name)).write_bytes(b"x")
    Path("list.txt").write_bytes(b"# \xe9t\xe9\n" + name + b"\n")
    items = expand_inputs(["@list.txt"])
    assert [os.fsencode(i.path.name) for i in items] == [name]


@pytest.mark.parametrize(
    "edit, message",
    [
        ({"entries": {"a": 1}}, "'entries' must be a list"),
        ({"entries": [{"status": "done"}]}, "entry 1 has no name"),
        ({"entries": [{"name": "a", "identity": [1]}]}, "'identity' must be an object"),
        ({"entries": [{"name": 3}]}, "entry 1 has no name"),
    ],
)
def test_a_hand_edited_manifest_is_one_line(tmp_path, edit, message):
    data = {"format": "rtseg-batch", "format_version": 2, **edit}
    (tmp_path / "rtseg-batch.json").write_text(json.dumps(data))
    with pytest.raises(InputError, match=message) as info:
        Manifest.load(tmp_path)
    assert "\n" not in str(info.value)


def batch(*args):
    return CliRunner().invoke(main, ["batch", *map(str, args)])


def test_report_json_may_not_be_anything_the_run_reads_or_writes(tmp_path, band_package):
    clips = tmp_path / "clips"
    (video,) = touch(clips, "day1/cam.mp4")
    listing = tmp_path / "list.txt"
    listing.write_text(str(video) + "\n")
    model = band_package.onnx_path
    cases = [
        ([clips, "--report-json", video], "is the input INPUT"),
        ([f"@{listing}", "--report-json", listing], "is the input @list"),
        ([clips, "--report-json", tmp_path / "seg/day1/cam.stats.json"], "lies in --out"),
        ([clips, "--report-json", band_package.sidecar_path], "is the input --model"),
    ]
    for args, message in cases:
        result = batch(*args, "--out", tmp_path / "seg", "--model", model, "--quiet")
        assert result.exit_code == 1 and message in result.stderr, result.output
        assert result.stderr.count("\n") == 1
    assert video.read_bytes() == b"x" and listing.read_text() == str(video) + "\n"
    assert not (tmp_path / "seg").exists()
