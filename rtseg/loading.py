"""`open_model`: a model file -> a ready backend plus what the pipeline needs to draw its output.

This is the one place that decides which backend runs a model and, for TensorRT, finds the
engine matching the package on this GPU or builds it (rtseg.engine), above both the backends
(rtseg.runtime) and the engine builder, which do not know about each other.
"""

from __future__ import annotations

import json
import re
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from rtseg.core.checkpoint import load_checkpoint, source_checkpoint, training_record
from rtseg.core.package import ModelPackage, load_package
from rtseg.core.paths import require_file
from rtseg.errors import BackendError, InputError, MissingDependencyError, ModelError
from rtseg.runtime.base import Backend

BACKENDS = ("onnxruntime", "openvino", "torch", "tensorrt")
# What `--backend` takes: an engine, or "auto": the fastest healthy one here (choose_backend).
BACKEND_CHOICES = ("auto", *BACKENDS)
# Where a model runs (`--device`), the same words on every backend: "cpu"; "cuda" (ONNX
# Runtime's CUDA execution provider, torch on CUDA; TensorRT always runs there); "tensorrt"
# (ONNX Runtime's TensorRT execution provider); "auto": the best this machine has.
DEVICES = ("auto", "cpu", "cuda", "tensorrt")
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


def training_of(model: LoadedModel) -> dict | None:
    """What the opened model was trained on (rtseg.core.checkpoint.training_record): from the
    package's sidecar, or from the checkpoint the torch backend runs; None when not recorded."""
    if model.package is not None:
        return model.package.meta.get("training")
    if Path(model.source).suffix == ".pth":
        return training_record(load_checkpoint(model.source))
    return None


def _require_cuda_memory() -> None:
    from rtseg.runtime.cuda import available_memory_implementations

    if not available_memory_implementations():
        raise MissingDependencyError("cuda-python (or pycuda)", "trt", "the TensorRT backend")


def open_tensorrt_backend(
    package: ModelPackage,
    engine_path: str | Path | None = None,
    batch: int = 1,
    build_config=None,
    log: Callable[[str], None] | None = None,
):
    """The TensorRT backend for `package`: reuses the engine beside it when it fits (TensorRT,
    GPU, graph rewrite, batches up to `batch`) or builds one.

    Raises MissingDependencyError without TensorRT or cuda-python/pycuda, DeviceError without a
    GPU (checked before anything touches trt.Builder or trt.Runtime).
    """
    from rtseg.engine import BuildConfig, engine_environment, find_or_build_engine
    from rtseg.runtime.tensorrt_backend import TensorRTBackend

    env = engine_environment()
    _require_cuda_memory()
    log = log or (lambda line: print(f"rtseg: {line}", file=sys.stderr))
    config = build_config or BuildConfig(max_batch=max(batch, BuildConfig().max_batch))
    record = find_or_build_engine(package, engine_path, config, env=env, log=log, batch=batch)
    return TensorRTBackend(record.path, package, batch=batch)


def engine_package(engine_path: str | Path) -> ModelPackage:
    """The model package an engine file was built from, for its classes, palette and input size:
    the `package` in its sidecar `NAME.engine.json`, else the package sidecar `NAME.json` beside
    it. ModelError when there is neither. The ONNX itself is neither needed nor read."""
    from rtseg.core.package import validate_meta
    from rtseg.engine.cache import engine_sidecar_path, read_engine_sidecar

    engine_path = require_file(engine_path, "engine", ModelError)
    sidecar, beside = engine_sidecar_path(engine_path), engine_path.with_suffix(".json")
    if sidecar.is_file():
        engine_meta = read_engine_sidecar(engine_path)
        meta, onnx = engine_meta.get("package"), engine_meta.get("onnx")
    elif beside.is_file():
        sidecar = beside
        try:
            meta = json.loads(beside.read_text())
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise ModelError(f"{beside}: not valid JSON ({exc})") from exc
        onnx = meta.get("onnx") if isinstance(meta, dict) else None
    else:
        raise ModelError(
            f"engine {engine_path} has neither a sidecar {sidecar.name} nor a model package "
            f"{beside.name} beside it (rtseg needs its classes and input size); build it with "
            "'rtseg build-engine PACKAGE.onnx -o ENGINE'"
        )
    validate_meta(meta, sidecar)
    return ModelPackage((engine_path.parent / str(onnx)).resolve(), sidecar.resolve(), meta)


