"""Accuracy of a backend: mIoU on a labelled split, argmax agreement with a reference."""

from __future__ import annotations

import cv2
import numpy as np

from rtseg.bench.config import DataSpec
from rtseg.errors import InputError


def open_split(data: DataSpec):
    from rtseg.data.registry import open_dataset

    return open_dataset(data.name, str(data.root), data.split)


def evaluate_miou(backend, data: DataSpec, limit: int | None = None) -> dict:
    """mIoU of `backend` on `data` (the first `limit` images, or all), scored as `rtseg eval`
    scores it: each `(H, W, 3) uint8 RGB` image resized to the model's input size, the
    `(h, w)` class ids resized back to the label's size (nearest), void pixels ignored.
    Uses rtseg.train.evaluate when this rtseg has it. Returns {"miou", "pixel_acc", "images"}."""
    dataset = open_split(data)
    num_classes = dataset.label_set.num_classes
    if backend.num_classes != num_classes:
        raise InputError(f"the model predicts {backend.num_classes} classes but {data.name} has "
                         f"{num_classes}: mIoU would be meaningless")
    try:
        from rtseg.train.evaluate import evaluate_backend
    except ImportError:
        return _minimal_miou(backend, dataset, limit)
    result = evaluate_backend(backend, dataset, limit=limit)
    return {"miou": result["miou"], "pixel_acc": result["pixel_acc"], "images": result["frames"]}


def _minimal_miou(backend, dataset, limit: int | None) -> dict:
    """The same scoring without rtseg.train.evaluate, one image a call."""
    from rtseg.train.metrics import ConfusionMatrix

    h, w = backend.input_size
    matrix = ConfusionMatrix(dataset.label_set.num_classes)
    count = len(dataset) if limit is None else min(limit, len(dataset))
    for index in range(count):
        image, label = dataset[index]
        shrink = image.shape[0] >= h and image.shape[1] >= w
        x = cv2.resize(image, (w, h), interpolation=cv2.INTER_AREA if shrink else cv2.INTER_LINEAR)
        ids = backend.infer(np.ascontiguousarray(x[None]))[0]
        if ids.shape != label.shape:
            ids = cv2.resize(ids, (label.shape[1], label.shape[0]), interpolation=cv2.INTER_NEAREST)
        matrix.update(ids, label)
    return {"miou": matrix.miou(), "pixel_acc": matrix.pixel_accuracy(), "images": count}


def predict_frames(backend, frames: np.ndarray) -> np.ndarray:
    """`(N, h, w, 3) uint8 RGB` at the model size -> `(N, h, w) uint8` ids, one frame a call."""
    return np.stack([backend.infer(frames[i:i + 1])[0] for i in range(len(frames))])


def agreement(pred: np.ndarray, reference: np.ndarray) -> float:
    """Share of pixels whose class id equals the reference's; both `(N, h, w)` ids."""
    if pred.shape != reference.shape:
        raise InputError(f"predictions {pred.shape} and reference {reference.shape} differ in shape")
    return float((pred == reference).mean())
