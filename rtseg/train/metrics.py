"""Confusion matrix -> per-class IoU, mIoU and pixel accuracy."""

from __future__ import annotations

import numpy as np

from rtseg.data.labels import IGNORE_INDEX
from rtseg.errors import InputError


class ConfusionMatrix:
    """Accumulates a (num_classes, num_classes) matrix: rows ground truth, columns prediction."""

    def __init__(self, num_classes: int):
        self.num_classes = num_classes
        self.matrix = np.zeros((num_classes, num_classes), dtype=np.int64)

    def update(self, pred: np.ndarray, target: np.ndarray) -> None:
        """pred, target: same-shape integer class-id arrays; target IGNORE_INDEX is skipped."""
        if pred.shape != target.shape:
            raise ValueError(f"prediction shape {pred.shape} != target shape {target.shape}")
        valid = (target != IGNORE_INDEX) & (target < self.num_classes)
        t = target[valid].astype(np.int64)
        p = np.clip(pred[valid].astype(np.int64), 0, self.num_classes - 1)
        self.matrix += np.bincount(t * self.num_classes + p, minlength=self.num_classes**2).reshape(
            self.num_classes, self.num_classes
        )

    def iou(self) -> np.ndarray:
        """Per-class IoU; NaN for classes absent from both ground truth and prediction."""
        tp = np.diag(self.matrix).astype(np.float64)
        union = self.matrix.sum(0) + self.matrix.sum(1) - tp
        with np.errstate(invalid="ignore", divide="ignore"):
            return np.where(union > 0, tp / union, np.nan)

    def miou(self) -> float:
        iou = self.iou()
        return float(np.nanmean(iou)) if np.any(~np.isnan(iou)) else float("nan")

    def pixel_accuracy(self) -> float:
        total = self.matrix.sum()
        return float(np.diag(self.matrix).sum() / total) if total else float("nan")

    def summary(self, class_names: list[str] | tuple[str, ...], what: str = "the labels") -> dict:
        """JSON-ready: {"miou", "pixel_acc", "per_class": {name: iou or None}}. InputError when
        no pixel of `what` was labelled: scores over nothing are no scores (no NaN passes)."""
        if not self.matrix.sum():
            raise InputError(
                f"{what}: no labelled pixel to score (every label value is ignored or outside "
                f"0..{self.num_classes - 1}); check the dataset and its label format"
            )
        iou = self.iou()
        return {
            "miou": self.miou(),
            "pixel_acc": self.pixel_accuracy(),
            "per_class": {n: (None if np.isnan(v) else float(v)) for n, v in zip(class_names, iou)},
        }
