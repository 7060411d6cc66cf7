"""One prepared check of rtseg on a GPU machine (run through benchmarks/gpu_check.sh).

Sections, each recorded as ok / failed / skipped (with the reason) in OUT/gpu_check.json:
  environment   GPU, driver, CUDA and library versions, which optional modules import
  gpu_tests     the `gpu`-marked tests (pytest -m gpu), counts from their JUnit XML
  torch_backend the torch CUDA backend alone on the bundled checkpoint: latency p50/p90/p99
                (one frame, submit + wait), pipelined fps (two slots in flight), batch-8 fps;
                fp32, fp16 + channels_last, fp16 + CUDA graphs
  video_codecs  NVDEC (h264_cuvid) decode and NVENC (h264_nvenc) encode fps at 960x540 and
                1920x1080 beside the CPU's h264 / libx264 (benchmarks/gpu_check_video.py)
  rtseg_run     `rtseg run --backend torch --device cuda --decoder nvdec --codec h264_nvenc` on
                the dashcam clip at both sizes, and with the CPU codecs: end-to-end fps,
                capture->sink latency, busy ms per stage, the decoder that ran
  agreement     torch CUDA (fp32, fp16) against torch on the CPU (the same checkpoint) on the
                dashcam's frames (CamVid val when present: mIoU too); in the dry mode ONNX
                Runtime's fp32 package where it is there

Only the checkpoint is needed (`gpu_check.sh --slim` sets the ONNX packages aside so that a
device call carries the tree, PyAV's wheel and the clip within 60 MiB: `--plan` prints it).
  cuda_python   the cuda-python memory layer: pinned H2D / D2H bandwidth, graph replay, events
  tensorrt      only where `import tensorrt` works: engine build, latency, agreement

`--allow-cpu` is the dry mode for a machine without a GPU (what CI runs): every section that can
runs on the CPU with a few frames and the GPU-only ones are skipped with the reason. A section
that would overrun the time budget (`--budget`, seconds) is skipped, not cut.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
import traceback
import xml.etree.ElementTree as ET
from pathlib import Path

import numpy as np
from gpu_check_common import REPO, Check, Skip, _bundled, _frames, log
from gpu_check_run import section_agreement, section_rtseg_run, section_video_codecs

OPTIONAL = ("torch", "cupy", "onnxruntime", "onnx", "av", "cv2", "click", "tqdm", "pytest", "tensorrt")


def _importable(name: str) -> str | None:
    try:
        module = __import__(name)
    except Exception as exc:  # noqa: BLE001 - a broken optional module is reported, not raised
        return f"no ({type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''})"
    return str(getattr(module, "__version__", "yes"))


def section_environment(check: Check) -> dict:
    from rtseg.bench.machine import machine_info

    info = {"modules": {name: _importable(name) for name in OPTIONAL}, "machine": machine_info()}
    import torch

    info["torch_cuda"] = torch.version.cuda
    if check.gpu:
        props = torch.cuda.get_device_properties(0)
        info["gpu"] = {
            "name": props.name,
            "compute_capability": f"{props.major}.{props.minor}",
            "memory_gb": round(props.total_memory / 2**30, 1),
            "cudnn": torch.backends.cudnn.version(),
        }
    from rtseg.core.gpu import import_cudart

    cudart = import_cudart()
    if cudart is not None:
        info["cuda_runtime"] = cudart.cudaRuntimeGetVersion()[-1]
        info["cuda_driver"] = cudart.cudaDriverGetVersion()[-1]
    for name, value in info["modules"].items():
        log(f"  {name:<12} {value}")
    return info


def section_gpu_tests(check: Check) -> dict:
    if _importable("pytest").startswith("no"):
        raise Skip("pytest is not installed: bring its wheels (pytest, pluggy, iniconfig, packaging)")
    check.need(60)
    report = check.out / "gpu_tests.xml"
    files = ["tests/test_torch_backend.py", "tests/test_cuda_memory.py", "tests/test_tensorrt_backend.py"]
    command = [sys.executable, "-m", "pytest", "-q", "-m", "gpu", "-p", "no:cacheprovider", *files]
    timeout = max(30.0, min(180.0, check.deadline - time.monotonic() - 120))
    done = subprocess.run(
        [*command, f"--junitxml={report}"], cwd=REPO, capture_output=True, text=True, timeout=timeout
    )
    print(done.stdout[-4000:], done.stderr[-2000:], sep="\n", flush=True)
    suite = ET.parse(report).getroot()
    suite = suite if suite.tag == "testsuite" else suite.find("testsuite")
    counts = {k: int(suite.get(k, 0)) for k in ("tests", "failures", "errors", "skipped")}
    counts["passed"] = counts["tests"] - counts["failures"] - counts["errors"] - counts["skipped"]
    if counts["failures"] or counts["errors"] or done.returncode not in (0, 5):
        raise RuntimeError(f"gpu tests: {counts} (pytest exit {done.returncode})")
    return counts


def _timings(backend, frames: np.ndarray, calls: int) -> dict:
    """Latency of one frame (submit + wait), then pipelined fps with two batches in flight."""
    from rtseg.bench.stats import latency_summary

    for i in range(min(10, calls)):  # warm-up: cudnn autotuning, graph capture
        backend.infer(frames[i % len(frames)][None])
    samples = []
    for i in range(calls):
        start = time.perf_counter()
        backend.submit(frames[i % len(frames)][None]).wait()
        samples.append((time.perf_counter() - start) * 1000)
    start, pending = time.perf_counter(), []
    for i in range(calls):
        pending.append(backend.submit(frames[i % len(frames)][None]))
        if len(pending) == 2:
            pending.pop(0).wait()
    for p in pending:
        p.wait()
    pipelined = calls / (time.perf_counter() - start)
    return {"latency_ms": latency_summary(samples), "pipelined_fps": round(pipelined, 1), "calls": calls}


def section_torch_backend(check: Check) -> dict:
    from rtseg.runtime.torch_backend import TorchBackend

    size, checkpoint, _ = _bundled()
    frames = _frames(check, size, 8)
    variants = {"fp32": (False, False), "fp16": (True, False), "fp16_graphs": (True, True)}
    if not check.gpu:
        variants = {"fp32": (None, False)}
    results, calls = {}, check.n(300, 3)
    for name, (fp16, graphs) in variants.items():
        check.need(20)
        options = {
            "device": check.device,
            "input_size": size,
            "fp16": fp16,
            "cuda_graphs": graphs,
        }
        with TorchBackend(checkpoint, **options) as backend:
            results[name] = {"describe": backend.describe(), **_timings(backend, frames, calls)}
        with TorchBackend(checkpoint, **options, batch=8) as backend:
            batches = max(1, calls // 8)
            backend.infer(frames)
            start = time.perf_counter()
            for _ in range(batches):
                backend.infer(frames)
            results[name]["batch8_fps"] = round(8 * batches / (time.perf_counter() - start), 1)
        log(f"  torch {name}: {results[name]}")
    return results


def section_cuda_python(check: Check) -> dict:
    from rtseg.core.gpu import cuda_device_info, import_cudart
    from rtseg.errors import DeviceError
    from rtseg.runtime.cuda import open_cuda_memory

    if import_cudart() is None:
        raise Skip("cuda-python (cuda-bindings) is not installed")
    try:
        info = cuda_device_info()
    except DeviceError as exc:
        raise Skip(str(exc)) from exc
    nbytes, rounds = (64 << 20, check.n(20, 2))
    with open_cuda_memory("cuda-python") as memory, memory.activate():
        host_in, host_out = memory.host_buffer((nbytes,), np.uint8), memory.host_buffer((nbytes,), np.uint8)
        device, stream, event = memory.device_buffer(nbytes), memory.stream(), memory.event()
        host_in.array[:] = np.arange(nbytes, dtype=np.uint64).astype(np.uint8)
        rates = {}
        for name, copy, args in (
            ("h2d_gbps", memory.copy_to_device, (device, host_in)),
            ("d2h_gbps", memory.copy_to_host, (host_out, device)),
        ):
            start = time.perf_counter()
            for _ in range(rounds):
                copy(*args, nbytes, stream)
            event.record(stream)
            event.synchronize()
            rates[name] = round(nbytes * rounds / (time.perf_counter() - start) / 1e9, 2)
        ok = bool(np.array_equal(host_out.array, host_in.array))
        memory.begin_capture(stream)
        memory.copy_to_device(device, host_in, nbytes, stream)
        memory.copy_to_host(host_out, device, nbytes, stream)
        graph = memory.end_capture(stream)
        host_in.array[:] = 3
        graph.launch(stream)
        stream.synchronize()
        graph_ok = bool((host_out.array == 3).all())
        for item in (graph, host_in, host_out, device, event, stream):
            item.close()
    threaded = _activate_in_thread(memory_factory=lambda: open_cuda_memory("cuda-python"))
    if not (ok and graph_ok and threaded):
        raise RuntimeError(f"copies {ok}, graph replay {graph_ok}, other thread {threaded}")
    return {"gpu": info.name, **rates, "bytes": nbytes, "rounds": rounds, "graph_replay": graph_ok}


def _activate_in_thread(memory_factory) -> bool:
    result = []

    def work():
        with memory_factory() as memory, memory.activate(), memory.stream() as stream:
            stream.synchronize()
            result.append(True)

    thread = threading.Thread(target=work)
    thread.start()
    thread.join(timeout=60)
    return bool(result)


def section_tensorrt(check: Check) -> dict:
    from rtseg.core.package import load_package, variant_path
    from rtseg.engine import BuildConfig, find_or_build_engine
    from rtseg.engine.environment import engine_environment
    from rtseg.errors import RtsegError
    from rtseg.loading import open_model
    from rtseg.runtime.tensorrt_backend import TensorRTBackend

    try:
        env = engine_environment()
    except RtsegError as exc:
        raise Skip(str(exc)) from exc
    check.need(150)
    _, _, package = _bundled()
    if package is None:
        raise Skip("the ONNX packages are set aside (gpu_check.sh --slim); --restore to build an engine")
    fp16 = load_package(variant_path(package.onnx_path, "fp16"))
    frames = _frames(check, package.input_size, 8)
    with tempfile.TemporaryDirectory(prefix="rtseg-trt-") as tmp:
        start = time.perf_counter()
        record = find_or_build_engine(
            fp16, Path(tmp) / "fp16.engine", BuildConfig(max_batch=8), env=env, log=log
        )
        build_s = time.perf_counter() - start
        with TensorRTBackend(record.path, fp16, batch=1, cuda_graphs=True) as backend:
            timing = _timings(backend, frames, check.n(300, 3))
            ids = backend.infer(frames)
    with open_model(package.onnx_path, backend="onnxruntime", device="cpu").backend as ort:
        agree = float((ids == ort.infer(frames)).mean())
    return {"tensorrt": env.trt_version, "build_s": round(build_s, 1), **timing, "agreement_fp32_ort": agree}


SECTIONS = {
    "environment": section_environment,
    "gpu_tests": section_gpu_tests,
    "torch_backend": section_torch_backend,
    "video_codecs": section_video_codecs,
    "rtseg_run": section_rtseg_run,
    "agreement": section_agreement,
    "cuda_python": section_cuda_python,
    "tensorrt": section_tensorrt,
}


def run_section(name: str, function, check: Check) -> dict:
    log(f"[{name}]")
    start = time.monotonic()
    try:
        entry = {"status": "ok", "result": function(check)}
    except Skip as skip:
        entry = {"status": "skipped", "reason": str(skip)}
    except Exception as exc:  # noqa: BLE001 - one section's failure is recorded; the others still run
        traceback.print_exc()
        entry = {"status": "failed", "error": f"{type(exc).__name__}: {str(exc)[:2000]}"}
    entry["seconds"] = round(time.monotonic() - start, 1)
    why = entry.get("reason") or entry.get("error")
    log(f"[{name}] {entry['status']}" + (f": {why}" if why else ""))
    return entry


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", type=Path, default=Path(os.environ.get("OUT") or "gpu_check_out"))
    data = os.environ.get("RTSEG_DATA") or str(REPO.parent / "shared" / "data")
    parser.add_argument("--data", type=Path, default=Path(data), help="shared data (camvid/, video/)")
    parser.add_argument("--allow-cpu", action="store_true", help="dry mode without a GPU (for CI)")
    parser.add_argument("--quick", action="store_true", help="a few iterations per measurement")
    parser.add_argument("--budget", type=float, default=390.0, help="seconds for all sections")
    parser.add_argument("--only", help="comma-separated sections to run (default: all)")
    return parser.parse_args(argv)


def main(argv=None) -> int:
    args = parse_args(argv)
    import torch

    gpu = torch.cuda.is_available()
    if not gpu and not args.allow_cpu:
        log("no CUDA GPU (torch.cuda.is_available() is False); --allow-cpu runs the dry mode")
        return 2
    args.out.mkdir(parents=True, exist_ok=True)
    check = Check(
        args.out, args.data, gpu, args.quick, time.monotonic() + args.budget, "cuda" if gpu else "cpu"
    )
    wanted = args.only.split(",") if args.only else list(SECTIONS)
    report = {
        "mode": "gpu" if gpu else "dry-cpu",
        "started": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "data": str(args.data),
        "sections": {name: run_section(name, SECTIONS[name], check) for name in wanted},
    }
    path = args.out / "gpu_check.json"
    path.write_text(json.dumps(report, indent=2, default=str) + "\n")
    failed = [name for name, entry in report["sections"].items() if entry["status"] == "failed"]
    log(f"wrote {path}; {'failed: ' + ', '.join(failed) if failed else 'no section failed'}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
