"""Backends behind one interface, and `open_backend` to pick one for a model path."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from rtseg.errors import BackendError, ModelError
from rtseg.package import ModelPackage, load_package
from rtseg.runtime.base import Backend

BACKENDS = ("onnxruntime", "torch", "tensorrt")


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


def open_model(
    model: str | Path, backend: str = "onnxruntime", threads: int | None = None, providers="cpu"
) -> LoadedModel:
    """Open `model` (a package `.onnx`/`.json`, a checkpoint `.pth`/`.pt`, or an `.engine`).

    An `.engine` (TensorRT) is used as given, with the package recorded in its sidecar
    `NAME.engine.json` (or `NAME.json` beside it); a package `.onnx` on TensorRT reuses or builds
    the engine beside it (see rtseg.engine)."""
    path = Path(model)
    if backend not in BACKENDS:
        raise BackendError(f"unknown backend {backend!r}; choose from {', '.join(BACKENDS)}")
    if path.suffix in (".pth", ".pt"):
        if backend != "torch":
            raise ModelError(
                f"{path} is a checkpoint: use --backend torch, or export it first with 'rtseg export'"
            )
        from rtseg.runtime.torch_backend import TorchBackend

        b = TorchBackend(path, threads=threads)
        return LoadedModel(b, list(b.classes), b.palette, path)
    if path.suffix in (".engine", ".plan"):
        if backend != "tensorrt":
            raise ModelError(f"{path} is a TensorRT engine: use --backend tensorrt")
        from rtseg.runtime.tensorrt_backend import open_tensorrt_engine

        b, package = open_tensorrt_engine(path)  # the engine as given: never rebuilt
        return LoadedModel(b, package.classes, package.palette, path, package)
    package = load_package(path)
    if backend == "onnxruntime":
        from rtseg.runtime.onnxruntime_backend import OnnxRuntimeBackend

        b = OnnxRuntimeBackend(package, providers=providers, threads=threads)
    elif backend == "torch":
        from rtseg.runtime.torch_backend import TorchBackend

        b = TorchBackend(_checkpoint_for(package), threads=threads, input_size=package.input_size)
    else:
        from rtseg.runtime.tensorrt_backend import open_tensorrt_backend

        b = open_tensorrt_backend(package)
    return LoadedModel(b, package.classes, package.palette, package.onnx_path, package)


__all__ = ["BACKENDS", "Backend", "LoadedModel", "open_model"]
