"""ONNX Runtime backend: CPU by default, CUDA / TensorRT execution providers when present."""

from __future__ import annotations

import os

import numpy as np

from rtseg.core.package import ModelPackage
from rtseg.errors import BackendError, ModelError
from rtseg.runtime.base import Backend

PROVIDER_ALIASES = {
    "cpu": "CPUExecutionProvider",
    "cuda": "CUDAExecutionProvider",
    "tensorrt": "TensorrtExecutionProvider",
}


class OnnxRuntimeBackend(Backend):
    """`providers`: "auto" (every available accelerator, then CPU) or a list like ["cpu"].

    `spin`: let the intra-op threads spin-wait after each run (ONNX Runtime's default). Off by
    default: in the pipeline the spinning threads burn the cores that decode, drawing and
    encoding need (`session.intra_op.allow_spinning` = 0 costs a thread wake-up per run)."""

    name = "onnxruntime"

    def __init__(
        self, package: ModelPackage, providers="cpu", threads: int | None = None, spin: bool = False
    ):
        try:
            import onnxruntime as ort
        except ImportError as exc:
            raise BackendError("onnxruntime is not installed (pip install onnxruntime)") from exc
        available = ort.get_available_providers()
        if isinstance(providers, str) and providers != "auto":
            providers = [providers]
        if providers == "auto":
            wanted = [p for p in ("TensorrtExecutionProvider", "CUDAExecutionProvider") if p in available]
            wanted.append("CPUExecutionProvider")
        else:
            wanted = [PROVIDER_ALIASES.get(p, p) for p in providers]
            missing = [p for p in wanted if p not in available]
            if missing:
                raise BackendError(
                    f"onnxruntime has no {', '.join(missing)} here (available: {', '.join(available)})"
                )
        options = ort.SessionOptions()
        options.log_severity_level = 3
        options.intra_op_num_threads = threads or min(4, os.cpu_count() or 1)
        options.inter_op_num_threads = 1
        options.add_session_config_entry("session.intra_op.allow_spinning", "1" if spin else "0")
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        try:
            self.session = ort.InferenceSession(str(package.onnx_path), options, providers=wanted)
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
        batch = inputs[0].shape[0]
        self.max_batch = 64 if not isinstance(batch, int) else batch
        self.supports_logits = package.output_kind == "logits"
        self.providers = self.session.get_providers()
        self.threads = options.intra_op_num_threads

    def _infer_impl(self, images: np.ndarray) -> np.ndarray:
        out = self._logits_impl(images)
        if self.supports_logits:
            out = out.argmax(1)
        return out.astype(np.uint8, copy=False)

    def _logits_impl(self, images: np.ndarray) -> np.ndarray:
        return self.session.run([self.output_name], {self.input_name: images})[0]

    def describe(self) -> str:
        provider = self.providers[0].replace("ExecutionProvider", "")
        return f"onnxruntime[{provider}, {self.threads} threads]"

    def _close_impl(self) -> None:
        self.session = None
