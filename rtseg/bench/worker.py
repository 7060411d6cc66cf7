"""One combination, measured in a fresh process: `python -m rtseg.bench.worker SPEC OUT`.

A fresh process per combination keeps peaks apart: `peak_rss_mb` is this process's peak
resident set (interpreter + libraries + model + activations, i.e. what a deployment of that
combination needs; see peak_rss_mb) read right after the batch-1 timing, and again after the
larger batch, before the accuracy run.
Modes: "measure" (timing, memory, accuracy, predictions for agreement), "predict"
(predictions only, for a reference), "e2e" (the Pipeline over a video).
"""

from __future__ import annotations

import json
import os
import resource
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

from rtseg.bench.config import DataSpec
from rtseg.bench.frames import resize_frames
from rtseg.bench.stats import latency_summary, throughput_fps
from rtseg.errors import RtsegError


def peak_rss_mb() -> float:
    """This process's peak resident set size so far, in MiB.

    Linux: `VmHWM` of /proc/self/status, the high-water mark of this process's own address
    space. Not `ru_maxrss`: Linux carries it over exec from the process that forked us, so a
    worker started by a parent holding 600 MB would report 600 MB. Elsewhere: `ru_maxrss`."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024  # kB
    except (OSError, ValueError, IndexError):
        pass
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / 2**20 if sys.platform == "darwin" else peak / 1024  # bytes on macOS, KiB else


def gpu_memory_mb() -> float | None:
    """GPU memory in use, in MiB: this process's share from nvidia-smi, else (containers often
    hide PIDs from nvidia-smi) the device's used memory from cuda-python; None without either."""
    exe = shutil.which("nvidia-smi")
    if exe is not None:
        try:
            out = subprocess.run(
                [exe, "--query-compute-apps=pid,used_memory", "--format=csv,noheader,nounits"],
                capture_output=True,
                text=True,
                timeout=20,
                check=True,
            ).stdout
        except (subprocess.SubprocessError, OSError):
            out = ""
        for line in out.strip().splitlines():
            pid, _, used = (p.strip() for p in line.partition(","))
            if pid == str(os.getpid()) and used.replace(".", "", 1).isdigit():
                return float(used)
    return _device_memory_used_mb()


def _device_memory_used_mb() -> float | None:
    try:
        from cuda.bindings import runtime as cudart  # cuda-python >= 12.6
    except ImportError:
        try:
            from cuda import cudart  # older cuda-python
        except ImportError:
            return None
    err, free, total = cudart.cudaMemGetInfo()  # cuda-python returns (error, *outputs)
    return (total - free) / 2**20 if err == cudart.cudaError_t.cudaSuccess else None


def open_for_bench(spec: dict):
    """A LoadedModel for the spec through rtseg.loading.open_model, as a run opens it: eager
    PyTorch from the checkpoint at the spec's size, or the ONNX package on its backend."""
    from rtseg.loading import open_model

    size, device = tuple(spec["size"]), spec.get("device", "auto")
    if spec["backend"] == "torch":
        batch = max(1, spec.get("batch", 1))  # its slots hold the largest batch measured
        return open_model(spec["checkpoint"], "torch", spec["threads"], device, batch=batch, input_size=size)
    model = open_model(spec["package"], backend=spec["backend"], threads=spec["threads"], device=device,
                       precision=spec.get("openvino_precision"))  # fmt: skip
    if tuple(model.backend.input_size) != size:
        raise RtsegError(f"{spec['package']} takes {model.backend.input_size}, expected {size}")
    return model


def model_bytes(spec: dict) -> int:
    """ONNX file size; for eager PyTorch, the bytes of the checkpoint's weights (state_dict)."""
    if spec["backend"] == "torch":
        from rtseg.core.checkpoint import load_checkpoint

        state = load_checkpoint(spec["checkpoint"])["state_dict"].values()
        return int(sum(t.numel() * t.element_size() for t in state))
    return Path(spec["package"]).stat().st_size


