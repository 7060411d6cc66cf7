"""Real frames for INT8 calibration and parity checks: from a video, a frames folder or glob,
or a dataset split, evenly spaced and resized to the model's input size.

Source strings:
    path/to/video.mp4            any container PyAV opens (frames taken evenly over the video)
    path/to/frames/              a folder of images (sorted by name)
    "path/to/frames/*.png"       a glob of images (sorted)
    camvid:DIR:SPLIT             a dataset split read with rtseg.data (images only, no labels)
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from rtseg.core.frames import evenly_spaced, read_rgb, resize_frame
from rtseg.errors import InputError
from rtseg.video.image_source import list_folder_images, list_glob_images
from rtseg.video.sampling import sample_video_frames


def _image_paths(source: str) -> list[Path] | None:
    """Image paths of a folder or a glob, natural-sorted as `rtseg run --frames` reads them, or
    None when `source` is neither."""
    if Path(source).is_dir():
        return list_folder_images(Path(source))
    if any(ch in source for ch in "*?["):
        return list_glob_images(source)
    return None


def _dataset_split(source: str):
    """`NAME:DIR:SPLIT` -> the dataset, or None when `source` does not have that form."""
    from rtseg.data.registry import DATASETS, open_dataset

    name, sep, rest = source.partition(":")
    if not sep or name.lower() not in DATASETS:
        return None
    root, sep, split = rest.rpartition(":")
    if not sep or not root or not split:
        raise InputError(
            f"dataset source {source!r} must be {name}:DIR:SPLIT (e.g. {name}:data/camvid:train)"
        )
    return open_dataset(name.lower(), root, split)


def calibration_frames(source: str | Path, count: int, size: tuple[int, int], seed: int = 0) -> np.ndarray:
    """Up to `count` real frames from `source`, evenly spaced: `(N, h, w, 3) uint8 RGB`, `size`=(h, w).

    Fewer than `count` come back when the source holds fewer; InputError when it holds none or
    cannot be read.
    """
    if count <= 0:
        raise InputError(f"calibration frame count must be positive, got {count}")
    source = str(source)
    dataset = _dataset_split(source)
    if dataset is not None:
        picks = evenly_spaced(len(dataset), count, seed)
        frames = [resize_frame(read_rgb(dataset.pairs[i][0]), size) for i in picks]
    elif (paths := _image_paths(source)) is not None:
        frames = [resize_frame(read_rgb(paths[i]), size) for i in evenly_spaced(len(paths), count, seed)]
    elif Path(source).is_file():
        frames = sample_video_frames(Path(source), count, size, seed)
    else:
        raise InputError(
            f"calibration source {source!r} is not a video, an image folder or glob, "
            "or NAME:DIR:SPLIT dataset"
        )
    if not frames:
        raise InputError(f"calibration source {source!r} gave no frames")
    return np.stack(frames).astype(np.uint8, copy=False)


def synthetic_road_frames(count: int, size: tuple[int, int], seed: int = 0) -> np.ndarray:
    """`(count, h, w, 3) uint8 RGB` road-like frames (sky, buildings, road, blobs): a stand-in for
    real frames when none are given. Structured, not noise, but no substitute for real data."""
    h, w = size
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    frames = np.empty((count, h, w, 3), np.uint8)
    for i in range(count):
        horizon = int(h * rng.uniform(0.35, 0.55))
        img = np.empty((h, w, 3), np.float32)
        img[:] = np.array([110, 150, 220]) * (0.7 + 0.3 * (1 - yy / h))[..., None]  # sky gradient
        for _ in range(rng.integers(3, 8)):  # buildings and trees
            x0, bw = rng.integers(0, w), rng.integers(w // 10, w // 3)
            top = rng.integers(h // 10, horizon)
            img[top:horizon, x0 : x0 + bw] = rng.uniform(40, 200, 3)
        road = np.clip(1 - np.abs(xx - w / 2) / (w * (0.1 + (yy - horizon).clip(0) / h)), 0, 1)
        img[horizon:] = np.where(road[horizon:, :, None] > 0, [120, 115, 118], [90, 120, 70])
        for _ in range(rng.integers(1, 4)):  # cars
            cy, cx = rng.integers(horizon, h), rng.integers(0, w)
            img[max(cy - h // 12, 0) : cy, cx : cx + w // 8] = rng.uniform(0, 255, 3)
        img += rng.normal(0, 6, img.shape)
        frames[i] = np.clip(img, 0, 255).astype(np.uint8)
    return frames
