"""Label sets: class names, RGB palettes and the ignore id.

Class-id maps everywhere are `(H, W) uint8`; `IGNORE_INDEX` (255) marks pixels that no loss or
metric counts (CamVid void, Cityscapes' unlabelled ids).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

IGNORE_INDEX = 255


@dataclass(frozen=True)
class LabelSet:
    name: str
    classes: tuple[str, ...]
    palette: tuple[tuple[int, int, int], ...]  # RGB per class id

    @property
    def num_classes(self) -> int:
        return len(self.classes)

    def palette_array(self) -> np.ndarray:
        """(num_classes, 3) uint8 RGB."""
        return np.asarray(self.palette, dtype=np.uint8)


CAMVID = LabelSet(
    "camvid",
    ("Sky", "Building", "Pole", "Road", "Pavement", "Tree", "SignSymbol", "Fence", "Car",
     "Pedestrian", "Bicyclist"),
    ((128, 128, 128), (128, 0, 0), (192, 192, 128), (128, 64, 128), (60, 40, 222),
     (128, 128, 0), (192, 128, 128), (64, 64, 128), (64, 0, 128), (64, 64, 0), (0, 128, 192)),
)

LABEL_SETS: dict[str, LabelSet] = {"camvid": CAMVID}
