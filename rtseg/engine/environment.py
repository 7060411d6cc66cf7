"""What an engine is valid for: the TensorRT version and the GPU (name, compute capability).

`engine_environment()` checks, in this order and before anything touches trt.Builder or
trt.Runtime (which can abort the process without a GPU): TensorRT imports, a CUDA GPU exists.
"""

from __future__ import annotations

from dataclasses import dataclass

from rtseg.core.gpu import require_tensorrt


@dataclass(frozen=True)
class EngineEnvironment:
    """The TensorRT version and GPU an engine or timing cache is built for."""

    trt_version: str
    gpu_name: str
    compute_capability: str  # "9.0"

    def slug(self) -> str:
        """File-name-safe 'trt10.7.0_sm90_NVIDIA-H100-80GB-HBM3'."""
        gpu = "".join(c if c.isalnum() or c in ".-" else "-" for c in self.gpu_name).strip("-")
        return f"trt{self.trt_version}_sm{self.compute_capability.replace('.', '')}_{gpu}"


def engine_environment(device: int = 0) -> EngineEnvironment:
    """TensorRT version + GPU `device`; raises MissingDependencyError, then DeviceError."""
    from rtseg.core.gpu import cuda_device_info

    trt = require_tensorrt()
    info = cuda_device_info(device)
    major, minor = info.compute_capability
    return EngineEnvironment(str(trt.__version__), info.name, f"{major}.{minor}")