def check_engine_environment(engine_path: Path, env) -> None:
    """ModelError when the sidecar says the engine was built for another TensorRT or GPU
    architecture than `env` (TensorRT could not load it); quiet without a sidecar."""
    from rtseg.engine.cache import engine_sidecar_path, read_engine_sidecar

    if not engine_sidecar_path(engine_path).is_file():
        return
    key = read_engine_sidecar(engine_path)["key"]
    built = (str(key.get("tensorrt")), str(key.get("compute_capability")))
    if built != (env.trt_version, env.compute_capability):
        raise ModelError(
            f"{engine_path.name} was built with TensorRT {built[0]} for compute {built[1]}; this "
            f"machine has TensorRT {env.trt_version} and compute {env.compute_capability}: rebuild it "
            f"with 'rtseg build-engine PACKAGE.onnx -o {engine_path}'"
        )


def open_tensorrt_engine(engine_path: str | Path, batch: int = 1):
    """(TensorRTBackend, ModelPackage): the engine file given, used as given (never rebuilt),
    and the package it was built from (`engine_package`)."""
    from rtseg.engine import engine_environment
    from rtseg.runtime.tensorrt_backend import TensorRTBackend

    engine_path = Path(engine_path)
    package = engine_package(engine_path)
    env = engine_environment()  # TensorRT, then a GPU, before trt.Runtime
    check_engine_environment(engine_path, env)
    _require_cuda_memory()
    return TensorRTBackend(engine_path, package, batch=batch), package


def check_device(backend: str, device: str) -> None:
    """InputError for a device the backend cannot take: an unknown word, TensorRT on the CPU,
    or ONNX Runtime's TensorRT provider for torch (which also takes "cuda:N")."""
    if device not in DEVICES and not (backend == "torch" and re.fullmatch(r"cuda:\d+", device)):
        raise InputError(f"unknown device {device!r} (use {', '.join(DEVICES)})")
    if backend == "tensorrt" and device == "cpu":
        raise InputError(
            "the TensorRT backend runs on an NVIDIA GPU: use --device cuda or auto, "
            "or --backend onnxruntime for the CPU"
        )
    if backend == "openvino" and device not in ("auto", "cpu"):
        raise InputError("the OpenVINO backend runs on the CPU: use --device cpu or auto")
    if backend == "torch" and device == "tensorrt":
        raise InputError(
            "--device tensorrt is ONNX Runtime's TensorRT provider; the torch backend takes cpu, cuda or auto"
        )


def _resolve_device(backend: str, device: str | None) -> str:
    """The device `backend` runs on: `device` checked (None: "auto", the best this machine
    has). BackendError for an unknown backend, InputError for a device it cannot take."""
    if backend not in BACKENDS:
        raise BackendError(f"unknown backend {backend!r}; choose from {', '.join(BACKENDS)}")
    device = device or "auto"  # one meaning everywhere: the best this machine has
    check_device(backend, device)
    return device


def _open_checkpoint(
    path: Path, backend: str, device: str, threads: int | None, batch: int, input_size=None
) -> LoadedModel:
    """A `.pth`/`.pt` checkpoint on the torch backend (ModelError on any other), at
    `input_size` (height, width; None: the checkpoint's own)."""
    if backend != "torch":
        raise ModelError(
            f"{path} is a checkpoint: use --backend torch, or export it first with 'rtseg export'"
        )
    from rtseg.runtime.torch_backend import TorchBackend

    b = TorchBackend(path, device=device, threads=threads, input_size=input_size, batch=batch)
    return LoadedModel(b, list(b.classes), b.palette, path)


def _open_engine(path: Path, backend: str, batch: int) -> LoadedModel:
    """An `.engine`/`.plan` file on the TensorRT backend, as given (ModelError on any other)."""
    if backend != "tensorrt":
        raise ModelError(f"{path} is a TensorRT engine: use --backend tensorrt")
    b, package = open_tensorrt_engine(path, batch=batch)  # the engine as given: never rebuilt
    return LoadedModel(b, package.classes, package.palette, path, package)


def _package_backend(
    package: ModelPackage,
    backend: str,
    device: str,
    threads: int | None,
    batch: int,
    precision: str | None,
    throughput: bool = False,
):
    """The backend `backend` running `package` (TensorRT: the engine found or built for it;
    OpenVINO: computing in `precision`, tuned for `throughput` or for latency)."""
    if backend == "onnxruntime":
        from rtseg.core.user_cache import cache_dir
        from rtseg.runtime.onnxruntime_backend import OnnxRuntimeBackend

        return OnnxRuntimeBackend(package, device, threads, engine_cache=cache_dir() / "onnxruntime-tensorrt")
    if backend == "openvino":
        from rtseg.core.user_cache import usable_cache
        from rtseg.runtime.openvino_backend import OpenVinoBackend

        return OpenVinoBackend(
            package, threads, precision, cache_dir=usable_cache("openvino"), throughput=throughput
        )
    if backend == "torch":
        from rtseg.runtime.torch_backend import TorchBackend

        return TorchBackend(
            source_checkpoint(package),
            device=device,
            threads=threads,
            input_size=package.input_size,
            batch=batch,
        )
    return open_tensorrt_backend(package, batch=batch)


