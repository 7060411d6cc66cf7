"""Find the CUDA GPU before anything touches TensorRT (trt.Builder/Runtime can abort the process
without one): cuda-python, else pycuda, else `nvidia-smi`; and import TensorRT with a clear error.
Used by the engine builder and the TensorRT backend alike; no CUDA package is imported at import time."""

from __future__ import annotations

import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from rtseg.errors import BackendError, DeviceError, MissingDependencyError


@dataclass(frozen=True)
class DeviceInfo:
    index: int
    name: str
    compute_capability: tuple[int, int]
    total_memory: int  # bytes, 0 when unknown

    @property
    def sm(self) -> str:
        """'sm_90' for compute capability 9.0."""
        return f"sm_{self.compute_capability[0]}{self.compute_capability[1]}"


def import_cudart():
    """cuda-python's runtime module (cuda.bindings.runtime in 12.6+/13, cuda.cudart before), or None."""
    try:
        from cuda.bindings import runtime as cudart
    except ImportError:
        try:
            from cuda import cudart
        except ImportError:
            return None
    return cudart


def _decode(name) -> str:
    if isinstance(name, (bytes, bytearray)):
        name = bytes(name).split(b"\0", 1)[0].decode(errors="replace")
    return str(name).strip()


def cuda_error_text(cudart, err) -> str:
    """'cudaErrorNoDevice: no CUDA-capable device is detected' for a cudaError_t."""
    text = cudart.cudaGetErrorString(err)
    if isinstance(text, tuple):  # cuda-python returns (cudaError_t, bytes)
        text = text[-1]
    return f"{getattr(err, 'name', err)}: {_decode(text)}"


def _check_index(index: int, count: int) -> None:
    if count == 0:
        raise DeviceError("no CUDA GPU found: the driver reports 0 devices")
    if index >= count:
        raise DeviceError(f"no CUDA GPU {index}: this machine has {count}")


def _cuda_version(number: int) -> str:
    """13020 -> '13.2' (CUDA's encoding: 1000 * major + 10 * minor)."""
    return f"{number // 1000}.{number % 1000 // 10}"


def _version_of(call) -> int:
    result = call()
    return int(result[-1] or 0) if isinstance(result, tuple) else 0


def insufficient_driver_error(cudart) -> DeviceError:
    """The DeviceError for cudaErrorInsufficientDriver: no driver at all (version 0), or one older
    than the CUDA this cuda-python is built for (cuda-python 13 beside a CUDA 12 driver)."""
    driver = _version_of(cudart.cudaDriverGetVersion)
    runtime = _version_of(cudart.cudaRuntimeGetVersion)
    if driver == 0:
        return DeviceError("no CUDA GPU found: no NVIDIA driver is loaded (cudaErrorInsufficientDriver)")
    needed = _cuda_version(runtime) if runtime else "this cuda-python"
    major = driver // 1000
    remedy = "update the driver"
    if major == 12:
        remedy += " or install TensorRT and cuda-python for CUDA 12 (pip install 'rtseg[trt-cu12]')"
    return DeviceError(
        f"the NVIDIA driver is older than CUDA {needed} needs (it supports CUDA "
        f"{_cuda_version(driver)}): {remedy}"
    )


def _from_cuda_python(cudart, index: int) -> DeviceInfo:
    err, count = cudart.cudaGetDeviceCount()
    if err == getattr(cudart.cudaError_t, "cudaErrorInsufficientDriver", None):
        raise insufficient_driver_error(cudart)
    if err != cudart.cudaError_t.cudaSuccess:
        raise DeviceError(f"no CUDA GPU found: {cuda_error_text(cudart, err)}")
    _check_index(index, count)
    err, props = cudart.cudaGetDeviceProperties(index)
    if err != cudart.cudaError_t.cudaSuccess:
        raise DeviceError(f"cannot query CUDA GPU {index}: {cuda_error_text(cudart, err)}")
    capability = (int(props.major), int(props.minor))
    return DeviceInfo(index, _decode(props.name), capability, int(props.totalGlobalMem))


def _from_pycuda(index: int) -> DeviceInfo:
    import pycuda.driver as cuda

    try:
        cuda.init()
        count = cuda.Device.count()
    except cuda.Error as exc:
        raise DeviceError(f"no CUDA GPU found: {exc}") from exc
    _check_index(index, count)
    device = cuda.Device(index)
    return DeviceInfo(index, device.name(), device.compute_capability(), int(device.total_memory()))


def _from_nvidia_smi(index: int) -> DeviceInfo:
    smi = shutil.which("nvidia-smi")
    if smi is None:
        raise DeviceError(
            "no CUDA GPU found: neither cuda-python nor pycuda is installed and there is "
            "no nvidia-smi (no NVIDIA driver)"
        )
    query = [
        smi,
        f"--id={index}",
        "--query-gpu=name,compute_cap,memory.total",
        "--format=csv,noheader,nounits",
    ]
    try:
        out = subprocess.run(query, capture_output=True, text=True, timeout=20, check=True).stdout
    except (subprocess.SubprocessError, OSError) as exc:
        raise DeviceError(f"no CUDA GPU found: nvidia-smi failed ({exc})") from exc
    fields = [f.strip() for f in out.strip().splitlines()[0].split(",")] if out.strip() else []
    if len(fields) < 3:
        raise DeviceError(f"no CUDA GPU found: nvidia-smi printed {out.strip()!r}")
    major, _, minor = fields[1].partition(".")
    memory = int(fields[2]) * (1 << 20) if fields[2].isdigit() else 0
    return DeviceInfo(index, fields[0], (int(major), int(minor or 0)), memory)


def cuda_device_info(index: int = 0) -> DeviceInfo:
    """The GPU `index`; DeviceError("no CUDA GPU found: ...") when there is none."""
    cudart = import_cudart()
    if cudart is not None:
        return _from_cuda_python(cudart, index)
    try:
        import pycuda.driver  # noqa: F401
    except ImportError:
        return _from_nvidia_smi(index)
    return _from_pycuda(index)


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


def nvidia_device_present() -> bool:
    """A cheap guess, without loading CUDA: an NVIDIA device node on Linux (`/dev/nvidia0`),
    `nvcuda.dll` found on Windows. Callers still open what they need and fall back on failure."""
    if sys.platform.startswith("linux"):
        return Path("/dev/nvidia0").exists()
    if sys.platform == "win32":
        import ctypes.util

        return ctypes.util.find_library("nvcuda") is not None
    return False
