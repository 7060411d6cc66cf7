"""Frames and sizes shared by every layer: the one resize of frames to a model's input size, the
one resize of class ids back, `HxW` size text, reading an image file, RGB -> yuv420p planes, and
evenly spaced picks (of video frames, images, dataset items).
Sizes are `(height, width)`, as numpy shapes are; frames are `(H, W, 3) uint8 RGB`."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from rtseg.errors import InputError

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp", ".ppm", ".pgm")


def decode_image(path: Path, flags: int, what: str = "image") -> np.ndarray:
    """One image file decoded by OpenCV with `flags` (cv2.IMREAD_*), OpenCV's own log lines kept
    quiet; InputError `"{path}: cannot read {what} (why)"` when it cannot be read or decoded."""
    try:
        data = np.fromfile(path, np.uint8)
    except OSError as e:
        raise InputError(f"{path}: cannot read {what} ({e.strerror})") from None
    if data[:2].tobytes() == b"\xff\xd8" and b"\xff\xd9" not in data[-64:].tobytes():
        raise InputError(f"{path}: cannot read {what} (JPEG cut short: no end marker)")
    cv2.utils.logging.setLogLevel(cv2.utils.logging.LOG_LEVEL_SILENT)  # it logs broken images
    image = cv2.imdecode(data, flags) if data.size else None
    if image is None:
        raise InputError(f"{path}: cannot read {what} (corrupt or not an image)")
    return image


def read_rgb(path: Path, index: int | None = None) -> np.ndarray:
    """One image file as `(H, W, 3) uint8 RGB` (grey and 16-bit images converted; alpha dropped;
    EXIF orientation applied). InputError naming the file (and frame `index`) when unreadable."""
    at = f" at frame {index}" if index is not None else ""
    return cv2.cvtColor(decode_image(path, cv2.IMREAD_COLOR, f"image{at}"), cv2.COLOR_BGR2RGB)


def parse_size(text: str, what: str = "size") -> tuple[int, int]:
    """'360x480' (HEIGHTxWIDTH) -> (360, 480), both positive; InputError naming `what` otherwise."""
    parts = str(text).strip().lower().split("x")
    if len(parts) != 2 or not all(p.strip().isdigit() and int(p) > 0 for p in parts):
        raise InputError(f"{what} must be HxW (HEIGHTxWIDTH) in pixels (e.g. 360x480), got {text!r}")
    return int(parts[0]), int(parts[1])


def format_size(size: tuple[int, int]) -> str:
    """(360, 480) -> '360x480' (HEIGHTxWIDTH, the form `parse_size` reads)."""
    return f"{size[0]}x{size[1]}"


def resize_frame(image: np.ndarray, size: tuple[int, int], out: np.ndarray | None = None) -> np.ndarray:
    """`(H, W, 3) uint8 RGB` -> `(h, w, 3) uint8 RGB` at `size` = (h, w): area averaging when
    shrinking both sides, else bilinear. The one resize of frames to a model's input size: the
    pipeline, evaluation, calibration and the bench all use it, so a model sees the same pixels
    everywhere. `out`: a pre-allocated C-contiguous `(h, w, 3)` array to write into (returned)."""
    h, w = size
    if image.shape[:2] == (h, w):
        if out is None:
            return np.ascontiguousarray(image)
        np.copyto(out, image)
        return out
    shrink = image.shape[0] > h and image.shape[1] > w
    interpolation = cv2.INTER_AREA if shrink else cv2.INTER_LINEAR
    result = cv2.resize(image, (w, h), dst=out, interpolation=interpolation)
    if out is not None and result is not out and not np.shares_memory(result, out):
        np.copyto(out, result)  # OpenCV reallocated: keep the caller's buffer
        return out
    return result


def resize_ids(ids: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """`(h, w) uint8` class ids -> `(H, W)` at `size` = (H, W), nearest neighbour (pixel-centre
    exact, so an integer upscale repeats each id exactly)."""
    if ids.shape == tuple(size):
        return ids
    return cv2.resize(ids, (size[1], size[0]), interpolation=cv2.INTER_NEAREST_EXACT)


def rgb_to_yuv420p(rgb: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """`(H, W, 3) uint8 RGB`, H and W even -> (Y (H, W), U (H/2, W/2), V (H/2, W/2)) uint8."""
    height, width = rgb.shape[:2]
    i420 = cv2.cvtColor(np.ascontiguousarray(rgb), cv2.COLOR_RGB2YUV_I420)
    y = i420[:height]
    chroma = i420[height:].reshape(2, height // 2, width // 2)
    return y, chroma[0], chroma[1]


def evenly_spaced(total: int, count: int | None, seed: int = 0) -> list[int]:
    """`min(count, total)` sorted distinct indices spread evenly over `range(total)` (all of them
    when `count` is None), each at the middle of its interval: the one way frames are picked from
    a video, a folder or a dataset (calibration, the bench).

    `seed` shifts the start inside the first interval, so two seeds pick different frames.
    """
    if count is None:
        return list(range(max(0, total)))
    if total <= 0 or count <= 0:
        return []
    if count >= total:
        return list(range(total))
    step = total / count
    offset = np.random.default_rng(seed).uniform(0, step) if seed else step / 2
    return sorted({min(total - 1, int(offset + i * step)) for i in range(count)})