def engine_of_file(model: str | Path | None) -> str | None:
    """The one engine a model file runs on by its kind: "torch" for a checkpoint, "tensorrt"
    for an engine; None for a package (any engine) or no model."""
    suffix = Path(model).suffix if model is not None else ""  # as open_model matches it
    if suffix in CHECKPOINT_SUFFIXES:
        return "torch"
    return "tensorrt" if suffix in ENGINE_SUFFIXES else None


def choose_backend(backend: str, device: str | None, model: str | Path | None = None) -> str:
    """The engine `backend` names; for "auto": torch for a checkpoint, TensorRT for an engine,
    ONNX Runtime for a GPU device (or a GPU build of ONNX Runtime under device auto), else the
    fastest healthy CPU engine (rtseg.runtime.engine_choice.cpu_engine: OpenVINO where it passes
    its probe on this package, else ONNX Runtime, with one warning line)."""
    if backend != "auto":
        return backend
    fixed = engine_of_file(model)
    if fixed is not None:
        return fixed
    from rtseg.runtime.engine_choice import cpu_engine, gpu_runtime_present

    if device in ("cuda", "tensorrt") or (device in (None, "auto") and gpu_runtime_present()):
        return "onnxruntime"
    return cpu_engine(model)


def resolve_model_path(model: str | Path | None, backend: str = "auto", device: str | None = None) -> Path:
    """`model`, else the bundled package for the engine (`auto`: the one choose_backend picks):
    on ONNX Runtime the fastest variant whose measured mIoU drop is within target (sidecar
    metrics), on OpenVINO its INT8 variant where measured faster within target, on TensorRT the
    fp16 variant, else fp32."""
    if model is not None:
        return Path(model)
    from rtseg.core.package import default_model_path, default_package_for

    path = default_model_path()
    if not path.is_file():
        raise ModelError(
            f"no default model at {path}; pass --model PATH (a model package .onnx with its .json sidecar)"
        )
    return default_package_for(choose_backend(backend, device))


def open_model(
    model: str | Path | None,
    backend: str = "onnxruntime",
    threads: int | None = None,
    device: str | None = "auto",
    batch: int = 1,
    precision: str | None = None,
    input_size: tuple[int, int] | None = None,
    throughput: bool = False,
) -> LoadedModel:
    """Open `model` (a package `.onnx`/`.json`, a checkpoint `.pth`/`.pt`, or an `.engine`).

    An `.engine` (TensorRT) is used as given, with the package recorded in its sidecar
    `NAME.engine.json` (or `NAME.json` beside it); a package `.onnx` on TensorRT reuses or builds
    the engine beside it (see rtseg.engine). device: one of DEVICES, on every backend (ONNX
    Runtime: its execution providers, see onnxruntime_backend.providers_for; torch: its
    resolve_device, also "cuda:N"; TensorRT: cuda or auto); the backend's `runs_on` says where
    it went; None means "auto" (the best this machine has). model None: the bundled package
    for the engine (resolve_model_path). backend "auto": choose_backend. batch: the largest
    batch the caller will pass; TensorRT sizes its buffers for it (up to the engine's profile),
    the other backends take any. precision: what OpenVINO computes in (OPENVINO_PRECISIONS;
    None: "auto"); the other backends ignore it. input_size: a checkpoint's (height, width) to
    run at (the bench's sizes; None: its own); a package's is fixed. throughput: the caller
    keeps several frames in flight and wants the most a second (a recorded file) rather than
    each frame soonest (OpenVINO splits its threads into streams). The one place a model file
    is resolved and opened: run, eval, bench, batch and the API call it."""
    backend = choose_backend(backend, device, model)
    device = _resolve_device(backend, device)
    path = resolve_model_path(model, backend)
    if path.suffix in CHECKPOINT_SUFFIXES:
        return _open_checkpoint(path, backend, device, threads, batch, input_size)
    if path.suffix in ENGINE_SUFFIXES:
        return _open_engine(path, backend, batch)
    package = load_package(path)
    b = _package_backend(package, backend, device, threads, batch, precision, throughput)
    return LoadedModel(b, package.classes, package.palette, package.onnx_path, package)
