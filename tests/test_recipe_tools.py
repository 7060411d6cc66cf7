"""The recipe's measuring tools: benchmarks/recipe_levers.py (run folders -> figures) and
tools/eval_raw_weights.py (an EMA run's raw weights beside the average)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import make_tiny_checkpoint

from rtseg.core.checkpoint import load_checkpoint, save_checkpoint

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "benchmarks"))
import recipe_levers  # noqa: E402


def test_wall_minutes_adds_up_resumed_segments():
    history = [{"minutes": m} for m in (2.0, 4.0, 6.5, 1.5, 3.0, 0.5, 1.0)]
    assert recipe_levers.wall_minutes(history) == pytest.approx(6.5 + 3.0 + 1.0)
    assert recipe_levers.wall_minutes([]) == 0.0


def test_stage_row_reports_the_last_epoch_not_the_best(tmp_path):
    history = [
        {"epoch": 1, "minutes": 1.0},
        {"epoch": 2, "minutes": 2.0, "val_miou": 0.60},
        {"epoch": 3, "minutes": 0.5},  # resumed
        {"epoch": 4, "minutes": 1.5, "val_miou": 0.55},
    ]
    save_checkpoint(tmp_path / "last.pth", {"epoch": 4, "config": {"epochs": 4}, "history": history})
    row = recipe_levers.stage_row(tmp_path)
    assert row["done"] and row["epoch"] == 4
    assert row["last_val_miou"] == 0.55 and row["val_curve"] == {2: 0.60, 4: 0.55}
    assert row["wall_minutes"] == 3.5
    assert recipe_levers.stage_row(tmp_path / "absent") is None


def _raw_tool(*args: str) -> subprocess.CompletedProcess:
    command = [sys.executable, str(REPO / "tools" / "eval_raw_weights.py"), *args]
    return subprocess.run(command, capture_output=True, text=True, timeout=300)


def test_raw_weights_tool_refuses_a_checkpoint_without_them(tmp_path):
    checkpoint = make_tiny_checkpoint(tmp_path / "plain.pth")
    result = _raw_tool(str(checkpoint))
    assert result.returncode == 1
    assert "no raw weights (train_state_dict)" in result.stderr and "Traceback" not in result.stderr


@pytest.mark.data
def test_raw_weights_tool_scores_both_weight_sets(tmp_path, data_dir):
    payload = load_checkpoint(make_tiny_checkpoint(tmp_path / "ema.pth", input_size=(360, 480)))
    other = load_checkpoint(make_tiny_checkpoint(tmp_path / "other.pth", input_size=(360, 480), seed=1))
    save_checkpoint(tmp_path / "ema.pth", {**payload, "train_state_dict": other["state_dict"], "epoch": 7})
    result = _raw_tool(str(tmp_path / "ema.pth"), "--data-root", str(data_dir / "camvid"), "--limit", "2")
    assert result.returncode == 0, result.stderr
    scores = json.loads(result.stdout.strip().splitlines()[-1])
    assert scores["epoch"] == 7 and 0.0 <= scores["ema"] <= 1.0 and 0.0 <= scores["raw"] <= 1.0
    assert scores["ema"] != scores["raw"]  # two random initialisations: not the same weights scored twice
