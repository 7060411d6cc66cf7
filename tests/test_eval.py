"""`rtseg eval` and its library: scoring with fake backends of known answer, flip TTA,
small-blob removal, the CLI on the tiny package, and real CamVid."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pytest
from click.testing import CliRunner

from rtseg.cli import main
from rtseg.data.labels import CAMVID
from rtseg.data.registry import open_dataset
from rtseg.postprocess import flip_tta_logits, remove_small_blobs
from rtseg.runtime.base import Backend
from rtseg.train.evaluate import evaluate_backend

PALETTE = CAMVID.palette_array()


def tiny_camvid(root: Path, count: int = 3, h: int = 20, w: int = 30) -> Path:
    """CamVid (SegNet) layout: `val/` + `valannot/`. Images paint each class in its palette
    colour, so a backend can read the answer off the pixels; void (11) fills the last row."""
    rng = np.random.default_rng(0)
    (root / "val").mkdir(parents=True)
    (root / "valannot").mkdir(parents=True)
    for i in range(count):
        label = np.zeros((h, w), np.uint8)  # Sky
        label[h // 2 :, :] = 3  # Road
        x = int(rng.integers(0, w - 8))
        label[2:8, x : x + 6] = 8  # an asymmetric Car
        label[-1, :] = 11  # void
        rgb = PALETTE[np.minimum(label, 10)]
        cv2.imwrite(str(root / "val" / f"f{i}.png"), cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))
        cv2.imwrite(str(root / "valannot" / f"f{i}.png"), label)
    return root


class ConstantBackend(Backend):
    """Predicts one class everywhere, at an input size unlike the labels'."""

    name = "constant"

    def __init__(self, class_id: int, input_size=(8, 12)):
        self.class_id, self.input_size, self.num_classes, self.max_batch = class_id, input_size, 11, 2

    def _infer_impl(self, images: np.ndarray) -> np.ndarray:
        return np.full(images.shape[:3], self.class_id, np.uint8)


def colour_logits(images: np.ndarray) -> np.ndarray:
    """(N, H, W, 3) palette-painted frames -> (N, 11, H, W) one-hot logits of the colours."""
    distance = np.abs(images[:, None].astype(np.int32) - PALETTE[None, :, None, None]).sum(-1)
    return -distance.astype(np.float32)


class ColourBackend(Backend):
    """Reads each pixel's class from its palette colour: a perfect model at the label size."""

    name = "colour"

    def __init__(self, input_size=(20, 30)):
        self.input_size, self.num_classes, self.max_batch = input_size, 11, 4

    supports_logits = True

    def _infer_impl(self, images: np.ndarray) -> np.ndarray:
        return colour_logits(images).argmax(1).astype(np.uint8)

    def _logits_impl(self, images: np.ndarray) -> np.ndarray:
        return colour_logits(images)


def test_constant_backend_scores_match_a_hand_computation(tmp_path):
    dataset = open_dataset("camvid", str(tiny_camvid(tmp_path)), "val")
    labels = np.stack([dataset[i][1] for i in range(len(dataset))])
    valid = labels != 255
    road, sky, car = (labels == 3).sum(), (labels == 0).sum(), (labels == 8).sum()
    result = evaluate_backend(ConstantBackend(3), dataset)
    # Predicting Road everywhere: IoU(road) = road / all valid pixels; sky and car: 0; the
    # other 8 classes are absent from both and do not count.
    assert result["per_class"]["Road"] == pytest.approx(road / valid.sum())
    assert result["per_class"]["Sky"] == 0 and result["per_class"]["Car"] == 0
    assert result["per_class"]["Tree"] is None and len(result["per_class"]) == 11
    assert result["miou"] == pytest.approx(road / valid.sum() / 3)
    assert result["pixel_acc"] == pytest.approx(road / (road + sky + car))
    assert result["frames"] == 3
    assert evaluate_backend(ConstantBackend(3), dataset, limit=1)["frames"] == 1


def test_perfect_backend_and_flip_tta_score_one(tmp_path):
    dataset = open_dataset("camvid", str(tiny_camvid(tmp_path)), "val")
    assert evaluate_backend(ColourBackend(), dataset)["miou"] == 1.0
    # Flip TTA must mirror the mirrored image's logits back: the car is not symmetric.
    tta = evaluate_backend(ColourBackend(), dataset, flip_tta=True)
    assert tta["miou"] == 1.0 and tta["pixel_acc"] == 1.0
    # At a smaller model size the ids are resized back with nearest: close, not perfect.
    small = evaluate_backend(ColourBackend((10, 15)), dataset)
    assert 0.5 < small["miou"] < 1.0


def test_flip_tta_unflips_the_mirrored_logits():
    images = np.random.default_rng(1).integers(0, 256, (2, 4, 6, 3), dtype=np.uint8)

    def red_logits(x):
        return x[..., 0][:, None].astype(np.float32)  # depends on position: not flip-invariant

    assert np.array_equal(flip_tta_logits(red_logits, images), red_logits(images))


