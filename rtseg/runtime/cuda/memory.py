"""One small interface over CUDA host/device memory, streams, events, copies and graphs.

Two implementations: cuda-python (binary wheels, primary context, CUDA graphs) and pycuda
(source only, context bound to a thread, no graphs). `open_cuda_memory()` picks what is
installed. Every object here is a context manager with an idempotent `close()`. Make every call
inside `with memory.activate():` in the thread that makes it: pycuda pushes its context there
and pops it at the end of the block (a pycuda thread that ends with a context still pushed
aborts the process), cuda-python selects the device.
"""

from __future__ import annotations

import contextlib
from abc import ABC, abstractmethod

import numpy as np

from rtseg.core.closing import Closeable


class _Closable:
    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def close(self) -> None:  # pragma: no cover - overridden
        pass


class HostBuffer(_Closable):
    """Page-locked host memory seen as a numpy array `array` of `shape` and `dtype`."""

    def __init__(self, array: np.ndarray, ptr: int, free):
        self.array = array
        self.ptr = int(ptr)
        self.nbytes = int(array.nbytes)
        self._free = free

    def close(self) -> None:
        if self._free is not None:
            free, self._free = self._free, None
            self.array = None
            free()


class DeviceBuffer(_Closable):
    """`nbytes` of device memory at address `ptr`."""

    def __init__(self, ptr: int, nbytes: int, free):
        self.ptr = int(ptr)
        self.nbytes = int(nbytes)
        self._free = free

    def close(self) -> None:
        if self._free is not None:
            free, self._free = self._free, None
            free()


class Stream(_Closable, ABC):
    """A CUDA stream; `handle` is the integer TensorRT's execute_async_v3 takes."""

    handle: int

    @abstractmethod
    def synchronize(self) -> None: ...


class Event(_Closable, ABC):
    @abstractmethod
    def record(self, stream: Stream) -> None: ...

    @abstractmethod
    def synchronize(self) -> None: ...

    @abstractmethod
    def query(self) -> bool:
        """True when the work recorded before it has finished."""


class Graph(_Closable, ABC):
    """An instantiated CUDA graph, replayed with `launch(stream)`."""

    @abstractmethod
    def launch(self, stream: Stream) -> None: ...


class CudaMemory(Closeable, ABC):
    """Factory and copy engine. `supports_graphs` tells whether begin/end_capture work."""

    name: str = "cuda"
    supports_graphs: bool = False

    @contextlib.contextmanager
    def activate(self):
        """Make the device (context) current in the calling thread for the `with` block; nests.
        Whatever it pushed is popped when the block ends, in the same thread."""
        yield self

    @abstractmethod
    def host_buffer(self, shape: tuple[int, ...], dtype) -> HostBuffer: ...

    @abstractmethod
    def device_buffer(self, nbytes: int) -> DeviceBuffer: ...

    @abstractmethod
    def stream(self) -> Stream: ...

    @abstractmethod
    def event(self) -> Event: ...

    @abstractmethod
    def copy_to_device(self, dst: DeviceBuffer, src: HostBuffer, nbytes: int, stream: Stream) -> None:
        """Asynchronous copy of the first `nbytes` of `src` to `dst` on `stream`."""

    @abstractmethod
    def copy_to_host(self, dst: HostBuffer, src: DeviceBuffer, nbytes: int, stream: Stream) -> None:
        """Asynchronous copy of the first `nbytes` of `src` to `dst` on `stream`."""

    def begin_capture(self, stream: Stream) -> None:
        raise NotImplementedError(f"{self.name} has no CUDA graph API")

    def end_capture(self, stream: Stream) -> Graph:
        raise NotImplementedError(f"{self.name} has no CUDA graph API")


def check_copy(nbytes: int, *buffers) -> None:
    """ValueError when a copy of `nbytes` would overrun one of the buffers."""
    for buffer in buffers:
        if nbytes > buffer.nbytes:
            raise ValueError(f"copy of {nbytes} bytes overruns a {buffer.nbytes}-byte buffer")
