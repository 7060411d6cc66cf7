#!/usr/bin/env python
"""The loop a user would write, beside `rtseg run` on the same model and clip (the README's
comparison; benchmarks/run_readme_bench.py runs it after the bench):

    OpenCV VideoCapture -> resize -> ONNX Runtime -> colour the ids -> resize back ->
    cv2.addWeighted -> cv2.VideoWriter, one Python thread, nothing overlapped.

    python benchmarks/plain_loop.py [--video CLIP] [--model PACKAGE.onnx] [--threads N]
        [--max-frames N] [--json OUT.json]

Also runs `rtseg run` on the same clip: with `--backend onnxruntime` and the same model (the
same engine, so the difference is the pipeline), and with the defaults (`--backend auto`, the
bundled package it picks: the engine too). Prints and writes {plain_loop, rtseg_same_model,
rtseg_default, ratios}: fps end to end and CPU seconds of each.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from rtseg.core.package import DEFAULT_MODEL

REPO = Path(__file__).resolve().parent.parent
DATA = Path(os.environ.get("RTSEG_DATA", REPO.parent / "shared" / "data"))


def _children_cpu_s() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def plain_loop(video: Path, model: Path, threads: int, max_frames: int | None, out: Path) -> dict:
    """Frames per second and CPU seconds of the one-thread loop (module doc) into `out` (MP4V)."""
    import cv2
    import onnxruntime as ort

    meta = json.loads(model.with_suffix(".json").read_text())
    height, width = meta["input"]["height"], meta["input"]["width"]
    palette_bgr = np.array(meta["palette"], np.uint8)[:, ::-1]
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    session = ort.InferenceSession(str(model), options, providers=["CPUExecutionProvider"])
    name = session.get_inputs()[0].name
    capture = cv2.VideoCapture(str(video))
    fps = capture.get(cv2.CAP_PROP_FPS) or 25.0
    writer, frames = None, 0
    cpu_start, start = time.process_time(), time.perf_counter()
    while max_frames is None or frames < max_frames:
        ok, frame = capture.read()
        if not ok:
            break
        small = cv2.cvtColor(
            cv2.resize(frame, (width, height), interpolation=cv2.INTER_AREA), cv2.COLOR_BGR2RGB
        )
        ids = session.run(None, {name: small[None]})[0][0].astype(np.uint8)
        colours = cv2.resize(
            palette_bgr[ids], (frame.shape[1], frame.shape[0]), interpolation=cv2.INTER_NEAREST
        )
        blended = cv2.addWeighted(frame, 0.5, colours, 0.5, 0.0)
        if writer is None:
            fourcc = cv2.VideoWriter_fourcc(*"mp4v")
            writer = cv2.VideoWriter(str(out), fourcc, fps, (frame.shape[1], frame.shape[0]))
        writer.write(blended)
        frames += 1
    wall = time.perf_counter() - start
    capture.release()
    if writer is not None:
        writer.release()
    cpu = time.process_time() - cpu_start
    return {
        "frames": frames,
        "fps": round(frames / wall, 2),
        "wall_s": round(wall, 3),
        "cpu_s": round(cpu, 3),
    }


def rtseg_run(video: Path, options: list[str], max_frames: int | None, out: Path) -> dict:
    """`python -m rtseg run` on `video` into `out` with `options`: its stats, and CPU seconds."""
    stats = out.with_suffix(".json")
    command = [sys.executable, "-m", "rtseg", "run", "--video", str(video), "--output", str(out)]
    command += ["--stats-json", str(stats), "-q", *options]
    command += ["--max-frames", str(max_frames)] if max_frames else []
    before = _children_cpu_s()
    done = subprocess.run(command, cwd=REPO, capture_output=True, text=True)
    if done.returncode != 0:
        raise SystemExit(f"plain_loop: rtseg run failed: {done.stderr.strip()[-800:]}")
    result = json.loads(stats.read_text())
    cpu = _children_cpu_s() - before
    return {
        "frames": result["frames"],
        "fps": result["fps"],
        "backend": result["backend"],
        "cpu_s": round(cpu, 3),
    }


def compare(video: Path, model: Path, threads: int, max_frames: int | None) -> dict:
    with tempfile.TemporaryDirectory(prefix="rtseg-plain-loop-") as tmp:
        plain = plain_loop(video, model, threads, max_frames, Path(tmp) / "plain.mp4")
        same = ["--model", str(model), "--backend", "onnxruntime", "--threads", str(threads)]
        ours = rtseg_run(video, same, max_frames, Path(tmp) / "same.mp4")
        default = rtseg_run(video, ["--threads", str(threads)], max_frames, Path(tmp) / "default.mp4")
    return {
        "video": video.name,
        "model": model.name,
        "threads": threads,
        "plain_loop": plain,
        "rtseg_same_model": ours,
        "rtseg_default": default,
        "ratios": {
            "rtseg_same_model_vs_plain": round(ours["fps"] / plain["fps"], 3),
            "rtseg_default_vs_plain": round(default["fps"] / plain["fps"], 3),
        },
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--video", type=Path, default=DATA / "video" / "dashcam_highway_960x540.mp4")
    parser.add_argument("--model", type=Path, default=REPO / "engines" / f"{DEFAULT_MODEL}_int8cpu.onnx")
    parser.add_argument("--threads", type=int, default=min(4, os.cpu_count() or 1))
    parser.add_argument("--max-frames", type=int)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args(argv)
    result = compare(args.video, args.model, args.threads, args.max_frames)
    print(json.dumps(result, indent=2))
    if args.json:
        args.json.write_text(json.dumps(result, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
