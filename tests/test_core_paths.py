"""rtseg.core.paths: collisions between the paths of a command, and outputs replaced whole."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from rtseg.core import paths
from rtseg.core.paths import (
    TEMP_MARK,
    StagedFile,
    atomic_output,
    atomic_write_text,
    check_paths,
    staged_folder,
)
from rtseg.errors import InputError, OutputError


@pytest.fixture()
def tree(tmp_path):
    """video.mp4, frames/000000.png, frames/img_a.png, out/ in a fresh folder."""
    (tmp_path / "video.mp4").write_bytes(b"video")
    frames = tmp_path / "frames"
    frames.mkdir()
    for name in ("000000.png", "img_a.png"):
        (frames / name).write_bytes(b"png")
    (tmp_path / "out").mkdir()
    return tmp_path


def refused(match, **kwargs):
    with pytest.raises(OutputError, match=match) as info:
        check_paths(**kwargs)
    assert "\n" not in str(info.value)


def test_an_output_that_is_an_input_by_any_name_is_refused(tree):
    video = tree / "video.mp4"
    (tree / "link.mp4").symlink_to(video)
    os.link(video, tree / "hard.mp4")
    for output in (video, tree / "out" / ".." / "video.mp4", tree / "link.mp4", tree / "hard.mp4"):
        refused("is the input --video", inputs=[("--video", video)], outputs=[("--output", output)])
    # the input reached through a link, the output by its real name
    refused("is the input", inputs=[("--video", tree / "link.mp4")], outputs=[("--output", video)])


def test_two_outputs_on_one_file_are_refused(tree):
    out = tree / "out" / "a.mp4"
    refused(
        "--output .* and --stats-json .* are the same file",
        outputs=[("--output", out), ("--stats-json", tree / "out" / "sub" / ".." / "a.mp4")],
    )


def test_output_folders_that_collide_with_inputs_or_outputs(tree):
    frames = tree / "frames"
    masks = ("--masks", frames, "[0-9]*.png")
    refused("is the input folder --frames", inputs=[("--frames", frames)], output_dirs=[masks])
    # a glob's matches: a file in the folder whose name the masks would take
    refused("holds the input", inputs=[("--frames", frames / "000000.png")], output_dirs=[masks])
    refused(
        "lies in --masks",
        outputs=[("--stats-json", tree / "out" / "000001.png")],
        output_dirs=[("--masks", tree / "out", "[0-9]*.png")],
    )
    refused(
        "write the same file names",
        output_dirs=[("--masks", tree / "out", "[0-9]*.png"), ("--save-frames", tree / "out", "[0-9]*.png")],
    )


def test_what_cannot_collide_is_allowed(tree):
    frames = tree / "frames"
    check_paths(
        inputs=[("--frames", frames / "img_a.png"), ("--video", tree / "video.mp4")],
        outputs=[("--output", tree / "out" / "a.mp4"), ("--stats-json", tree / "out" / "stats.json")],
        output_dirs=[
            ("--masks", tree / "out", "[0-9]*.png"),  # names 000000.png never meet stats.json
            ("--save-frames", tree / "out", "[0-9]*.jpg"),
            ("--snapshot-dir", tree / "out", "rtseg_snapshot_*.png"),
            ("--more", tree / "new" / "deeper", "*"),  # not there yet: created later
        ],
    )
    check_paths(inputs=[None, ("--x", None)], outputs=[None], output_dirs=[("--masks", None, "*")])
    assert not list(tree.rglob(".rtseg-probe-*"))  # the write probe leaves nothing


def test_names_too_long_and_wrong_kinds_are_one_line(tree):
    long = "x" * 300
    refused("file name too long", outputs=[("--output", tree / f"{long}.mp4")])
    refused("file name too long", output_dirs=[("--masks", tree / long)])
    with pytest.raises(InputError, match="file name too long"):
        check_paths(inputs=[("--video", tree / f"{long}.mp4")])
    refused("is a folder, not a file", outputs=[("--output", tree / "out")])
    refused("is a file, not a folder", output_dirs=[("--masks", tree / "video.mp4")])
    refused("/dev/null is a character device, not a folder", output_dirs=[("--out", "/dev/null")])
    refused("cannot create folder", outputs=[("--output", tree / "video.mp4" / "sub" / "a.mp4")])
    refused("cannot write into", outputs=[("--output", tree / "video.mp4" / "a.mp4")])


@pytest.mark.skipif(not Path("/proc/self").is_dir(), reason="needs /proc (not writable, even by root)")
def test_unwritable_folders_are_found_by_a_real_probe():
    refused(r"folder /proc is not writable", outputs=[("-o", Path("/proc/x.onnx"))])
    refused(r"not writable", output_dirs=[("--masks", Path("/proc/masks"))])


def test_case_insensitive_folders_fold_names(tree, monkeypatch):
    monkeypatch.setattr(paths, "_case_insensitive", lambda folder: True)
    refused("are the same file", outputs=[("--a", tree / "out" / "A.json"), ("--b", tree / "out" / "a.json")])


def test_atomic_output_replaces_only_when_complete(tree):
    target = tree / "out" / "stats.json"
    target.write_text("old")
    os.link(target, tree / "out" / "hard.json")  # another name of the old file
    with pytest.raises(RuntimeError), atomic_output(target) as temp:
        temp.write_text("half")
        raise RuntimeError("the writer failed")
    assert target.read_text() == "old" and not list((tree / "out").glob(f"*{TEMP_MARK}*"))
    with pytest.raises(KeyboardInterrupt), atomic_output(target) as temp:
        temp.write_text("half")
        raise KeyboardInterrupt
    assert target.read_text() == "old"
    atomic_write_text(target, "new", durable=True)
    assert target.read_text() == "new"
    assert (tree / "out" / "hard.json").read_text() == "old"  # the link kept the old content
    assert not list((tree / "out").glob(f"*{TEMP_MARK}*"))


def test_staged_file_keeps_the_suffix_and_a_short_name(tree):
    staged = StagedFile(tree / "out" / ("y" * 250 + ".mp4"), keep_suffix=True)
    assert staged.temp.suffix == ".mp4" and len(staged.temp.name.encode()) <= 255
    assert staged.temp.name.startswith(".") and TEMP_MARK in staged.temp.name
    staged.temp.write_bytes(b"mp4")
    assert staged.commit().read_bytes() == b"mp4" and not staged.temp.exists()
    with pytest.raises(OutputError, match="cannot write"):
        StagedFile(tree / "out" / "never.bin").commit()  # nothing was written


def test_staged_folder_replaces_a_package_only_when_whole(tree):
    onnx, sidecar = tree / "out" / "m.onnx", tree / "out" / "m.json"
    onnx.write_text("old onnx")
    sidecar.write_text("old json")
    with pytest.raises(OutputError, match="m.json was not written"), staged_folder(onnx, sidecar) as folder:
        (folder / "m.onnx").write_text("new onnx")
    assert (onnx.read_text(), sidecar.read_text()) == ("old onnx", "old json")
    with staged_folder(onnx, sidecar) as folder:
        (folder / "m.onnx").write_text("new onnx")
        (folder / "m.json").write_text("new json")
    assert (onnx.read_text(), sidecar.read_text()) == ("new onnx", "new json")
    assert sorted(p.name for p in (tree / "out").iterdir()) == ["m.json", "m.onnx"]


def test_sinks_write_images_whole(tree):
    import numpy as np

    from rtseg.video import MaskSink

    with MaskSink(tree / "masks") as sink:
        sink.write(3, np.zeros((4, 6, 3), np.uint8), np.full((4, 6), 7, np.uint8))
    assert [p.name for p in (tree / "masks").iterdir()] == ["000003.png"]


def test_an_unreadable_input_is_one_line_before_anything_opens(tree, monkeypatch):
    import builtins

    real_open = builtins.open

    def denied(path, *args, **kwargs):  # what a non-root user meets on a chmod 000 file
        if Path(path) == tree / "video.mp4":
            raise PermissionError(13, "Permission denied")
        return real_open(path, *args, **kwargs)

    monkeypatch.setattr(builtins, "open", denied)
    with pytest.raises(InputError, match=r"--video .*video\.mp4: cannot read \(Permission denied\)"):
        check_paths(inputs=[("--video", tree / "video.mp4")])


def test_require_file_says_what_stands_there_instead(tmp_path):
    """The one check of a file read whole: a missing path, a folder, a device and a FIFO each
    get their own words (never "does not exist" for something that exists)."""
    from rtseg.core.paths import require_file
    from rtseg.errors import ModelError

    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    regular = tmp_path / "m.onnx"
    regular.write_bytes(b"x")
    assert require_file(regular, "model") == regular
    cases = {
        tmp_path / "missing": "does not exist",
        tmp_path: "is a folder, not a file",
        Path("/dev/null"): "is a character device, not a file",
        fifo: "is a FIFO, not a file",
    }
    for path, words in cases.items():
        with pytest.raises(ModelError) as caught:
            require_file(path, "model", ModelError)
        assert str(caught.value) == f"model {path} {words}"


@pytest.mark.parametrize("kind", ["fifo", "device", "folder"])
def test_a_model_that_is_no_file_is_one_line_on_every_opener(tmp_path, kind):
    """Packages, checkpoints and engines are opened through the same check: no hang on a FIFO,
    no "does not exist" for a device."""
    from rtseg.core.checkpoint import load_checkpoint
    from rtseg.core.package import load_package
    from rtseg.errors import ModelError
    from rtseg.loading import engine_package

    for suffix, opener in ((".onnx", load_package), (".pth", load_checkpoint), (".engine", engine_package)):
        path = tmp_path / f"{kind}{suffix}"
        if kind == "fifo":
            os.mkfifo(path)
        elif kind == "folder":
            path.mkdir()
        else:
            path.symlink_to("/dev/zero")
        with pytest.raises(ModelError, match=r"is a (FIFO|character device|folder)"):
            opener(path)