def time_calls(backend, batches: list[np.ndarray], iters: int, warmup: int) -> tuple[list[float], float]:
    """(wall milliseconds per `backend.infer` call over `iters` calls after `warmup` untimed
    ones, cycling through the prepared `(B, h, w, 3) uint8` batches; the process's CPU
    milliseconds per call over the same calls, every thread counted: an engine's cost to the
    other work on the machine)."""
    for i in range(warmup):
        backend.infer(batches[i % len(batches)])
    times = []
    cpu_start = time.process_time()
    for i in range(iters):
        batch = batches[i % len(batches)]
        start = time.perf_counter()
        backend.infer(batch)
        times.append((time.perf_counter() - start) * 1000.0)
    return times, (time.process_time() - cpu_start) * 1000.0 / max(1, iters)


def _batches(pool: np.ndarray, batch: int) -> list[np.ndarray]:
    count = max(1, len(pool) // batch)
    idx = np.arange(count * batch) % len(pool)
    return [np.ascontiguousarray(pool[idx[i * batch : (i + 1) * batch]]) for i in range(count)]


def _timing_row(backend, pool, batch, spec) -> dict:
    times, cpu_ms = time_calls(backend, _batches(pool, batch), spec["iters"], spec["warmup"])
    return {
        "batch": batch,
        "status": "ok",
        "reason": None,
        "latency_ms": latency_summary(times),
        "cpu_ms_per_call": round(cpu_ms, 2),
        "infer_fps": throughput_fps(times, batch),
        "peak_rss_mb": round(peak_rss_mb(), 1),
        "gpu_mem_mb": gpu_memory_mb() if backend.runs_on != "cpu" else None,
    }


def measure(spec: dict) -> dict:
    """Timing at batch 1 (and `spec["batch"]` where the backend allows), memory, accuracy."""
    from rtseg.bench.accuracy import evaluate_miou, predict_frames
    from rtseg.core.checkpoint import seen_in_training
    from rtseg.loading import training_of

    started = time.perf_counter()
    model = open_for_bench(spec)
    load_s = time.perf_counter() - started
    with model.backend as backend:
        pool = resize_frames(np.load(spec["frames"]), tuple(spec["size"]))
        rows = [_timing_row(backend, pool, 1, spec)]
        big = spec["batch"]
        if big > 1 and backend.max_batch >= big:
            rows.append(_timing_row(backend, pool, big, spec))
        elif big > 1:
            rows.append(
                {
                    "batch": big,
                    "status": "skipped",
                    "reason": f"the {spec['backend']} model takes at most batch {backend.max_batch}",
                }
            )
        result = {
            "rows": rows,
            "load_s": load_s,
            "model_bytes": model_bytes(spec),
            "describe": backend.describe(),
            "device": backend.runs_on,
            "miou": None,
        }
        if spec.get("data"):
            data = DataSpec(**spec["data"])
            result["miou"] = evaluate_miou(backend, data, spec.get("data_limit"))
            seen = seen_in_training(training_of(model), data.name, data.split, data.root)
            result["miou"]["seen_in_training"] = seen
        if spec.get("preds_out"):
            np.save(spec["preds_out"], predict_frames(backend, pool))
    return result


def predict(spec: dict) -> dict:
    from rtseg.bench.accuracy import predict_frames

    with open_for_bench(spec).backend as backend:
        pool = resize_frames(np.load(spec["frames"]), tuple(spec["size"]))
        np.save(spec["preds_out"], predict_frames(backend, pool))
    return {}


def end_to_end(spec: dict) -> dict:
    """Run the Pipeline over the video (decode + infer + overlay + encode): its stats."""
    from rtseg.bench.e2e import run_pipeline

    model = open_for_bench(spec)
    try:
        return run_pipeline(
            model, Path(spec["video"]), spec["e2e_output"], spec.get("e2e_path"), spec.get("decoder")
        )
    finally:
        model.backend.close()


MODES = {"measure": measure, "predict": predict, "e2e": end_to_end}


def main(argv: list[str]) -> int:
    spec_path, out_path = argv
    spec = json.loads(Path(spec_path).read_text())
    try:
        result = {"status": "ok", **MODES[spec["mode"]](spec)}
    except RtsegError as exc:
        result = {"status": "failed", "reason": str(exc)}
    Path(out_path).write_text(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
