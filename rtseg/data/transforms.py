"""Training augmentations on numpy arrays: image `(H, W, 3) uint8 RGB`, mask `(H, W) uint8 ids`."""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from rtseg.data.labels import IGNORE_INDEX


@dataclass(frozen=True)
class AugmentConfig:
    crop: tuple[int, int] = (288, 384)  # (height, width)
    scale: tuple[float, float] = (0.75, 1.75)
    hflip: bool = True
    brightness: float = 0.25
    contrast: float = 0.25
    saturation: float = 0.25


def random_scale(image: np.ndarray, mask: np.ndarray, scale: float):
    h, w = mask.shape
    size = (max(1, round(w * scale)), max(1, round(h * scale)))
    image = cv2.resize(image, size, interpolation=cv2.INTER_LINEAR)
    mask = cv2.resize(mask, size, interpolation=cv2.INTER_NEAREST)
    return image, mask


def random_crop(image: np.ndarray, mask: np.ndarray, crop: tuple[int, int], rng: np.random.Generator):
    """Crop to `crop` (h, w), padding with zeros / IGNORE_INDEX where the input is smaller."""
    ch, cw = crop
    h, w = mask.shape
    ph, pw = max(0, ch - h), max(0, cw - w)
    if ph or pw:
        image = cv2.copyMakeBorder(image, 0, ph, 0, pw, cv2.BORDER_CONSTANT, value=(0, 0, 0))
        mask = cv2.copyMakeBorder(mask, 0, ph, 0, pw, cv2.BORDER_CONSTANT, value=IGNORE_INDEX)
        h, w = mask.shape
    y = int(rng.integers(0, h - ch + 1))
    x = int(rng.integers(0, w - cw + 1))
    return image[y : y + ch, x : x + cw], mask[y : y + ch, x : x + cw]


def colour_jitter(image: np.ndarray, cfg: AugmentConfig, rng: np.random.Generator) -> np.ndarray:
    img = image.astype(np.float32)
    if cfg.brightness:
        img *= rng.uniform(1 - cfg.brightness, 1 + cfg.brightness)
    if cfg.contrast:
        mean = img.mean()
        img = (img - mean) * rng.uniform(1 - cfg.contrast, 1 + cfg.contrast) + mean
    if cfg.saturation:
        grey = img.mean(axis=2, keepdims=True)
        img = (img - grey) * rng.uniform(1 - cfg.saturation, 1 + cfg.saturation) + grey
    return np.clip(img, 0, 255).astype(np.uint8)


def augment(
    image: np.ndarray, mask: np.ndarray, cfg: AugmentConfig, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """Random scale, crop, horizontal flip and colour jitter; returns contiguous arrays."""
    image, mask = random_scale(image, mask, rng.uniform(*cfg.scale))
    image, mask = random_crop(image, mask, cfg.crop, rng)
    if cfg.hflip and rng.random() < 0.5:
        image, mask = image[:, ::-1], mask[:, ::-1]
    image = colour_jitter(image, cfg, rng)
    return np.ascontiguousarray(image), np.ascontiguousarray(mask)
