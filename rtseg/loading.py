"""`open_model`: a model file -> a ready backend plus what the pipeline needs to draw its output.

This is the one place that decides which backend runs a model and, for TensorRT, finds the
engine matching the package on this GPU or builds it (rtseg.engine), above both the backends
(rtseg.runtime) and the engine builder, which do not know about each other.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from rtseg.core.package import ModelPackage, load_package
from rtseg.errors import BackendError, MissingDependencyError, ModelError
from rtseg.runtime.base import Backend

BACKENDS = ("onnxruntime", "torch", "tensorrt")
CHECKPOINT_SUFFIXES = (".pth", ".pt")
ENGINE_SUFFIXES = (".engine", ".plan")


@dataclass(frozen=True)
class LoadedModel:
    """A backend plus what the pipeline needs to draw its output."""

    backend: Backend
    classes: list[str]
    palette: np.ndarray  # (num_classes, 3) uint8 RGB
    source: Path
    package: ModelPackage | None = None


def _checkpoint_for(package: ModelPackage) -> Path:
    source = (package.meta.get("source") or {}).get("checkpoint")
    if not source:
        raise ModelError(f"{package.sidecar_path}: names no source checkpoint for the torch backend")
    path = Path(source)
    if not path.is_absolute():
        path = package.sidecar_path.parent / path
    if not path.is_file():
        raise ModelError(f"{package.sidecar_path}: its checkpoint {path} does not exist")
    return path


def open_tensorrt_backend(
    package: ModelPackage,
    engine_path: str | Path | None = None,
    batch: int = 1,
    build_config=None,
    log: Callable[[str], None] | None = None,
):
    """The TensorRT backend for `package`: reuses the matching engine beside it or builds one.

    Raises MissingDependencyError without TensorRT or cuda-python/pycuda, DeviceError without a
    GPU (checked before anything touches trt.Builder or trt.Runtime).
    """
    from rtseg.engine import BuildConfig, engine_environment, find_or_build_engine
    from rtseg.runtime.cuda import available_memory_implementations
    from rtseg.runtime.tensorrt_backend import TensorRTBackend

    env = engine_environment()
    if not available_memory_implementations():
        raise MissingDependencyError("cuda-python (or pycuda)", "trt", "the TensorRT backend")
    log = log or (lambda line: print(f"rtseg: {line}", file=sys.stderr))
    config = build_config or BuildConfig(max_batch=max(batch, BuildConfig().max_batch))
    record = find_or_build_engine(package, engine_path, config, env=env, log=log)
    return TensorRTBackend(record.path, package, batch=batch)


def open_model(
    model: str | Path,
    backend: str = "onnxruntime",
    threads: int | None = None,
    providers="cpu",
    batch: int = 1,
) -> LoadedModel:
    """Open `model` (a package `.onnx`/`.json`, a checkpoint `.pth`/`.pt`, or an `.engine`).

    batch: the largest batch the caller will pass; TensorRT sizes its buffers for it (up to the
    engine's profile), the other backends take any batch."""
    path = Path(model)
    if backend not in BACKENDS:
        raise BackendError(f"unknown backend {backend!r}; choose from {', '.join(BACKENDS)}")
    if path.suffix in CHECKPOINT_SUFFIXES:
        if backend != "torch":
            raise ModelError(
                f"{path} is a checkpoint: use --backend torch, or export it first with 'rtseg export'"
            )
        from rtseg.runtime.torch_backend import TorchBackend

        b = TorchBackend(path, threads=threads)
        return LoadedModel(b, list(b.classes), b.palette, path)
    if path.suffix in ENGINE_SUFFIXES:
        if backend != "tensorrt":
            raise ModelError(f"{path} is a TensorRT engine: use --backend tensorrt")
        path = path.with_suffix(".onnx")
    package = load_package(path)
    if backend == "onnxruntime":
        from rtseg.runtime.onnxruntime_backend import OnnxRuntimeBackend

        b = OnnxRuntimeBackend(package, providers=providers, threads=threads)
    elif backend == "torch":
        from rtseg.runtime.torch_backend import TorchBackend

        b = TorchBackend(_checkpoint_for(package), threads=threads, input_size=package.input_size)
    else:
        b = open_tensorrt_backend(package, batch=batch)
    return LoadedModel(b, package.classes, package.palette, package.onnx_path, package)
