"""Which engine `--backend auto` runs a model package on, on a CPU: OpenVINO where it is installed
and passes its probe (rtseg.runtime.openvino_probe) on this package, else ONNX Runtime.

A fallback says why in one `rtseg: warning:` line on stderr, once per process and reason.
"""

from __future__ import annotations

import platform
from pathlib import Path

from rtseg.core.notices import warn_once
from rtseg.core.user_cache import cache_dir
from rtseg.runtime.openvino_probe import openvino_version, probe_openvino

# Where `pip install rtseg` brings OpenVINO (setup.py's environment marker): a missing one there
# is worth a warning; elsewhere ONNX Runtime is the engine that installs.
OPENVINO_PLATFORMS = ("x86_64", "AMD64")
_failed: list[str] = []  # why OpenVINO failed a probe in this process: not probed again


def gpu_runtime_present() -> bool:
    """Whether ONNX Runtime here is a GPU build (onnxruntime-gpu) with an NVIDIA device to run
    on: then `auto` keeps ONNX Runtime, which picks its TensorRT / CUDA provider. Read from the
    installed distributions, importing nothing (onnxruntime's import is slow, and a signal
    during it must reach the command)."""
    from importlib import metadata

    from rtseg.core.gpu import nvidia_device_present

    try:
        metadata.version("onnxruntime-gpu")
    except metadata.PackageNotFoundError:
        return False
    return nvidia_device_present()


def _probe_target(model: str | Path | None) -> Path | None:
    """The package ONNX the probe compiles: the model's, or the bundled default for OpenVINO."""
    from rtseg.core.package import default_package_for, load_package
    from rtseg.errors import ModelError

    try:
        return load_package(model if model is not None else default_package_for("openvino")).onnx_path
    except ModelError:
        return None  # open_model reports a bad package itself


def cpu_engine(model: str | Path | None = None) -> str:
    """ "openvino" or "onnxruntime" for `model` (a package .onnx/.json; None: the bundled one)."""
    if openvino_version() is None:
        if platform.machine() in OPENVINO_PLATFORMS:
            warn_once("openvino is not installed (pip install openvino): running on ONNX Runtime, slower")
        return "onnxruntime"
    target = _probe_target(model)
    if target is None or _failed:
        return "onnxruntime"
    verdict = probe_openvino(target, cache_dir())
    if not verdict.healthy:
        _failed.append(verdict.reason)
        warn_once(f"OpenVINO is not used: {verdict.reason}; running on ONNX Runtime")
        return "onnxruntime"
    return "openvino"
