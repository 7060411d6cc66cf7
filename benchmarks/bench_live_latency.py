"""Capture-to-display latency of the live path on a live stand-in at 30 fps.

The stand-in is FFmpeg's lavfi `testsrc2` at 640x480, 30 fps, paced at its own rate like a
camera (newest frame wins, drops counted). Two runs with the same model and backend:
  no_window: the Pipeline writing to a NullSink (the overlay is still rendered, as for a
      recording); the latency figure is capture -> sink.
  window: the Pipeline showing an OpenCV window (needs DISPLAY; skipped otherwise): the
      latency figure is capture -> display, the frame shown on the main thread.
Prints fps, drops and latency mean / p95 of each; `--json OUT` writes them.

    python benchmarks/bench_live_latency.py --model engines/camvid_effl1_fpn.onnx \\
        --json benchmarks/results/live_latency.json
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
from pathlib import Path

import numpy as np

from rtseg.core.package import default_package_for, portable
from rtseg.errors import ModelError, RtsegError
from rtseg.loading import open_model
from rtseg.pipeline import Pipeline, PipelineConfig
from rtseg.video import NullSink, WindowDisplay, display_available, open_source
from rtseg.viz import VizConfig

DEFAULT_SOURCE = "lavfi:testsrc2=size=640x480:rate=30"


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", type=Path, default=None, help="default: what rtseg run picks")
    parser.add_argument("--backend", default="onnxruntime", choices=("onnxruntime", "torch", "tensorrt"))
    parser.add_argument("--threads", type=int, default=None, help="backend CPU threads")
    parser.add_argument("--source", default=DEFAULT_SOURCE, help="a live source URI (lavfi, camera)")
    parser.add_argument("--seconds", type=float, default=20.0, help="length of each run")
    parser.add_argument("--no-window", action="store_true", help="skip the window run")
    parser.add_argument("--json", type=Path, default=None, help="write the results here")
    return parser.parse_args(argv)


def source_uri(base: str, seconds: float) -> str:
    """A lavfi graph gets a duration (the run ends by itself); other sources run as given."""
    return f"{base}:duration={seconds:g}" if base.startswith("lavfi:") else base


def figures(stats) -> dict:
    """The live figures of one run, from PipelineStats."""
    data = stats.to_json()
    sink, shown = data["latency_ms"], data["display_latency_ms"]
    return {
        "frames_read": data["frames_read"],
        "frames": data["frames"],
        "dropped": data["dropped"],
        "drop_rate": round(data["dropped"] / max(data["frames_read"], 1), 3),
        "fps": data["fps"],
        "display_fps": data["display_fps"],
        "displayed": data["displayed"],
        "capture_to_sink_ms": {"mean": sink["mean"], "p95": sink["p95"]},
        "capture_to_display_ms": None if shown is None else {"mean": shown["mean"], "p95": shown["p95"]},
        "infer_busy_ms_mean": data["stages"]["infer"]["busy_ms_mean"],
        "stats": data,
    }


def run_once(model, uri: str, window: bool) -> dict:
    """One live run; the window variant renders and shows every frame on this (main) thread."""
    viz = VizConfig(mode="overlay", hud=window)
    with open_source(uri) as source:
        if window:
            with WindowDisplay("rtseg live latency") as display:
                stats = Pipeline.single(source, model, [], PipelineConfig(viz=viz), display=display).run()
        else:
            stats = Pipeline.single(source, model, [NullSink()], PipelineConfig(viz=viz)).run()
    result = figures(stats)
    result["source"] = stats.source
    return result


def machine() -> dict:
    """Where it ran; the 1-minute load average says whether other work shared the CPU."""
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else None
    return {
        "python": platform.python_version(),
        "cpu": platform.processor() or platform.machine(),
        "cpu_count": os.cpu_count(),
        "system": platform.platform(),
        "load_avg_1m": load,
        "display": os.environ.get("DISPLAY"),
    }


def run(args: argparse.Namespace) -> dict:
    model_path = args.model or default_package_for(args.backend)
    if not model_path.exists():
        raise ModelError(f"no model at {model_path}; pass --model PATH")
    model = open_model(model_path, backend=args.backend, threads=args.threads)
    uri = source_uri(args.source, args.seconds)
    result = {"source": uri, "model": str(model_path), "machine": machine(), "runs": {}}
    with model.backend as backend:
        height, width = backend.input_size
        backend.infer(np.zeros((1, height, width, 3), np.uint8))  # warm-up, not measured
        result["backend"] = backend.describe()
        result["model_input"] = f"{width}x{height}"
        result["runs"]["no_window"] = run_once(model, uri, window=False)
        if args.no_window:
            result["window_skipped"] = "--no-window"
        elif not display_available():
            result["window_skipped"] = "no display (DISPLAY unset or OpenCV without GUI)"
        else:
            result["runs"]["window"] = run_once(model, uri, window=True)
    result["machine_after"] = machine()
    return result


def print_table(result: dict) -> None:
    print(
        f"source:  {result['source']}\nmodel:   {result['model']} ({result['model_input']})\n"
        f"backend: {result['backend']} (load average before: "
        f"{result['machine']['load_avg_1m']:.1f} on {result['machine']['cpu_count']} cpus)"
    )
    print(f"{'run':<10}{'read':>6}{'shown':>7}{'dropped':>9}{'fps':>7}   latency ms (mean / p95)")
    for name, row in result["runs"].items():
        figure, what = row["capture_to_display_ms"], "capture->display"
        if figure is None:
            figure, what = row["capture_to_sink_ms"], "capture->sink"
        fps = row["display_fps"] if row["displayed"] else row["fps"]
        shown = row["displayed"] if row["displayed"] else row["frames"]
        print(
            f"{name:<10}{row['frames_read']:>6}{shown:>7}{row['dropped']:>9}{fps:>7.1f}   "
            f"{figure['mean']:.0f} / {figure['p95']:.0f} ({what})"
        )
    if "window_skipped" in result:
        print(f"window run skipped: {result['window_skipped']}")


def main(argv=None) -> int:
    args = parse_args(argv)
    try:
        result = run(args)
    except RtsegError as exc:
        print(f"bench_live_latency: error: {exc}", file=sys.stderr)
        return 1
    print_table(result)
    if args.json is not None:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(portable(result), indent=2) + "\n")
        print(f"wrote {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
