"""A stand-in `tensorrt` module and CUDA memory for testing rtseg's engine code on a CPU.

It mimics the TensorRT 10 Python API names rtseg uses (Builder, OnnxParser, IBuilderConfig,
optimization profiles, timing cache, Runtime, ICudaEngine tensors by name, execution contexts
with execute_async_v3) and records what was called. The fake engine's "network" maps an
`(N, H, W, 3) uint8` image to `(N, H, W)` ids = red channel // 32.
"""

from __future__ import annotations

import ctypes
import enum
import types

import numpy as np

from rtseg.runtime.cuda.memory import CudaMemory, DeviceBuffer, Event, Graph, HostBuffer, Stream


def fake_ids(images: np.ndarray) -> np.ndarray:
    """What the fake engine computes: `(N, H, W) uint8` = red // 32."""
    return (images[..., 0] // 32).astype(np.uint8)


# Ops recorded while a fake stream capture is open (as in CUDA, captured work does not run).
_capture: list | None = None


def _run_or_record(op) -> None:
    if _capture is not None:
        _capture.append(op)
    else:
        op()


class TensorIOMode(enum.Enum):
    INPUT = 0
    OUTPUT = 1


class DataType(enum.Enum):
    UINT8 = np.uint8
    INT32 = np.int32
    FLOAT = np.float32


class Dims(tuple):
    pass


def make_module(
    height: int, width: int, parse_errors=(), build_fails=False, out_dtype=DataType.UINT8, profiles: int = 2
):
    """A fresh fake `tensorrt` module; `module.calls` records the calls of interest."""
    calls: dict = {"created_builder": 0}
    trt = types.ModuleType("tensorrt")
    trt.__version__ = "10.99.0"
    trt.calls = calls
    trt.TensorIOMode = TensorIOMode
    trt.DataType = DataType
    trt.nptype = lambda dtype: dtype.value
    trt.NetworkDefinitionCreationFlag = types.SimpleNamespace(STRONGLY_TYPED=5)
    trt.MemoryPoolType = types.SimpleNamespace(WORKSPACE="workspace")

    class Logger:
        WARNING, VERBOSE = 2, 4

        def __init__(self, severity):
            self.severity = severity

    class IProgressMonitor:
        def __init__(self):
            calls["monitor_init"] = True

    class Tensor:
        def __init__(self, name, shape):
            self.name, self.shape = name, Dims(shape)

    class Network:
        num_inputs = 1

        def get_input(self, i):
            return Tensor("image", (-1, height, width, 3))

    class ParserError:
        def __init__(self, text):
            self.text = text

        def __str__(self):
            return self.text

    class OnnxParser:
        def __init__(self, network, logger):
            self.num_errors = len(parse_errors)

        def parse_from_file(self, path):
            calls["parsed"] = path
            return not parse_errors

        def get_error(self, i):
            return ParserError(parse_errors[i])

    class TimingCache:
        def __init__(self, data):
            self.data = bytes(data)

        def serialize(self):
            return memoryview(self.data + b"+timings")

    class Profile:
        def set_shape(self, name, low, opt, high):
            calls.setdefault("profiles", []).append((name, tuple(low), tuple(opt), tuple(high)))

    class Config:
        progress_monitor = None

        def set_memory_pool_limit(self, pool, size):
            calls["workspace"] = (pool, size)

        def add_optimization_profile(self, profile):
            calls["added_profiles"] = calls.get("added_profiles", 0) + 1

        def create_timing_cache(self, data):
            return TimingCache(data)

        def set_timing_cache(self, cache, ignore_mismatch):
            self.cache = cache
            calls["timing_cache_in"] = cache.data
            return True

        def get_timing_cache(self):
            return self.cache

    class Builder:
        def __init__(self, logger):
            calls["created_builder"] += 1

        def create_network(self, flags):
            calls["network_flags"] = flags
            return Network()

        def create_builder_config(self):
            return Config()

        def create_optimization_profile(self):
            return Profile()

        def build_serialized_network(self, network, config):
            calls["monitor"] = config.progress_monitor
            return None if build_fails else memoryview(b"FAKE-PLAN")

    class Context:
        def __init__(self, engine):
            self.engine, self.addresses, self.shape, self.profile = engine, {}, None, 0

        def set_optimization_profile_async(self, index, stream):
            self.profile = index
            calls.setdefault("context_profiles", []).append(index)
            return True

        def set_input_shape(self, name, shape):
            self.shape = tuple(shape)
            return shape[0] <= engine_max_batch

        def set_tensor_address(self, name, ptr):
            self.addresses[name] = ptr

        def execute_async_v3(self, stream_handle):
            n, src_ptr, dst_ptr = self.shape[0], self.addresses["image"], self.addresses["class_ids"]

            def run():
                size = n * height * width * 3
                src = np.ctypeslib.as_array((ctypes.c_uint8 * size).from_address(src_ptr))
                ids = fake_ids(src.reshape(n, height, width, 3)).astype(out_dtype.value)
                ctypes.memmove(dst_ptr, ids.ctypes.data, ids.nbytes)
                calls["executions"] = calls.get("executions", 0) + 1

            _run_or_record(run)
            return True

    engine_max_batch = 4

    class Engine:
        num_io_tensors = 2
        num_optimization_profiles = profiles

        def get_tensor_name(self, i):
            return ("image", "class_ids")[i]

        def get_tensor_mode(self, name):
            return TensorIOMode.INPUT if name == "image" else TensorIOMode.OUTPUT

        def get_tensor_dtype(self, name):
            return DataType.UINT8 if name == "image" else out_dtype

        def get_tensor_shape(self, name):
            return Dims((-1, height, width, 3) if name == "image" else (-1, height, width))

        def get_tensor_profile_shape(self, name, profile):
            return [
                Dims((1, height, width, 3)),
                Dims((1, height, width, 3)),
                Dims((engine_max_batch, height, width, 3)),
            ]

        def create_execution_context(self):
            return Context(self)

    class Runtime:
        def __init__(self, logger):
            pass

        def deserialize_cuda_engine(self, data):
            return Engine() if bytes(data) == b"FAKE-PLAN" else None

    for cls in (Logger, IProgressMonitor, Builder, OnnxParser, Runtime):
        setattr(trt, cls.__name__, cls)
    return trt


class _HostStream(Stream):
    def __init__(self, memory):
        self.memory, self.handle = memory, id(self)

    def synchronize(self):
        pass

    def close(self):
        self.memory.closed += 1


class _HostEvent(Event):
    def record(self, stream):
        pass

    def synchronize(self):
        pass

    def query(self):
        return True


class _HostGraph(Graph):
    def __init__(self, ops):
        self.ops = ops

    def launch(self, stream):
        for op in self.ops:
            op()


class HostMemory(CudaMemory):
    """CudaMemory on plain host memory: copies are memmoves, graphs replay recorded copies."""

    name = "host-fake"

    def __init__(self, graphs: bool = False):
        self.supports_graphs = graphs
        self.closed = 0
        self.keep = []

    def bind_thread(self):
        pass

    def host_buffer(self, shape, dtype):
        array = np.zeros(shape, dtype)
        return HostBuffer(array, array.ctypes.data, lambda: None)

    def device_buffer(self, nbytes):
        array = np.zeros(max(1, nbytes), np.uint8)
        self.keep.append(array)
        return DeviceBuffer(array.ctypes.data, nbytes, lambda: None)

    def stream(self):
        return _HostStream(self)

    def event(self):
        return _HostEvent()

    def _copy(self, dst, src, nbytes):
        _run_or_record(lambda: ctypes.memmove(dst, src, nbytes))

    def copy_to_device(self, dst, src, nbytes, stream):
        self._copy(dst.ptr, src.ptr, nbytes)

    def copy_to_host(self, dst, src, nbytes, stream):
        self._copy(dst.ptr, src.ptr, nbytes)

    def begin_capture(self, stream):
        global _capture
        _capture = []

    def end_capture(self, stream):
        global _capture
        ops, _capture = _capture, None
        return _HostGraph(ops)
