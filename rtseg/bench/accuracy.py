"""Accuracy of a backend: mIoU on a labelled split, argmax agreement with a reference."""

from __future__ import annotations

import numpy as np

from rtseg.bench.config import DataSpec
from rtseg.errors import InputError
from rtseg.train.evaluate import evaluate_backend


def open_split(data: DataSpec):
    from rtseg.data.registry import open_dataset

    return open_dataset(data.name, str(data.root), data.split)


def evaluate_miou(backend, data: DataSpec, limit: int | None = None) -> dict:
    """mIoU of `backend` on `data` (the first `limit` images, or all), scored as `rtseg eval`
    scores it: each `(H, W, 3) uint8 RGB` image resized to the model's input size, the
    `(h, w)` class ids resized back to the label's size (nearest), void pixels ignored.
    Returns {"miou", "pixel_acc", "images"}."""
    dataset = open_split(data)
    num_classes = dataset.label_set.num_classes
    if backend.num_classes != num_classes:
        raise InputError(
            f"the model predicts {backend.num_classes} classes but {data.name} has "
            f"{num_classes}: mIoU would be meaningless"
        )
    result = evaluate_backend(backend, dataset, limit=limit)
    return {"miou": result["miou"], "pixel_acc": result["pixel_acc"], "images": result["frames"]}


def predict_frames(backend, frames: np.ndarray) -> np.ndarray:
    """`(N, h, w, 3) uint8 RGB` at the model size -> `(N, h, w) uint8` ids, one frame a call."""
    return np.stack([backend.infer(frames[i : i + 1])[0] for i in range(len(frames))])


def agreement(pred: np.ndarray, reference: np.ndarray) -> float:
    """Share of pixels whose class id equals the reference's; both `(N, h, w)` ids."""
    if pred.shape != reference.shape:
        raise InputError(f"predictions {pred.shape} and reference {reference.shape} differ in shape")
    return float((pred == reference).mean())
