"""The Backend interface every runtime implements."""

from __future__ import annotations

from abc import ABC, abstractmethod

import numpy as np

from rtseg.errors import InputError


class Backend(ABC):
    """Runs a segmentation model on batches of frames already at the model's input size.

    `infer(images)`: images `(N, H, W, 3) uint8 RGB` (C-contiguous) with (H, W) == input_size;
    returns `(N, H, W) uint8` class ids. Backends are context managers; `close()` is idempotent.
    """

    name: str = "backend"
    input_size: tuple[int, int]  # (height, width)
    num_classes: int
    max_batch: int = 1

    @abstractmethod
    def infer(self, images: np.ndarray) -> np.ndarray: ...

    def close(self) -> None:  # noqa: B027 - most backends hold nothing that needs closing
        pass

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def describe(self) -> str:
        h, w = self.input_size
        return f"{self.name} {w}x{h}"

    def check_batch(self, images: np.ndarray) -> None:
        h, w = self.input_size
        if images.ndim != 4 or images.shape[1:] != (h, w, 3) or images.dtype != np.uint8:
            raise InputError(
                f"{self.name}: expected (N, {h}, {w}, 3) uint8 frames, got {images.shape} {images.dtype}"
            )
