"""Shared fixtures: the shared data folder, a tiny exported model package, generated videos.

Markers: `gpu` (needs a CUDA device), `trt` (needs TensorRT), `slow` (seconds to minutes; run in
CI all the same), `data` (needs ../shared/data; skipped with a reason when absent).
"""

from __future__ import annotations

import os
import shutil
import sys
import tempfile
from pathlib import Path

import numpy as np
import pytest

REPO = Path(__file__).resolve().parent.parent
DATA = Path(os.environ.get("RTSEG_DATA", REPO.parent / "shared" / "data"))


def pytest_configure(config):
    # One cache folder for the run (engines, bench packages), shared with the subprocesses and
    # any xdist workers, never the user's ~/.cache. Exported graphs are kept across runs in
    # pytest's cache (.pytest_cache/d/rtseg-onnx; `--cache-clear` or `-p no:cacheprovider` for a
    # cold run), keyed by everything the graph depends on (rtseg/export/graph_cache.py): each
    # graph is exported once, and a later export of the same weights is a copy.
    if "PYTEST_XDIST_WORKER" not in os.environ:
        run_cache = os.environ["RTSEG_CACHE"] = tempfile.mkdtemp(prefix="rtseg-test-cache-")
        config.add_cleanup(lambda: shutil.rmtree(run_cache, ignore_errors=True))
        if getattr(config, "cache", None) is not None and "RTSEG_EXPORT_CACHE" not in os.environ:
            os.environ["RTSEG_EXPORT_CACHE"] = str(config.cache.mkdir("rtseg-onnx"))
    for marker, text in (
        ("gpu", "needs a CUDA GPU; skipped without one"),
        ("trt", "needs TensorRT; skipped without it"),
        ("slow", "takes seconds to minutes; still run in CI"),
        ("data", "needs ../shared/data (RTSEG_DATA); skipped when absent"),
    ):
        config.addinivalue_line("markers", f"{marker}: {text}")


def _has_gpu() -> bool:
    try:
        import torch

        if torch.cuda.is_available():
            return True
    except ImportError:
        pass
    return shutil.which("nvidia-smi") is not None and os.path.exists("/dev/nvidia0")


def _has_trt() -> bool:
    try:
        import tensorrt  # noqa: F401
    except ImportError:
        return False
    return True


def pytest_collection_modifyitems(config, items):
    gpu, trt = _has_gpu(), _has_trt()
    for item in items:  # markers, not keywords: a folder named "gpu" is a keyword too
        if item.get_closest_marker("gpu") and not gpu:
            item.add_marker(pytest.mark.skip(reason="no CUDA GPU on this machine"))
        if item.get_closest_marker("trt") and not trt:
            item.add_marker(pytest.mark.skip(reason="TensorRT is not installed"))
        if item.get_closest_marker("data") and not DATA.is_dir():
            item.add_marker(pytest.mark.skip(reason=f"shared data not found at {DATA}"))


@pytest.fixture(scope="session")
def data_dir() -> Path:
    if not DATA.is_dir():
        pytest.skip(f"shared data not found at {DATA}")
    return DATA


@pytest.fixture(scope="session")
def dashcam_video(data_dir) -> Path:
    path = data_dir / "video" / "dashcam_highway_960x540.mp4"
    if not path.is_file():
        pytest.skip(f"{path} not found")
    return path


TINY_SIZE = (64, 96)  # (height, width) of the tiny test model


def make_tiny_checkpoint(path: Path, input_size=TINY_SIZE, seed: int = 0) -> Path:
    """A randomly initialised fpn_lite/efficientnet_lite0 CamVid checkpoint (no pretrained)."""
    import torch

    from rtseg.core.checkpoint import save_checkpoint
    from rtseg.data.labels import CAMVID
    from rtseg.models import create_model

    torch.manual_seed(seed)
    model = create_model("fpn_lite", "efficientnet_lite0", CAMVID.num_classes)
    save_checkpoint(
        path,
        {
            "model": {
                "arch": "fpn_lite",
                "encoder": "efficientnet_lite0",
                "num_classes": CAMVID.num_classes,
                "kwargs": {},
            },
            "labels": {
                "name": "camvid",
                "classes": list(CAMVID.classes),
                "palette": [list(c) for c in CAMVID.palette],
            },
            "normalization": {"mean": [0.5] * 3, "std": [0.5] * 3},
            "input_size": list(input_size),
            "state_dict": model.state_dict(),
        },
    )
    return path


