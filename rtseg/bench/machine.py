"""What a benchmark ran on: CPU, cores, memory, GPU and driver, library versions.

Versions come from installed package metadata (importlib.metadata), so recording them imports
neither torch nor TensorRT.
"""

from __future__ import annotations

import os
import platform
import shutil
import subprocess
from importlib import metadata
from pathlib import Path

# name in the record -> distribution names that provide it, first installed one wins
LIBRARIES = {
    "numpy": ("numpy",),
    "torch": ("torch",),
    "onnxruntime": ("onnxruntime", "onnxruntime-gpu", "onnxruntime-openvino"),
    "openvino": ("openvino",),
    "onnx": ("onnx",),
    "av": ("av",),
    "opencv": ("opencv-python", "opencv-python-headless", "opencv-contrib-python"),
    "tensorrt": ("tensorrt", "tensorrt-cu13", "tensorrt-cu12"),
    "matplotlib": ("matplotlib",),
}
# CPU features that decide int8 / fp16 speed on the CPU
CPU_FLAGS = (
    "avx2",
    "fma",
    "avx512f",
    "avx512_vnni",
    "avx_vnni",
    "avx512_bf16",
    "amx_int8",
    "amx_bf16",
    "asimd",
    "asimddp",
)


def library_versions() -> dict[str, str | None]:
    """{library: version or None when not installed}, plus python and rtseg."""
    from rtseg import __version__

    versions: dict[str, str | None] = {"python": platform.python_version(), "rtseg": __version__}
    for name, dists in LIBRARIES.items():
        versions[name] = None
        for dist in dists:
            try:
                versions[name] = metadata.version(dist)
                break
            except metadata.PackageNotFoundError:
                continue
    return versions


def _cpuinfo(path: Path = Path("/proc/cpuinfo")) -> tuple[str | None, int | None, list[str]]:
    """(model name, physical cores, selected flags) from /proc/cpuinfo; Nones off Linux."""
    try:
        text = path.read_text()
    except OSError:
        return None, None, []
    model, flags, cores = None, set(), set()
    physical_id = "0"
    for line in text.splitlines():
        key, _, value = (part.strip() for part in line.partition(":"))
        if key == "model name" and model is None:
            model = value
        elif key in ("flags", "Features") and not flags:
            flags = set(value.split())
        elif key == "physical id":
            physical_id = value
        elif key == "core id":
            cores.add((physical_id, value))
    return model, (len(cores) or None), [f for f in CPU_FLAGS if f in flags]


def _memory_gb() -> float | None:
    try:
        return round(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30, 1)
    except (ValueError, OSError, AttributeError):
        return None


def gpus() -> list[dict[str, str]]:
    """[{"name", "driver", "memory_mb"}] from nvidia-smi; [] without an NVIDIA GPU."""
    exe = shutil.which("nvidia-smi")
    if exe is None:
        return []
    try:
        out = subprocess.run(
            [exe, "--query-gpu=name,driver_version,memory.total", "--format=csv,noheader,nounits"],
            capture_output=True,
            text=True,
            timeout=20,
            check=True,
        ).stdout
    except (subprocess.SubprocessError, OSError):
        return []
    found = []
    for line in out.strip().splitlines():
        parts = [p.strip() for p in line.split(",")]
        if len(parts) >= 2:
            found.append(
                {"name": parts[0], "driver": parts[1], "memory_mb": parts[2] if len(parts) > 2 else None}
            )
    return found


def machine_info(threads: int | None = None) -> dict:
    """JSON-ready description of this machine; `threads` is what the benchmark was given."""
    model, physical, flags = _cpuinfo()
    return {
        "cpu": model or platform.processor() or platform.machine(),
        "cpu_flags": flags,
        "logical_cores": os.cpu_count(),
        "physical_cores": physical,
        "usable_cores": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None,
        "threads": threads,
        "ram_gb": _memory_gb(),
        "os": platform.platform(),
        "gpus": gpus(),
        "versions": library_versions(),
    }


def machine_summary(machine: dict) -> str:
    """One line, e.g. "Intel Xeon ... (2 cores, 2 threads), 8 GB, no GPU; onnxruntime 1.31.1"."""
    gpu = ", ".join(f"{g['name']} (driver {g['driver']})" for g in machine.get("gpus") or [])
    versions = machine.get("versions") or {}
    libs = ", ".join(
        f"{k} {versions[k]}"
        for k in ("onnxruntime", "openvino", "torch", "tensorrt", "python")
        if versions.get(k)
    )
    cores = machine.get("usable_cores") or machine.get("logical_cores")
    return (
        f"{machine.get('cpu')} ({cores} cores, {machine.get('threads')} threads), "
        f"{machine.get('ram_gb')} GB RAM, {gpu or 'no GPU'}; {libs}"
    )
