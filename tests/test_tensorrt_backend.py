"""TensorRT backend: buffer sizes from tensor descriptions, I/O checks, the two-slot pipeline
(against a fake TensorRT and host-memory "device"), error paths, and the real thing on a GPU."""

from __future__ import annotations

import sys

import fake_tensorrt
import numpy as np
import pytest
from conftest import TINY_SIZE, structured_frames

from rtseg.errors import BackendError, DeviceError, InputError, MissingDependencyError, ModelError
from rtseg.loading import open_model, open_tensorrt_backend
from rtseg.runtime.tensorrt_backend import (
    TensorDesc,
    TensorRTBackend,
    buffer_specs,
    check_io,
)

H, W = TINY_SIZE


def _tensors(out_dtype=np.uint8, out_shape=(-1, H, W), max_batch=8):
    return [
        TensorDesc("image", True, np.dtype(np.uint8), (-1, H, W, 3), (max_batch, H, W, 3)),
        TensorDesc("class_ids", False, np.dtype(out_dtype), out_shape),
    ]


# --- pure functions --------------------------------------------------------------------------


@pytest.mark.parametrize("out_dtype, itemsize", [(np.uint8, 1), (np.int32, 4), (np.int64, 8)])
def test_buffer_specs_resolve_the_batch_and_sizes(out_dtype, itemsize):
    image, ids = buffer_specs(_tensors(out_dtype), batch=3)
    assert image.shape == (3, H, W, 3) and image.dtype == np.uint8 and image.nbytes == 3 * H * W * 3
    assert image.is_input and not ids.is_input
    assert ids.shape == (3, H, W) and ids.dtype == out_dtype and ids.nbytes == 3 * H * W * itemsize


def test_buffer_specs_errors():
    with pytest.raises(BackendError, match="exceeds the engine's profile maximum 2"):
        buffer_specs(_tensors(max_batch=2), batch=3)
    with pytest.raises(BackendError, match="dynamic axes besides the batch"):
        buffer_specs([TensorDesc("image", True, np.dtype(np.uint8), (-1, -1, W, 3))], batch=1)
    with pytest.raises(BackendError, match="fixed batch of 1"):
        buffer_specs([TensorDesc("image", True, np.dtype(np.uint8), (1, H, W, 3))], batch=2)
    with pytest.raises(BackendError, match="batch must be >= 1"):
        buffer_specs(_tensors(), batch=0)


def test_check_io_accepts_ids_and_logits_and_rejects_others():
    image, out = check_io(_tensors(), TINY_SIZE)
    assert (image.name, out.name) == ("image", "class_ids")
    check_io(_tensors(np.float32, (-1, 11, H, W)), TINY_SIZE)
    with pytest.raises(ModelError, match="expected uint8"):
        check_io([TensorDesc("image", True, np.dtype(np.float32), (-1, 3, H, W)), _tensors()[1]], TINY_SIZE)
    with pytest.raises(ModelError, match="expected class ids"):
        check_io(_tensors(np.float32, (-1, H, W)), TINY_SIZE)
    with pytest.raises(ModelError, match="expected uint8"):
        check_io(_tensors(), (H + 1, W))
    with pytest.raises(ModelError, match="2 inputs"):
        check_io(_tensors()[:1] * 2 + _tensors()[1:], TINY_SIZE)


# --- the backend on a fake TensorRT and host memory ------------------------------------------


@pytest.fixture
def fake_engine(monkeypatch, tmp_path):
    def make(**kwargs):
        trt = fake_tensorrt.make_module(H, W, **kwargs)
        monkeypatch.setitem(sys.modules, "tensorrt", trt)
        path = tmp_path / "fake.engine"
        path.write_bytes(b"FAKE-PLAN")
        return trt, path

    return make


@pytest.mark.parametrize("out_dtype", [fake_tensorrt.DataType.UINT8, fake_tensorrt.DataType.INT32])
def test_backend_runs_batches_through_two_slots(fake_engine, tiny_package, out_dtype):
    trt, path = fake_engine(out_dtype=out_dtype)
    frames = structured_frames(5, H, W, seed=2)
    with TensorRTBackend(path, tiny_package, batch=2, memory=fake_tensorrt.HostMemory()) as backend:
        assert len(backend.slots) == 2 and backend.max_batch == 2
        assert trt.calls["context_profiles"] == [0, 1]  # one optimization profile per slot
        out = backend.infer(frames)
        assert out.shape == (5, H, W) and out.dtype == np.uint8
        np.testing.assert_array_equal(out, fake_tensorrt.fake_ids(frames))
        assert trt.calls["executions"] == 3  # 2 + 2 + 1 frames


