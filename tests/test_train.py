"""Losses on known cases, class weights, schedules, and `rtseg train` with resume."""

from __future__ import annotations

import math
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch
import torch.nn.functional as F
from click.testing import CliRunner
from conftest import structured_frames

from rtseg.cli import main
from rtseg.core.checkpoint import load_checkpoint
from rtseg.data.labels import IGNORE_INDEX
from rtseg.errors import RtsegError
from rtseg.train.loop import TrainConfig, check_config, lr_factor
from rtseg.train.losses import (
    DiceLoss,
    FocalLoss,
    OhemCrossEntropy,
    build_loss,
    class_weight_tensor,
    median_frequency_weights,
    parse_class_weights,
)

torch.set_num_threads(1)


def confident_logits(target: torch.Tensor, num_classes: int, scale: float = 30.0) -> torch.Tensor:
    """(N, C, H, W) logits that put almost all probability on `target` (ignore -> class 0)."""
    return F.one_hot(target.clamp(0, num_classes - 1), num_classes).permute(0, 3, 1, 2).float() * scale


def test_dice_is_zero_for_a_perfect_prediction_and_one_for_a_wrong_one():
    target = torch.tensor([[[0, 1, 2], [2, 1, 0]]])
    assert DiceLoss()(confident_logits(target, 3), target).item() == pytest.approx(0, abs=1e-6)
    wrong = (target + 1) % 3
    # No overlap: per class 1 - eps / (2 * 2 + eps) with two pixels a class, eps = 1 -> 0.8.
    assert DiceLoss()(confident_logits(wrong, 3), target).item() == pytest.approx(0.8, abs=1e-4)


def test_ignored_pixels_do_not_count():
    target = torch.tensor([[[0, 1, 255], [1, 0, 255]]])
    logits = confident_logits(target, 2)
    noisy = logits.clone()
    noisy[..., 2] = torch.randn(1, 2, 2) * 50  # anything at the ignored pixels
    for loss in (DiceLoss(), FocalLoss(), build_loss("ce"), build_loss("ce+dice")):
        assert loss(noisy, target).item() == pytest.approx(loss(logits, target).item(), abs=1e-6)
    all_ignored = torch.full((1, 2, 3), 255)
    assert FocalLoss()(logits, all_ignored).item() == 0


def test_focal_with_gamma_zero_is_cross_entropy_and_down_weights_easy_pixels():
    torch.manual_seed(0)
    logits, target = torch.randn(2, 4, 5, 6), torch.randint(0, 4, (2, 5, 6))
    target[0, 0, :3] = 255
    ce = F.cross_entropy(logits, target, ignore_index=255)
    assert FocalLoss(gamma=0)(logits, target).item() == pytest.approx(ce.item(), rel=1e-5)
    assert FocalLoss(gamma=2)(logits, target).item() < ce.item()
    p = torch.tensor(0.9)  # one pixel, probability 0.9 on the right class: (1-p)^2 * -ln p
    logit = torch.log(torch.tensor([[[[0.9]], [[0.1]]]]))
    assert FocalLoss()(logit, torch.zeros(1, 1, 1, dtype=torch.long)).item() == pytest.approx(
        (0.1**2) * -math.log(p.item()), rel=1e-5
    )


def test_weighted_cross_entropy_matches_a_hand_computation():
    logits = torch.tensor([[[[2.0, 0.0]], [[0.0, 1.0]]]])  # (1, 2, 1, 2)
    target = torch.tensor([[[0, 1]]])
    weight = torch.tensor([1.0, 3.0])
    nll0 = -math.log(math.exp(2) / (math.exp(2) + 1))
    nll1 = -math.log(math.exp(1) / (math.exp(1) + 1))
    expected = (1 * nll0 + 3 * nll1) / (1 + 3)
    assert build_loss("ce", weight)(logits, target).item() == pytest.approx(expected, rel=1e-6)


