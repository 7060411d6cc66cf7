"""CUDA helpers for the TensorRT backend: device discovery and one memory interface with a
cuda-python and a pycuda implementation. Nothing here imports a CUDA package at import time."""

from __future__ import annotations

from rtseg.core.gpu import DeviceInfo, cuda_device_info, import_cudart
from rtseg.errors import MissingDependencyError
from rtseg.runtime.cuda.memory import CudaMemory, DeviceBuffer, Event, Graph, HostBuffer, Stream

IMPLEMENTATIONS = ("cuda-python", "pycuda")


def available_memory_implementations() -> list[str]:
    """The implementations whose Python package imports here, preferred first."""
    found = []
    if import_cudart() is not None:
        found.append("cuda-python")
    try:
        import pycuda.driver  # noqa: F401
    except ImportError:
        pass
    else:
        found.append("pycuda")
    return found


def open_cuda_memory(prefer: str | None = None, device: int = 0) -> CudaMemory:
    """A CudaMemory: `prefer` ('cuda-python' or 'pycuda') if given, else the first installed."""
    found = available_memory_implementations()
    if prefer is not None and prefer not in IMPLEMENTATIONS:
        raise ValueError(f"unknown CUDA memory implementation {prefer!r}; choose from {IMPLEMENTATIONS}")
    choice = prefer or (found[0] if found else None)
    if choice is None:
        raise MissingDependencyError("cuda-python (or pycuda)", "trt", "the TensorRT backend's buffers")
    if choice == "cuda-python":
        from rtseg.runtime.cuda.cuda_python_memory import CudaPythonMemory

        return CudaPythonMemory(device)
    from rtseg.runtime.cuda.pycuda_memory import PycudaMemory

    return PycudaMemory(device)


__all__ = [
    "CudaMemory",
    "DeviceBuffer",
    "DeviceInfo",
    "Event",
    "Graph",
    "HostBuffer",
    "Stream",
    "available_memory_implementations",
    "cuda_device_info",
    "open_cuda_memory",
]
