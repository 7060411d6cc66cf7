"""Score a backend on a labelled dataset: per-class IoU, mIoU and pixel accuracy (opening a model
file and a dataset for `rtseg eval` is rtseg.evaluation's job).

How frames are scored: each image is resized to the model's input size (INTER_AREA when
shrinking, INTER_LINEAR when enlarging), the model predicts class ids at that size
(optionally averaged with its horizontally flipped twin's logits; optionally with small blobs
removed at model resolution, which `rtseg run` does not do), and the ids are resized back to
the label's size with nearest-neighbour before being compared with the label. Scores are therefore at the
dataset's own label resolution; pixels labelled IGNORE_INDEX do not count.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
from tqdm import tqdm

from rtseg.core.frames import resize_frame, resize_ids
from rtseg.errors import InputError, ModelError
from rtseg.postprocess import flip_tta_logits, remove_small_blobs
from rtseg.train.metrics import ConfusionMatrix

if TYPE_CHECKING:
    from rtseg.runtime.base import Backend


def require_logits(backend: Backend, source: str | Path) -> None:
    """ModelError unless `backend` can give logits (flip TTA needs them): the torch backend (any
    model), or onnxruntime on a package whose output kind is logits."""
    if not backend.supports_logits:
        raise ModelError(
            f"flip TTA needs logits, but {Path(source).name} on {backend.name} gives class "
            "ids only; use --backend torch (runs the package's source checkpoint) or give "
            "the checkpoint (.pth)"
        )


def evaluate_backend(
    backend: Backend,
    dataset,
    flip_tta: bool = False,
    min_blob: int = 0,
    limit: int | None = None,
    batch_size: int = 4,
    progress: bool = False,
) -> dict:
    """Score `backend` on `dataset` (items: `(H, W, 3) uint8 RGB`, `(H, W) uint8` ids).

    `flip_tta`: average each frame's logits with its mirrored twin's (`backend.logits`; see
    `require_logits`). Returns
    {"miou", "pixel_acc", "per_class": {name: IoU or None}, "frames"}.
    """
    labels = dataset.label_set
    count = len(dataset) if limit is None else min(int(limit), len(dataset))
    if count < 1:
        raise InputError(f"{dataset.name}: nothing to evaluate (limit {limit})")
    step = max(1, min(batch_size, backend.max_batch))
    matrix = ConfusionMatrix(labels.num_classes)
    bar = tqdm(total=count, desc="eval", unit="img", leave=False, disable=not progress)
    for start in range(0, count, step):
        items = [dataset[i] for i in range(start, min(count, start + step))]
        frames = np.stack([resize_frame(image, backend.input_size) for image, _ in items])
        if flip_tta:
            predictions = flip_tta_logits(backend.logits, frames).argmax(1).astype(np.uint8)
        else:
            predictions = backend.infer(frames)
        for ids, (_, label) in zip(predictions, items):
            if min_blob > 1:
                ids = remove_small_blobs(ids, min_blob)
            matrix.update(resize_ids(ids, label.shape), label)
        bar.update(len(items))
    bar.close()
    return {**matrix.summary(labels.classes, dataset.name), "frames": count}
