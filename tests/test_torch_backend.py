"""Torch backend: the submit/wait slots on the CPU (what runs here), device choice and its errors,
`rtseg run --backend torch --device ...`; on a CUDA GPU (marked `gpu`): fp16 + channels_last
agreement with ONNX Runtime, the two streams, CUDA graphs, and the pipeline end to end."""

from __future__ import annotations

import json

import numpy as np
import pytest
from click.testing import CliRunner
from conftest import TINY_SIZE, structured_frames, write_video

from rtseg.cli import main
from rtseg.errors import DeviceError, InputError
from rtseg.loading import open_model
from rtseg.runtime.torch_backend import TorchBackend, resolve_device

H, W = TINY_SIZE
torch = pytest.importorskip("torch")


def _reference_ids(tiny_package, frames):
    with open_model(tiny_package.onnx_path, backend="onnxruntime", threads=1).backend as reference:
        return reference.infer(frames)


# --- CPU: the same slots, work done in submit --------------------------------------------------


def test_cpu_submit_wait_through_two_slots(tiny_checkpoint, tiny_package):
    frames = structured_frames(5, H, W, seed=11)
    expected = _reference_ids(tiny_package, frames)
    with TorchBackend(tiny_checkpoint, device="cpu", threads=1, batch=2) as backend:
        assert backend.overlaps is False and len(backend.ring) == 2 and backend.max_batch == 2
        pending = [backend.submit(frames[i : i + 1]) for i in range(3)]  # 3 in flight on 2 slots
        ids = np.concatenate([p.wait() for p in pending])
        assert ids.shape == (3, H, W) and ids.dtype == np.uint8
        assert (ids == expected[:3]).mean() >= 0.99
        again = pending[0].wait()
        assert again is pending[0].wait()  # collected once, kept
        np.testing.assert_array_equal(backend.infer(frames), np.concatenate([ids, backend.infer(frames[3:])]))
        with pytest.raises(InputError, match="at most 2 frames"):
            backend.submit(frames[:3])
        assert backend.describe().startswith("torch[cpu,")


def test_device_choice_and_its_errors():
    assert resolve_device("cpu").type == "cpu"
    assert resolve_device(None).type == "cpu"
    assert resolve_device("auto").type == ("cuda" if torch.cuda.is_available() else "cpu")
    with pytest.raises(InputError, match="runs on cpu, cuda, auto"):
        resolve_device("tensorrt")
    if not torch.cuda.is_available():
        with pytest.raises(DeviceError, match="no CUDA GPU"):
            resolve_device("cuda")


def test_fp16_needs_cuda(tiny_checkpoint):
    with pytest.raises(InputError, match="fp16 .* needs a CUDA device"):
        TorchBackend(tiny_checkpoint, device="cpu", fp16=True)


def test_cli_run_torch_on_the_cpu_device(tiny_checkpoint, tmp_path):
    video = write_video(tmp_path / "in.mp4", structured_frames(6, H, W, seed=2))
    stats = tmp_path / "stats.json"
    args = ["run", "--video", str(video), "--model", str(tiny_checkpoint), "--backend", "torch"]
    result = CliRunner().invoke(main, [*args, "--device", "cpu", "--stats-json", str(stats), "-q"])
    assert result.exit_code == 0, result.output
    assert json.loads(stats.read_text())["frames"] == 6


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has a CUDA GPU")
def test_cli_run_torch_cuda_without_a_gpu_is_one_line(tiny_checkpoint, tmp_path):
    video = write_video(tmp_path / "in.mp4", structured_frames(2, H, W))
    args = ["run", "--video", str(video), "--model", str(tiny_checkpoint), "--backend", "torch"]
    result = CliRunner().invoke(main, [*args, "--device", "cuda", "-q"])
    assert result.exit_code == 1 and "Traceback" not in result.output
    (line,) = result.stderr.strip().splitlines()
    assert line.startswith("rtseg: error: no CUDA GPU")


# --- on a CUDA GPU -----------------------------------------------------------------------------


@pytest.mark.gpu
@pytest.mark.parametrize("fp16", [False, True])
def test_cuda_agrees_with_onnxruntime(tiny_checkpoint, tiny_package, fp16):
    frames = structured_frames(7, H, W, seed=12)
    expected = _reference_ids(tiny_package, frames)
    with TorchBackend(tiny_checkpoint, device="cuda", fp16=fp16, batch=2) as backend:
        assert backend.overlaps and backend.channels_last and backend.fp16 == fp16
        assert backend.ring.slots[0].stream != backend.ring.slots[1].stream
        assert backend.ring.slots[0].host_in.is_pinned()
        ids = backend.infer(frames)
        assert ids.shape == (7, H, W) and ids.dtype == np.uint8
        assert (ids == expected).mean() >= (0.97 if fp16 else 0.995)
        assert "cuda" in backend.describe()


@pytest.mark.gpu
def test_cuda_submit_returns_before_the_work_is_done_and_keeps_results(tiny_checkpoint):
    frames = structured_frames(4, H, W, seed=13)
    with TorchBackend(tiny_checkpoint, device="cuda", batch=1) as backend:
        eager = backend.infer(frames)
        pending = [backend.submit(frames[i : i + 1]) for i in range(4)]  # slots reused twice
        np.testing.assert_array_equal(np.concatenate([p.wait() for p in pending]), eager)


@pytest.mark.gpu
def test_cuda_graphs_replay_new_frames_like_eager(tiny_checkpoint):
    frames = structured_frames(6, H, W, seed=14)
    with TorchBackend(tiny_checkpoint, device="cuda", batch=2) as eager:
        expected = eager.infer(frames)
    with TorchBackend(tiny_checkpoint, device="cuda", batch=2, cuda_graphs=True) as backend:
        first = backend.infer(frames)  # captures on both slots
        assert all(slot.graph is not None for slot in backend.ring.slots)
        np.testing.assert_array_equal(backend.infer(frames), first)  # replays on new data
        np.testing.assert_array_equal(backend.infer(frames[::-1].copy()), first[::-1])
        np.testing.assert_array_equal(backend.infer(frames[:3]), first[:3])  # 2 + 1: eager for the 1
    assert (first == expected).mean() >= 0.999


@pytest.mark.gpu
def test_pipeline_end_to_end_on_the_gpu(tiny_checkpoint, tmp_path):
    pytest.importorskip("av")  # the GPU machine may lack PyAV (gpu_check.sh installs a wheel brought along)
    video = write_video(tmp_path / "in.mp4", structured_frames(12, H, W, seed=3))
    stats, out = tmp_path / "stats.json", tmp_path / "out.mp4"
    args = ["run", "--video", str(video), "--model", str(tiny_checkpoint), "--backend", "torch"]
    result = CliRunner().invoke(
        main, [*args, "--device", "cuda", "--output", str(out), "--stats-json", str(stats), "-q"]
    )
    assert result.exit_code == 0, result.output
    assert json.loads(stats.read_text())["frames"] == 12 and out.stat().st_size > 0
