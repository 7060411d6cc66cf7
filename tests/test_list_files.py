"""List files (`rtseg batch @list.txt`, `rtseg eval --video-labels`): pipes are read, endless or
huge ones (/dev/zero, a video named by mistake) are one line, never a MemoryError."""

from __future__ import annotations

import os

import numpy as np
import pytest
from click.testing import CliRunner
from conftest import write_video

from rtseg.cli import main
from rtseg.core import list_files
from rtseg.errors import InputError


def test_a_pipe_is_read_and_an_endless_file_is_refused(monkeypatch, tmp_path):
    read, write = os.pipe()
    os.write(write, b"a.mp4\nb.mp4\n")
    os.close(write)
    assert list_files.read_list_bytes(f"/dev/fd/{read}", "@list") == b"a.mp4\nb.mp4\n"
    os.close(read)
    monkeypatch.setattr(list_files, "MAX_LIST_BYTES", 1 << 20)
    with pytest.raises(InputError, match="@/dev/zero: over 1 MiB, not a list of names"):
        list_files.read_list_bytes("/dev/zero", "@/dev/zero")


@pytest.mark.skipif(not os.path.exists("/dev/zero"), reason="no /dev/zero")
def test_endless_lists_are_one_line(tmp_path, tiny_package, monkeypatch):
    monkeypatch.setattr(list_files, "MAX_LIST_BYTES", 1 << 20)
    video = write_video(tmp_path / "clip.mp4", np.zeros((2, 64, 96, 3), np.uint8))
    model = str(tiny_package.onnx_path)
    cases = [
        (["batch", "@/dev/zero", "--out", str(tmp_path / "seg"), "--model", model], "@/dev/zero: over"),
        (
            ["eval", "--model", model, "--video", str(video), "--video-labels", "/dev/zero"],
            "label list /dev/zero: over",
        ),
        (["eval", "--model", model, "--video", "/dev/zero"], "--video /dev/zero: not a regular file"),
    ]
    for args, says in cases:
        result = CliRunner().invoke(main, args)
        assert result.exit_code == 1 and result.stderr.count("\n") == 1 and says in result.stderr, (
            result.output
        )
