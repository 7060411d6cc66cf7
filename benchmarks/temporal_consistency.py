"""Temporal consistency of model packages on the real clips: VSPW's TC (DIS flow), the share of
pixels whose class flips between consecutive frames, and the labelled CamVid val clip's mIoU,
each with and without the flow-free temporal filter (rtseg.postprocess.StableIds).

    python benchmarks/temporal_consistency.py [--model PKG ...] [--json results/temporal.json]

Default models: the bundled package the default run takes on this machine (int8ov where
OpenVINO runs) and the FP32 one. Needs ../shared/data.
"""

from __future__ import annotations

import argparse
import json
import platform
from pathlib import Path

from rtseg.core.package import default_model_path
from rtseg.core.paths import atomic_write_text
from rtseg.evaluation import VideoEvalConfig, evaluate_video
from rtseg.loading import resolve_model_path

REPO = Path(__file__).resolve().parent.parent
CLIPS = {
    "dashcam": ("dashcam_highway_960x540.mp4", None),
    "camvid_val_clip": ("camvid_0016E5_val_15fps.mp4", "camvid_0016E5_val_15fps.frames.txt"),
}


def measure(model: Path, data: Path, threads: int) -> list[dict]:
    """One row a clip and filter setting for `model`."""
    rows = []
    for clip, (video, labels) in CLIPS.items():
        for temporal_filter in (False, True):
            result = evaluate_video(
                VideoEvalConfig(
                    model=str(model),
                    video=str(data / "video" / video),
                    labels=None if labels is None else str(data / "video" / labels),
                    label_dir=str(data / "camvid" / "valannot"),
                    temporal_filter=temporal_filter,
                    threads=threads,
                )
            )
            row = {k: result.get(k) for k in ("tc", "flip_share", "pairs", "miou", "backend")}
            rows.append({"model": model.name, "clip": clip, "temporal_filter": temporal_filter, **row})
            print(json.dumps(rows[-1]), flush=True)
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--model",
        type=Path,
        action="append",
        help="model package (repeatable) [default: the package the default run takes here, and the FP32]",
    )
    parser.add_argument("--data", type=Path, default=REPO.parent / "shared/data")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--json", type=Path, default=REPO / "benchmarks/results/temporal.json")
    args = parser.parse_args()
    models = args.model or [resolve_model_path(None, "auto"), default_model_path()]
    rows = [row for model in models for row in measure(model, args.data, args.threads)]
    report = {"machine": platform.processor() or platform.machine(), "rows": rows}
    atomic_write_text(args.json, json.dumps(report, indent=2) + "\n")


if __name__ == "__main__":
    main()