def test_backend_submit_keeps_results_when_slots_are_reused(fake_engine, tiny_package):
    _, path = fake_engine()
    frames = structured_frames(3, H, W, seed=4)
    with TensorRTBackend(path, tiny_package, memory=fake_tensorrt.HostMemory()) as backend:
        pending = [backend.submit(frames[i : i + 1]) for i in range(3)]  # 3 in flight on 2 slots
        for i, p in enumerate(pending):
            np.testing.assert_array_equal(p.wait()[0], fake_tensorrt.fake_ids(frames[i]))


def test_backend_replays_cuda_graphs_on_new_data(fake_engine, tiny_package):
    trt, path = fake_engine()
    memory = fake_tensorrt.HostMemory(graphs=True)
    with TensorRTBackend(path, tiny_package, memory=memory, cuda_graphs=True) as backend:
        for seed in range(5):
            frame = structured_frames(1, H, W, seed=seed)
            np.testing.assert_array_equal(backend.infer(frame), fake_tensorrt.fake_ids(frame))
        assert all(slot.graph is not None for slot in backend.slots)
        assert trt.calls["executions"] == 5


def test_backend_close_is_idempotent(fake_engine, tiny_package):
    _, path = fake_engine()
    memory = fake_tensorrt.HostMemory()
    backend = TensorRTBackend(path, tiny_package, memory=memory)
    backend.close()
    backend.close()
    assert memory.closed == 2  # two streams, closed once each
    assert memory.live == 0 and memory.released


# --- the audit's defects, each caught by the fake -------------------------------------------


def test_pycuda_context_is_popped_in_the_thread_that_pushed_it(fake_engine, tiny_package, monkeypatch):
    """pycuda aborts the process when a thread ends with a context pushed (NVIDIA/TensorRT#1107):
    the backend is opened and closed in the main thread and runs in the infer thread."""
    import gc
    import threading

    import fake_pycuda

    from rtseg.runtime.cuda.pycuda_memory import PycudaMemory

    fake_pycuda.install(monkeypatch)
    _, path = fake_engine()
    frames = structured_frames(3, H, W, seed=6)
    backend = TensorRTBackend(path, tiny_package, memory=PycudaMemory())
    assert fake_pycuda.stack_depth() == 0  # nothing left pushed by the load
    results = []

    def infer_thread():
        pending = [backend.submit(frames[i : i + 1]) for i in range(3)]
        results.extend(p.wait()[0] for p in pending)

    worker = threading.Thread(target=infer_thread, name="rtseg-infer")
    worker.start()
    worker.join(timeout=30)
    del worker
    gc.collect()
    assert fake_pycuda.ABORTS == []
    np.testing.assert_array_equal(np.stack(results), fake_tensorrt.fake_ids(frames))
    backend.close()
    assert fake_pycuda.stack_depth() == 0 and fake_pycuda._Owned.live == 0


def test_failed_load_frees_the_cuda_memory_it_opened(fake_engine, tiny_package, tmp_path, monkeypatch):
    import rtseg.runtime.cuda as cuda

    _, path = fake_engine()
    opened = []

    def open_memory():
        opened.append(fake_tensorrt.HostMemory())
        return opened[-1]

    monkeypatch.setattr(cuda, "open_cuda_memory", open_memory)
    foreign = tmp_path / "foreign.engine"
    foreign.write_bytes(b"not a plan")
    with pytest.raises(ModelError, match="cannot load"):
        TensorRTBackend(foreign, tiny_package)
    other_size = type(tiny_package)(tiny_package.onnx_path, tiny_package.sidecar_path, {**tiny_package.meta})
    other_size.meta["input"] = {**tiny_package.meta["input"], "height": H + 2}
    with pytest.raises(ModelError, match="expected uint8"):  # the I/O check fails after deserializing
        TensorRTBackend(path, other_size)
    assert len(opened) == 2 and all(m.released and m.live == 0 for m in opened)


def test_failed_profile_selection_is_one_error_and_frees_the_slots(fake_engine, tiny_package):
    _, path = fake_engine(profile_fails=(1,))
    memory = fake_tensorrt.HostMemory()
    with pytest.raises(BackendError, match=r"cannot select optimization profile 1 \(the engine has 2\)"):
        TensorRTBackend(path, tiny_package, memory=memory)
    assert memory.live == 0 and memory.freed > 0 and memory.released  # slot 0 and half of slot 1


def test_cuda_graph_is_recaptured_after_the_batch_size_changes(fake_engine, tiny_package):
    trt, path = fake_engine(profiles=1)  # one slot: every call goes through the same context
    memory = fake_tensorrt.HostMemory(graphs=True)
    with TensorRTBackend(path, tiny_package, batch=2, memory=memory, cuda_graphs=True) as backend:
        for count, seed in ((2, 1), (2, 2), (1, 3), (2, 4), (2, 5)):  # 2 -> 1 -> 2 frames
            frames = structured_frames(count, H, W, seed=seed)
            np.testing.assert_array_equal(backend.infer(frames), fake_tensorrt.fake_ids(frames))
        assert memory.captures == 2 and memory.launches == 2  # captured again after the change
        assert backend.slots[0].graph is not None
    assert memory.live == 0