def test_remove_small_blobs():
    ids = np.ones((12, 12), np.uint8)
    ids[6:, :] = 2
    ids[2:4, 2:4] = 5  # 4 px inside class 1
    ids[8:11, 8:11] = 7  # 9 px inside class 2
    ids[4:6, 0] = 9  # 2 px at the 1/2 border: 4 neighbours of class 1, 2 of class 2
    out = remove_small_blobs(ids, 5)
    assert (out[2:4, 2:4] == 1).all() and (out[8:11, 8:11] == 7).all() and (out[4:6, 0] == 1).all()
    assert set(np.unique(out).tolist()) == {1, 2, 7}
    assert out.dtype == np.uint8 and ids[2, 2] == 5  # input untouched
    assert (remove_small_blobs(ids, 10)[8:11, 8:11] == 2).all()
    assert np.array_equal(remove_small_blobs(ids, 0), ids)
    uniform = np.full((4, 4), 3, np.uint8)
    assert np.array_equal(remove_small_blobs(uniform, 100), uniform)


def test_remove_small_blobs_cleans_salt_noise():
    rng = np.random.default_rng(0)
    clean = cv2.resize(
        rng.integers(0, 11, (6, 8)).astype(np.uint8), (160, 120), interpolation=cv2.INTER_NEAREST
    )
    noisy = clean.copy()
    salt = rng.random(clean.shape) < 0.01
    noisy[salt] = rng.integers(0, 11, int(salt.sum()))
    out = remove_small_blobs(noisy, 30)
    assert (out == clean).mean() > 0.999 > (noisy == clean).mean()
    for class_id in np.unique(out):
        _, _, stats, _ = cv2.connectedComponentsWithStats((out == class_id).astype(np.uint8))
        assert stats[1:, cv2.CC_STAT_AREA].min() >= 30


def test_remove_small_blobs_connectivity_and_neighbouring_blobs():
    ids = np.zeros((6, 6), np.uint8)
    ids[1, 1] = ids[2, 2] = 4  # diagonal pair: one blob of 2 with 8-connectivity, two of 1 with 4
    ids[4, 4] = 5
    ids[4, 5] = 6  # two adjacent small blobs: each takes the large class around, not each other
    assert (remove_small_blobs(ids, 3)[[1, 2], [1, 2]] == 0).all()
    eight = remove_small_blobs(ids, 2, connectivity=8)
    assert eight[1, 1] == 4 and eight[4, 4] == 0 and eight[4, 5] == 0
    assert remove_small_blobs(ids, 2, connectivity=4)[1, 1] == 0
    from rtseg.errors import InputError

    with pytest.raises(InputError, match="expects \\(H, W\\) class ids"):
        remove_small_blobs(np.zeros((2, 2, 3), np.uint8), 4)
    with pytest.raises(InputError, match="connectivity must be 4 or 8"):
        remove_small_blobs(ids, 4, connectivity=6)


def _run(args):
    result = CliRunner().invoke(main, args)
    return result, result.stdout, result.stderr


def _one_line_error(result, stderr, match):
    assert result.exit_code == 1, result.output
    lines = [ln for ln in stderr.strip().splitlines() if ln.startswith("rtseg: error:")]
    assert len(lines) == 1 and match in lines[0], stderr
    assert "Traceback" not in result.output


def test_cli_scores_the_tiny_package_and_writes_json(tmp_path, tiny_package):
    root = tiny_camvid(tmp_path / "camvid", count=3, h=48, w=72)
    out = tmp_path / "out" / "result.json"
    args = [
        "eval",
        "--model",
        str(tiny_package.onnx_path),
        "--dataset",
        "camvid",
        "--data-root",
        str(root),
        "--split",
        "val",
        "--threads",
        "1",
    ]
    result, stdout, _ = _run(args + ["--json", str(out)])
    assert result.exit_code == 0, result.output
    saved = json.loads(out.read_text())
    assert set(saved["per_class"]) == set(CAMVID.classes) and saved["frames"] == 3
    assert 0 <= saved["miou"] <= 1 and 0 <= saved["pixel_acc"] <= 1
    assert saved["input_size"] == list(tiny_package.input_size)
    assert "mIoU" in stdout and "pixel acc" in stdout and "Bicyclist" in stdout
    # The same model through its checkpoint on torch, with flip TTA and blob removal.
    torch_run, _, _ = _run(
        args + ["--backend", "torch", "--flip-tta", "--min-blob", "8", "--json", str(tmp_path / "t.json")]
    )
    assert torch_run.exit_code == 0, torch_run.output
    assert json.loads((tmp_path / "t.json").read_text())["flip_tta"] is True


