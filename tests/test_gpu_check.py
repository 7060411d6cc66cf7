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
    if (DATA / "camvid" / "val").is_dir():
        assert sections["agreement"]["result"]["torch_cpu"]["agreement"] >= 0.99
    else:
        assert "CamVid" in sections["agreement"]["reason"]
    if (DATA / "video" / "dashcam_highway_960x540.mp4").is_file():
        run = sections["rtseg_run"]["result"]["mp4"]
        assert run["frames"] == 3 and set(run["busy_ms"]) == {"capture", "infer", "overlay", "sink"}
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
