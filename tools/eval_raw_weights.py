"""What the EMA of the weights buys: score a training checkpoint's raw weights beside its average.

    python tools/eval_raw_weights.py runs/camvid_lite1_fpn_select/last.pth [--flip-tta]

A run trained with `--ema-decay` saves the average as `state_dict` (what deploys) and the raw
weights as `train_state_dict` (what training resumes from). Both are scored on the checkpoint's
own val split with the torch backend; prints one JSON line: {"ema": mIoU, "raw": mIoU, ...}.
"""

from __future__ import annotations

import argparse
import json
import tempfile
from pathlib import Path

from rtseg.core.checkpoint import load_checkpoint, save_checkpoint
from rtseg.errors import ModelError, RtsegError
from rtseg.evaluation import EvalConfig, evaluate

DEPLOY_KEYS = ("model", "labels", "normalization", "input_size")


def score(checkpoint: Path, args: argparse.Namespace) -> dict:
    """`evaluate` on `checkpoint` with the torch backend: mIoU and per-class IoU."""
    cfg = EvalConfig(
        model=str(checkpoint),
        data_root=str(args.data_root),
        split=args.split,
        backend="torch",
        flip_tta=args.flip_tta,
        threads=args.threads,
        limit=args.limit,
        progress=False,
    )
    return evaluate(cfg)


def main() -> None:
    try:
        print(json.dumps(raw_against_ema(parse_args())))
    except RtsegError as exc:  # a missing or foreign file, no data: one line, status 1
        raise SystemExit(f"eval_raw_weights: {exc}") from None


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("checkpoint", type=Path, help="a training checkpoint (last.pth) of an EMA run")
    parser.add_argument("--data-root", type=Path, default=Path("../shared/data/camvid"))
    parser.add_argument("--split", default="val")
    parser.add_argument("--flip-tta", action="store_true")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--limit", type=int, help="the first N images only")
    return parser.parse_args()


def raw_against_ema(args: argparse.Namespace) -> dict:
    """{"checkpoint", "epoch", "flip_tta", "ema": mIoU, "raw": mIoU} of `args.checkpoint`."""
    payload = load_checkpoint(args.checkpoint)  # weights_only=True
    if "train_state_dict" not in payload:
        raise ModelError(f"{args.checkpoint}: no raw weights (train_state_dict): not an EMA run's last.pth")
    result = {"checkpoint": args.checkpoint.name, "epoch": payload.get("epoch"), "flip_tta": args.flip_tta}
    result["ema"] = score(args.checkpoint, args)["miou"]
    with tempfile.TemporaryDirectory() as tmp:
        raw = Path(tmp) / "raw.pth"
        kept = {k: payload[k] for k in DEPLOY_KEYS if k in payload}
        save_checkpoint(raw, {**kept, "state_dict": payload["train_state_dict"]})
        result["raw"] = score(raw, args)["miou"]
    return result


if __name__ == "__main__":
    main()