def test_cli_errors_are_one_line(tmp_path, tiny_package, tiny_checkpoint):
    root = tiny_camvid(tmp_path / "camvid")
    base = ["eval", "--dataset", "camvid", "--data-root", str(root), "--threads", "1"]
    result, _, err = _run(base + ["--model", str(tiny_package.onnx_path), "--flip-tta"])
    _one_line_error(result, err, "flip TTA needs logits")
    result, _, err = _run(base + ["--model", str(tiny_checkpoint), "--backend", "onnxruntime"])
    _one_line_error(result, err, "is a checkpoint")
    result, _, err = _run(base + ["--model", str(tiny_package.onnx_path), "--dataset", "kitti_road"])
    _one_line_error(result, err, "KITTI road")
    (tmp_path / "blocker").write_text("a file, not a folder")
    result, _, err = _run(
        base + ["--model", str(tiny_package.onnx_path), "--json", str(tmp_path / "blocker" / "r.json")]
    )
    _one_line_error(result, err, "cannot write")
    folder = tmp_path / "two"
    (folder / "val" / "images").mkdir(parents=True)
    (folder / "val" / "masks").mkdir(parents=True)
    cv2.imwrite(str(folder / "val" / "images" / "a.png"), np.zeros((4, 4, 3), np.uint8))
    cv2.imwrite(str(folder / "val" / "masks" / "a.png"), np.zeros((4, 4), np.uint8))
    (folder / "classes.txt").write_text("background\nroad\n")
    result, _, err = _run(
        ["eval", "--model", str(tiny_package.onnx_path), "--dataset", "folder", "--data-root", str(folder)]
    )
    _one_line_error(result, err, "predicts 11 classes but folder has 2")


@pytest.mark.data
def test_cli_on_real_camvid_val(tmp_path, data_dir, tiny_package):
    out = tmp_path / "camvid.json"
    result, stdout, _ = _run(
        [
            "eval",
            "--model",
            str(tiny_package.onnx_path),
            "--dataset",
            "camvid",
            "--data-root",
            str(data_dir / "camvid"),
            "--split",
            "val",
            "--limit",
            "5",
            "--threads",
            "1",
            "--json",
            str(out),
        ]
    )
    assert result.exit_code == 0, result.output
    saved = json.loads(out.read_text())
    assert len(saved["per_class"]) == 11 and saved["frames"] == 5
    assert 0 <= saved["miou"] <= 1 and "5 images of camvid val" in stdout


def test_training_record_and_seen_in_training():
    from rtseg.core.checkpoint import seen_in_training, training_record

    config = {"dataset": "camvid", "train_split": "train+val", "data_root": "/d/camvid"}
    joined = training_record({"config": config})
    assert joined == {"dataset": "camvid", "data": "camvid", "splits": ["train", "val"]}
    assert seen_in_training(joined, "camvid", "val") and seen_in_training(joined, "camvid", "test+val")
    assert not seen_in_training(joined, "camvid", "test")
    assert not seen_in_training(joined, "cityscapes", "val")  # another dataset's val
    assert training_record({"state_dict": {}}) is None and training_record({"config": "junk"}) is None
    assert not seen_in_training(None, "camvid", "val")  # not recorded: not claimed either way
    config = {"dataset": "folder", "train_split": "train+val", "data_root": "/a/roads"}
    mine = training_record({"config": config})
    assert seen_in_training(mine, "folder", "val", "/elsewhere/roads")  # the same data folder, moved
    assert not seen_in_training(mine, "folder", "val", "/b/fields")  # someone else's folder dataset
    assert not seen_in_training(mine, "folder", "val")


def _checkpoint_trained_on(path: Path, split: str) -> Path:
    from conftest import make_tiny_checkpoint

    from rtseg.core.checkpoint import load_checkpoint, save_checkpoint

    payload = load_checkpoint(make_tiny_checkpoint(path))
    save_checkpoint(path, {**payload, "config": {"dataset": "camvid", "train_split": split}})
    return path


@pytest.mark.parametrize("split,seen", [("train+val", True), ("train", False)])
def test_eval_says_when_the_split_was_seen_in_training(tmp_path, split, seen):
    """The package records what its checkpoint was trained on; `rtseg eval` on that split says
    its figures are not held out, through the package and through the checkpoint alike."""
    from conftest import TINY_SIZE, structured_frames

    from rtseg.export.package_export import export_checkpoint

    checkpoint = _checkpoint_trained_on(tmp_path / "m.pth", split)
    package, _ = export_checkpoint(checkpoint, tmp_path / "m.onnx", structured_frames(2, *TINY_SIZE))
    assert package.meta["training"] == {"dataset": "camvid", "data": None, "splits": split.split("+")}
    root = tiny_camvid(tmp_path / "camvid", count=2, h=48, w=72)
    for model, backend in ((package.onnx_path, "onnxruntime"), (checkpoint, "torch")):
        out = tmp_path / f"{backend}.json"
        args = ["eval", "--model", str(model), "--data-root", str(root), "--backend", backend]
        result, stdout, _ = _run(args + ["--threads", "1", "--json", str(out)])
        assert result.exit_code == 0, result.output
        assert json.loads(out.read_text())["seen_in_training"] is seen
        assert ("not held out" in stdout) is seen, stdout
