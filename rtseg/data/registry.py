"""Open a dataset by name: `open_dataset("camvid", root, "train")`."""

from __future__ import annotations

from rtseg.data.datasets import CamVid, SegmentationDataset
from rtseg.errors import InputError

DATASETS = {"camvid": CamVid}


def open_dataset(name: str, root: str, split: str, **kwargs) -> SegmentationDataset:
    if name not in DATASETS:
        raise InputError(f"unknown dataset {name!r}; choose from {', '.join(sorted(DATASETS))}")
    return DATASETS[name](root, split, **kwargs)
