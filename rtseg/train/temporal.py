"""Temporal consistency of predicted class ids over a video: what a viewer sees as flicker.

TC follows VSPW's definition (its `TC_cal.py`): for consecutive frames t, t+1, the prediction of
t+1 is warped back to t along the dense optical flow from t to t+1, and the mIoU between the
warped prediction and the prediction of t is taken (over the classes present in either); TC is
the mean of that over all consecutive pairs. The flip share is the share of pixels whose class
differs between the two. Pixels whose flow leaves the frame do not count. The flow is OpenCV's
DIS (medium preset) on the grey frames, so no labels and no learned flow model are needed.
"""

from __future__ import annotations

import cv2
import numpy as np


def grey(frame: np.ndarray) -> np.ndarray:
    """`(H, W, 3) uint8 RGB` -> `(H, W) uint8` luma."""
    return cv2.cvtColor(frame, cv2.COLOR_RGB2GRAY)


def warp_back(ids_next: np.ndarray, flow: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """`ids_next` `(H, W) uint8` sampled at p + flow(p) for each pixel p of frame t (nearest), and
    the `(H, W) bool` mask of pixels whose flow stays inside the frame. `flow` `(H, W, 2) float32`
    (x, y) from frame t to t+1."""
    h, w = ids_next.shape
    xs, ys = np.meshgrid(np.arange(w, dtype=np.float32), np.arange(h, dtype=np.float32))
    map_x, map_y = xs + flow[..., 0], ys + flow[..., 1]
    valid = (map_x >= 0) & (map_x <= w - 1) & (map_y >= 0) & (map_y <= h - 1)
    warped = cv2.remap(ids_next, map_x, map_y, cv2.INTER_NEAREST, borderMode=cv2.BORDER_REPLICATE)
    return warped, valid


def pair_miou(a: np.ndarray, b: np.ndarray, num_classes: int) -> float:
    """mIoU between two id maps over the classes present in either (1.0 when both are empty)."""
    index = a.astype(np.int64) * num_classes + b
    counts = np.bincount(index, minlength=num_classes * num_classes).reshape(num_classes, num_classes)
    inter = np.diag(counts).astype(np.float64)
    union = counts.sum(0) + counts.sum(1) - inter
    present = union > 0
    return float((inter[present] / union[present]).mean()) if present.any() else 1.0


class TemporalConsistency:
    """Feed frames in order with their predictions; `summary()` gives TC and the flip share.

    `update(frame, ids)`: frame `(H, W, 3) uint8 RGB`, ids `(H, W) uint8` class ids at the
    frame's size. Ids >= `num_classes` (an ignore id) are not counted.
    """

    def __init__(self, num_classes: int):
        self.num_classes = num_classes
        self.flow = cv2.DISOpticalFlow_create(cv2.DISOPTICAL_FLOW_PRESET_MEDIUM)
        self.previous: tuple[np.ndarray, np.ndarray] | None = None
        self.mious: list[float] = []
        self.flipped = 0
        self.counted = 0

    def update(self, frame: np.ndarray, ids: np.ndarray) -> None:
        current = (grey(frame), ids)
        if self.previous is not None and self.previous[0].shape == current[0].shape:
            self._score(self.previous, current)
        self.previous = current

    def _score(self, before: tuple[np.ndarray, np.ndarray], after: tuple[np.ndarray, np.ndarray]) -> None:
        flow = self.flow.calc(before[0], after[0], None)
        warped, valid = warp_back(after[1], flow)
        valid &= (before[1] < self.num_classes) & (warped < self.num_classes)
        a, b = before[1][valid], warped[valid]
        self.mious.append(pair_miou(a, b, self.num_classes))
        self.flipped += int(np.count_nonzero(a != b))
        self.counted += int(a.size)

    def summary(self) -> dict:
        """{"tc": mean pair mIoU, "flip_share": flipped / counted pixels, "pairs": N}; the two
        figures are None when fewer than two frames of one size came."""
        if not self.mious:
            return {"tc": None, "flip_share": None, "pairs": 0}
        return {
            "tc": float(np.mean(self.mious)),
            "flip_share": self.flipped / max(1, self.counted),
            "pairs": len(self.mious),
        }
