"""`rtseg eval --model M --dataset camvid --data-root DIR --split SPLIT [--json FILE] ...`"""

from __future__ import annotations

from pathlib import Path

import click

from rtseg.cli.options import run_options


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
    return "\n".join(lines)


def format_video_report(result: dict) -> str:
    """TC, flip share and (with labels) mIoU of `rtseg eval --video`."""
    h, w = result["input_size"]
    lines = []
    if result["tc"] is not None:
        lines.append(f"TC (temporal consistency) {100 * result['tc']:5.1f} %")
        lines.append(f"class flips {100 * result['flip_share']:6.2f} % of pixels per frame pair")
    if "miou" in result:
        lines.append(f"mIoU {100 * result['miou']:5.1f} (labelled frames)")
    lines.append(
        f"{result['frames']} frames of {result['video']}, model at {w}x{h} on {result['backend']}"
        + (", temporal filter" if result["temporal_filter"] else "")
    )
    return "\n".join(lines)


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
    type=click.Path(path_type=Path),
    help="Model package (.onnx/.json) or checkpoint (.pth).",
)
@click.option(
    "--dataset",
    default="camvid",
    show_default=True,
    help="camvid, cityscapes, cityscapes_category, cityscapes_road, kitti_road or folder.",
)
@click.option(
    "--data-root", default="../shared/data/camvid", show_default=True, type=click.Path(path_type=Path)
)
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
    type=click.Path(path_type=Path),
    help="Score a clip instead of a dataset: temporal consistency (TC) and class flips between frames.",
)
@click.option(
    "--video-labels",
    type=click.Path(path_type=Path),
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
    type=click.Path(path_type=Path),
    help="Also write the result (miou, per_class, pixel_acc, ...) as JSON.",
)
def evaluate(
    model, dataset, data_root, split, flip_tta, min_blob, limit, video, video_labels, temporal_filter,
    batch_size, json_path, **engine,
):  # fmt: skip
    """Score a model on a labelled dataset split: per-class IoU, mIoU, pixel accuracy."""
    from rtseg.evaluation import EvalConfig
    from rtseg.evaluation import evaluate as run_evaluation

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
