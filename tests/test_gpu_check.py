"""benchmarks/gpu_check.sh in its dry mode (--allow-cpu): the script runs end to end on a CPU,
writes its JSON and log, skips the GPU-only parts with the reason, and installs wheels brought
along with pip --no-index (a hand-made wheel here)."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
from conftest import DATA, REPO

SCRIPT = REPO / "benchmarks" / "gpu_check.sh"


def _run(*args: str, env: dict | None = None, timeout: int = 600) -> subprocess.CompletedProcess:
    full = {**os.environ, "RTSEG_DATA": str(DATA), "PYTHON": sys.executable, **(env or {})}
    return subprocess.run(
        ["bash", str(SCRIPT), *args], capture_output=True, text=True, env=full, timeout=timeout
    )


def _probe_wheel(folder: Path) -> Path:
    """A minimal pure-Python wheel, `gpu_check_probe` 0.1 (no network needed to install it)."""
    folder.mkdir()
    wheel = folder / "gpu_check_probe-0.1-py3-none-any.whl"
    info = "gpu_check_probe-0.1.dist-info"
    files = {
        "gpu_check_probe/__init__.py": "VALUE = 42\n",
        f"{info}/METADATA": "Metadata-Version: 2.1\nName: gpu_check_probe\nVersion: 0.1\n",
        f"{info}/WHEEL": "Wheel-Version: 1.0\nGenerator: test\nRoot-Is-Purelib: true\nTag: py3-none-any\n",
    }
    with zipfile.ZipFile(wheel, "w") as archive:
        for name, text in files.items():
            archive.writestr(name, text)
        archive.writestr(f"{info}/RECORD", "".join(f"{name},,\n" for name in [*files, f"{info}/RECORD"]))
    return wheel


@pytest.mark.slow
def test_dry_mode_runs_everything_a_cpu_can_and_skips_the_rest(tmp_path):
    out = tmp_path / "out"
    done = _run(
        "--allow-cpu", "--quick", "--out", str(out), "--wheels", str(_probe_wheel(tmp_path / "wheels").parent)
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-2000:]
    report = json.loads((out / "gpu_check.json").read_text())
    log = (out / "gpu_check.log").read_text()
    assert report["mode"] == "dry-cpu" and "gpu_check: wrote" in log
    sections = report["sections"]
    assert set(sections) == {
        "environment",
        "gpu_tests",
        "torch_backend",
        "video_codecs",
        "rtseg_run",
        "agreement",
        "cuda_python",
        "tensorrt",
    }
    assert all(entry["status"] in ("ok", "skipped") for entry in sections.values()), sections
    assert sections["environment"]["result"]["modules"]["torch"]
    tests = sections["gpu_tests"]["result"]
    assert tests["tests"] > 0 and tests["skipped"] == tests["tests"]  # every gpu test skips itself
    assert sections["torch_backend"]["result"]["fp32"]["calls"] == 3
    assert sections["tensorrt"]["status"] == "skipped" and "tensorrt" in sections["tensorrt"]["reason"]
    assert sections["cuda_python"]["status"] == "skipped"
    assert sections["agreement"]["result"]["onnxruntime_cpu"]["agreement"] >= 0.99  # vs torch on the CPU
    if (DATA / "video" / "dashcam_highway_960x540.mp4").is_file():
        runs = sections["rtseg_run"]["result"]
        run = runs["960x540_cpu_codecs"]
        assert run["frames"] == 3 and set(run["busy_ms"]) == {"capture", "infer", "overlay", "sink"}
        fallback = runs["1920x1080_nvdec_nvenc"]  # no NVDEC here: the CPU decoder, one warning line
        assert fallback["frames"] == 3 and "1920x1080" in fallback["source"]
        assert len(fallback["warnings"]) == 1 and "NVDEC (h264_cuvid) cannot open" in fallback["warnings"][0]
        codecs = sections["video_codecs"]["result"]["1920x1080"]
        assert codecs["decode"]["nvdec"]["decoder"] == "h264" and codecs["decode"]["cpu"]["frames"] == 8
        assert codecs["encode"]["libx264"]["opened"] and not codecs["encode"]["h264_nvenc"]["opened"]
    installed = re.search(r"== installed: (.*)", log).group(1).split()
    assert "gpu_check_probe" in installed  # the wheel brought along, installed without an index


@pytest.mark.slow
def test_without_a_gpu_and_without_allow_cpu_it_says_so(tmp_path):
    pytest.importorskip("torch")
    import torch

    if torch.cuda.is_available():
        pytest.skip("this machine has a CUDA GPU")
    done = _run("--out", str(tmp_path), timeout=300)
    assert done.returncode == 2
    assert "no CUDA GPU" in done.stdout and "--allow-cpu" in done.stdout
    assert (tmp_path / "gpu_check.log").is_file()


def _repo_copy(tmp_path: Path) -> Path:
    """A git repository holding the check's scripts and two bundled files (one ONNX)."""
    repo = tmp_path / "repo"
    (repo / "benchmarks").mkdir(parents=True)
    (repo / "engines").mkdir()
    for name in ("gpu_check.sh", "gpu_carry.py"):
        (repo / "benchmarks" / name).write_bytes((REPO / "benchmarks" / name).read_bytes())
    (repo / "engines" / "m.onnx").write_bytes(b"\0" * (3 << 20))
    (repo / "engines" / "m.pth").write_bytes(b"\1" * (1 << 20))
    subprocess.run(["git", "init", "-q", str(repo)], check=True)
    subprocess.run(["git", "-C", str(repo), "add", "."], check=True)
    return repo


def _carry(repo: Path, *args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHON": sys.executable}
    script = repo / "benchmarks" / "gpu_check.sh"
    return subprocess.run(["bash", str(script), *args], capture_output=True, text=True, env=env, timeout=60)


def test_plan_counts_the_tree_and_the_wheels_and_fails_above_the_limit(tmp_path):
    repo = _repo_copy(tmp_path)
    wheels = tmp_path / "wheels"
    wheels.mkdir()
    (wheels / "av-18.1.0-cp311-abi3-manylinux_2_28_x86_64.whl").write_bytes(b"\2" * (2 << 20))
    done = _carry(repo, "--plan", "--wheels", str(wheels), "--limit-mib", "6.5")
    assert done.returncode == 0, done.stdout + done.stderr
    assert re.search(r"wheels +2\.0 MiB in 1 files", done.stdout), done.stdout
    assert re.search(r"total 6\.0 MiB of 6\.5 MiB: fits", done.stdout), done.stdout
    done = _carry(repo, "--plan", "--wheels", str(wheels), "--limit-mib", "5")
    assert done.returncode == 1 and "does not fit" in done.stdout


def test_slim_sets_the_onnx_aside_uncarried_and_restore_puts_it_back(tmp_path):
    repo = _repo_copy(tmp_path)
    done = _carry(repo, "--slim")
    assert done.returncode == 0 and "engines/m.onnx" in done.stdout, done.stdout + done.stderr
    assert not (repo / "engines" / "m.onnx").exists() and (repo / "engines" / "m.pth").is_file()
    done = _carry(repo, "--plan", "--limit-mib", "60")
    assert "working tree    " in done.stdout and "m.onnx" not in done.stdout  # the aside folder is ignored
    assert re.search(r"working tree +1\.0 MiB", done.stdout), done.stdout
    done = _carry(repo, "--restore")
    assert done.returncode == 0 and (repo / "engines" / "m.onnx").stat().st_size == 3 << 20
    assert not (repo / ".gpu_check_aside").exists()
