"""The Backend contract: everything a caller (pipeline, evaluation, bench, API) may use.

Public methods check their input, then call the `*_impl` hook a backend implements (the shape of
Polygraphy's runner base): `_infer_impl` always, `_submit_impl` when the backend overlaps work
(TensorRT's two slots), `_logits_impl` when it can give logits, `_close_impl` when it holds
something. Nothing outside rtseg.runtime reads a backend's other attributes.
"""

from __future__ import annotations

from abc import ABC, abstractmethod

import numpy as np

from rtseg.core.closing import Closeable
from rtseg.core.frames import format_size
from rtseg.errors import BackendError, InputError


class Done:
    """The handle `submit` returns when the work is already finished; `wait()` gives the ids."""

    def __init__(self, ids: np.ndarray):
        self._ids = ids

    def wait(self) -> np.ndarray:
        return self._ids


class Backend(Closeable, ABC):
    """Runs a segmentation model on batches of frames already at the model's input size.

    Frames: `(N, H, W, 3) uint8 RGB`, C-contiguous, `(H, W) == input_size` (height, width).
    - `infer(frames) -> (N, H, W) uint8` class ids.
    - `submit(frames) -> handle`, `handle.wait() -> (N, H, W) uint8` ids: starts the work and
      returns; at most `max_batch` frames. `overlaps` says whether the work really runs while
      the caller goes on (then keep one batch in flight); by default it is done in `submit`.
    - `logits(frames) -> (N, C, H, W) float32` where `supports_logits`, else BackendError.
    - `describe() -> str`, `close()` (idempotent; a closed backend raises BackendError).
    - `runs_on`: where it runs, as it started (rtseg.loading.DEVICES words): "cpu", "cuda", or
      "tensorrt" for ONNX Runtime's TensorRT provider.
    Backends are context managers.
    """

    name: str = "backend"
    input_size: tuple[int, int]  # (height, width)
    num_classes: int
    max_batch: int = 1
    overlaps: bool = False  # submit() returns before the work is done
    supports_logits: bool = False
    runs_on: str = "cpu"

    def infer(self, images: np.ndarray) -> np.ndarray:
        self._check_open()
        self.check_batch(images)
        return self._infer_impl(images)

    def submit(self, images: np.ndarray):
        self._check_open()
        self.check_batch(images)
        if len(images) > self.max_batch:
            raise InputError(f"{self.name}: submit takes at most {self.max_batch} frames, got {len(images)}")
        return self._submit_impl(images)

    def logits(self, images: np.ndarray) -> np.ndarray:
        self._check_open()
        if not self.supports_logits:
            raise BackendError(f"{self.describe()} gives class ids only, not logits")
        self.check_batch(images)
        return self._logits_impl(images)

    def describe(self) -> str:
        return f"{self.name} {format_size(self.input_size)}"

    def check_batch(self, images: np.ndarray) -> None:
        h, w = self.input_size
        if (
            not isinstance(images, np.ndarray)
            or images.ndim != 4
            or images.shape[1:] != (h, w, 3)
            or images.dtype != np.uint8
        ):
            got = type(images).__name__
            if isinstance(images, np.ndarray):
                got = f"{images.shape} {images.dtype}"
            raise InputError(f"{self.name}: expected (N, {h}, {w}, 3) uint8 frames, got {got}")

    def _check_open(self) -> None:
        if self._closed:
            raise BackendError(f"the {self.name} backend is closed")

    @abstractmethod
    def _infer_impl(self, images: np.ndarray) -> np.ndarray: ...

    def _submit_impl(self, images: np.ndarray):
        return Done(self._infer_impl(images))

    def _logits_impl(self, images: np.ndarray) -> np.ndarray:
        raise BackendError(f"{self.name} gives class ids only, not logits")

    def _close_impl(self) -> None:  # noqa: B027 - most backends hold nothing that needs closing
        pass
