"""`load()` -> `Segmenter`: segment frames, draw the result, stream a source lazily.

Frames are `(H, W, 3) uint8 RGB` (numpy order: height first; RGB, not OpenCV's BGR) at any
size; class ids come back as `(H, W) uint8` at each frame's own size. The frame is resized to
the model's input size (area averaging when shrinking, bilinear otherwise) and the ids back by
nearest neighbour: the same two resizes as `rtseg run` on RGB pixels (image files, frames
folders), so the ids equal its `--masks` PNGs for them. A video run resizes the decoder's
yuv420p picture instead (one swscale step): `stream(video)` gives exactly its ids; `seg` of a
frame decoded to RGB elsewhere agrees with them on nearly every pixel, not all.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from rtseg.core.frames import resize_frame, resize_ids
from rtseg.errors import BackendError, InputError
from rtseg.loading import DEVICES, open_model
from rtseg.pipeline.stream import FrameResult, ResultStream

__all__ = ["DEVICES", "FrameResult", "ResultStream", "Segmenter", "load", "open_loaded_model"]


def open_loaded_model(
    model: str | Path, backend: str, device: str | None, threads: int | None, batch: int = 1
):
    """`open_model` on `device` (rtseg.loading.DEVICES; None: "auto", the best this machine
    has): ONNX Runtime's execution providers, torch on the CPU or CUDA, TensorRT on the GPU.
    batch: the largest batch the caller will pass (TensorRT sizes its buffers for it)."""
    return open_model(model, backend=backend, threads=threads, device=device, batch=batch)


def load(
    model: str | os.PathLike | None = None,
    backend: str = "auto",
    device: str | None = None,
    threads: int | None = None,
) -> Segmenter:
    """Open a model for segmentation.

    model: a model package (`NAME.onnx` or `NAME.json`), a training checkpoint (`.pth`, torch
        backend) or a TensorRT engine (`.engine`, tensorrt backend); None: the bundled CamVid
        model (on ONNX Runtime the fastest variant within the accuracy targets).
    backend: "auto" (default: the fastest healthy engine here, rtseg.loading.choose_backend),
        "onnxruntime", "openvino", "torch" or "tensorrt".
    device: where it runs: "auto" (default: the best this machine has), "cpu", "cuda", or
        "tensorrt" (ONNX Runtime's TensorRT provider); `Segmenter.runs_on` says where it went.
    threads: CPU threads for the backend (None: its default).

    Raises ModelError (not a model / missing sidecar), BackendError (backend or provider not
    available), MissingDependencyError (an extra is not installed), InputError (bad option).
    """
    from rtseg.loading import BACKEND_CHOICES

    if backend not in BACKEND_CHOICES:
        raise InputError(f"unknown backend {backend!r} (use {', '.join(BACKEND_CHOICES)})")
    if threads is not None and (not isinstance(threads, int) or threads < 1):
        raise InputError(f"threads must be a positive integer, got {threads!r}")
    return Segmenter(open_model(model, backend=backend, threads=threads, device=device))


def _check_frame(frame, where: str) -> np.ndarray:
    if not isinstance(frame, np.ndarray):
        raise InputError(f"{where}: expected a numpy array (H, W, 3) uint8 RGB, got {type(frame).__name__}")
    if frame.ndim != 3 or frame.shape[2] != 3 or frame.dtype != np.uint8 or 0 in frame.shape:
        raise InputError(f"{where}: expected (H, W, 3) uint8 RGB, got {frame.shape} {frame.dtype}")
    return frame


class Segmenter:
    """A loaded model: call it on frames, draw its results, stream sources through it.

    classes: class names by id; palette: `(C, 3) uint8 RGB` colours by id; input_size: the
    model's (height, width). A context manager; `close()` is idempotent. One backend call at a
    time: do not call it from several threads at once, nor while one of its streams runs on the
    TensorRT backend.
    """

    def __init__(self, model):
        self._model = model
        self._backend = model.backend
        self._visualizer = None

    @property
    def classes(self) -> list[str]:
        return list(self._model.classes)

    @property
    def palette(self) -> np.ndarray:
        """`(num_classes, 3) uint8 RGB`."""
        return np.asarray(self._model.palette, np.uint8)

    @property
    def input_size(self) -> tuple[int, int]:
        """(height, width) of the model's input."""
        return tuple(self._live_backend().input_size)

    @property
    def model_path(self) -> Path:
        return Path(self._model.source)

    @property
    def runs_on(self) -> str:
        """Where the model runs: "cpu", "cuda", or "tensorrt" (ONNX Runtime's TensorRT provider)."""
        return self._live_backend().runs_on

    def describe(self) -> str:
        """e.g. "openvino[CPU, bf16, 2 threads]", "onnxruntime[CPU, int8, 2 threads]"."""
        return self._live_backend().describe()

    def __repr__(self) -> str:
        state = "closed" if self._backend is None else self._backend.describe()
        return f"<Segmenter {self.model_path.name} on {state}>"

    def _live_backend(self):
        if self._backend is None:
            raise BackendError("this Segmenter is closed")
        return self._backend

    def __call__(self, frames: np.ndarray | Sequence[np.ndarray]) -> np.ndarray | list[np.ndarray]:
        """Segment frames at any size.

        `(H, W, 3) uint8 RGB` -> `(H, W) uint8` ids; `(N, H, W, 3)` -> `(N, H, W)`; a list of
        frames of different sizes -> a list of `(H_i, W_i) uint8`. InputError for anything else.
        """
        if isinstance(frames, np.ndarray):
            if frames.ndim == 3:
                return self._segment([_check_frame(frames, "frame")])[0]
            if frames.ndim == 4:
                batch = [_check_frame(f, f"frame {i}") for i, f in enumerate(frames)]
                ids = self._segment(batch)
                return np.stack(ids) if ids else np.zeros((0, *frames.shape[1:3]), np.uint8)
            raise InputError(f"expected (H, W, 3) or (N, H, W, 3) uint8 RGB, got {frames.shape}")
        if isinstance(frames, (list, tuple)):
            return self._segment([_check_frame(f, f"frame {i}") for i, f in enumerate(frames)])
        raise InputError(f"expected a frame, a batch or a list of frames, got {type(frames).__name__}")

    predict = __call__

    def _segment(self, frames: list[np.ndarray]) -> list[np.ndarray]:
        backend = self._live_backend()
        size = tuple(backend.input_size)
        step = max(1, backend.max_batch)
        out: list[np.ndarray] = []
        for start in range(0, len(frames), step):
            chunk = frames[start : start + step]
            batch = np.stack([resize_frame(f, size) for f in chunk])
            ids = backend.infer(batch)
            out.extend(resize_ids(i, f.shape[:2]) for i, f in zip(ids, chunk))
        return out

    def render(
        self,
        frame: np.ndarray,
        ids: np.ndarray,
        mode: str = "overlay",
        alpha: float = 0.5,
        legend: bool = True,
    ) -> np.ndarray:
        """Draw `ids` (`(h, w) uint8`, upsampled to the frame's size) on `frame` (`(H, W, 3)
        uint8 RGB`): "overlay" (blend, `alpha` = weight of the colours), "mask" (colours only)
        or "side-by-side" (frame | colours: `(H, 2W, 3)`). Returns a new uint8 RGB image."""
        from rtseg.viz import Visualizer, VizConfig

        _check_frame(frame, "frame")
        if not isinstance(ids, np.ndarray) or ids.ndim != 2 or ids.dtype != np.uint8 or 0 in ids.shape:
            got = f"{ids.shape} {ids.dtype}" if isinstance(ids, np.ndarray) else type(ids).__name__
            raise InputError(f"ids: expected (H, W) uint8 class ids, got {got}")
        cfg = VizConfig(mode=mode, alpha=alpha, legend=legend, hud=False)
        if self._visualizer is None:
            self._visualizer = Visualizer(cfg, self.classes, self.palette)
        return self._visualizer.render(frame, ids, cfg=cfg)

    def stream(
        self,
        source,
        *,
        max_frames: int | None = None,
        live: bool | None = None,
        realtime: bool = False,
        fps: float | None = None,
        queue_size: int = 4,
        timeout: float = 10.0,
    ) -> ResultStream:
        """Iterate lazily over `source`'s frames and their ids: a ResultStream of FrameResult.

        source: a video file, frames folder or glob, camera index (0) or device, stream URL,
            "lavfi:<graph>", or an open FrameSource (left open). Opened now (InputError now).
        A capture thread and an infer thread run ahead of the loop (`queue_size` frames in
        flight); files give every frame in order, live sources the newest (drops counted in
        `stats.dropped`). Leaving the loop, `close()` or the `with` block's end stops the
        threads; `stats` holds the PipelineStats. A stage's error is raised from the loop.
        max_frames / live / realtime / fps / timeout: as for `rtseg run` and `open_source`.
        """
        from rtseg.video import FrameSource, open_source

        backend = self._live_backend()
        if max_frames is not None and (not isinstance(max_frames, int) or max_frames < 1):
            raise InputError(f"max_frames must be a positive integer, got {max_frames!r}")
        if isinstance(source, FrameSource):
            return ResultStream(source, backend, max_frames=max_frames, queue_size=queue_size)
        opened = open_source(str(source), live=live, realtime=realtime, fps=fps, timeout=timeout)
        return ResultStream(opened, backend, max_frames=max_frames, queue_size=queue_size, owns_source=True)

    def close(self) -> None:
        """Release the backend (idempotent)."""
        backend, self._backend = self._backend, None
        if backend is not None:
            backend.close()

    def __enter__(self) -> Segmenter:
        return self

    def __exit__(self, *exc) -> None:
        self.close()
