"""Frames for timing, parity and agreement: sampled evenly from a video, taken from a dataset,
or generated. Every array here is `(N, H, W, 3) uint8 RGB`, C-contiguous."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from rtseg.core.frames import resize_frame
from rtseg.errors import InputError
from rtseg.video.sampling import sample_video_frames as _sample


def video_sample(path: str | Path, count: int) -> np.ndarray:
    """`count` frames spread evenly over the video (fewer if it is shorter), at its own size."""
    picked = _sample(Path(path), count, purpose="benchmark")
    if not picked:
        raise InputError(f"{path}: no video frames could be decoded")
    return np.ascontiguousarray(np.stack(picked))


def synthetic_frames(count: int, height: int, width: int, seed: int = 0) -> np.ndarray:
    """Smooth gradients with a block each: structured content when no video or data is given."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:height, 0:width].astype(np.float32)
    out = np.empty((count, height, width, 3), np.uint8)
    for i in range(count):
        image = np.stack([xx / width, yy / height, (xx + yy) / (width + height)], -1)
        image = image * 255 * rng.uniform(0.5, 1.0, 3)
        y0, x0 = rng.integers(0, height // 2 + 1), rng.integers(0, width // 2 + 1)
        image[y0 : y0 + height // 3, x0 : x0 + width // 3] = rng.uniform(0, 255, 3)
        out[i] = np.clip(image, 0, 255).astype(np.uint8)
    return out


def resize_frames(frames: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """`(N, H, W, 3)` -> `(N, h, w, 3)` at size (h, w), bilinear (area when shrinking)."""
    if frames.shape[1:3] == tuple(size):
        return np.ascontiguousarray(frames)
    return np.stack([resize_frame(f, size) for f in frames])
