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
    return DATASETS[dataset_name(name)](root, split, **kwargs)
