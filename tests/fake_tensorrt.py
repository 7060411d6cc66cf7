"""A stand-in `tensorrt` module and CUDA memory for testing rtseg's engine code on a CPU.

It mimics the TensorRT 10 Python API names rtseg uses (Builder, OnnxParser, IBuilderConfig,
optimization profiles, timing cache, Runtime, ICudaEngine tensors by name, execution contexts
with execute_async_v3) and records what was called. The fake engine's "network" maps an
`(N, H, W, 3) uint8` image to `(N, H, W)` ids = red channel // 32.

It rejects what the real one rejects, as the real one does:
- the parser walks the ONNX graph and fails (False + parser errors) when a uint8 tensor feeds
  any node but a Cast to float, or a Cast converts between uint8 and a non-float type
  (TensorRT's UINT8 rules, NVIDIA/TensorRT#3985);
- `set_optimization_profile_async` raises RuntimeError on failure (pyCore.cpp's
  PY_ASSERT_RUNTIME_ERROR), never returns False;
- a CUDA graph holding an `execute_async_v3` raises when replayed after `set_input_shape`
  changed the context's shape (the graph holds the work of the shape it was captured with).
`HostMemory` counts what is allocated and freed, and whether it was closed.
"""

from __future__ import annotations

import contextlib
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


FLOATS = (1, 10)  # onnx TensorProto.FLOAT, FLOAT16
UINT8 = 2  # onnx TensorProto.UINT8


def uint8_rule_errors(path) -> list[str]:
    """Parser errors, in TensorRT's words, for every uint8 use TensorRT rejects in the ONNX file."""
    import onnx

    return uint8_rule_errors_of(onnx.load(str(path)))


def uint8_rule_errors_of(model) -> list[str]:
    """`uint8_rule_errors` of an onnx.ModelProto (its own walk, not rtseg's)."""
    import onnx

    graph = onnx.shape_inference.infer_shapes(model).graph
    types = {t.name: t.data_type for t in graph.initializer}
    for value in list(graph.input) + list(graph.value_info) + list(graph.output):
        types[value.name] = value.type.tensor_type.elem_type
    errors = []
    for i, node in enumerate(graph.node):
        to = next((a.i for a in node.attribute if a.name == "to"), None) if node.op_type == "Cast" else None
        where = (
            f"In node {i} with name: {node.name} and operator: {node.op_type} (parseNode): UNSUPPORTED_NODE"
        )
        for name in node.input:
            if types.get(name) == UINT8 and to not in FLOATS:
                errors.append(f"{where}: uint8 tensor {name} may only be the input of a Cast to float")
        if to == UINT8 and types.get(node.input[0]) not in FLOATS:
            errors.append(
                f"{where}: Cast to uint8 only from float or half, not type {types.get(node.input[0])}"
            )
    return errors


def make_module(
    height: int,
    width: int,
    parse_errors=(),
    build_fails=False,
    out_dtype=DataType.UINT8,
    profiles: int = 2,
    profile_fails=(),
):
    """A fresh fake `tensorrt` module; `module.calls` records the calls of interest.
    `profile_fails`: profile indices whose selection fails (RuntimeError, as in TensorRT)."""
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
            self.errors: list[str] = []

        @property
        def num_errors(self):
            return len(self.errors)

        def parse_from_file(self, path):
            calls["parsed"] = path
            self.errors = list(parse_errors) or uint8_rule_errors(path)
            return not self.errors

        def get_error(self, i):
            return ParserError(self.errors[i])

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
            self.shape_changes = 0  # how often set_input_shape changed the shape

        def set_optimization_profile_async(self, index, stream):
            if index >= profiles or index in profile_fails:
                raise RuntimeError("Error in set optimization profile async.")
            self.profile = index
            calls.setdefault("context_profiles", []).append(index)
            return True

        def set_input_shape(self, name, shape):
            if tuple(shape) != self.shape:
                self.shape_changes += 1
            self.shape = tuple(shape)
            return shape[0] <= engine_max_batch

        def set_tensor_address(self, name, ptr):
            self.addresses[name] = ptr

        def execute_async_v3(self, stream_handle):
            n, src_ptr, dst_ptr = self.shape[0], self.addresses["image"], self.addresses["class_ids"]
            recorded_at = self.shape_changes

            def run():
                if self.shape_changes != recorded_at:
                    raise RuntimeError(
                        f"fake TensorRT: work enqueued for input shape {(n, height, width, 3)} replayed "
                        "after set_input_shape changed the shape (re-capture the CUDA graph)"
                    )
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


class _Counted:
    """Counts itself in `memory.live` until closed (idempotent)."""

    def __init__(self, memory):
        self.memory, self.open = memory, True
        memory.live += 1

    def close(self):
        if self.open:
            self.open = False
            self.memory.live -= 1
            self.memory.freed += 1


class _HostStream(_Counted, Stream):
    def __init__(self, memory):
        _Counted.__init__(self, memory)
        self.handle = id(self)

    def synchronize(self):
        pass

    def close(self):
        if self.open:
            self.memory.closed += 1
        _Counted.close(self)


class _HostEvent(_Counted, Event):
    def record(self, stream):
        pass

    def synchronize(self):
        pass

    def query(self):
        return True


class _HostGraph(_Counted, Graph):
    def __init__(self, memory, ops):
        _Counted.__init__(self, memory)
        self.ops = ops

    def launch(self, stream):
        if not self.open:
            raise RuntimeError("fake CUDA: launch of a destroyed graph")
        self.memory.launches += 1
        for op in self.ops:
            op()


class HostMemory(CudaMemory):
    """CudaMemory on plain host memory: copies are memmoves, graphs replay recorded copies.
    `live`: buffers, streams, events and graphs not yet freed; `released`: close() was called;
    `active`: how deep the calling code is in activate() blocks."""

    name = "host-fake"

    def __init__(self, graphs: bool = False):
        self.supports_graphs = graphs
        self.closed = 0  # streams closed
        self.live = self.freed = self.launches = self.captures = self.active = 0
        self.released = False
        self.keep = []

    @contextlib.contextmanager
    def activate(self):
        self.active += 1
        try:
            yield self
        finally:
            self.active -= 1

    def _counted(self):
        token = _Counted(self)
        return token.close

    def host_buffer(self, shape, dtype):
        array = np.zeros(shape, dtype)
        return HostBuffer(array, array.ctypes.data, self._counted())

    def device_buffer(self, nbytes):
        array = np.zeros(max(1, nbytes), np.uint8)
        self.keep.append(array)
        return DeviceBuffer(array.ctypes.data, nbytes, self._counted())

    def stream(self):
        return _HostStream(self)

    def event(self):
        return _HostEvent(self)

    def _close_impl(self):
        self.released = True

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
        self.captures += 1
        return _HostGraph(self, ops)
