"""`rtseg eval --model M --dataset camvid --data-root DIR --split SPLIT [--json FILE] ...`"""

from __future__ import annotations

from pathlib import Path

import click

from rtseg.cli.options import run_options
from rtseg.cli.path_types import PATH
from rtseg.core.frames import format_size
from rtseg.errors import InputError


def format_report(result: dict) -> str:
    """Per-class IoU table, then mIoU and pixel accuracy, as printed by `rtseg eval`."""
    names = list(result["per_class"])
    width = max(12, *(len(n) for n in names))
    lines = [f"{'class':<{width}}  IoU %"]
    for name, iou in result["per_class"].items():
        lines.append(f"{name:<{width}}  {'  n/a' if iou is None else f'{100 * iou:5.1f}'}")
    h, w = result["input_size"]
    extras = [
        e
        for e, on in (
            ("flip TTA", result["flip_tta"]),
            (f"blobs < {result['min_blob']} px removed", result["min_blob"] > 1),
        )
        if on
    ]
    lines.append("-" * (width + 7))
    lines.append(f"{'mIoU':<{width}}  {100 * result['miou']:5.1f}")
    lines.append(f"{'pixel acc':<{width}}  {100 * result['pixel_acc']:5.1f}")
    lines.append(
        f"{result['frames']} images of {result['dataset']} {result['split']}, model at {h}x{w} (HxW) "
        f"on {result['backend']}" + (f", {', '.join(extras)}" if extras else "")
    )
    if result.get("seen_in_training"):
        trained = result["trained_on"]
        lines.append(
            f"note: the model was trained on {trained['dataset']} {'+'.join(trained['splits'])}: "
            f"these {result['split']} figures are not held out"
        )
    return "\n".join(lines)


def format_video_report(result: dict) -> str:
    """TC, flip share and (with labels) mIoU of `rtseg eval --video`."""
    lines = []
    if result["tc"] is not None:
        lines.append(f"TC (temporal consistency) {100 * result['tc']:5.1f} %")
        lines.append(f"class flips {100 * result['flip_share']:6.2f} % of pixels per frame pair")
    if "miou" in result:
        lines.append(f"mIoU {100 * result['miou']:5.1f} (labelled frames)")
    lines.append(
        f"{result['frames']} frames of {result['video']}, model at {format_size(result['input_size'])} "
        f"(HxW) on {result['backend']}" + (", temporal filter" if result["temporal_filter"] else "")
    )
    return "\n".join(lines)


def check_video_options(video, video_labels, temporal_filter, dataset_only: list[str]) -> None:
    """The options of the other mode are refused, not ignored: `--video-labels` and
    `--temporal-filter` need `--video`; `dataset_only` (given options that score a dataset) do
    not go with it. `--video` is a recorded clip (a file or frames folder): a camera or stream
    has no end to score up to."""
    if video is None:
        needs = [
            name
            for name, given in (("--video-labels", video_labels), ("--temporal-filter", temporal_filter))
            if given
        ]
        if needs:
            raise InputError(f"{needs[0]} needs --video (it scores a clip, not a dataset)")
        return
    if dataset_only:
        raise InputError(f"{dataset_only[0]} scores a dataset; it does not go with --video")
    if Path(video).exists() and not Path(video).is_file() and not Path(video).is_dir():
        raise InputError(f"--video {video}: not a regular file (eval scores a recorded clip: a video file)")
    if not Path(video).is_file() and not Path(video).is_dir():
        raise InputError(
            f"--video {video}: no such file (eval scores a recorded clip: a video file or frames folder)"
        )


def evaluate_clip(model, video, video_labels, data_root, split, temporal_filter, json_path, **engine):
    """rtseg.evaluation.evaluate_video for `rtseg eval --video` (engine: backend, device,
    threads, openvino_precision)."""
    from rtseg.evaluation import VideoEvalConfig, evaluate_video

    return evaluate_video(
        VideoEvalConfig(
            model=str(model),
            video=str(video),
            labels=None if video_labels is None else str(video_labels),
            label_dir=str(Path(data_root) / f"{split}annot"),
            temporal_filter=temporal_filter,
            json_path=json_path,
            **engine,
        )
    )


@click.command("eval")
@click.option(
    "--model",
    "model",
    required=True,
    type=PATH,
    help="Model package (.onnx/.json) or checkpoint (.pth).",
)
@click.option(
    "--dataset",
    default="camvid",
    show_default=True,
    help="camvid, cityscapes, cityscapes_category, cityscapes_road, kitti_road or folder.",
)
@click.option("--data-root", default="../shared/data/camvid", show_default=True, type=PATH)
@click.option("--split", default="val", show_default=True)
@run_options("backend", "device", "openvino_precision")
@click.option(
    "--flip-tta",
    is_flag=True,
    help="Average the logits of each image and its mirror (torch backend, checkpoints, or logits packages).",
)
@click.option(
    "--min-blob",
    type=click.IntRange(0),
    default=0,
    show_default=True,
    help="Give predicted blobs under N pixels (model resolution) their surrounding class.",
)
@click.option("--limit", type=click.IntRange(1), default=None, help="Evaluate the first N images only.")
@click.option(
    "--video",
    type=PATH,
    help="Score a clip instead of a dataset: temporal consistency (TC) and class flips between frames.",
)
@click.option(
    "--video-labels",
    type=PATH,
    help="With --video: a list of label PNGs, one a frame in order (a CamVid clip's frames.txt; "
    "the names are looked up in --data-root's <split>annot folder): adds the clip's mIoU.",
)
@click.option(
    "--temporal-filter",
    is_flag=True,
    help="With --video: keep a pixel's class where the image did not change and one frame disagrees.",
)
@click.option("--batch-size", type=click.IntRange(1), default=4, show_default=True)
@run_options("threads")
@click.option(
    "--json",
    "json_path",
    type=PATH,
    help="Also write the result (miou, per_class, pixel_acc, ...) as JSON.",
)
def evaluate(
    model, dataset, data_root, split, flip_tta, min_blob, limit, video, video_labels, temporal_filter,
    batch_size, json_path, **engine,
):  # fmt: skip
    """Score a model on a labelled dataset split: per-class IoU, mIoU, pixel accuracy."""
    from rtseg.evaluation import EvalConfig
    from rtseg.evaluation import evaluate as run_evaluation

    context = click.get_current_context()
    dataset_only = [
        f"--{name.replace('_', '-')}"
        for name in ("dataset", "flip_tta", "min_blob", "batch_size")
        if context.get_parameter_source(name) is not click.core.ParameterSource.DEFAULT
    ]
    check_video_options(video, video_labels, temporal_filter, dataset_only)
    if video is not None:
        clip = (model, video, video_labels, data_root, split, temporal_filter, json_path)
        result = evaluate_clip(*clip, limit=limit, **engine)
        click.echo(format_video_report(result))
        return
    config = EvalConfig(
        model=str(model),
        dataset=dataset,
        data_root=str(data_root),
        split=split,
        flip_tta=flip_tta,
        min_blob=min_blob,
        limit=limit,
        batch_size=batch_size,
        json_path=json_path,
        **engine,
    )
    click.echo(format_report(run_evaluation(config)))
