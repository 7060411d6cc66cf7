"""Post-processing of predictions: small-blob removal, horizontal-flip test-time augmentation and
a flow-free temporal filter of class ids."""

from __future__ import annotations

from collections.abc import Callable

import cv2
import numpy as np

from rtseg.errors import InputError

_OFFSETS = {
    4: ((-1, 0), (1, 0), (0, -1), (0, 1)),
    8: ((-1, -1), (-1, 0), (-1, 1), (0, -1), (0, 1), (1, -1), (1, 0), (1, 1)),
}


def _small_blob_ids(ids: np.ndarray, min_pixels: int, connectivity: int) -> tuple[np.ndarray, int]:
    """(H, W) int32 map: k > 0 for pixels of the k-th component under `min_pixels`, else 0."""
    # 16-bit labels are several times faster; safe while no binary image can hold 65535
    # components (at most H*W/4 of them with 8-connectivity, H*W/2 with 4).
    ltype = cv2.CV_16U if ids.size // (4 if connectivity == 8 else 2) < 65535 else cv2.CV_32S
    blob_ids = np.zeros(ids.shape, np.int32)
    count = 0
    for class_id in np.flatnonzero(np.bincount(ids.ravel())):
        n, labels, stats, _ = cv2.connectedComponentsWithStats(
            (ids == class_id).astype(np.uint8), connectivity=connectivity, ltype=ltype
        )
        small = np.flatnonzero(stats[1:, cv2.CC_STAT_AREA] < min_pixels) + 1
        if small.size:
            lut = np.zeros(n, np.int32)
            lut[small] = np.arange(count + 1, count + 1 + small.size)
            blob_ids += lut[labels]
            count += small.size
    return blob_ids, count


def remove_small_blobs(ids: np.ndarray, min_pixels: int, connectivity: int = 8) -> np.ndarray:
    """Relabel every connected component smaller than `min_pixels` with the majority class
    along its border.

    `ids`: `(H, W)` integer class ids (uint8 from the models). Returns a new array of the same
    shape and dtype. Each (blob pixel, outside neighbour) pair is one vote; neighbours that
    belong to other small blobs vote only when a blob has no other neighbour, so the result
    does not depend on the order blobs are visited. A blob with no neighbours (the whole
    frame one class) is kept.
    """
    if ids.ndim != 2:
        raise InputError(f"remove_small_blobs expects (H, W) class ids, got shape {ids.shape}")
    if connectivity not in (4, 8):
        raise InputError(f"connectivity must be 4 or 8, got {connectivity}")
    out = ids.copy()
    if min_pixels <= 1 or ids.size == 0:
        return out
    blob_ids, count = _small_blob_ids(ids, min_pixels, connectivity)
    if count == 0:
        return out
    rows, cols = np.nonzero(blob_ids)
    own = blob_ids[rows, cols]
    padded_blobs = np.pad(blob_ids, 1, constant_values=-1)
    padded_ids = np.pad(ids.astype(np.int64), 1, constant_values=-1)
    classes = int(ids.max()) + 1
    votes_large = np.zeros((count + 1) * classes, np.int64)
    votes_any = np.zeros_like(votes_large)
    for dy, dx in _OFFSETS[connectivity]:
        neighbour_blob = padded_blobs[rows + 1 + dy, cols + 1 + dx]
        neighbour_id = padded_ids[rows + 1 + dy, cols + 1 + dx]
        outside = (neighbour_id >= 0) & (neighbour_blob != own)
        key = own * classes + neighbour_id
        votes_any += np.bincount(key[outside], minlength=votes_any.size)
        large = outside & (neighbour_blob == 0)
        votes_large += np.bincount(key[large], minlength=votes_large.size)
    votes_large = votes_large.reshape(count + 1, classes)
    votes_any = votes_any.reshape(count + 1, classes)
    choice = np.where(votes_large.any(1), votes_large.argmax(1), votes_any.argmax(1))
    choice[~votes_any.any(1)] = -1  # no neighbours at all: keep the blob
    new = choice[own]
    keep = new >= 0
    out[rows[keep], cols[keep]] = new[keep]
    return out


def flip_tta_logits(logits_fn: Callable[[np.ndarray], np.ndarray], images: np.ndarray) -> np.ndarray:
    """Average of `logits_fn(images)` and the un-flipped `logits_fn` of the mirrored images.

    `images`: `(N, H, W, 3) uint8 RGB`; `logits_fn` returns `(N, C, H, W)` float logits.
    """
    logits = logits_fn(images)
    mirrored = logits_fn(np.ascontiguousarray(images[:, :, ::-1]))
    return (logits + mirrored[..., ::-1]) / 2


class StableIds:
    """A flow-free temporal filter for one video's class ids: where the image barely changed
    since the previous frame (grey level within `gate`) and the new prediction disagrees with
    the previous prediction, the previous output class is kept; a change is shown once two
    consecutive predictions agree on it, or at once where the image moved. Single-frame flicker
    in still parts of the scene goes; a real change in a still part shows one frame late.

    `__call__(frame, ids)`: frame `(H, W, 3) uint8 RGB` at the ids' size, ids `(H, W) uint8`;
    returns `(H, W) uint8` ids. State is per video: a new video needs a new StableIds, and a
    frame of another size starts afresh.
    """

    def __init__(self, gate: int = 6):
        if not 0 <= int(gate) <= 255:
            raise InputError(f"the temporal filter's gate must be 0..255 grey levels, got {gate}")
        self.gate = int(gate)
        self.state: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None  # grey, raw ids, output

    def __call__(self, frame: np.ndarray, ids: np.ndarray) -> np.ndarray:
        luma = cv2.blur(cv2.cvtColor(frame, cv2.COLOR_RGB2GRAY), (3, 3))
        if self.state is None or self.state[0].shape != luma.shape:
            output = ids.copy()
        else:
            previous_luma, previous_ids, previous_output = self.state
            still = cv2.absdiff(luma, previous_luma) <= self.gate
            output = np.where(still & (ids != previous_ids), previous_output, ids)
        self.state = (luma, ids.copy(), output)
        return output
