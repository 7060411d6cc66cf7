"""`rtseg train --dataset camvid --data-root DIR --arch fpn_lite --encoder efficientnet_lite0 ...`"""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import click

from rtseg.cli.path_types import PATH
from rtseg.core.frames import parse_size
from rtseg.errors import InputError


def parse_scale(text: str) -> tuple[float, float]:
    """'0.75,1.75' -> (0.75, 1.75); InputError unless 0 < min <= max."""
    try:
        low, high = (float(v) for v in text.split(","))
    except ValueError:
        low = high = -1.0
    if not 0 < low <= high:
        raise InputError(f"--scale must be MIN,MAX with 0 < MIN <= MAX (e.g. 0.75,1.75), got {text!r}")
    return low, high


def parse_model_options(items: tuple[str, ...]) -> dict:
    """('fc_channels=512', 'upsample=bilinear') -> {'fc_channels': 512, 'upsample': 'bilinear'};
    values are read as JSON when they parse (numbers, lists, true/false), else as strings."""
    options = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key.strip().isidentifier():
            raise InputError(f"--model-option must be KEY=VALUE, got {item!r}")
        try:
            options[key.strip()] = json.loads(value)
        except json.JSONDecodeError:
            options[key.strip()] = value
    return options


def resolve_pretrained(encoder: str, pretrained: bool | None, weights: Path | None) -> bool | str:
    """`pretrained` for TrainConfig: a weights path, True/False as asked, or by default True
    only where ImageNet weights ship (EfficientNet-Lite)."""
    from rtseg.models.registry import has_bundled_weights

    if weights is not None:
        if pretrained is False:
            raise InputError("--encoder-weights and --no-pretrained contradict each other")
        return str(weights)
    if pretrained is None:
        pretrained = has_bundled_weights(encoder)
        if not pretrained:
            click.echo(
                f"note: {encoder} starts from random weights (no ImageNet weights ship for it; "
                "--encoder-weights PATH loads torchvision weights)",
                err=True,
            )
    return pretrained


@click.command("train")
@click.option(
    "--dataset",
    default="camvid",
    show_default=True,
    help="camvid, cityscapes, cityscapes_category, cityscapes_road, kitti_road or folder.",
)
@click.option(
    "--data-root",
    default="../shared/data/camvid",
    show_default=True,
    type=PATH,
    help="Dataset root in its standard layout.",
)
@click.option("--train-split", default="train", show_default=True)
@click.option("--val-split", default="val", show_default=True)
@click.option(
    "--arch",
    default="fpn_lite",
    show_default=True,
    help="fcn32s, fcn16s, fcn8s, unet, fpn, fpn_lite, pspnet or deeplabv3plus.",
)
@click.option(
    "--encoder",
    default="efficientnet_lite0",
    show_default=True,
    help="efficientnet_lite0/1/2, resnet18/34/50, vgg16, vgg16_bn or vgg19_dilated.",
)
@click.option(
    "--pretrained/--no-pretrained",
    default=None,
    help="Start from ImageNet weights [default: yes where they ship: EfficientNet-Lite].",
)
@click.option(
    "--encoder-weights",
    type=PATH,
    help="torchvision-format .pth for a VGG/ResNet encoder (implies --pretrained).",
)
@click.option("--epochs", type=click.IntRange(1), default=40, show_default=True)
@click.option("--batch-size", type=click.IntRange(1), default=8, show_default=True)
@click.option("--lr", type=click.FloatRange(0, min_open=True), default=2e-3, show_default=True)
@click.option("--weight-decay", type=click.FloatRange(0), default=1e-4, show_default=True)
@click.option("--schedule", type=click.Choice(["poly", "cosine"]), default="poly", show_default=True)
@click.option("--warmup-iters", type=click.IntRange(0), default=100, show_default=True)
@click.option(
    "--loss", type=click.Choice(["ce", "ohem", "dice", "focal", "ce+dice"]), default="ce", show_default=True
)
@click.option(
    "--class-weights",
    default="enet",
    show_default=True,
    help="enet, median (frequency balancing), none, or comma-separated weights per class.",
)
@click.option("--crop", default="288x384", show_default=True, metavar="HxW", help="Training crop.")
@click.option(
    "--scale",
    default="0.75,1.75",
    show_default=True,
    metavar="MIN,MAX",
    help="Random scale range applied before the crop.",
)
@click.option(
    "--ema-decay",
    type=click.FloatRange(0, 1, max_open=True),
    default=0.0,
    show_default=True,
    help="Validate and save an exponential moving average of the weights (e.g. 0.999); 0: off.",
)
@click.option(
    "--val-every",
    type=click.IntRange(1),
    default=5,
    show_default=True,
    help="Validate (mIoU, best.pth) every N epochs and after the last.",
)
@click.option(
    "--out-dir",
    type=PATH,
    help="Checkpoint folder [default: runs/<dataset>_<arch>_<encoder>].",
)
@click.option("--threads", type=click.IntRange(1), default=2, show_default=True)
@click.option("--seed", type=int, default=0, show_default=True)
@click.option(
    "--model-option",
    "model_options",
    multiple=True,
    metavar="KEY=VALUE",
    help="Architecture keyword argument, e.g. fc_channels=512 (repeatable).",
)
@click.option(
    "--resume/--no-resume",
    default=True,
    show_default=True,
    help="Continue from OUT_DIR/last.pth when it exists.",
)
def train(
    dataset,
    data_root,
    train_split,
    val_split,
    arch,
    encoder,
    pretrained,
    encoder_weights,
    epochs,
    batch_size,
    lr,
    weight_decay,
    schedule,
    warmup_iters,
    loss,
    class_weights,
    crop,
    scale,
    ema_decay,
    val_every,
    out_dir,
    threads,
    seed,
    model_options,
    resume,
):
    """Train a segmentation model; writes OUT_DIR/last.pth every epoch and OUT_DIR/best.pth."""
    from rtseg.core.checkpoint import load_checkpoint
    from rtseg.train.loop import TrainConfig, check_config
    from rtseg.train.loop import train as run_training

    config = TrainConfig(
        dataset=dataset,
        data_root=str(data_root),
        train_split=train_split,
        val_split=val_split,
        arch=arch,
        encoder=encoder,
        pretrained=False,
        epochs=epochs,
        batch_size=batch_size,
        lr=lr,
        weight_decay=weight_decay,
        schedule=schedule,
        warmup_iters=warmup_iters,
        loss=loss,
        class_weights=class_weights,
        crop=parse_size(crop, "--crop"),
        scale=parse_scale(scale),
        ema_decay=ema_decay,
        val_every=val_every,
        out_dir=str(out_dir or Path("runs") / f"{dataset}_{arch}_{encoder}"),
        threads=threads,
        seed=seed,
        model_kwargs=parse_model_options(model_options),
    )
    check_config(config)
    config = replace(config, pretrained=resolve_pretrained(encoder, pretrained, encoder_weights))
    best = run_training(config, resume=resume)
    last = load_checkpoint(Path(config.out_dir) / "last.pth")
    click.echo(f"trained {last['epoch']} epochs; best val mIoU {last['best_miou']:.4f}: {best}")