def test_engine_file_given_is_used_as_given(fake_engine, fake_device, tiny_package, tmp_path, monkeypatch):
    import shutil

    import rtseg.engine as engines
    import rtseg.engine.cache as cache
    import rtseg.runtime.cuda as cuda
    from rtseg.engine import BuildConfig, EngineEnvironment, write_engine_sidecar

    _, plan = fake_engine()
    monkeypatch.setattr(cuda, "open_cuda_memory", lambda: fake_tensorrt.HostMemory())
    monkeypatch.setattr(cuda, "available_memory_implementations", lambda: ["host-fake"])
    for module in (cache, engines):
        monkeypatch.setattr(module, "find_or_build_engine", pytest.fail)  # nothing may build
    alone = tmp_path / "alone"
    alone.mkdir()
    engine = alone / "x.engine"  # no x.onnx beside it: only the engine and its sidecar
    shutil.copy(plan, engine)
    env = EngineEnvironment("10.99.0", "NVIDIA H100", "9.0")
    write_engine_sidecar(engine, tiny_package, env, BuildConfig(), {}, {})
    loaded = open_model(engine, backend="tensorrt")
    with loaded.backend as backend:
        assert backend.engine_path == engine and loaded.source == engine
        assert loaded.classes == tiny_package.classes
        frames = structured_frames(2, H, W)
        np.testing.assert_array_equal(backend.infer(frames), fake_tensorrt.fake_ids(frames))
    write_engine_sidecar(
        engine, tiny_package, EngineEnvironment("10.7.0", "NVIDIA H100", "9.0"), BuildConfig(), {}, {}
    )
    with pytest.raises(
        ModelError, match="built with TensorRT 10.7.0 for compute 9.0; this machine has TensorRT 10.99.0"
    ):
        open_model(engine, backend="tensorrt")
    bare = tmp_path / "bare.engine"
    shutil.copy(plan, bare)
    with pytest.raises(ModelError, match="neither a sidecar bare.engine.json nor a model package bare.json"):
        open_model(bare, backend="tensorrt")
    shutil.copy(tiny_package.sidecar_path, tmp_path / "bare.json")  # the package's sidecar beside it
    with open_model(bare, backend="tensorrt").backend as backend:
        assert backend.engine_path == bare


def test_backend_single_profile_engine_uses_one_slot(fake_engine, tiny_package):
    _, path = fake_engine(profiles=1)
    with TensorRTBackend(path, tiny_package, memory=fake_tensorrt.HostMemory()) as backend:
        assert len(backend.slots) == 1
        frames = structured_frames(3, H, W)
        np.testing.assert_array_equal(backend.infer(frames), fake_tensorrt.fake_ids(frames))


def test_backend_rejects_wrong_frames_and_foreign_engines(fake_engine, tiny_package, tmp_path):
    _, path = fake_engine()
    with TensorRTBackend(path, tiny_package, memory=fake_tensorrt.HostMemory()) as backend:
        with pytest.raises(InputError, match="expected"):
            backend.infer(np.zeros((1, 10, 10, 3), np.uint8))
    other = tmp_path / "other.engine"
    other.write_bytes(b"built elsewhere")
    with pytest.raises(ModelError, match="cannot load"):
        TensorRTBackend(other, tiny_package, memory=fake_tensorrt.HostMemory())


@pytest.fixture
def fake_device(monkeypatch):
    import rtseg.core.gpu as device

    monkeypatch.setattr(
        device, "cuda_device_info", lambda index=0: device.DeviceInfo(0, "NVIDIA H100", (9, 0), 0)
    )


# --- errors without TensorRT / GPU: one clear line, never a crash -----------------------------


class _Cudart:
    """cuda-python's runtime calls that device discovery makes, for a driver of `driver` (0:
    none) beside a cuda-python built for `runtime`."""

    def __init__(self, driver: int, runtime: int = 13000):
        import enum

        self.cudaError_t = enum.IntEnum(
            "cudaError_t", {"cudaSuccess": 0, "cudaErrorInsufficientDriver": 35, "cudaErrorNoDevice": 100}
        )
        self.driver, self.runtime = driver, runtime

    def cudaGetDeviceCount(self):  # noqa: N802 - cuda-python's names
        return self.cudaError_t.cudaErrorInsufficientDriver, None

    def cudaDriverGetVersion(self):  # noqa: N802
        return self.cudaError_t.cudaSuccess, self.driver

    def cudaRuntimeGetVersion(self):  # noqa: N802
        return self.cudaError_t.cudaSuccess, self.runtime