def test_ohem_averages_only_the_hard_pixels_but_keeps_a_minimum():
    target = torch.zeros(1, 2, 4, dtype=torch.long)
    target[0, 0, 0] = IGNORE_INDEX
    logits = confident_logits(target, 3)
    logits[0, :, 1, :2] = 0.0  # two hard pixels: p(true) = 1/3 < 0.7
    per_pixel = F.cross_entropy(logits, target.clamp(0, 2), reduction="none")
    ohem = OhemCrossEntropy(threshold=0.7, min_kept=0.0)(logits, target)
    assert ohem.item() == pytest.approx(per_pixel[0, 1, :2].mean().item(), rel=1e-5)
    easy = confident_logits(
        target, 3, scale=3.0
    )  # nothing hard (p = 0.91): the top min_kept share still trains
    kept = OhemCrossEntropy(threshold=0.7, min_kept=0.5)(easy, target)
    assert kept.item() > 0
    nothing = torch.full_like(target, IGNORE_INDEX)
    assert OhemCrossEntropy()(logits, nothing).item() == 0.0


def test_class_weight_schemes():
    counts = np.array([600, 300, 100, 0])
    assert class_weight_tensor("none", counts) is None
    enet = class_weight_tensor("enet", counts)
    assert enet[2] > enet[1] > enet[0] and enet[3] == pytest.approx(1 / math.log(1.10))
    assert median_frequency_weights(counts).tolist() == pytest.approx([0.5, 1.0, 3.0, 0.0])
    assert class_weight_tensor("1,2,3,4", counts).tolist() == [1, 2, 3, 4]
    with pytest.raises(RtsegError, match="3 class weights given for 4 classes"):
        class_weight_tensor("1,2,3", counts)
    for bad in ("enett", "1,-2", "1,,2", "nan"):
        with pytest.raises(RtsegError, match="class weights must be"):
            parse_class_weights(bad)


@pytest.mark.parametrize("schedule", ["poly", "cosine"])
def test_schedule_warms_up_then_decays_to_zero(schedule):
    cfg = TrainConfig(schedule=schedule, warmup_iters=10)
    assert lr_factor(cfg, 0, 100) == pytest.approx(0.1) and lr_factor(cfg, 9, 100) == 1
    values = [lr_factor(cfg, s, 100) for s in range(10, 101)]
    assert values[0] == 1 and values[-1] == pytest.approx(0, abs=1e-9)
    assert all(a >= b for a, b in zip(values, values[1:]))


def test_check_config_names_the_bad_setting():
    check_config(TrainConfig())
    for change, match in (
        ({"arch": "segformer"}, "unknown architecture 'segformer'"),
        ({"encoder": "mobilenet"}, "unknown encoder"),
        ({"dataset": "voc"}, "unknown dataset 'voc'"),
        ({"loss": "lovasz"}, "unknown loss"),
        ({"schedule": "step"}, "unknown schedule"),
        ({"batch_size": 0}, "batch_size must be at least 1"),
        ({"scale": (2.0, 1.0)}, "scale must be"),
    ):
        with pytest.raises(RtsegError, match=match):
            check_config(TrainConfig(**change))


def test_training_on_the_validation_split_says_its_score_is_not_held_out(monkeypatch, capsys):
    monkeypatch.setattr("rtseg.core.notices._said", set())
    check_config(TrainConfig(train_split="train"))
    assert capsys.readouterr().err == ""
    check_config(TrainConfig(train_split="train+val", val_split="val"))
    lines = capsys.readouterr().err.splitlines()
    assert len(lines) == 1 and "the validation split 'val' is trained on" in lines[0]
    assert "not a held-out score" in lines[0]


@pytest.mark.parametrize("split", ["", " ", "train+", "val+val"])
def test_an_empty_or_repeated_split_name_is_refused(tmp_path, split):
    from rtseg.data.registry import open_dataset

    with pytest.raises(RtsegError, match="name each split once"):
        open_dataset("camvid", str(tmp_path), split)


# --- the CLI ---------------------------------------------------------------------------------


