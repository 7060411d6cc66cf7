"""Datasets in their real layouts (tiny generated trees), label mappings, augmentations."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

from rtseg.data.datasets import Cityscapes, GenericFolder, KittiRoad, read_label
from rtseg.data.labels import CAMVID, CITYSCAPES, CITYSCAPES_CATEGORY, IGNORE_INDEX, ROAD
from rtseg.data.registry import open_dataset
from rtseg.data.transforms import AugmentConfig, augment
from rtseg.errors import InputError

# Official labelId -> trainId pairs (cityscapesScripts); every other id is 255.
OFFICIAL_TRAIN_IDS = {
    7: 0,
    8: 1,
    11: 2,
    12: 3,
    13: 4,
    17: 5,
    19: 6,
    20: 7,
    21: 8,
    22: 9,
    23: 10,
    24: 11,
    25: 12,
    26: 13,
    27: 14,
    28: 15,
    31: 16,
    32: 17,
    33: 18,
}


def write_rgb(path: Path, rgb: np.ndarray) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    cv2.imwrite(str(path), cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))


def write_ids(path: Path, ids: np.ndarray) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    cv2.imwrite(str(path), ids.astype(np.uint8))


def image(h: int = 8, w: int = 35, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (h, w, 3), dtype=np.uint8)


@pytest.fixture
def cityscapes_root(tmp_path) -> Path:
    """One city per split; the label image holds every labelId 0..34 once per column."""
    ids = np.tile(np.arange(35, dtype=np.uint8), (8, 1))
    for split, city in (("train", "aachen"), ("val", "frankfurt")):
        for n in range(2):
            stem = f"{city}_00000{n}_000019"
            write_rgb(tmp_path / "leftImg8bit" / split / city / f"{stem}_leftImg8bit.png", image(seed=n))
            write_ids(tmp_path / "gtFine" / split / city / f"{stem}_gtFine_labelIds.png", ids)
            # The other gtFine files of the real layout must not be mistaken for labels.
            write_rgb(tmp_path / "gtFine" / split / city / f"{stem}_gtFine_color.png", image(seed=9))
    return tmp_path


def test_cityscapes_trainids_follow_the_official_table(cityscapes_root):
    dataset = Cityscapes(cityscapes_root, "train")
    assert len(dataset) == 2 and dataset.label_set is CITYSCAPES and CITYSCAPES.num_classes == 19
    img, label = dataset[0]
    assert img.shape == (8, 35, 3) and label.shape == (8, 35) and label.dtype == np.uint8
    expected = [OFFICIAL_TRAIN_IDS.get(i, IGNORE_INDEX) for i in range(35)]
    assert label[0].tolist() == expected
    assert CITYSCAPES.classes[13] == "car" and CITYSCAPES.palette[13] == (0, 0, 142)
    assert CITYSCAPES.palette[0] == (128, 64, 128) and CITYSCAPES.classes[18] == "bicycle"


def test_cityscapes_categories_and_road(cityscapes_root):
    _, cat = Cityscapes(cityscapes_root, "val", label_mode="category")[1]
    assert CITYSCAPES_CATEGORY.num_classes == 7
    row = cat[0]
    flat, construction, obj, nature, sky, human, vehicle = range(7)
    assert row[[7, 8]].tolist() == [flat, flat]
    assert row[[11, 12, 13]].tolist() == [construction] * 3
    assert row[[17, 19, 20]].tolist() == [obj] * 3
    assert row[[21, 22, 23, 24, 25]].tolist() == [nature, nature, sky, human, human]
    assert row[[26, 27, 28, 31, 32, 33]].tolist() == [vehicle] * 6
    # void and the labels the official evaluation ignores
    assert set(row[[0, 1, 2, 3, 4, 5, 6, 9, 10, 14, 15, 16, 18, 29, 30, 34]].tolist()) == {IGNORE_INDEX}
    _, road = open_dataset("cityscapes-road", str(cityscapes_root), "train")[0]
    assert road[0, 7] == 1 and road[0, 8] == 0 and road[0, 26] == 0 and road[0, 4] == 0
    assert set(road[0, [0, 1, 2, 3, 34]].tolist()) == {IGNORE_INDEX}


def test_cityscapes_errors(cityscapes_root, tmp_path):
    with pytest.raises(InputError, match="label_mode must be one of"):
        Cityscapes(cityscapes_root, "train", label_mode="instance")
    with pytest.raises(InputError, match="is not a folder"):
        Cityscapes(cityscapes_root, "test")
    next((cityscapes_root / "gtFine" / "train").glob("*/*_labelIds.png")).unlink()
    with pytest.raises(InputError, match="1 of 2 images have no label file"):
        Cityscapes(cityscapes_root, "train")


@pytest.fixture
def kitti_root(tmp_path) -> Path:
    """5 um, 1 umm, 1 uu training images; ground truth: left half road, then background,
    a black (invalid) strip on the right; an um lane file that must be ignored."""
    gt = np.zeros((6, 10, 3), np.uint8)
    gt[:, :5] = (255, 0, 255)
    gt[:, 5:8] = (255, 0, 0)
    for category, count in (("um", 5), ("umm", 1), ("uu", 1)):
        for n in range(count):
            write_rgb(tmp_path / "training" / "image_2" / f"{category}_{n:06d}.png", image(6, 10, n))
            write_rgb(tmp_path / "training" / "gt_image_2" / f"{category}_road_{n:06d}.png", gt)
    write_rgb(tmp_path / "training" / "gt_image_2" / "um_lane_000000.png", gt[:, ::-1])
    write_rgb(tmp_path / "testing" / "image_2" / "um_000000.png", image(6, 10))
    return tmp_path


def test_kitti_road_colours_and_splits(kitti_root):
    dataset = KittiRoad(kitti_root)
    assert len(dataset) == 7 and dataset.label_set is ROAD
    _, label = dataset[0]
    assert label[:, :5].tolist() == [[1] * 5] * 6
    assert label[:, 5:8].tolist() == [[0] * 3] * 6
    assert (label[:, 8:] == IGNORE_INDEX).all()
    train, val = KittiRoad(kitti_root, "train"), open_dataset("kitti-road", str(kitti_root), "val")
    assert len(train) == 6 and len(val) == 1
    assert val.pairs[0][0].name == "um_000004.png"
    assert not {p for p, _ in train.pairs} & {p for p, _ in val.pairs}


def test_kitti_road_errors(kitti_root):
    with pytest.raises(InputError, match="testing images have no ground truth"):
        KittiRoad(kitti_root, "testing")
    (kitti_root / "training" / "gt_image_2" / "uu_road_000000.png").unlink()
    with pytest.raises(InputError, match="have no label file .*uu_road_000000.png"):
        KittiRoad(kitti_root)


def test_generic_folder_matches_by_stem_and_ignores_out_of_range(tmp_path):
    ids = np.array([[0, 1, 2, 3], [255, 1, 0, 9]], np.uint8)
    for stem in ("a", "b"):
        write_rgb(tmp_path / "images" / f"{stem}.jpg", image(2, 4))
        write_ids(tmp_path / "masks" / f"{stem}.png", ids)
    (tmp_path / "classes.txt").write_text("# name [r g b]\nroad 128 64 128\ncar\ntraffic sign 1 2 3\n")
    dataset = GenericFolder(tmp_path / "images", tmp_path / "masks")
    assert [p.stem for p, _ in dataset.pairs] == ["a", "b"]
    assert dataset.label_set.classes == ("road", "car", "traffic sign")
    assert dataset.label_set.palette[0] == (128, 64, 128) and dataset.label_set.palette[2] == (1, 2, 3)
    assert len(set(dataset.label_set.palette)) == 3
    _, label = dataset[1]
    assert label.tolist() == [[0, 1, 2, 255], [255, 1, 0, 255]]
    named = GenericFolder(tmp_path / "images", tmp_path / "masks", ["x", "y"])
    assert named.label_set.classes == ("x", "y") and named[0][1].max() == 255


def test_generic_folder_errors_and_registry_layout(tmp_path):
    write_rgb(tmp_path / "train" / "images" / "a.png", image(2, 4))
    write_ids(tmp_path / "train" / "masks" / "a.png", np.zeros((2, 4)))
    with pytest.raises(InputError, match="no class names; write classes.txt"):
        open_dataset("folder", str(tmp_path), "train")
    (tmp_path / "classes.txt").write_text("background\nthing\n")
    assert len(open_dataset("folder", str(tmp_path), "train")) == 1
    with pytest.raises(InputError, match="is not a folder"):
        open_dataset("folder", str(tmp_path), "val")
    write_ids(tmp_path / "train" / "masks" / "a.png", np.zeros((3, 4)))
    with pytest.raises(InputError, match="label size"):
        open_dataset("folder", str(tmp_path), "train")[0]
    with pytest.raises(InputError, match="unknown dataset 'pascal'"):
        open_dataset("pascal", str(tmp_path), "train")


def test_every_image_needs_its_label_in_every_layout(tmp_path):
    """An image without its label is an incomplete copy, refused as Cityscapes and KITTI refuse it."""
    write_rgb(tmp_path / "val" / "f.png", image(1, 4))
    write_rgb(tmp_path / "val" / "g.png", image(1, 4))
    write_ids(tmp_path / "valannot" / "f.png", np.zeros((1, 4)))
    with pytest.raises(InputError, match="1 of 2 images have no label file .*valannot/g.png"):
        open_dataset("camvid", str(tmp_path), "val")
    write_rgb(tmp_path / "images" / "a.png", image(1, 4))
    write_rgb(tmp_path / "images" / "unlabelled.png", image(1, 4))
    write_ids(tmp_path / "masks" / "a.png", np.zeros((1, 4)))
    with pytest.raises(InputError, match="1 of 2 images have no label file .*unlabelled.png"):
        GenericFolder(tmp_path / "images", tmp_path / "masks", ["x"])


@pytest.mark.parametrize("values, refused", [((0, 11), False), ((0, 256), True), ((3, 1000), True)])
def test_16_bit_labels_are_read_or_refused_never_cut(tmp_path, values, refused):
    path = tmp_path / "label.png"
    cv2.imwrite(str(path), np.array([values], np.uint16))
    if refused:
        with pytest.raises(InputError, match=r"uint16 label with values .*class ids must be 0\.\.255"):
            read_label(path)
    else:
        assert read_label(path).tolist() == [list(values)]


def test_camvid_tiny_tree_maps_void_to_ignore(tmp_path):
    ids = np.array([[0, 10, 11, 3]], np.uint8)
    write_rgb(tmp_path / "val" / "f.png", image(1, 4))
    write_ids(tmp_path / "valannot" / "f.png", ids)
    _, label = open_dataset("camvid", str(tmp_path), "val")[0]
    assert label.tolist() == [[0, 10, IGNORE_INDEX, 3]]


@pytest.mark.data
def test_camvid_real_splits(data_dir):
    root = str(data_dir / "camvid")
    train, val = open_dataset("camvid", root, "train"), open_dataset("camvid", root, "val")
    assert (len(train), len(val)) == (367, 101) and train.label_set is CAMVID
    for dataset in (train, val):
        for i in (0, len(dataset) - 1):
            img, label = dataset[i]
            assert img.shape == (360, 480, 3) and img.dtype == np.uint8 and label.shape == (360, 480)
            values = set(np.unique(label).tolist())
            assert values <= set(range(11)) | {IGNORE_INDEX} and len(values - {IGNORE_INDEX}) > 3


def test_augment_keeps_image_and_mask_aligned():
    palette = np.array([[255, 0, 0], [0, 255, 0], [0, 0, 255], [255, 255, 0]], np.uint8)
    mask = np.zeros((60, 80), np.uint8)
    mask[:, 20:] = 1
    mask[30:, 50:] = 2
    mask[10:20, 60:70] = 3
    cfg = AugmentConfig(crop=(48, 64), scale=(0.5, 1.5), brightness=0, contrast=0, saturation=0)
    rng = np.random.default_rng(0)
    for _ in range(10):
        img, out = augment(palette[mask], mask, cfg, rng)
        assert img.shape == (48, 64, 3) and out.shape == (48, 64) and out.dtype == np.uint8
        assert set(np.unique(out).tolist()) <= {0, 1, 2, 3, IGNORE_INDEX}
        valid = out != IGNORE_INDEX
        agree = (img[valid] == palette[out[valid]]).all(axis=1).mean()
        assert agree > 0.9  # disagreement only on resampled boundaries


def test_colour_jitter_changes_colours_only():
    mask = np.arange(48 * 64, dtype=np.int64).reshape(48, 64) % 7
    img = image(48, 64)
    cfg = AugmentConfig(crop=(48, 64), scale=(1.0, 1.0), hflip=False)
    out_img, out_mask = augment(img, mask.astype(np.uint8), cfg, np.random.default_rng(3))
    assert (out_mask == mask).all() and not (out_img == img).all()
