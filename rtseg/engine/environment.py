"""What an engine is valid for: the TensorRT version and the GPU (name, compute capability).

`engine_environment()` checks, in this order and before anything touches trt.Builder or
trt.Runtime (which can abort the process without a GPU): TensorRT imports, a CUDA GPU exists.
"""

from __future__ import annotations

from dataclasses import dataclass

from rtseg.errors import BackendError, MissingDependencyError


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


def require_tensorrt():
    """The `tensorrt` module, or MissingDependencyError / BackendError saying what is wrong."""
    try:
        import tensorrt as trt
    except ImportError as exc:
        if isinstance(exc, ModuleNotFoundError) and exc.name == "tensorrt":
            raise MissingDependencyError("tensorrt", "trt", "TensorRT engines") from exc
        raise BackendError(f"tensorrt is installed but cannot load: {exc}") from exc
    except OSError as exc:  # a bindings wheel without its libraries
        raise BackendError(f"tensorrt is installed but its libraries cannot load: {exc}") from exc
    return trt


def engine_environment(device: int = 0) -> EngineEnvironment:
    """TensorRT version + GPU `device`; raises MissingDependencyError, then DeviceError."""
    from rtseg.runtime.cuda.device import cuda_device_info

    trt = require_tensorrt()
    info = cuda_device_info(device)
    major, minor = info.compute_capability
    return EngineEnvironment(str(trt.__version__), info.name, f"{major}.{minor}")
