"""ONNX Runtime backend: the CPU provider by default; `device` asks for the CUDA or TensorRT
execution provider, which only an onnxruntime-gpu install has (see `providers_for`)."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from rtseg.core.package import ModelPackage
from rtseg.errors import BackendError, ModelError
from rtseg.runtime.base import Backend

PROVIDER_ALIASES = {
    "cpu": "CPUExecutionProvider",
    "cuda": "CUDAExecutionProvider",
    "tensorrt": "TensorrtExecutionProvider",
}
DEVICE_OF = {provider: device for device, provider in PROVIDER_ALIASES.items()}
GPU_BUILD = (
    "install onnxruntime-gpu in place of onnxruntime "
    "(pip uninstall -y onnxruntime && pip install onnxruntime-gpu)"
)


def _tensorrt_libraries() -> bool:
    """Whether TensorRT's libnvinfer can be found: ONNX Runtime lists its TensorRT provider in
    every GPU build, but the provider starts only where TensorRT is installed."""
    import ctypes.util

    return ctypes.util.find_library("nvinfer") is not None


def providers_for(device: str, available: list[str]) -> list[str]:
    """ONNX Runtime providers, best first, for `device` (rtseg.loading.DEVICES), given the
    providers this onnxruntime build has. "cpu": CPU only; "cuda": CUDA, CPU for what CUDA does
    not run; "tensorrt": TensorRT, then CUDA, then CPU; "auto": TensorRT where its libraries are
    installed, CUDA, CPU, as available. BackendError, one line naming onnxruntime-gpu, when the
    provider asked for is not in this build."""
    cpu, cuda, trt = (PROVIDER_ALIASES[d] for d in ("cpu", "cuda", "tensorrt"))
    if device == "cpu":
        return [cpu]
    if device == "auto":
        best = [p for p in (trt, cuda) if p in available and (p != trt or _tensorrt_libraries())]
        return [*best, cpu]
    wanted = PROVIDER_ALIASES[device]
    if wanted not in available:
        have = ", ".join(p.replace("ExecutionProvider", "") for p in available)
        raise BackendError(
            f"--device {device}: this onnxruntime has no {wanted} (it has {have}); {GPU_BUILD}"
        )
    return [p for p in (trt, cuda) if p in available and (p != trt or device == "tensorrt")] + [cpu]


def _provider_options(providers: list[str], engine_cache: Path | None) -> list[dict]:
    """TensorRT's provider keeps the engines it builds in `engine_cache` (once per model and GPU)."""
    options = []
    for provider in providers:
        if provider == PROVIDER_ALIASES["tensorrt"] and engine_cache is not None:
            options.append({"trt_engine_cache_enable": "True", "trt_engine_cache_path": str(engine_cache)})
        else:
            options.append({})
    return options


class OnnxRuntimeBackend(Backend):
    """`device`: "cpu", "cuda", "tensorrt" or "auto" (see providers_for); `runs_on` says which
    provider the session took first ("cpu", "cuda" or "tensorrt"). `engine_cache`: the folder
    where ONNX Runtime's TensorRT provider keeps its engines (None: it rebuilds them each time).

    `spin`: let the intra-op threads spin-wait after each run (ONNX Runtime's default). Off by
    default: in the pipeline the spinning threads burn the cores that decode, drawing and
    encoding need (`session.intra_op.allow_spinning` = 0 costs a thread wake-up per run)."""

    name = "onnxruntime"

    def __init__(
        self,
        package: ModelPackage,
        device: str = "cpu",
        threads: int | None = None,
        spin: bool = False,
        engine_cache: Path | None = None,
    ):
        try:
            import onnxruntime as ort
        except ImportError as exc:
            raise BackendError("onnxruntime is not installed (pip install onnxruntime)") from exc
        wanted = providers_for(device, ort.get_available_providers())
        options = ort.SessionOptions()
        options.log_severity_level = 3
        options.intra_op_num_threads = threads or min(4, os.cpu_count() or 1)
        options.inter_op_num_threads = 1
        options.add_session_config_entry("session.intra_op.allow_spinning", "1" if spin else "0")
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        try:
            self.session = ort.InferenceSession(
                str(package.onnx_path),
                options,
                providers=wanted,
                provider_options=_provider_options(wanted, engine_cache),
            )
        except Exception as exc:  # onnxruntime raises its own exception types for bad graphs
            raise ModelError(
                f"{package.onnx_path}: onnxruntime cannot load it: {str(exc).splitlines()[0]}"
            ) from exc
        inputs, outputs = self.session.get_inputs(), self.session.get_outputs()
        if len(inputs) != 1 or len(outputs) < 1:
            raise ModelError(f"{package.onnx_path}: expected one input and one output")
        self.input_name = inputs[0].name
        self.output_name = outputs[0].name
        self.input_size = package.input_size
        self.num_classes = package.num_classes
        fixed = [d.shape[0] for d in (inputs[0], outputs[0]) if d.shape and isinstance(d.shape[0], int)]
        self.max_batch = min(fixed) if fixed else 64  # a batch-1 output caps a dynamic input
        self.supports_logits = package.output_kind == "logits"
        self.providers = self.session.get_providers()
        if device not in ("cpu", "auto") and PROVIDER_ALIASES[device] not in self.providers:
            raise BackendError(
                f"--device {device}: onnxruntime could not start {PROVIDER_ALIASES[device]} (no usable "
                f"GPU, or its CUDA / cuDNN / TensorRT libraries are missing); it runs on "
                f"{', '.join(self.providers)}"
            )
        self.runs_on = DEVICE_OF.get(self.providers[0], self.providers[0])
        self.threads = options.intra_op_num_threads
        self.precision = package.precision  # what the graph computes in: fp32, fp16, int8

    def _infer_impl(self, images: np.ndarray) -> np.ndarray:
        out = self._logits_impl(images)
        if self.supports_logits:
            out = out.argmax(1)
        return out.astype(np.uint8, copy=False)

    def _logits_impl(self, images: np.ndarray) -> np.ndarray:
        return self.session.run([self.output_name], {self.input_name: images})[0]

    def describe(self) -> str:
        provider = self.providers[0].replace("ExecutionProvider", "")
        return f"onnxruntime[{provider}, {self.precision}, {self.threads} threads]"

    def _close_impl(self) -> None:
        self.session = None
