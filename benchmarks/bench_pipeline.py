"""How much of the network's speed reaches the viewer: inference alone vs a plain loop vs the pipeline.

In one run, with the same model and backend on the same video:
  (a) inference alone: every frame decoded and resized first, only `backend.infer` timed (batch 1);
  (b) a plain sequential loop: decode -> resize -> infer -> overlay -> encode MP4, one thread;
  (c) the threaded Pipeline (what `rtseg run` runs) writing an MP4.
Prints fps of each and the ratios c/a and c/b; `--json OUT` writes them.

    python benchmarks/bench_pipeline.py --model engines/camvid_effl1_fpn.onnx \\
        --json benchmarks/results/pipeline.json
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np

from rtseg.core.frames import resize_ids
from rtseg.core.package import default_package_for, portable
from rtseg.errors import ModelError, RtsegError
from rtseg.loading import open_model
from rtseg.pipeline import Pipeline, PipelineConfig
from rtseg.video import Mp4Sink, open_source
from rtseg.viz import Visualizer, VizConfig

REPO = Path(__file__).resolve().parent.parent
DEFAULT_VIDEO = REPO.parent / "shared" / "data" / "video" / "dashcam_highway_960x540.mp4"


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--video", type=Path, default=DEFAULT_VIDEO)
    parser.add_argument("--model", type=Path, default=None, help="default: what rtseg run picks")
    parser.add_argument("--backend", default="onnxruntime", choices=("onnxruntime", "torch", "tensorrt"))
    parser.add_argument("--threads", type=int, default=None, help="backend CPU threads")
    parser.add_argument("--json", type=Path, default=None, help="write the results here")
    return parser.parse_args(argv)


def resize(frame: np.ndarray, size_hw: tuple[int, int]) -> np.ndarray:
    """(H, W, 3) uint8 RGB -> (h, w, 3) at the model's input size, bilinear (as the pipeline)."""
    return cv2.resize(frame, (size_hw[1], size_hw[0]), interpolation=cv2.INTER_LINEAR)


def bench_inference(backend, video: Path) -> dict:
    """(a) decode and resize every frame first; time only backend.infer, one frame a call."""
    with open_source(str(video)) as source:
        inputs = [resize(frame, backend.input_size)[None] for frame in source]
    backend.infer(inputs[0])  # warm-up, not timed
    start = time.perf_counter()
    for batch in inputs:
        backend.infer(batch)
    seconds = time.perf_counter() - start
    return {"frames": len(inputs), "seconds": seconds, "fps": len(inputs) / seconds}


def bench_sequential(model, video: Path, out: Path, viz_cfg: VizConfig) -> dict:
    """(b) one thread: decode -> resize -> infer -> upsample + overlay -> encode; timed to the flush."""
    visualizer = Visualizer(viz_cfg, model.classes, model.palette)
    start = time.perf_counter()
    frames = 0
    with open_source(str(video)) as source:
        with Mp4Sink(out, fps=source.fps or 25.0, codec="auto") as sink:
            while (frame := source.read()) is not None:
                ids = model.backend.infer(resize(frame, model.backend.input_size)[None])[0]
                ids_full = resize_ids(ids, frame.shape[:2])
                sink.write(frames, visualizer.render(frame, ids_full), ids_full)
                frames += 1
    seconds = time.perf_counter() - start
    return {"frames": frames, "seconds": seconds, "fps": frames / seconds}


def bench_pipeline(model, video: Path, out: Path, viz_cfg: VizConfig) -> dict:
    """(c) the threaded Pipeline writing an MP4; timed like (b): open to flush."""
    start = time.perf_counter()
    with open_source(str(video)) as source:
        sink = Mp4Sink(out, fps=source.fps or 25.0, codec="auto")
        stats = Pipeline.single(source, model, [sink], PipelineConfig(viz=viz_cfg)).run()
    seconds = time.perf_counter() - start
    return {
        "frames": stats.frames,
        "seconds": seconds,
        "fps": stats.frames / seconds,
        "stats": stats.to_json(),
    }


def machine() -> dict:
    """Where it ran; the 1-minute load average says whether other work shared the CPU."""
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else None
    return {
        "python": platform.python_version(),
        "cpu": platform.processor() or platform.machine(),
        "cpu_count": os.cpu_count(),
        "system": platform.platform(),
        "load_avg_1m": load,
    }


def run(args: argparse.Namespace) -> dict:
    model_path = args.model or default_package_for(args.backend)
    if not model_path.exists():
        raise ModelError(f"no model at {model_path}; pass --model PATH")
    video, load_before = args.video, machine()
    model = open_model(model_path, backend=args.backend, threads=args.threads)
    viz_cfg = VizConfig(mode="overlay", hud=False)
    with model.backend, tempfile.TemporaryDirectory() as tmp:
        a = bench_inference(model.backend, video)
        b = bench_sequential(model, video, Path(tmp) / "sequential.mp4", viz_cfg)
        c = bench_pipeline(model, video, Path(tmp) / "pipeline.mp4", viz_cfg)
        backend = model.backend.describe()
    return {
        "video": str(video),
        "model": str(model_path),
        "backend": backend,
        "machine": load_before,
        "inference_alone": a,
        "sequential_loop": b,
        "pipeline": c,
        "ratio_pipeline_over_inference": c["fps"] / a["fps"],
        "ratio_pipeline_over_sequential": c["fps"] / b["fps"],
    }


def print_table(result: dict) -> None:
    host = result["machine"]
    print(
        f"video:   {result['video']}\nmodel:   {result['model']}\nbackend: {result['backend']} "
        f"(load average before: {host['load_avg_1m']:.1f} on {host['cpu_count']} cpus)"
    )
    print(f"{'':<34}{'frames':>7}{'seconds':>9}{'fps':>8}")
    for key, label in (
        ("inference_alone", "(a) inference alone"),
        ("sequential_loop", "(b) sequential decode..encode"),
        ("pipeline", "(c) rtseg pipeline"),
    ):
        row = result[key]
        print(f"{label:<34}{row['frames']:>7}{row['seconds']:>9.2f}{row['fps']:>8.1f}")
    print(
        f"c/a = {result['ratio_pipeline_over_inference']:.2f}   "
        f"c/b = {result['ratio_pipeline_over_sequential']:.2f}"
    )
    stats = result["pipeline"]["stats"]
    busy = ", ".join(f"{n} {s['busy_ms_mean']:.1f}" for n, s in stats["stages"].items())
    print(
        f"pipeline busy ms/frame: {busy}; latency mean {stats['latency_ms']['mean']:.0f} ms, "
        f"p95 {stats['latency_ms']['p95']:.0f} ms"
    )


def main(argv=None) -> int:
    args = parse_args(argv)
    try:
        result = run(args)
    except RtsegError as exc:
        print(f"bench_pipeline: error: {exc}", file=sys.stderr)
        return 1
    print_table(result)
    if args.json is not None:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(portable(result), indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
