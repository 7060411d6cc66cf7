"""CudaMemory over cuda-python's runtime API (`cuda.bindings.runtime`, or `cuda.cudart` before 12.6).

Every call returns `(cudaError_t, *results)`; `_call` checks the error and returns the results.
The runtime API uses the device's primary context, which TensorRT uses too.
"""

from __future__ import annotations

import contextlib
import ctypes

import numpy as np

from rtseg.core.gpu import cuda_error_text, import_cudart
from rtseg.errors import BackendError, MissingDependencyError
from rtseg.runtime.cuda.memory import CudaMemory, DeviceBuffer, Event, Graph, HostBuffer, Stream, check_copy


class _Runtime:
    def __init__(self, cudart):
        self.cudart = cudart

    def call(self, what: str, result):
        """Check `(err, *values)`; return None, the value, or the tuple of values."""
        err, values = (result[0], result[1:]) if isinstance(result, tuple) else (result, ())
        if err != self.cudart.cudaError_t.cudaSuccess:
            raise BackendError(f"CUDA {what} failed: {cuda_error_text(self.cudart, err)}")
        if not values:
            return None
        return values[0] if len(values) == 1 else values


class _CudaPythonStream(Stream):
    def __init__(self, rt: _Runtime):
        self._rt = rt
        flags = rt.cudart.cudaStreamNonBlocking
        self._stream = rt.call("cudaStreamCreateWithFlags", rt.cudart.cudaStreamCreateWithFlags(flags))
        self.handle = int(self._stream)

    def synchronize(self) -> None:
        self._rt.call("cudaStreamSynchronize", self._rt.cudart.cudaStreamSynchronize(self._stream))

    def close(self) -> None:
        if self._stream is not None:
            stream, self._stream = self._stream, None
            self._rt.call("cudaStreamDestroy", self._rt.cudart.cudaStreamDestroy(stream))


class _CudaPythonEvent(Event):
    def __init__(self, rt: _Runtime):
        self._rt = rt
        flags = rt.cudart.cudaEventDisableTiming
        self._event = rt.call("cudaEventCreateWithFlags", rt.cudart.cudaEventCreateWithFlags(flags))

    def record(self, stream: Stream) -> None:
        self._rt.call("cudaEventRecord", self._rt.cudart.cudaEventRecord(self._event, stream._stream))

    def synchronize(self) -> None:
        self._rt.call("cudaEventSynchronize", self._rt.cudart.cudaEventSynchronize(self._event))

    def query(self) -> bool:
        result = self._rt.cudart.cudaEventQuery(self._event)
        err = result[0] if isinstance(result, tuple) else result
        if err == self._rt.cudart.cudaError_t.cudaErrorNotReady:
            return False
        self._rt.call("cudaEventQuery", result)
        return True

    def close(self) -> None:
        if self._event is not None:
            event, self._event = self._event, None
            self._rt.call("cudaEventDestroy", self._rt.cudart.cudaEventDestroy(event))


class _CudaPythonGraph(Graph):
    def __init__(self, rt: _Runtime, graph):
        self._rt = rt
        self._graph = graph
        self._exec = rt.call("cudaGraphInstantiate", rt.cudart.cudaGraphInstantiate(graph, 0))

    def launch(self, stream: Stream) -> None:
        self._rt.call("cudaGraphLaunch", self._rt.cudart.cudaGraphLaunch(self._exec, stream._stream))

    def close(self) -> None:
        if self._exec is not None:
            graph_exec, graph = self._exec, self._graph
            self._exec = self._graph = None
            self._rt.call("cudaGraphExecDestroy", self._rt.cudart.cudaGraphExecDestroy(graph_exec))
            self._rt.call("cudaGraphDestroy", self._rt.cudart.cudaGraphDestroy(graph))


class CudaPythonMemory(CudaMemory):
    """cuda-python implementation (pip install cuda-python); supports CUDA graphs."""

    name = "cuda-python"
    supports_graphs = True

    def __init__(self, device: int = 0):
        cudart = import_cudart()
        if cudart is None:
            raise MissingDependencyError("cuda-python", "trt", "page-locked buffers and CUDA streams")
        self._rt = _Runtime(cudart)
        self.device = device

    @contextlib.contextmanager
    def activate(self):
        """Select the device in this thread (the runtime API's current device is per thread and
        its primary context needs no push, so nothing is left to pop)."""
        self._rt.call("cudaSetDevice", self._rt.cudart.cudaSetDevice(self.device))
        yield self

    def host_buffer(self, shape, dtype) -> HostBuffer:
        dtype = np.dtype(dtype)
        nbytes = max(1, int(np.prod(shape)) * dtype.itemsize)
        ptr = int(self._rt.call("cudaMallocHost", self._rt.cudart.cudaMallocHost(nbytes)))
        raw = (ctypes.c_uint8 * nbytes).from_address(ptr)
        array = np.frombuffer(raw, dtype=np.uint8)[: int(np.prod(shape)) * dtype.itemsize]
        array = array.view(dtype).reshape(shape)
        free = self._rt.cudart.cudaFreeHost
        return HostBuffer(array, ptr, lambda: self._rt.call("cudaFreeHost", free(ptr)))

    def device_buffer(self, nbytes: int) -> DeviceBuffer:
        ptr = int(self._rt.call("cudaMalloc", self._rt.cudart.cudaMalloc(max(1, int(nbytes)))))
        return DeviceBuffer(ptr, nbytes, lambda: self._rt.call("cudaFree", self._rt.cudart.cudaFree(ptr)))

    def stream(self) -> Stream:
        return _CudaPythonStream(self._rt)

    def event(self) -> Event:
        return _CudaPythonEvent(self._rt)

    def _copy(self, dst_ptr: int, src_ptr: int, nbytes: int, kind, stream: Stream) -> None:
        result = self._rt.cudart.cudaMemcpyAsync(dst_ptr, src_ptr, nbytes, kind, stream._stream)
        self._rt.call("cudaMemcpyAsync", result)

    def copy_to_device(self, dst: DeviceBuffer, src: HostBuffer, nbytes: int, stream: Stream) -> None:
        check_copy(nbytes, dst, src)
        self._copy(dst.ptr, src.ptr, nbytes, self._rt.cudart.cudaMemcpyKind.cudaMemcpyHostToDevice, stream)

    def copy_to_host(self, dst: HostBuffer, src: DeviceBuffer, nbytes: int, stream: Stream) -> None:
        check_copy(nbytes, dst, src)
        self._copy(dst.ptr, src.ptr, nbytes, self._rt.cudart.cudaMemcpyKind.cudaMemcpyDeviceToHost, stream)

    def begin_capture(self, stream: Stream) -> None:
        mode = self._rt.cudart.cudaStreamCaptureMode.cudaStreamCaptureModeThreadLocal
        self._rt.call("cudaStreamBeginCapture", self._rt.cudart.cudaStreamBeginCapture(stream._stream, mode))

    def end_capture(self, stream: Stream) -> Graph:
        graph = self._rt.call("cudaStreamEndCapture", self._rt.cudart.cudaStreamEndCapture(stream._stream))
        return _CudaPythonGraph(self._rt, graph)
