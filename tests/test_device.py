"""`--device auto|cpu|cuda|tensorrt`: ONNX Runtime's execution providers, torch's device, the
TensorRT backend's GPU, and where a run reports it ran. ONNX Runtime's GPU providers are
simulated (this machine's onnxruntime is the CPU build)."""

from __future__ import annotations

import json

import numpy as np
import onnxruntime as ort
import pytest
from click.testing import CliRunner

import rtseg.runtime.onnxruntime_backend as ortb
from rtseg.cli import main
from rtseg.errors import BackendError, InputError
from rtseg.loading import DEVICES, check_device, open_model
from rtseg.runtime.onnxruntime_backend import OnnxRuntimeBackend, providers_for

CPU, CUDA, TRT = "CPUExecutionProvider", "CUDAExecutionProvider", "TensorrtExecutionProvider"
GPU_BUILD = [TRT, CUDA, CPU]  # what onnxruntime-gpu lists


@pytest.mark.parametrize(
    "device,available,trt_libs,expected",
    [
        ("cpu", GPU_BUILD, True, [CPU]),
        ("auto", [CPU], False, [CPU]),
        ("auto", GPU_BUILD, False, [CUDA, CPU]),  # TensorRT listed, its libraries absent
        ("auto", GPU_BUILD, True, [TRT, CUDA, CPU]),
        ("cuda", GPU_BUILD, True, [CUDA, CPU]),
        ("tensorrt", GPU_BUILD, False, [TRT, CUDA, CPU]),
    ],
)
def test_each_device_asks_onnxruntime_for_its_providers(device, available, trt_libs, expected, monkeypatch):
    monkeypatch.setattr(ortb, "_tensorrt_libraries", lambda: trt_libs)
    assert providers_for(device, available) == expected


@pytest.mark.parametrize("device", ["cuda", "tensorrt"])
def test_a_gpu_device_without_onnxruntime_gpu_is_one_line_naming_it(device):
    with pytest.raises(BackendError, match=rf"--device {device}: this onnxruntime has no .* onnxruntime-gpu"):
        providers_for(device, [CPU])


class _Session:
    """A real CPU session that reports the providers `started` as the ones it runs on."""

    started: list[str] | None = None
    calls: list[dict] = []

    def __init__(self, path, options, providers, provider_options):
        type(self).calls.append({"providers": providers, "provider_options": provider_options})
        self._real = _REAL_SESSION(path, options, providers=[CPU])
        self._started = providers if type(self).started is None else type(self).started

    def get_providers(self):
        return list(self._started)

    def __getattr__(self, name):
        return getattr(self._real, name)


_REAL_SESSION = ort.InferenceSession


@pytest.fixture
def gpu_onnxruntime(monkeypatch):
    """onnxruntime as the GPU build with a working GPU: every provider asked for starts."""
    monkeypatch.setattr(ort, "get_available_providers", lambda: list(GPU_BUILD))
    monkeypatch.setattr(ort, "InferenceSession", _Session)
    monkeypatch.setattr(ortb, "_tensorrt_libraries", lambda: True)
    monkeypatch.setattr(_Session, "started", None)
    monkeypatch.setattr(_Session, "calls", [])
    return _Session


def test_cuda_runs_on_the_cuda_provider_and_says_so(gpu_onnxruntime, tiny_package):
    with OnnxRuntimeBackend(tiny_package, device="cuda", threads=1) as backend:
        assert backend.runs_on == "cuda" and backend.describe().startswith("onnxruntime[CUDA")
        h, w = tiny_package.input_size
        assert backend.infer(np.zeros((1, h, w, 3), np.uint8)).shape == (1, h, w)
    assert gpu_onnxruntime.calls[-1]["providers"] == [CUDA, CPU]


def test_tensorrt_provider_keeps_its_engines_in_the_cache(
    gpu_onnxruntime, tiny_package, tmp_path, monkeypatch
):
    monkeypatch.setenv("RTSEG_CACHE", str(tmp_path / "cache"))
    model = open_model(tiny_package.onnx_path, device="auto", threads=1)
    with model.backend as backend:
        assert backend.runs_on == "tensorrt"
    call = gpu_onnxruntime.calls[-1]
    assert call["providers"] == [TRT, CUDA, CPU]
    assert call["provider_options"][0] == {
        "trt_engine_cache_enable": "True",
        "trt_engine_cache_path": str(tmp_path / "cache" / "onnxruntime-tensorrt"),
    }
    assert call["provider_options"][1:] == [{}, {}]


def test_a_gpu_provider_that_does_not_start_is_an_error_not_a_silent_cpu_run(gpu_onnxruntime, tiny_package):
    gpu_onnxruntime.started = [CPU]  # onnxruntime fell back: no GPU, or CUDA libraries missing
    with pytest.raises(BackendError, match="could not start CUDAExecutionProvider"):
        OnnxRuntimeBackend(tiny_package, device="cuda", threads=1)
    with OnnxRuntimeBackend(tiny_package, device="auto", threads=1) as backend:  # auto: the best there is
        assert backend.runs_on == "cpu"


def test_auto_and_cpu_run_on_this_machines_cpu(tiny_package):
    for device in ("auto", "cpu"):
        with open_model(tiny_package.onnx_path, device=device, threads=1).backend as backend:
            assert backend.runs_on == "cpu" and "CPU" in backend.describe()


def test_devices_every_backend_cannot_take_are_refused():
    assert DEVICES == ("auto", "cpu", "cuda", "tensorrt")
    with pytest.raises(InputError, match="TensorRT backend runs on an NVIDIA GPU"):
        check_device("tensorrt", "cpu")
    with pytest.raises(InputError, match="unknown device 'tpu'"):
        check_device("onnxruntime", "tpu")
    with pytest.raises(InputError, match="ONNX Runtime's TensorRT provider"):
        check_device("torch", "tensorrt")
    with pytest.raises(InputError, match="unknown device 'cuda:1'"):
        check_device("onnxruntime", "cuda:1")
    check_device("tensorrt", "auto")
    check_device("torch", "cuda:1")


def test_run_reports_where_it_ran_and_refuses_a_missing_gpu_provider(tiny_package, tiny_video, tmp_path):
    runner = CliRunner()
    stats = tmp_path / "stats.json"
    args = ["run", "--video", str(tiny_video), "--model", str(tiny_package.onnx_path), "-q", "--threads", "1"]
    result = runner.invoke(main, [*args, "--max-frames", "2", "--stats-json", str(stats)])
    assert result.exit_code == 0, result.output
    assert json.loads(stats.read_text())["device"] == "cpu"
    if CUDA in ort.get_available_providers():
        pytest.skip("this onnxruntime has the CUDA provider")
    result = runner.invoke(main, [*args, "--device", "cuda"])
    have = ", ".join(p.replace("ExecutionProvider", "") for p in ort.get_available_providers())
    assert result.exit_code == 1
    assert result.output.strip().splitlines() == [
        f"rtseg: error: --device cuda: this onnxruntime has no {CUDA} (it has {have}); "
        "install onnxruntime-gpu in place of onnxruntime "
        "(pip uninstall -y onnxruntime && pip install onnxruntime-gpu)"
    ]


def test_device_is_an_option_of_run_eval_and_bench():
    for command in ("run", "eval", "bench"):
        result = CliRunner().invoke(main, [command, "--help"])
        assert "--device [auto|cpu|cuda|tensorrt]" in result.output, command
