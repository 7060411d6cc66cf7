"""TensorRT backend: buffer sizes from tensor descriptions, I/O checks, the two-slot pipeline
(against a fake TensorRT and host-memory "device"), error paths, and the real thing on a GPU."""

from __future__ import annotations

import sys

import fake_tensorrt
import numpy as np
import pytest
from conftest import TINY_SIZE, structured_frames

from rtseg.errors import BackendError, DeviceError, MissingDependencyError, ModelError
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


def test_backend_single_profile_engine_uses_one_slot(fake_engine, tiny_package):
    _, path = fake_engine(profiles=1)
    with TensorRTBackend(path, tiny_package, memory=fake_tensorrt.HostMemory()) as backend:
        assert len(backend.slots) == 1
        frames = structured_frames(3, H, W)
        np.testing.assert_array_equal(backend.infer(frames), fake_tensorrt.fake_ids(frames))


def test_backend_rejects_wrong_frames_and_foreign_engines(fake_engine, tiny_package, tmp_path):
    _, path = fake_engine()
    with TensorRTBackend(path, tiny_package, memory=fake_tensorrt.HostMemory()) as backend:
        with pytest.raises(Exception, match="expected"):
            backend.infer(np.zeros((1, 10, 10, 3), np.uint8))
    other = tmp_path / "other.engine"
    other.write_bytes(b"built elsewhere")
    with pytest.raises(ModelError, match="cannot load"):
        TensorRTBackend(other, tiny_package, memory=fake_tensorrt.HostMemory())


# --- errors without TensorRT / GPU: one clear line, never a crash -----------------------------


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
def test_cuda_python_memory_round_trip_and_graph():
    _cudart()
    from rtseg.runtime.cuda import cuda_device_info, open_cuda_memory

    assert cuda_device_info().compute_capability[0] >= 3
    with open_cuda_memory("cuda-python") as memory:
        data = np.arange(4096, dtype=np.int32).reshape(64, 64)
        host_in = memory.host_buffer(data.shape, data.dtype)
        host_out = memory.host_buffer(data.shape, data.dtype)
        device = memory.device_buffer(data.nbytes)
        stream, event = memory.stream(), memory.event()
        host_in.array[:] = data
        memory.copy_to_device(device, host_in, data.nbytes, stream)
        memory.copy_to_host(host_out, device, data.nbytes, stream)
        event.record(stream)
        event.synchronize()
        assert event.query()
        np.testing.assert_array_equal(host_out.array, data)
        memory.begin_capture(stream)
        memory.copy_to_device(device, host_in, data.nbytes, stream)
        memory.copy_to_host(host_out, device, data.nbytes, stream)
        graph = memory.end_capture(stream)
        host_in.array[:] = data * 2
        graph.launch(stream)
        stream.synchronize()
        np.testing.assert_array_equal(host_out.array, data * 2)
        for item in (graph, host_in, host_out, device, event, stream):
            item.close()
            item.close()


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
