"""Open a dataset by name: `open_dataset("camvid", root, "train")`.

Names: camvid, cityscapes (19 trainIds), cityscapes_category (7 categories), cityscapes_road
(road / background), kitti_road, folder (`root/<split>/images` + `root/<split>/masks` with
`root/classes.txt`). Hyphens are accepted for underscores.
"""

from __future__ import annotations

from functools import partial

from rtseg.data.datasets import CamVid, Cityscapes, KittiRoad, SegmentationDataset, open_folder_dataset
from rtseg.errors import InputError

DATASETS = {
    "camvid": CamVid,
    "cityscapes": partial(Cityscapes, label_mode="trainid"),
    "cityscapes_category": partial(Cityscapes, label_mode="category"),
    "cityscapes_road": partial(Cityscapes, label_mode="road"),
    "kitti_road": KittiRoad,
    "folder": open_folder_dataset,
}


def dataset_name(name: str) -> str:
    """Canonical dataset name (`kitti-road` -> `kitti_road`); InputError if unknown."""
    canonical = name.replace("-", "_").lower()
    if canonical not in DATASETS:
        raise InputError(f"unknown dataset {name!r}; choose from {', '.join(sorted(DATASETS))}")
    return canonical


def open_dataset(name: str, root: str, split: str, **kwargs) -> SegmentationDataset:
    """The dataset `name` at `root`; `split` may join several with `+` ("train+val": the final
    model of a recipe chosen on val is trained on both, as CGNet and PIDNet do)."""
    opener = DATASETS[dataset_name(name)]
    parts = [part.strip() for part in split.split("+")]
    if any(not part for part in parts) or len(set(parts)) != len(parts):
        raise InputError(f"split {split!r}: name each split once, joined by '+' (e.g. train+val)")
    if len(parts) == 1:
        return opener(root, parts[0], **kwargs)
    return JoinedDataset([opener(root, part, **kwargs) for part in parts])


class JoinedDataset(SegmentationDataset):
    """Several splits of one dataset read as one: items in order, each through its own split's
    label mapping. Items: image `(H, W, 3) uint8 RGB`, mask `(H, W) uint8` ids."""

    def __init__(self, parts: list[SegmentationDataset]):
        super().__init__(
            [pair for part in parts for pair in part.pairs],
            parts[0].label_set,
            " + ".join(part.name for part in parts),
        )
        self.parts = parts

    def __getitem__(self, i: int):
        for part in self.parts:
            if i < len(part):
                return part[i]
            i -= len(part)
        raise IndexError(i)
