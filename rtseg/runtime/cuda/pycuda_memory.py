"""CudaMemory over pycuda (the design card's choice): the device's primary context, pushed for
the length of each `activate()` block and popped in the same thread; no CUDA graph API.

pycuda keeps a context stack per thread and aborts the process ("The context stack was not
empty upon module cleanup") when a thread ends with a context still on it (NVIDIA/TensorRT#1107,
#2357), so nothing here leaves one pushed: every use is `with memory.activate(): ...`.
"""

from __future__ import annotations

import contextlib
import sys
import threading

import numpy as np

from rtseg.errors import BackendError, MissingDependencyError
from rtseg.runtime.cuda.memory import CudaMemory, DeviceBuffer, Event, HostBuffer, Stream, check_copy


class _PycudaStream(Stream):
    def __init__(self, cuda):
        self._stream = cuda.Stream()
        self.handle = int(self._stream.handle)

    def synchronize(self) -> None:
        self._stream.synchronize()

    def close(self) -> None:
        self._stream = None  # the last reference: pycuda destroys the stream now (inside activate)


class _PycudaEvent(Event):
    def __init__(self, cuda):
        self._event = cuda.Event()

    def record(self, stream: Stream) -> None:
        self._event.record(stream._stream)

    def synchronize(self) -> None:
        self._event.synchronize()

    def query(self) -> bool:
        return bool(self._event.query())

    def close(self) -> None:
        self._event = None


class PycudaMemory(CudaMemory):
    """pycuda implementation (pip install pycuda; needs the CUDA toolkit to build)."""

    name = "pycuda"
    supports_graphs = False

    def __init__(self, device: int = 0):
        try:
            import pycuda.driver as cuda
        except ImportError as exc:
            raise MissingDependencyError("pycuda", "pycuda", "page-locked buffers and CUDA streams") from exc
        self._cuda = cuda
        try:
            cuda.init()
            self._context = cuda.Device(device).retain_primary_context()
        except cuda.Error as exc:
            raise BackendError(f"pycuda cannot open GPU {device}: {exc}") from exc
        self._depth = threading.local()  # how deep this thread is in activate() blocks

    @contextlib.contextmanager
    def activate(self):
        """Push the primary context in this thread (once for nested blocks); pop it at the end."""
        if self._context is None:
            raise BackendError("pycuda memory used after close()")
        depth = getattr(self._depth, "value", 0)
        if depth == 0:
            self._context.push()
        self._depth.value = depth + 1
        try:
            yield self
        finally:
            self._depth.value = depth
            if depth == 0:
                self._cuda.Context.pop()

    def host_buffer(self, shape, dtype) -> HostBuffer:
        array = self._cuda.pagelocked_empty(tuple(shape), np.dtype(dtype))
        return HostBuffer(array, array.ctypes.data, array.base.free)

    def device_buffer(self, nbytes: int) -> DeviceBuffer:
        allocation = self._cuda.mem_alloc(max(1, int(nbytes)))
        return DeviceBuffer(int(allocation), nbytes, allocation.free)

    def stream(self) -> Stream:
        return _PycudaStream(self._cuda)

    def event(self) -> Event:
        return _PycudaEvent(self._cuda)

    @staticmethod
    def _bytes(host: HostBuffer, nbytes: int) -> np.ndarray:
        return host.array.reshape(-1).view(np.uint8)[:nbytes]

    def copy_to_device(self, dst: DeviceBuffer, src: HostBuffer, nbytes: int, stream: Stream) -> None:
        check_copy(nbytes, dst, src)
        self._cuda.memcpy_htod_async(dst.ptr, self._bytes(src, nbytes), stream._stream)

    def copy_to_host(self, dst: HostBuffer, src: DeviceBuffer, nbytes: int, stream: Stream) -> None:
        check_copy(nbytes, dst, src)
        self._cuda.memcpy_dtoh_async(self._bytes(dst, nbytes), src.ptr, stream._stream)

    def _close_impl(self) -> None:
        """Release the primary context; nothing of it may be in use any more."""
        context, self._context = self._context, None
        if context is not None:
            try:
                context.detach()
            except self._cuda.Error as exc:  # a context already torn down at exit: nothing to free
                print(f"rtseg: warning: pycuda could not release its GPU context ({exc})", file=sys.stderr)
