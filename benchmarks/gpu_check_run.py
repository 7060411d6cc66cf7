"""The GPU check's end-to-end sections (benchmarks/gpu_check.py): NVDEC / NVENC rates, `rtseg
run` with them at 960x540 and 1920x1080, and agreement of the ids with the CPU."""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
from gpu_check_common import CLIP, REPO, Check, Skip, _bundled, _frames, log


def _run_cli(check: Check, clip: Path, tmp: Path, options: list[str], tag: str) -> dict:
    stats = tmp / f"{tag}.json"
    command = [sys.executable, "-m", "rtseg", "run", "--video", str(clip), "--backend", "torch"]
    command += ["--device", check.device, "--stats-json", str(stats), "-q", *options]
    if not check.gpu:
        command += ["--max-frames", "3"]
    done = subprocess.run(command, cwd=REPO, capture_output=True, text=True, timeout=150)
    if done.returncode != 0:
        raise RuntimeError(f"rtseg run ({tag}) exit {done.returncode}: {done.stderr.strip()[-600:]}")
    result = json.loads(stats.read_text())
    busy = {name: stage["busy_ms_mean"] for name, stage in result["stages"].items()}
    return {
        "frames": result["frames"],
        "e2e_fps": result["fps"],
        "latency_ms": result["latency_ms"],
        "busy_ms": busy,
        "backend": result.get("backend"),
        "source": result.get("source"),  # names the decoder: "h264_cuvid" for NVDEC
        "warnings": [line for line in done.stderr.splitlines() if line.startswith("rtseg: warning:")],
    }


def _clip(check: Check, size_name: str) -> Path:
    from gpu_check_video import SIZES, CodecUnavailable, clip_at

    try:
        return clip_at(check.data / CLIP, SIZES[size_name], check.n(240, 12))
    except CodecUnavailable as exc:
        raise Skip(str(exc)) from exc


def section_video_codecs(check: Check) -> dict:
    from gpu_check_video import CodecUnavailable, codec_rates

    check.need(40)
    try:
        limit = None if check.gpu else 8
        return codec_rates(
            check.data / CLIP, limit, require_gpu_codecs=check.gpu, clip_frames=check.n(240, 12)
        )
    except CodecUnavailable as exc:
        raise Skip(str(exc)) from exc


def section_rtseg_run(check: Check) -> dict:
    _bundled()
    # the NVIDIA codecs asked for by name on a GPU (a fallback would be a warning line, recorded);
    # in the dry mode --decoder nvdec exercises the fallback and --codec auto takes libx264
    gpu_codecs = ["--decoder", "nvdec", "--codec", "h264_nvenc" if check.gpu else "auto"]
    runs = {
        "960x540_cpu_codecs": ("960x540", ["--decoder", "cpu", "--codec", "libx264"]),
        "960x540_nvdec_nvenc": ("960x540", gpu_codecs),
        "1920x1080_cpu_codecs": ("1920x1080", ["--decoder", "cpu", "--codec", "libx264"]),
        "1920x1080_nvdec_nvenc": ("1920x1080", gpu_codecs),
    }
    results = {}
    with tempfile.TemporaryDirectory(prefix="rtseg-gpu-check-") as tmp:
        for tag, (size, codecs) in runs.items():
            check.need(30)
            results[tag] = _run_cli(
                check, _clip(check, size), Path(tmp), ["--output", f"{tmp}/{tag}.mp4", *codecs], tag
            )
            log(f"  rtseg run {tag}: {results[tag]}")
        Path(tmp, "masks").mkdir()
        results["masks"] = _run_cli(
            check, _clip(check, "960x540"), Path(tmp), ["--masks", f"{tmp}/masks"], "masks"
        )
    return results


def _agreement_frames(check: Check, size: tuple[int, int], count: int) -> tuple[np.ndarray, str]:
    """Frames of the dashcam clip, else of CamVid val (or a gradient), and what they are."""
    clip = check.data / CLIP
    if clip.is_file():
        from rtseg.export.calibration import calibration_frames

        return calibration_frames(clip, count, size), clip.name
    return _frames(check, size, count), "camvid val"


def section_agreement(check: Check) -> dict:
    from rtseg.bench.accuracy import agreement, evaluate_miou
    from rtseg.bench.config import DataSpec
    from rtseg.loading import open_model
    from rtseg.runtime.torch_backend import TorchBackend

    check.need(40)
    size, checkpoint, package = _bundled()
    limit = check.n(64, 2)
    frames, what = _agreement_frames(check, size, limit)
    camvid = (check.data / "camvid" / "val").is_dir()
    data = DataSpec("camvid", check.data / "camvid", "val")
    with TorchBackend(checkpoint, device="cpu", input_size=size) as cpu:
        reference = cpu.infer(frames)
    results = {"reference": "torch fp32 on the CPU", "frames": f"{len(frames)} of {what}"}
    engines = {"torch_cuda_fp32": False, "torch_cuda_fp16": True} if check.gpu else {}
    for name, fp16 in engines.items():
        with TorchBackend(checkpoint, device=check.device, input_size=size, fp16=fp16) as backend:
            results[name] = {"agreement": round(agreement(backend.infer(frames), reference), 5)}
            if camvid:
                results[name]["miou"] = evaluate_miou(backend, data, check.n(101, 2))["miou"]
        log(f"  {name} vs torch cpu: {results[name]}")
    if package is not None and not check.gpu:  # the dry mode: a CPU engine against the checkpoint
        with open_model(package.onnx_path, backend="onnxruntime", device="cpu").backend as ort:
            results["onnxruntime_cpu"] = {"agreement": round(agreement(ort.infer(frames), reference), 5)}
    return results
