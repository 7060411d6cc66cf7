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
    (
        "Sky",
        "Building",
        "Pole",
        "Road",
        "Pavement",
        "Tree",
        "SignSymbol",
        "Fence",
        "Car",
        "Pedestrian",
        "Bicyclist",
    ),
    (
        (128, 128, 128),
        (128, 0, 0),
        (192, 192, 128),
        (128, 64, 128),
        (60, 40, 222),
        (128, 128, 0),
        (192, 128, 128),
        (64, 64, 128),
        (64, 0, 128),
        (64, 64, 0),
        (0, 128, 192),
    ),
)

LABEL_SETS: dict[str, LabelSet] = {"camvid": CAMVID}


# --- Cityscapes --------------------------------------------------------------------------------


@dataclass(frozen=True)
class CityscapesLabel:
    """One row of cityscapesScripts' `helpers/labels.py` table."""

    name: str
    id: int  # value in *_gtFine_labelIds.png
    train_id: int  # 0..18, or 255 = not evaluated
    category: str
    ignore_in_eval: bool
    color: tuple[int, int, int]  # RGB


_L = CityscapesLabel
# The official table (cityscapesScripts, helpers/labels.py); "license plate" (id -1) never
# appears in labelIds images and is left out.
CITYSCAPES_LABELS: tuple[CityscapesLabel, ...] = (
    _L("unlabeled", 0, 255, "void", True, (0, 0, 0)),
    _L("ego vehicle", 1, 255, "void", True, (0, 0, 0)),
    _L("rectification border", 2, 255, "void", True, (0, 0, 0)),
    _L("out of roi", 3, 255, "void", True, (0, 0, 0)),
    _L("static", 4, 255, "void", True, (0, 0, 0)),
    _L("dynamic", 5, 255, "void", True, (111, 74, 0)),
    _L("ground", 6, 255, "void", True, (81, 0, 81)),
    _L("road", 7, 0, "flat", False, (128, 64, 128)),
    _L("sidewalk", 8, 1, "flat", False, (244, 35, 232)),
    _L("parking", 9, 255, "flat", True, (250, 170, 160)),
    _L("rail track", 10, 255, "flat", True, (230, 150, 140)),
    _L("building", 11, 2, "construction", False, (70, 70, 70)),
    _L("wall", 12, 3, "construction", False, (102, 102, 156)),
    _L("fence", 13, 4, "construction", False, (190, 153, 153)),
    _L("guard rail", 14, 255, "construction", True, (180, 165, 180)),
    _L("bridge", 15, 255, "construction", True, (150, 100, 100)),
    _L("tunnel", 16, 255, "construction", True, (150, 120, 90)),
    _L("pole", 17, 5, "object", False, (153, 153, 153)),
    _L("polegroup", 18, 255, "object", True, (153, 153, 153)),
    _L("traffic light", 19, 6, "object", False, (250, 170, 30)),
    _L("traffic sign", 20, 7, "object", False, (220, 220, 0)),
    _L("vegetation", 21, 8, "nature", False, (107, 142, 35)),
    _L("terrain", 22, 9, "nature", False, (152, 251, 152)),
    _L("sky", 23, 10, "sky", False, (70, 130, 180)),
    _L("person", 24, 11, "human", False, (220, 20, 60)),
    _L("rider", 25, 12, "human", False, (255, 0, 0)),
    _L("car", 26, 13, "vehicle", False, (0, 0, 142)),
    _L("truck", 27, 14, "vehicle", False, (0, 0, 70)),
    _L("bus", 28, 15, "vehicle", False, (0, 60, 100)),
    _L("caravan", 29, 255, "vehicle", True, (0, 0, 90)),
    _L("trailer", 30, 255, "vehicle", True, (0, 0, 110)),
    _L("train", 31, 16, "vehicle", False, (0, 80, 100)),
    _L("motorcycle", 32, 17, "vehicle", False, (0, 0, 230)),
    _L("bicycle", 33, 18, "vehicle", False, (119, 11, 32)),
)

_TRAIN = sorted((lb for lb in CITYSCAPES_LABELS if lb.train_id != IGNORE_INDEX), key=lambda lb: lb.train_id)
CITYSCAPES = LabelSet("cityscapes", tuple(lb.name for lb in _TRAIN), tuple(lb.color for lb in _TRAIN))

# The 7 evaluated categories (cityscapesScripts' category ids 1..7; "void", id 0, is ignored).
# Colours: each category's most common class (flat = road, object = pole, ...).
CITYSCAPES_CATEGORY = LabelSet(
    "cityscapes_category",
    ("flat", "construction", "object", "nature", "sky", "human", "vehicle"),
    (
        (128, 64, 128),
        (70, 70, 70),
        (153, 153, 153),
        (107, 142, 35),
        (70, 130, 180),
        (220, 20, 60),
        (0, 0, 142),
    ),
)

# Two classes, road and everything else; colours of KITTI road's ground truth.
ROAD = LabelSet("road", ("background", "road"), ((255, 0, 0), (255, 0, 255)))


def cityscapes_lookup(mode: str) -> np.ndarray:
    """(256,) uint8 table: gtFine labelId -> class id of `mode`, IGNORE_INDEX where not used.

    - "trainid": the 19 official training ids; every label with trainId 255 -> ignore.
    - "category": 7 categories (flat 0, construction 1, object 2, nature 3, sky 4, human 5,
      vehicle 6). Labels the official evaluation ignores (void, parking, rail track, guard
      rail, bridge, tunnel, polegroup, caravan, trailer) -> ignore, so scores match
      cityscapesScripts' category-level IoU (which counts only the 19 evaluated classes).
    - "road": road (id 7) -> 1, every other labelled id -> 0 (background); unlabeled, ego
      vehicle, rectification border and out of roi (ids 0..3) -> ignore.
    """
    table = np.full(256, IGNORE_INDEX, np.uint8)
    for label in CITYSCAPES_LABELS:
        if mode == "trainid":
            table[label.id] = label.train_id
        elif mode == "category":
            if not label.ignore_in_eval:
                table[label.id] = CITYSCAPES_CATEGORY.classes.index(label.category)
        elif mode == "road":
            if label.id > 3:
                table[label.id] = 1 if label.name == "road" else 0
        else:
            raise ValueError(f"unknown Cityscapes label mode {mode!r}")
    return table


CITYSCAPES_MODES = {"trainid": CITYSCAPES, "category": CITYSCAPES_CATEGORY, "road": ROAD}
LABEL_SETS.update(
    {"cityscapes": CITYSCAPES, "cityscapes_category": CITYSCAPES_CATEGORY, "road": ROAD, "kitti_road": ROAD}
)


def default_palette(num_classes: int) -> tuple[tuple[int, int, int], ...]:
    """Distinct RGB colours for label sets that bring none (PASCAL VOC's bit-interleaved map)."""
    colours = []
    for i in range(num_classes):
        r = g = b = 0
        c = i + 1
        for j in range(8):
            r |= ((c >> 0) & 1) << (7 - j)
            g |= ((c >> 1) & 1) << (7 - j)
            b |= ((c >> 2) & 1) << (7 - j)
            c >>= 3
        colours.append((r, g, b))
    return tuple(colours)
