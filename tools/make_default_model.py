"""Build the bundled model packages in engines/ from a trained checkpoint, and measure them.

    python tools/make_default_model.py --checkpoint runs/camvid_lite1_fpn_final/last.pth

Writes `engines/NAME.pth` (weights only, loads with weights_only=True; NAME defaults to
rtseg.core.package.DEFAULT_MODEL), the FP32 package `NAME.onnx`, and its variants `_fp16`
(float16 graph), `_int8` (TensorRT Q/DQ rules: symmetric int8, per-channel weights), `_int8cpu`
(Q/DQ tuned for ONNX Runtime's CPU provider) and `_int8ov` (NNCF, for OpenVINO's CPU plugin).
Each sidecar gets `metrics`: CamVid val mIoU and per-class IoU, ms per frame on ONNX Runtime
and on OpenVINO (CPU, `--threads`), argmax agreement with FP32 on the dashcam video; `rtseg run`
picks the fastest variant within the accuracy targets from these
(rtseg.core.package.pick_default_variant on ONNX Runtime, pick_openvino_variant on OpenVINO).
Writes `engines/metrics.json` with everything measured. Uses only the public API.
"""

from __future__ import annotations

import argparse
import json
import platform
import shutil
import statistics
import time
from pathlib import Path

import numpy as np
import torch

from rtseg.core.checkpoint import load_checkpoint, save_checkpoint
from rtseg.core.package import (
    DEFAULT_MODEL,
    OPENVINO_INT8,
    load_package,
    portable,
    variant_path,
    write_sidecar,
)
from rtseg.evaluation import EvalConfig, evaluate
from rtseg.export.calibration import calibration_frames
from rtseg.export.int8 import Int8Options
from rtseg.export.int8_openvino import quantize_int8_openvino
from rtseg.export.precision import ExportConfig, argmax_agreement, export_model
from rtseg.loading import open_model

REPO = Path(__file__).resolve().parent.parent
KEEP = ("model", "labels", "normalization", "input_size", "state_dict", "epoch", "val", "config")


def slim_checkpoint(src: Path, dst: Path) -> None:
    """Weights and description only (no optimizer state)."""
    payload = load_checkpoint(src)
    kept = {k: payload[k] for k in KEEP if k in payload}
    if "config" in kept:  # the training folders by name: the bundled file does not show where it was made
        kept["config"] = portable(kept["config"])
    save_checkpoint(dst, kept)


def cpu_ms_per_frame(
    onnx_path: Path, frames: np.ndarray, threads: int, iters: int, engine: str = "onnxruntime"
) -> float:
    """Median ms of one CPU call on `engine` at batch 1 over `iters` calls (after warm-up)."""
    backend = open_model(onnx_path, backend=engine, threads=threads).backend
    for frame in frames[:5]:
        backend.infer(frame[None])
    times = []
    for i in range(iters):
        frame = frames[i % len(frames)][None]
        start = time.perf_counter()
        backend.infer(frame)
        times.append((time.perf_counter() - start) * 1000)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--checkpoint", type=Path, default=REPO / "runs/camvid_lite1_fpn_final/last.pth")
    parser.add_argument("--data", type=Path, default=REPO.parent / "shared/data")
    parser.add_argument("--out", type=Path, default=REPO / "engines")
    parser.add_argument("--name", default=DEFAULT_MODEL)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--iters", type=int, default=100)
    parser.add_argument("--calib-frames", type=int, default=64)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    camvid = args.data / "camvid"
    video = args.data / "video" / "dashcam_highway_960x540.mp4"
    ckpt = args.out / f"{args.name}.pth"
    if args.checkpoint.resolve() != ckpt.resolve():
        slim_checkpoint(args.checkpoint, ckpt)
    fp32_onnx = args.out / f"{args.name}.onnx"
    common = dict(
        checkpoint=ckpt,
        parity_source=f"camvid:{camvid}:val",
        parity_frames=16,
        calib_source=f"camvid:{camvid}:train",
        calib_frames=args.calib_frames,
    )
    variants = {
        "fp32": ExportConfig(output=fp32_onnx, precision="fp32", **common),
        "fp16": ExportConfig(output=variant_path(fp32_onnx, "fp16"), precision="fp16", **common),
        "int8": ExportConfig(output=variant_path(fp32_onnx, "int8"), precision="int8", **common),
        "int8cpu": ExportConfig(
            output=variant_path(fp32_onnx, "int8cpu"),
            precision="int8",
            int8=Int8Options(target="cpu"),
            **common,
        ),
    }
    results = {}
    for name, cfg in variants.items():
        started = time.time()
        result = export_model(cfg, log=print)
        print(f"{name}: {result.parity.line()} ({time.time() - started:.0f} s)")
        results[name] = result
    size = results["fp32"].package.input_size
    packages = {name: result.package for name, result in results.items()}
    packages["int8ov"] = quantize_int8_openvino(
        packages["fp32"],
        variant_path(fp32_onnx, OPENVINO_INT8),
        calibration_frames(common["calib_source"], args.calib_frames, size),
        calib_source=common["calib_source"],
    )
    val_frames = calibration_frames(f"camvid:{camvid}:val", 20, size)
    video_frames = calibration_frames(str(video), 32, size) if video.is_file() else val_frames
    report = {
        "machine": {
            "cpu": platform.processor() or platform.machine(),
            "cores": __import__("os").cpu_count(),
            "threads": args.threads,
        },
        "checkpoint": {"epoch": load_checkpoint(ckpt).get("epoch")},
        "variants": {},
    }
    for name, package in packages.items():
        scores = evaluate(
            EvalConfig(
                model=str(package.onnx_path),
                data_root=str(camvid),
                split="val",
                backend="openvino" if name == "int8ov" else "onnxruntime",
                threads=args.threads,
                progress=False,
            )
        )
        ms = cpu_ms_per_frame(package.onnx_path, val_frames, args.threads, args.iters)
        ov_ms = cpu_ms_per_frame(package.onnx_path, val_frames, args.threads, args.iters, "openvino")
        agreement = argmax_agreement(fp32_onnx, package.onnx_path, video_frames, args.threads)
        metrics = {
            "val_miou": scores["miou"],
            "val_pixel_acc": scores["pixel_acc"],
            "val_per_class": scores["per_class"],
            "val_seen_in_training": scores["seen_in_training"],  # then val compares packages only
            "cpu_ms_per_frame": ms,
            "openvino_ms_per_frame": ov_ms,
            "threads": args.threads,
            "video_agreement_vs_fp32": agreement,
            "parity_vs_torch": results[name].parity.argmax_agreement if name in results else None,
        }
        write_sidecar(package.onnx_path, {**package.meta, "metrics": metrics})
        report["variants"][name] = {
            "onnx": package.onnx_path.name,
            "precision": package.precision,
            "bytes": package.onnx_path.stat().st_size,
            **metrics,
        }
        print(
            f"{name}: mIoU {100 * scores['miou']:.2f}  {ms:.1f} ms/frame  "
            f"agreement vs fp32 on video {100 * agreement:.2f}%"
        )
    (args.out / "metrics.json").write_text(json.dumps(portable(report), indent=2) + "\n")
    load_package(fp32_onnx)  # the sidecars still verify
    shutil.rmtree(args.out / "__pycache__", ignore_errors=True)


if __name__ == "__main__":
    main()
