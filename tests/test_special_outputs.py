"""Outputs that are not regular files: standard output (`-`), devices, FIFOs, terminals and
symlinks to them are written in place and never replaced by a regular file; block devices and
sockets are refused before anything runs (rtseg.core.targets, through rtseg.core.paths)."""

from __future__ import annotations

import json
import os
import socket
import stat
import subprocess
import sys
import threading
from pathlib import Path

import pytest
from band_model import make_band_package
from conftest import REPO

from rtseg.core import targets
from rtseg.core.paths import atomic_output, atomic_write_text, check_paths, staged_folder
from rtseg.errors import OutputError

ROOT = os.geteuid() == 0


@pytest.fixture(scope="module")
def band_package(tmp_path_factory):
    return make_band_package(tmp_path_factory.mktemp("band"), height=64, width=96)


def _read_fifo(path: Path, into: list) -> threading.Thread:
    def read():
        with open(path, "rb") as fh:
            into.append(fh.read())

    thread = threading.Thread(target=read, daemon=True)
    thread.start()
    return thread


def _mode(path: Path) -> int:
    return stat.S_IFMT(os.lstat(path).st_mode)


@pytest.mark.parametrize("through_link", [False, True])
def test_a_fifo_gets_the_bytes_and_stays_a_fifo(tmp_path, through_link):
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    target = fifo
    if through_link:
        target = tmp_path / "stats.json"
        target.symlink_to(fifo)
    got: list = []
    reader = _read_fifo(fifo, got)
    check_paths(outputs=[("--stats-json", target)])
    atomic_write_text(target, '{"a": 1}\n')
    reader.join(10)
    assert got == [b'{"a": 1}\n']
    assert _mode(fifo) == stat.S_IFIFO
    assert _mode(target) == (stat.S_IFLNK if through_link else stat.S_IFIFO)
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []


def test_writers_that_stage_a_file_write_a_fifo_in_place(tmp_path):
    """atomic_output (checkpoints, plots) and staged_folder (packages) place through one door."""
    fifo = tmp_path / "plot.png"
    os.mkfifo(fifo)
    got: list = []
    reader = _read_fifo(fifo, got)
    with atomic_output(fifo, keep_suffix=True) as temp:
        temp.write_bytes(b"png bytes")
    reader.join(10)
    assert got == [b"png bytes"] and _mode(fifo) == stat.S_IFIFO
    reader = _read_fifo(fifo, got)
    with staged_folder(fifo) as folder:
        (folder / fifo.name).write_bytes(b"again")
    reader.join(10)
    assert got[-1] == b"again" and _mode(fifo) == stat.S_IFIFO


def test_a_fifo_without_reader_is_a_bounded_wait(tmp_path, monkeypatch):
    monkeypatch.setattr(targets, "FIFO_WAIT_S", 0.2)
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    with pytest.raises(OutputError, match="no process opened this FIFO for reading"):
        atomic_write_text(fifo, "{}")
    assert _mode(fifo) == stat.S_IFIFO


def test_a_terminal_is_written_in_place(tmp_path):
    leader, follower = os.openpty()
    try:
        name = os.ttyname(follower)
        atomic_write_text(name, "hello\n")
        assert os.read(leader, 100).replace(b"\r", b"") == b"hello\n"
        assert stat.S_ISCHR(os.stat(name).st_mode)
    finally:
        os.close(leader)
        os.close(follower)


def test_a_symlink_to_a_file_stays_a_symlink(tmp_path):
    real = tmp_path / "real" / "stats.json"
    real.parent.mkdir()
    real.write_text("old")
    link = tmp_path / "stats.json"
    link.symlink_to(real)
    atomic_write_text(link, "new")
    assert link.is_symlink() and real.read_text() == "new"


@pytest.mark.skipif(not ROOT, reason="mknod needs root")
def test_character_devices_are_written_in_place(tmp_path):
    null, full = tmp_path / "null", tmp_path / "full"
    os.mknod(null, stat.S_IFCHR | 0o666, os.makedev(1, 3))
    os.mknod(full, stat.S_IFCHR | 0o666, os.makedev(1, 7))
    atomic_write_text(null, "{}")
    with pytest.raises(OutputError, match="disk full"):
        atomic_write_text(full, "{}")
    assert _mode(null) == _mode(full) == stat.S_IFCHR


def test_block_devices_and_sockets_are_refused_before_anything_runs(tmp_path):
    sock_path = tmp_path / "s.json"
    with socket.socket(socket.AF_UNIX) as sock:
        sock.bind(str(sock_path))
        with pytest.raises(OutputError, match="is a socket"):
            check_paths(outputs=[("--stats-json", sock_path)])
    if ROOT:
        disk = tmp_path / "disk"
        os.mknod(disk, stat.S_IFBLK | 0o600, os.makedev(7, 0))
        with pytest.raises(OutputError, match="is a block device"):
            check_paths(outputs=[("--report-json", disk)])


def test_two_outputs_on_standard_output_are_refused():
    with pytest.raises(OutputError, match="are the same file"):
        check_paths(outputs=[("--stats-json", "-"), ("--json", "/dev/stdout")])
    with pytest.raises(OutputError, match="standard output is not a folder"):
        check_paths(output_dirs=[("--masks", "-")])


def test_dash_is_standard_output_and_keeps_it_for_the_json(tmp_path, tiny_video, band_package):
    """`rtseg run --stats-json -`: stdout holds the JSON alone (the summary goes to stderr)."""
    run = subprocess.run(
        [
            sys.executable,
            "-m",
            "rtseg",
            "run",
            "--video",
            str(tiny_video),
            "--model",
            str(band_package.onnx_path),
        ]
        + ["--max-frames", "3", "--stats-json", "-"],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        env={**os.environ, "PYTHONPATH": str(REPO)},
        timeout=120,
    )
    assert run.returncode == 0, run.stderr
    assert json.loads(run.stdout)["frames"] == 3
    assert "frames in" in run.stderr
    assert not (tmp_path / "-").exists()
