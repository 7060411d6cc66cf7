"""TensorRT backend: an engine built from a model package, run through two double-buffered slots.

Tensors are addressed by name (TensorRT 10/11 removed bindings); shapes and dtypes come from the
engine. Each slot owns an execution context (on its own optimization profile), a stream, an
event, page-locked host buffers and device buffers, so the upload of frame n+1 overlaps the
compute of frame n. Input `(N, H, W, 3) uint8 RGB` goes up (3 bytes a pixel); class ids come
back (1 byte a pixel for a uint8 output). Host/device memory goes through rtseg.runtime.cuda
(cuda-python or pycuda). Each call makes the device current in the calling thread for its
length (`memory.activate()`), so a backend opened in one thread runs in another (the pipeline's
infer thread); calls must not overlap.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from rtseg.core.frames import format_size
from rtseg.core.package import ModelPackage
from rtseg.errors import BackendError, ModelError
from rtseg.runtime.base import Backend
from rtseg.runtime.slots import Pending, SlotRing, infer_through_slots

SLOTS = 2


@dataclass(frozen=True)
class TensorDesc:
    """An engine I/O tensor: `shape` has -1 for dynamic axes; `max_shape` from the profile."""

    name: str
    is_input: bool
    dtype: np.dtype
    shape: tuple[int, ...]
    max_shape: tuple[int, ...] | None = None


@dataclass(frozen=True)
class BufferSpec:
    name: str
    shape: tuple[int, ...]
    dtype: np.dtype
    nbytes: int
    is_input: bool


def buffer_specs(tensors: list[TensorDesc], batch: int) -> list[BufferSpec]:
    """Buffer shape, dtype and size of each tensor for `batch` frames (the batch is axis 0).

    BackendError when a non-batch axis is dynamic or `batch` exceeds the profile's maximum.
    """
    if batch < 1:
        raise BackendError(f"batch must be >= 1, got {batch}")
    specs = []
    for t in tensors:
        if any(d < 0 for d in t.shape[1:]):
            raise BackendError(f"tensor {t.name!r} has dynamic axes besides the batch: {t.shape}")
        if t.shape and t.shape[0] >= 0 and t.shape[0] != batch:
            raise BackendError(f"tensor {t.name!r} has a fixed batch of {t.shape[0]}, not {batch}")
        if t.max_shape is not None and batch > t.max_shape[0]:
            raise BackendError(
                f"batch {batch} exceeds the engine's profile maximum {t.max_shape[0]} "
                f"for {t.name!r}; rebuild with a larger --max-batch"
            )
        shape = (batch, *t.shape[1:]) if t.shape else ()
        dtype = np.dtype(t.dtype)
        specs.append(
            BufferSpec(t.name, shape, dtype, int(np.prod(shape, dtype=np.int64)) * dtype.itemsize, t.is_input)
        )
    return specs


def check_io(tensors: list[TensorDesc], input_size: tuple[int, int]) -> tuple[TensorDesc, TensorDesc]:
    """(input, output) of a segmentation engine; ModelError unless it takes `(N, H, W, 3) uint8`
    and returns `(N, H, W)` integer class ids or `(N, C, H, W)` float logits."""
    inputs = [t for t in tensors if t.is_input]
    outputs = [t for t in tensors if not t.is_input]
    if len(inputs) != 1 or not outputs:
        raise ModelError(f"engine has {len(inputs)} inputs and {len(outputs)} outputs; expected 1 and >= 1")
    image, out = inputs[0], outputs[0]
    h, w = input_size
    if image.dtype != np.uint8 or len(image.shape) != 4 or tuple(image.shape[1:]) != (h, w, 3):
        raise ModelError(
            f"engine input {image.name!r} is {image.dtype} {image.shape}; expected uint8 (N, {h}, {w}, 3)"
        )
    ids = len(out.shape) == 3 and np.issubdtype(out.dtype, np.integer)
    logits = len(out.shape) == 4 and np.issubdtype(out.dtype, np.floating)
    if not (ids or logits) or tuple(out.shape[-2:]) != (h, w):
        raise ModelError(
            f"engine output {out.name!r} is {out.dtype} {out.shape}; expected class ids "
            f"(N, {h}, {w}) or logits (N, C, {h}, {w})"
        )
    return image, out


def describe_engine(engine, trt, profile: int = 0) -> list[TensorDesc]:
    """TensorDesc of every I/O tensor of a deserialized ICudaEngine (names, modes, dtypes, shapes)."""
    tensors = []
    for i in range(engine.num_io_tensors):
        name = engine.get_tensor_name(i)
        is_input = engine.get_tensor_mode(name) == trt.TensorIOMode.INPUT
        shape = tuple(int(d) for d in engine.get_tensor_shape(name))
        max_shape = None
        if is_input and any(d < 0 for d in shape):
            max_shape = tuple(int(d) for d in engine.get_tensor_profile_shape(name, profile)[2])
        dtype = np.dtype(trt.nptype(engine.get_tensor_dtype(name)))
        tensors.append(TensorDesc(name, is_input, dtype, shape, max_shape))
    return tensors


class _Slot:
    """Everything one in-flight batch needs; `pending` is the Pending result not yet collected.

    Built inside the backend's `memory.activate()`; on any failure what was allocated so far is
    freed before the error goes on."""

    def __init__(self, backend: TensorRTBackend, index: int):
        self.stream = self.event = self.context = self.graph = None
        self.buffers: list = []  # host and device buffers, freed by close()
        self.batch = 0
        self.pending: Pending | None = None
        try:
            self._open(backend, index)
        except BaseException:
            self.close()
            raise

    def _open(self, backend: TensorRTBackend, index: int) -> None:
        memory, engine = backend.memory, backend.engine
        self.stream = memory.stream()
        self.event = memory.event()
        self.context = engine.create_execution_context()
        if self.context is None:
            raise BackendError("TensorRT could not create an execution context (out of GPU memory?)")
        if backend.dynamic:
            select_profile(self.context, index, self.stream, engine.num_optimization_profiles)
        specs = {s.name: s for s in buffer_specs(backend.tensors, backend.max_batch)}
        image, ids = specs.pop(backend.input.name), specs.pop(backend.output.name)
        self.host_in = self._keep(memory.host_buffer(image.shape, image.dtype))
        self.host_out = self._keep(memory.host_buffer(ids.shape, ids.dtype))
        self.dev_in = self._keep(memory.device_buffer(image.nbytes))
        self.dev_out = self._keep(memory.device_buffer(ids.nbytes))
        addresses = {image.name: self.dev_in.ptr, ids.name: self.dev_out.ptr}
        for name, spec in specs.items():  # outputs past the first (none in our graphs) need an address
            addresses[name] = self._keep(memory.device_buffer(spec.nbytes)).ptr
        for name, ptr in addresses.items():
            self.context.set_tensor_address(name, ptr)

    def _keep(self, buffer):
        self.buffers.append(buffer)
        return buffer

    def drop_graph(self) -> None:
        graph, self.graph = self.graph, None
        if graph is not None:
            graph.close()

    def close(self) -> None:
        """Free the graph, buffers, event and stream (idempotent; call inside memory.activate())."""
        stream, self.stream = self.stream, None
        try:
            if stream is not None:
                stream.synchronize()
        finally:
            self.drop_graph()
            for item in (*self.buffers, self.event, stream):
                if item is not None:
                    item.close()
            self.buffers, self.event, self.context, self.pending = [], None, None, None


def select_profile(context, index: int, stream, count: int) -> None:
    """Put `context` on optimization profile `index`; BackendError when TensorRT refuses
    (its binding raises RuntimeError; older ones returned False)."""
    try:
        ok = context.set_optimization_profile_async(index, stream.handle)
    except RuntimeError as exc:
        ok, detail = False, f": {exc}"
    else:
        detail = ""
    if not ok:
        raise BackendError(
            f"TensorRT cannot select optimization profile {index} (the engine has {count}){detail}"
        )


class TensorRTBackend(Backend):
    """`engine_path`: a plan built from `package` (see rtseg.engine). `batch`: frames per slot;
    `cuda_graphs`: replay full batches as CUDA graphs (cuda-python only). `memory` (a
    CudaMemory; default: the installed one) is closed with the backend."""

    name = "tensorrt"
    runs_on = "cuda"
    overlaps = True

    def __init__(
        self,
        engine_path: str | Path,
        package: ModelPackage,
        batch: int = 1,
        memory=None,
        cuda_graphs: bool = False,
    ):
        from rtseg.core.gpu import require_tensorrt
        from rtseg.runtime.cuda import open_cuda_memory

        trt = require_tensorrt()
        self.ring = SlotRing()
        self.slots: list[_Slot] = self.ring.slots  # the same list
        self.engine = self.runtime = None
        self.engine_path = Path(engine_path)
        self.input_size = package.input_size
        self.num_classes = package.num_classes
        self.memory = memory or open_cuda_memory()
        self.memory_name = self.memory.name
        try:  # everything from here on is freed by close() if any step fails
            with self.memory.activate():
                self._load(trt, batch, cuda_graphs)
        except BaseException:
            self.close()
            raise

    def _load(self, trt, batch: int, cuda_graphs: bool) -> None:
        self._logger = trt.Logger(trt.Logger.WARNING)
        self.runtime = trt.Runtime(self._logger)
        try:
            plan = self.engine_path.read_bytes()
        except OSError as exc:
            raise ModelError(f"cannot read engine {self.engine_path}: {exc.strerror}") from exc
        self.engine = self.runtime.deserialize_cuda_engine(plan)
        if self.engine is None:
            raise ModelError(
                f"TensorRT cannot load {self.engine_path} (built by another TensorRT version "
                "or for another GPU?); rebuild it with 'rtseg build-engine'"
            )
        self.tensors = describe_engine(self.engine, trt)
        self.input, self.output = check_io(self.tensors, self.input_size)
        self.dynamic = self.input.shape[0] < 0
        limit = self.input.max_shape[0] if self.input.max_shape else self.input.shape[0]
        self.max_batch = max(1, min(batch, limit))
        slots = min(SLOTS, self.engine.num_optimization_profiles) if self.dynamic else SLOTS
        self.cuda_graphs = cuda_graphs and self.memory.supports_graphs
        for i in range(max(1, slots)):
            self.slots.append(_Slot(self, i))

    def to_class_ids(self, output: np.ndarray) -> np.ndarray:
        """Host output -> `(n, H, W) uint8` class ids (argmax over C for a logits engine)."""
        if output.ndim == 4:
            output = output.argmax(1)
        return output.astype(np.uint8, copy=True)

    def _enqueue(self, slot: _Slot, count: int) -> None:
        frame_in = self.input_size[0] * self.input_size[1] * 3
        frame_out = slot.host_out.nbytes // self.max_batch
        self.memory.copy_to_device(slot.dev_in, slot.host_in, count * frame_in, slot.stream)
        if not slot.context.execute_async_v3(slot.stream.handle):
            raise BackendError("TensorRT execute_async_v3 failed (see TensorRT's messages)")
        self.memory.copy_to_host(slot.host_out, slot.dev_out, count * frame_out, slot.stream)

    def _capture(self, slot: _Slot) -> None:
        try:
            self.memory.begin_capture(slot.stream)
            try:
                self._enqueue(slot, slot.batch)
            finally:
                graph = self.memory.end_capture(slot.stream)
            slot.graph = graph
        except BackendError as exc:
            print(f"rtseg: warning: CUDA graph capture failed, running without ({exc})", file=sys.stderr)
            self.cuda_graphs = False

    def _set_batch(self, slot: _Slot, count: int) -> None:
        """Give the slot's context the input shape for `count` frames. A CUDA graph holds the
        work of the shape it was captured with, so a new shape drops it (re-captured later)."""
        if count == slot.batch:
            return
        slot.drop_graph()
        shape = (count, *self.input.shape[1:])
        if not slot.context.set_input_shape(self.input.name, shape):
            raise BackendError(f"TensorRT refused input shape {shape}")
        slot.batch = count

    def _submit_impl(self, images: np.ndarray) -> Pending:
        """Start `(n, H, W, 3) uint8 RGB` frames (n <= max_batch) on the next slot; returns at once."""
        count = len(images)
        slot = self.ring.take()
        with self.memory.activate():
            np.copyto(slot.host_in.array[:count], images)
            self._set_batch(slot, count)
            if slot.graph is not None:  # captured for this very shape
                slot.graph.launch(slot.stream)
            else:
                self._enqueue(slot, count)  # TensorRT wants one enqueue after a shape change
                if self.cuda_graphs and count == self.max_batch:
                    slot.stream.synchronize()
                    self._capture(slot)
            slot.event.record(slot.stream)
        slot.pending = Pending(slot, count, self._collect)
        return slot.pending

    def _collect(self, slot: _Slot, count: int) -> np.ndarray:
        with self.memory.activate():
            slot.event.synchronize()
        return self.to_class_ids(slot.host_out.array[:count])

    def _infer_impl(self, images: np.ndarray) -> np.ndarray:
        """`(N, H, W, 3) uint8 RGB` -> `(N, H, W) uint8` ids; chunks alternate between the slots."""
        return infer_through_slots(self._submit_impl, images, self.max_batch, len(self.ring), self.input_size)

    def describe(self) -> str:
        size = format_size(self.input_size)
        return f"tensorrt[{self.engine_path.name}, {self.memory_name}, batch {self.max_batch}, {size}]"

    def _close_impl(self) -> None:
        """Free the slots, the engine and the CUDA memory, whatever state a failed load left."""
        memory, self.memory = self.memory, None
        if memory is None:
            return
        try:
            with memory.activate():
                slots = list(self.slots)
                self.slots.clear()
                try:
                    for slot in slots:
                        slot.close()
                finally:
                    self.engine = self.runtime = None  # contexts first, then the engine
        finally:
            memory.close()