def tiny_camvid_tree(root: Path, train: int = 8, val: int = 4, h: int = 64, w: int = 96) -> Path:
    """SegNet-layout CamVid with structured 96x64 frames; labels: sky top, road bottom, void row."""
    for split, count in (("train", train), ("val", val)):
        (root / split).mkdir(parents=True)
        (root / f"{split}annot").mkdir(parents=True)
        frames = structured_frames(count, h, w, seed=len(split))
        for i, frame in enumerate(frames):
            label = np.zeros((h, w), np.uint8)
            label[h // 2 :] = 3
            label[(frame[..., 0] > 200)] = 8
            label[0] = 11
            cv2.imwrite(str(root / split / f"{i:03d}.png"), cv2.cvtColor(frame, cv2.COLOR_RGB2BGR))
            cv2.imwrite(str(root / f"{split}annot" / f"{i:03d}.png"), label)
    return root


def _train_args(root: Path, out: Path, *extra: str) -> list[str]:
    return [
        "train",
        "--dataset",
        "camvid",
        "--data-root",
        str(root),
        "--arch",
        "fpn_lite",
        "--encoder",
        "efficientnet_lite0",
        "--batch-size",
        "4",
        "--crop",
        "64x96",
        "--val-every",
        "1",
        "--warmup-iters",
        "2",
        "--threads",
        "1",
        "--out-dir",
        str(out),
        *extra,
    ]


def test_train_two_epochs_then_resume_continues(tmp_path):
    root, out = tiny_camvid_tree(tmp_path / "camvid"), tmp_path / "run"
    first = CliRunner().invoke(main, _train_args(root, out, "--epochs", "2"))
    assert first.exit_code == 0, first.output
    assert (out / "last.pth").is_file() and (out / "best.pth").is_file()
    last = load_checkpoint(out / "last.pth")
    assert last["epoch"] == 2 and last["step"] == 4 and len(last["history"]) == 2
    assert last["model"] == {
        "arch": "fpn_lite",
        "encoder": "efficientnet_lite0",
        "num_classes": 11,
        "kwargs": {},
    }
    assert "val_miou" in last["history"][-1] and last["input_size"] == [64, 96]
    assert "trained 2 epochs; best val mIoU" in first.stdout

    resumed = CliRunner().invoke(main, _train_args(root, out, "--epochs", "3"))
    assert resumed.exit_code == 0, resumed.output
    assert "resumed from" in resumed.output and "at epoch 2" in resumed.output
    after = load_checkpoint(out / "last.pth")
    assert after["epoch"] == 3 and after["step"] == 6 and len(after["history"]) == 3
    assert after["history"][:2] == last["history"]  # continued, not restarted

    changed = CliRunner().invoke(main, _train_args(root, out, "--epochs", "4", "--lr", "0.1"))
    assert changed.exit_code == 1 and "another configuration" in changed.stderr

    evaluated = CliRunner().invoke(
        main, ["eval", "--model", str(out / "best.pth"), "--data-root", str(root), "--threads", "1"]
    )
    assert evaluated.exit_code == 0, evaluated.output
    assert "4 images of camvid val" in evaluated.stdout


def test_train_with_ema_and_ohem_on_joined_splits_resumes_the_average(tmp_path):
    root, out = tiny_camvid_tree(tmp_path / "camvid", train=4, val=4), tmp_path / "run"
    args = ("--train-split", "train+val", "--loss", "ohem", "--ema-decay", "0.9")
    first = CliRunner().invoke(main, _train_args(root, out, "--epochs", "1", *args))
    assert first.exit_code == 0, first.output
    last = load_checkpoint(out / "last.pth")
    assert last["step"] == 2  # 8 images of train + val, batch 4
    trained, averaged = last["train_state_dict"], last["state_dict"]
    name = next(k for k, v in trained.items() if v.is_floating_point() and "weight" in k)
    assert not torch.equal(trained[name], averaged[name])  # the saved weights are the average
    assert last["ema_state_dict"]["n_averaged"].item() == 2
    resumed = CliRunner().invoke(main, _train_args(root, out, "--epochs", "2", *args))
    assert resumed.exit_code == 0, resumed.output
    assert load_checkpoint(out / "last.pth")["ema_state_dict"]["n_averaged"].item() == 4
    bad = CliRunner().invoke(main, _train_args(root, tmp_path / "b", "--train-split", "train+train"))
    assert bad.exit_code == 1 and "name each split once" in bad.stderr


def test_train_cli_errors_are_one_line(tmp_path):
    root = tiny_camvid_tree(tmp_path / "camvid", train=2, val=1, h=32, w=48)
    out = tmp_path / "run"
    for extra, match in (
        (["--crop", "64"], "--crop must be HxW"),
        (["--scale", "2,1"], "--scale must be MIN,MAX"),
        (["--arch", "segformer"], "unknown architecture 'segformer'"),
        (["--class-weights", "heavy"], "class weights must be"),
        (["--model-option", "fc_channels"], "--model-option must be KEY=VALUE"),
        (["--encoder-weights", str(tmp_path / "w.pth"), "--no-pretrained"], "contradict"),
        (["--encoder", "resnet18", "--pretrained"], "no ImageNet weights ship"),
        (["--batch-size", "8"], "fewer than the batch size 8"),
        (["--model-option", "depth=3"], "does not take option 'depth'"),
    ):
        result = CliRunner().invoke(main, _train_args(root, out, "--epochs", "1", *extra))
        assert result.exit_code == 1, (extra, result.output)
        errors = [ln for ln in result.stderr.splitlines() if ln.startswith("rtseg: error:")]
        assert len(errors) == 1 and match in errors[0], (extra, result.stderr)
        assert "Traceback" not in result.output


def test_train_cli_vgg_fcn_from_scratch_with_model_option(tmp_path, monkeypatch):
    import rtseg.train.loop

    monkeypatch.setattr(rtseg.train.loop, "PRELOAD_BUDGET_BYTES", 0)  # the lazy-reading path
    root = tiny_camvid_tree(tmp_path / "camvid", train=2, val=1, h=32, w=48)
    out = tmp_path / "run"
    args = _train_args(root, out, "--epochs", "1", "--batch-size", "2", "--crop", "32x48")
    args[args.index("fpn_lite")], args[args.index("efficientnet_lite0")] = "fcn8s", "vgg16"
    result = CliRunner().invoke(
        main,
        args
        + [
            "--model-option",
            "fc_channels=32",
            "--loss",
            "focal",
            "--class-weights",
            "median",
            "--schedule",
            "cosine",
        ],
    )
    assert result.exit_code == 0, result.output
    assert "vgg16 starts from random weights" in result.stderr
    assert "too large to preload; reading them from disk" in result.stdout
    ckpt = load_checkpoint(out / "best.pth")
    assert ckpt["model"]["kwargs"] == {"fc_channels": 32}
    assert ckpt["state_dict"]["head.0.weight"].shape == (32, 512, 7, 7)


def test_labels_that_score_nothing_are_refused_not_trained_or_scored_as_nan(tmp_path):
    """All labels out of range: train refuses before it starts (no checkpoint); eval of a split
    with no labelled pixel refuses instead of printing `mIoU nan` and writing NaN into JSON."""
    root = tiny_camvid_tree(tmp_path / "camvid", train=2, val=1, h=32, w=48)
    for label in (root / "trainannot").iterdir():
        cv2.imwrite(str(label), np.full((32, 48), 11, np.uint8))  # void: ignored everywhere
    out = tmp_path / "run"
    args = _train_args(root, out, "--epochs", "1", "--batch-size", "2", "--crop", "32x48")
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 1 and "the train split has no labelled pixel" in result.stderr, result.output
    assert not (out / "last.pth").exists() and not (out / "best.pth").exists()

    from rtseg.train.metrics import ConfusionMatrix

    matrix = ConfusionMatrix(3)
    matrix.update(np.zeros((2, 2), np.uint8), np.full((2, 2), 255, np.uint8))
    with pytest.raises(RtsegError, match="camvid val: no labelled pixel to score"):
        matrix.summary(("a", "b", "c"), "camvid val")


def test_a_batch_without_labelled_pixels_is_skipped_not_a_nan_model(tmp_path):
    from rtseg.data.labels import IGNORE_INDEX
    from rtseg.train.loop import TrainConfig, _train_epoch
    from rtseg.train.losses import build_loss

    model = torch.nn.Conv2d(3, 3, 1)
    samples = [(np.zeros((8, 8, 3), np.uint8), np.full((8, 8), IGNORE_INDEX, np.uint8))] * 2
    cfg = TrainConfig(data_root=str(tmp_path), batch_size=2, crop=(8, 8), scale=(1.0, 1.0), epochs=1)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    state = {"step": 0}
    _train_epoch(
        cfg, model, None, build_loss("ce", None), optimizer, samples, state, np.random.default_rng(0), 0
    )
    assert all(torch.isfinite(p).all() for p in model.parameters())
