"""Class ids to colours by a 256-entry lookup table (ids outside the palette are black)."""

from __future__ import annotations

import cv2
import numpy as np


def palette_lut(palette: np.ndarray) -> np.ndarray:
    """`(C, 3) uint8 RGB` palette -> `(256, 1, 3) uint8` table for cv2.LUT; rows >= C are black."""
    palette = np.asarray(palette, dtype=np.uint8).reshape(-1, 3)[:256]
    lut = np.zeros((256, 1, 3), np.uint8)
    lut[: len(palette), 0] = palette
    return lut


def colourize(ids: np.ndarray, lut: np.ndarray) -> np.ndarray:
    """`(H, W) uint8` class ids -> `(H, W, 3) uint8 RGB` colours (about 1 ms at 960x540).

    cv2.LUT maps each channel of a 3-channel image by the matching channel of a 3-channel table,
    so the ids are replicated to 3 channels and looked up in one pass.
    """
    if ids.dtype != np.uint8 or ids.ndim != 2:
        raise ValueError(f"class ids must be (H, W) uint8, got {ids.shape} {ids.dtype}")
    ids3 = cv2.cvtColor(np.ascontiguousarray(ids), cv2.COLOR_GRAY2RGB)
    return cv2.LUT(ids3, lut)