@pytest.mark.parametrize(
    "driver, message",
    [
        (
            12040,
            r"the NVIDIA driver is older than CUDA 13.0 needs \(it supports CUDA 12.4\).*rtseg\[trt-cu12\]",
        ),
        (0, "no CUDA GPU found: no NVIDIA driver is loaded"),
    ],
)
def test_insufficient_driver_is_named_as_such(monkeypatch, driver, message):
    import rtseg.core.gpu as device

    monkeypatch.setattr(device, "import_cudart", lambda: _Cudart(driver))
    with pytest.raises(DeviceError, match=message):
        device.cuda_device_info()


def test_no_driver_with_the_real_cuda_python_is_one_clear_error():
    cudart = _cudart()
    from rtseg.core.gpu import cuda_device_info

    if cudart.cudaGetDeviceCount()[0] == cudart.cudaError_t.cudaSuccess:
        pytest.skip("this machine has a CUDA GPU")
    with pytest.raises(DeviceError, match="no CUDA GPU found|older than CUDA"):
        cuda_device_info()


def test_trt_extras_pin_cuda_python_to_the_tensorrt_wheels_cuda_major():
    import re
    from pathlib import Path

    setup = (Path(__file__).resolve().parent.parent / "setup.py").read_text()
    for extra, major in (("trt", 13), ("trt-cu12", 12)):
        line = re.search(rf'"{extra}": \[(.*?)\]', setup).group(1)
        assert f'"tensorrt-cu{major}' in line and f"cuda-python>={major}" in line and f"<{major + 1}" in line


def test_open_without_tensorrt(monkeypatch, tiny_package):
    monkeypatch.setitem(sys.modules, "tensorrt", None)
    with pytest.raises(MissingDependencyError, match=r"tensorrt is required .*rtseg\[trt\]"):
        open_tensorrt_backend(tiny_package)
    with pytest.raises(MissingDependencyError, match="tensorrt is required"):
        open_model(tiny_package.onnx_path, backend="tensorrt")


def test_open_without_gpu(monkeypatch, tiny_package):
    import rtseg.core.gpu as device

    trt = fake_tensorrt.make_module(H, W)
    monkeypatch.setitem(sys.modules, "tensorrt", trt)
    monkeypatch.setattr(device, "import_cudart", lambda: None)
    monkeypatch.setitem(sys.modules, "pycuda", None)
    monkeypatch.setitem(sys.modules, "pycuda.driver", None)
    monkeypatch.setattr(device.shutil, "which", lambda name: None)
    with pytest.raises(DeviceError, match="no CUDA GPU found"):
        open_tensorrt_backend(tiny_package)
    assert trt.calls["created_builder"] == 0


def test_open_without_cuda_bindings(monkeypatch, tiny_package):
    import rtseg.core.gpu as device
    import rtseg.runtime.cuda as cuda

    monkeypatch.setitem(sys.modules, "tensorrt", fake_tensorrt.make_module(H, W))
    monkeypatch.setattr(device, "cuda_device_info", lambda index=0: device.DeviceInfo(0, "GPU", (8, 9), 0))
    monkeypatch.setattr(cuda, "available_memory_implementations", lambda: [])
    with pytest.raises(MissingDependencyError, match="cuda-python"):
        open_tensorrt_backend(tiny_package)


# --- on a real GPU ---------------------------------------------------------------------------


def _cudart():
    from rtseg.core.gpu import import_cudart

    cudart = import_cudart()
    if cudart is None:
        pytest.skip("cuda-python is not installed")
    return cudart


@pytest.mark.gpu
@pytest.mark.trt
@pytest.mark.slow
@pytest.mark.parametrize("batch", [1, 3])
def test_backend_contract_tensorrt_agrees_with_onnxruntime(tiny_package, tmp_path, monkeypatch, batch):
    monkeypatch.setenv("RTSEG_CACHE", str(tmp_path / "cache"))
    frames = structured_frames(batch, H, W, seed=5)
    with open_model(tiny_package.onnx_path, backend="onnxruntime", threads=1).backend as reference:
        expected = reference.infer(frames)
    engine = tmp_path / "tiny.engine"
    with open_tensorrt_backend(tiny_package, engine_path=engine, batch=2) as backend:
        out = backend.infer(frames)
    assert out.shape == (batch, H, W) and out.dtype == np.uint8 and out.max() < 11
    assert (out == expected).mean() >= 0.99
    with open_tensorrt_backend(tiny_package, engine_path=engine, batch=2) as again:  # reuses the engine
        np.testing.assert_array_equal(again.infer(frames), out)