def structured_frames(n: int, height: int, width: int, seed: int = 0) -> np.ndarray:
    """(n, H, W, 3) uint8 RGB frames with smooth structure (gradients and blocks), not noise."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:height, 0:width].astype(np.float32)
    frames = np.empty((n, height, width, 3), np.uint8)
    for i in range(n):
        base = np.stack([xx / width, yy / height, (xx + yy + 7 * i) / (width + height)], -1)
        img = base * 255 * rng.uniform(0.6, 1.0, 3)
        y0, x0 = rng.integers(0, height // 2), rng.integers(0, width // 2)
        img[y0 : y0 + height // 3, x0 : x0 + width // 3] = rng.uniform(0, 255, 3)
        frames[i] = np.clip(img, 0, 255).astype(np.uint8)
    return frames


@pytest.fixture(scope="session")
def tiny_checkpoint(tmp_path_factory) -> Path:
    return make_tiny_checkpoint(tmp_path_factory.mktemp("ckpt") / "tiny.pth")


@pytest.fixture(scope="session")
def tiny_package(tmp_path_factory, tiny_checkpoint):
    """An exported FP32 model package (`.onnx` + `.json`) of the tiny model, 96x64 input."""
    import torch

    from rtseg.export.package_export import export_checkpoint

    torch.set_num_threads(1)
    out = tmp_path_factory.mktemp("pkg") / "tiny.onnx"
    frames = structured_frames(4, *TINY_SIZE)
    package, _ = export_checkpoint(tiny_checkpoint, out, frames)
    return package


@pytest.fixture(scope="session")
def fp16_package(tiny_package, tmp_path_factory):
    """The tiny package converted to FP16, once per test run."""
    from rtseg.export.fp16 import convert_fp16

    return convert_fp16(tiny_package, tmp_path_factory.mktemp("fp16") / "tiny_fp16.onnx")


@pytest.fixture(scope="session")
def int8_package(tiny_package, tmp_path_factory):
    """The tiny package quantized to INT8 for TensorRT (min-max, 6 generated frames), once per run."""
    from rtseg.export.int8 import Int8Options, quantize_int8

    frames = structured_frames(6, *TINY_SIZE, seed=3)
    out = tmp_path_factory.mktemp("int8") / "tiny_int8.onnx"
    return quantize_int8(tiny_package, out, frames, Int8Options(method="minmax"), calib_source="generated")


@pytest.fixture(scope="session")
def int8cpu_package(tiny_package, tmp_path_factory):
    """The tiny package quantized to INT8 for ONNX Runtime's CPU provider, once per run."""
    from rtseg.export.int8 import Int8Options, quantize_int8

    frames = structured_frames(4, *TINY_SIZE, seed=3)
    out = tmp_path_factory.mktemp("int8cpu") / "tiny_int8cpu.onnx"
    return quantize_int8(tiny_package, out, frames, Int8Options(target="cpu"))


def write_video(
    path: Path,
    frames: np.ndarray,
    fps: int = 12,
    codec: str = "libx264",
    pix_fmt: str = "yuv420p",
    container_options: dict | None = None,
    container_format: str | None = None,
) -> Path:
    """Encode `(N, H, W, 3) uint8 RGB` frames with PyAV (flushing the encoder)."""
    import av

    with av.open(str(path), "w", format=container_format, options=container_options or {}) as container:
        stream = container.add_stream(codec, rate=fps)
        stream.width, stream.height, stream.pix_fmt = frames.shape[2], frames.shape[1], pix_fmt
        for frame in frames:
            for packet in stream.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    return path


@pytest.fixture(scope="session")
def tiny_video(tmp_path_factory) -> Path:
    """A 24-frame 160x120 H.264 MP4 at 12 fps, written with PyAV."""
    path = tmp_path_factory.mktemp("video") / "tiny.mp4"
    return write_video(path, structured_frames(24, 120, 160, seed=1))


# --- TensorRT and GPU stand-ins (tests/fake_tensorrt.py) -----------------------------------


@pytest.fixture
def no_tensorrt(monkeypatch):
    monkeypatch.setitem(sys.modules, "tensorrt", None)  # import tensorrt -> ImportError


@pytest.fixture
def no_gpu(monkeypatch):
    """No cuda-python, no pycuda, no nvidia-smi: whatever this machine has."""
    import rtseg.core.gpu as device

    monkeypatch.setattr(device, "import_cudart", lambda: None)
    monkeypatch.setitem(sys.modules, "pycuda", None)
    monkeypatch.setitem(sys.modules, "pycuda.driver", None)
    monkeypatch.setattr(device.shutil, "which", lambda name: None)


@pytest.fixture
def fake_trt(monkeypatch):
    import fake_tensorrt

    trt = fake_tensorrt.make_module(*TINY_SIZE)
    monkeypatch.setitem(sys.modules, "tensorrt", trt)
    return trt


@pytest.fixture
def fake_gpu(monkeypatch):
    import rtseg.core.gpu as device

    info = device.DeviceInfo(0, "NVIDIA H100", (9, 0), 80 << 30)
    monkeypatch.setattr(device, "cuda_device_info", lambda index=0: info)
