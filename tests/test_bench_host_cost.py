"""benchmarks/bench_host_cost.py on the tiny model and clip: it runs and reports every figure."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
from conftest import REPO

SCRIPT = REPO / "benchmarks" / "bench_host_cost.py"


@pytest.mark.slow
def test_host_cost_script_reports_stages_limit_pipeline_and_ceiling(tiny_package, tiny_video, tmp_path):
    out = tmp_path / "host_cost.json"
    done = subprocess.run(
        [sys.executable, str(SCRIPT), "--video", str(tiny_video), "--model", str(tiny_package.onnx_path)]
        + ["--frames", "10", "--upscale", "320x240", "--threads", "1", "--json", str(out)],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stderr
    result = json.loads(out.read_text())
    stages = result["stages"]
    assert stages["frames"] == 10 and stages["frame_size"] == [320, 240]
    assert set(stages["cpu_ms_per_frame"]) == {"decode", "resize", "infer", "overlay", "encode"}
    assert result["limit_fps"] > 0 and stages["inference_fps"] > 0
    assert result["pipeline"]["frames"] == 10 and result["pipeline"]["fps"] > 0
    assert result["ceiling"]["frames"] == 10 and "null backend" in result["ceiling"]["backend"]
    assert 0 < result["pipeline_share_of_limit"] and result["pipeline"]["output_bytes"] > 0
    assert "| sum |" in done.stdout and "host ceiling" in done.stdout


def test_host_cost_script_rejects_a_bad_size(tmp_path):
    done = subprocess.run(
        [sys.executable, str(SCRIPT), "--upscale", "big", "--json", str(tmp_path / "x.json")],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode != 0 and "WxH" in done.stderr
