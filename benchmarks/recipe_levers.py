"""What each lever of the CamVid recipe bought on val, from the run folders of
`tools/train_camvid_recipe.sh` (its stages select, lever-lite1, lever-ohem, lever-recipe).

    python benchmarks/recipe_levers.py [--runs runs] [--json benchmarks/results/recipe_levers.json]

Per stage found: the val mIoU of the last epoch (what a fixed epoch count ships, not the best
epoch), the val curve, and the training wall time (summed over resumed segments). For the
select run also: its raw weights beside their EMA, and flip TTA (evaluated here, torch backend).
Stages not trained yet are reported as missing. The baseline (the previous bundled recipe:
EfficientNet-Lite0, cross-entropy, scale 0.75-1.75, no EMA, 36 epochs) is `--baseline-miou`.
"""

from __future__ import annotations

import argparse
import json
import platform
import subprocess
import sys
from pathlib import Path

from rtseg.core.checkpoint import load_checkpoint
from rtseg.core.paths import atomic_write_text
from rtseg.errors import RtsegError
from rtseg.evaluation import EvalConfig, evaluate

REPO = Path(__file__).resolve().parent.parent
# (stage, folder, what it adds over the row before it)
LADDER = (
    ("lever-lite1", "camvid_lever_lite1", "EfficientNet-Lite1 in place of Lite0"),
    ("lever-ohem", "camvid_lever_ohem", "+ OHEM cross-entropy"),
    ("lever-recipe", "camvid_lever_recipe", "+ scale 0.5-2.0 and EMA 0.999 (the recipe, 36 epochs)"),
    ("select", "camvid_lite1_fpn_select", "+ 150 epochs in place of 36 (the recipe)"),
)


def wall_minutes(history: list[dict]) -> float:
    """Training minutes summed over segments (`minutes` restarts at each resume)."""
    total, previous = 0.0, 0.0
    for record in history:
        if record["minutes"] < previous:
            total += previous
        previous = record["minutes"]
    return total + previous


def stage_row(folder: Path) -> dict | None:
    """The last epoch's val mIoU, the val curve and wall time of one run folder."""
    last = folder / "last.pth"
    if not last.is_file():
        return None
    payload = load_checkpoint(last)
    history = payload.get("history", [])
    curve = {r["epoch"]: round(r["val_miou"], 4) for r in history if "val_miou" in r}
    epochs = payload.get("config", {}).get("epochs")
    return {
        "epoch": payload.get("epoch"),
        "epochs": epochs,
        "done": payload.get("epoch") == epochs,
        "last_val_miou": curve.get(payload.get("epoch")),
        "val_curve": curve,
        "wall_minutes": round(wall_minutes(history), 1),
    }


def flip_tta_miou(checkpoint: Path, data_root: Path, threads: int) -> float:
    """mIoU on val with flip TTA (torch backend)."""
    options = {"backend": "torch", "flip_tta": True, "threads": threads, "progress": False}
    return evaluate(EvalConfig(str(checkpoint), data_root=str(data_root), **options))["miou"]


def raw_vs_ema(checkpoint: Path, data_root: Path, threads: int) -> dict:
    """tools/eval_raw_weights.py on `checkpoint`: {"ema": mIoU, "raw": mIoU}."""
    command = [sys.executable, str(REPO / "tools" / "eval_raw_weights.py"), str(checkpoint)]
    command += ["--data-root", str(data_root), "--threads", str(threads)]
    out = subprocess.run(command, check=True, capture_output=True, text=True).stdout
    return json.loads(out.strip().splitlines()[-1])


def main() -> None:
    try:
        report(parse_args())
    except (RtsegError, subprocess.CalledProcessError) as exc:  # one line, status 1
        detail = exc.stderr.strip().splitlines()[-1] if getattr(exc, "stderr", None) else exc
        raise SystemExit(f"recipe_levers: {detail}") from None


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=Path, default=REPO / "runs")
    parser.add_argument("--data-root", type=Path, default=REPO.parent / "shared/data/camvid")
    parser.add_argument("--baseline-miou", type=float, default=0.698, help="the previous recipe at epoch 36")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--json", type=Path, default=REPO / "benchmarks/results/recipe_levers.json")
    return parser.parse_args()


def report(args: argparse.Namespace) -> None:
    """Rows of the ladder and select, printed and written to `args.json`."""
    rows = [{"stage": "baseline", "adds": "previous bundled recipe", "last_val_miou": args.baseline_miou}]
    for stage, folder, adds in LADDER:
        row = stage_row(args.runs / folder)
        rows.append({"stage": stage, "adds": adds, **(row or {"missing": True})})
        print(json.dumps({k: v for k, v in rows[-1].items() if k != "val_curve"}), flush=True)
    select = args.runs / "camvid_lite1_fpn_select" / "last.pth"
    extras = {}
    if select.is_file():
        extras["select_raw_vs_ema"] = raw_vs_ema(select, args.data_root, args.threads)
        extras["select_flip_tta_miou"] = flip_tta_miou(select, args.data_root, args.threads)
        print(json.dumps(extras), flush=True)
    result = {"machine": platform.processor() or platform.machine(), "rows": rows, **extras}
    atomic_write_text(args.json, json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
