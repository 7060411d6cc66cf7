"""The command line's own errors: a malformed option is one line with status 2; a path option
never checks the file system itself, so a missing or unreadable file is rtseg's one line with
status 1, also for root without DAC override (a container's usual root, simulated with capsh)."""

from __future__ import annotations

import importlib
import os
import shutil
import subprocess
import sys

import click
import pytest
from click.testing import CliRunner
from conftest import REPO

from rtseg.cli import COMMANDS, main


def command_params():
    for name, (module, attr, _) in COMMANDS.items():
        for param in getattr(importlib.import_module(module), attr).params:
            yield name, param


def test_no_path_option_checks_the_file_system_itself():
    """click's own checks answer 'Invalid value ... is not readable' with a usage block and
    status 2 where rtseg answers one line and status 1 (and click's os.access is wrong for a
    root without DAC override)."""
    checked = []
    for name, param in command_params():
        kind = param.type
        assert not isinstance(kind, click.File), f"rtseg {name} {param.name}: click.File"
        if isinstance(kind, click.Path) and (
            kind.exists or kind.readable or kind.writable or kind.executable
        ):
            checked.append(f"rtseg {name} {param.name}")
    assert checked == []


@pytest.mark.parametrize(
    "args, says",
    [
        (["run", "--video", "x.mp4", "--max-frames", "abc"], "Invalid value for '--max-frames'"),
        (["run", "--bogus"], "No such option '--bogus'"),
        (["nocmd"], "No such command 'nocmd'"),
        (["--bogus"], "No such option '--bogus'"),
        (["eval", "--video"], "Option '--video' requires an argument"),
    ],
)
def test_a_malformed_command_line_is_one_line_with_status_2(args, says):
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 2
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("rtseg: error: ") and says in lines[0], result.output


def test_rtseg_alone_still_shows_its_help():
    result = CliRunner().invoke(main, [])
    assert "Commands:" in result.output


def unprivileged(command: list[str]) -> list[str]:
    """`command` as a user the permission bits apply to: as is for a normal user; for root,
    under capsh without the DAC capabilities (skips when capsh is missing)."""
    if os.geteuid() != 0:
        return command
    capsh = shutil.which("capsh")
    if capsh is None:
        pytest.skip("root without capsh (libcap2-bin): cannot drop DAC override")
    inner = " ".join(f"'{part}'" for part in command)
    return [capsh, "--drop=cap_dac_override,cap_dac_read_search", "--", "-c", inner]


@pytest.mark.slow
def test_unreadable_files_are_one_line_and_status_1(tmp_path, tiny_video, tiny_package):
    video, model, closed = tmp_path / "v.mp4", tmp_path / "m.onnx", tmp_path / "closed"
    shutil.copy(tiny_video, video)
    shutil.copy(tiny_package.onnx_path, model)
    shutil.copy(tiny_package.onnx_path.with_suffix(".json"), model.with_suffix(".json"))
    closed.mkdir()
    video.chmod(0)
    model.chmod(0)
    closed.chmod(0)
    ok_video = str(tiny_video)
    cases = [
        (["run", "--video", video, "--masks", tmp_path / "o"], f"--video {video}: cannot read"),
        (["run", "--video", ok_video, "--model", model, "--masks", tmp_path / "o"], "--model"),
        (["eval", "--video", video, "--model", tiny_package.onnx_path], f"--video {video}: cannot read"),
        (["run", "--video", ok_video, "--stats-json", closed / "s.json"], "cannot reach (Permission denied)"),
        (["batch", video, "--out", tmp_path / "b"], "cannot read (Permission denied)"),
    ]
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    for args, says in cases:
        command = unprivileged([sys.executable, "-m", "rtseg", *map(str, args)])
        done = subprocess.run(command, capture_output=True, text=True, env=env, cwd=REPO, timeout=120)
        assert done.returncode == 1, (args, done.stderr)
        lines = done.stderr.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("rtseg: error: ") and says in lines[0], done.stderr
