"""`rtseg bench`: speed, memory and accuracy per backend x precision x size, side by side."""

from __future__ import annotations

import click

from rtseg.bench.config import (
    BACKENDS,
    BENCH_PRECISIONS,
    BenchConfig,
    parse_choices,
    parse_data_spec,
    parse_e2e_combos,
    parse_sizes,
)
from rtseg.cli.options import run_options
from rtseg.cli.path_types import PATH
from rtseg.core.package import default_model_path
from rtseg.errors import InputError


@click.command("bench")
@click.option(
    "--model",
    type=PATH,
    default=None,
    help="Model package (.onnx + .json) or a checkpoint (.pth / .pt: exported to a package in the "
    "cache first); default: the bundled model.",
)
@click.option("--backends", default=",".join(BACKENDS), show_default=True, help="Comma-separated backends.")
@click.option(
    "--precisions",
    default=",".join(BENCH_PRECISIONS),
    show_default=True,
    help="Comma-separated precisions; variants are found beside the model as "
    "<stem>_fp16.onnx / <stem>_int8.onnx.",
)
@click.option(
    "--sizes",
    default=None,
    help="Comma-separated HEIGHTxWIDTH input sizes "
    "(e.g. 360x480,512x1024); default: the package's own. Other sizes are re-exported "
    "from the checkpoint into --cache-dir.",
)
@click.option(
    "--video",
    type=PATH,
    default=None,
    help="Video for the end-to-end run and for agreement with fp32.",
)
@click.option(
    "--data",
    "data_spec",
    default=None,
    metavar="NAME:DIR:SPLIT",
    help="Labelled data for mIoU, e.g. camvid:data/camvid:val.",
)
@click.option("--data-limit", type=int, default=None, help="Evaluate on N evenly spaced images.")
@click.option(
    "--agreement-frames",
    type=int,
    default=16,
    show_default=True,
    help="Frames sampled evenly from the video for agreement with fp32 and timing.",
)
@click.option("--iters", type=int, default=50, show_default=True, help="Timed calls per batch size.")
@click.option("--warmup", type=int, default=10, show_default=True, help="Untimed calls first.")
@click.option(
    "--batch",
    type=int,
    default=8,
    show_default=True,
    help="The larger batch measured where the backend takes it (0 or 1: none).",
)
@click.option("--threads", type=int, default=2, show_default=True, help="CPU threads per backend.")
@run_options("device", "openvino_precision", "decoder")
@click.option(
    "--e2e-output",
    type=click.Choice(["mp4", "none"]),
    default="mp4",
    show_default=True,
    help="End-to-end sink: an MP4 in a temporary folder, or nothing.",
)
@click.option(
    "--e2e-combos",
    default="fastest",
    show_default=True,
    help="Which combinations run end to end: fastest (each backend and size at its "
    "fastest precision), all, none, or BACKEND:PRECISION,...",
)
@click.option(
    "--min-miou",
    type=float,
    default=None,
    help="Exit 1 when any combination's mIoU is under this (needs --data).",
)
@click.option("--json", "json_path", type=PATH, default=None)
@click.option("--csv", "csv_path", type=PATH, default=None)
@click.option(
    "--plot",
    "plot_path",
    type=PATH,
    default=None,
    help="PNG of fps against mIoU (needs matplotlib).",
)
@click.option(
    "--cache-dir",
    type=PATH,
    default=None,
    help="Where re-exported sizes are kept (default ~/.cache/rtseg/bench; RTSEG_CACHE moves it).",
)
@click.option(
    "--timeout",
    "timeout_s",
    type=float,
    default=1800.0,
    show_default=True,
    help="Seconds allowed per combination.",
)
def bench(
    model,
    backends,
    precisions,
    sizes,
    video,
    data_spec,
    data_limit,
    agreement_frames,
    iters,
    warmup,
    batch,
    threads,
    device,
    openvino_precision,
    decoder,
    e2e_output,
    e2e_combos,
    min_miou,
    json_path,
    csv_path,
    plot_path,
    cache_dir,
    timeout_s,
):
    """Benchmark a model: latency, fps, memory and accuracy for each backend, precision and
    size that can run here (the others are listed with the reason), and the pipeline's
    end-to-end fps on a video beside the inference-only fps.

    Exits 1 when a combination fails, or when one falls under --min-miou (a CI gate); the
    JSON / CSV / plot are written first."""
    from rtseg.bench import check_gate, format_table, run_bench

    data = parse_data_spec(data_spec)
    if min_miou is not None and data is None:
        raise InputError("--min-miou needs labelled data: give --data NAME:DIR:SPLIT")
    config = BenchConfig(
        model=model or default_model_path(),
        backends=parse_choices(backends, BACKENDS, "--backends"),
        precisions=parse_choices(precisions, BENCH_PRECISIONS, "--precisions"),
        sizes=parse_sizes(sizes),
        video=video,
        data=data,
        data_limit=data_limit,
        agreement_frames=agreement_frames,
        iters=iters,
        warmup=warmup,
        batch=batch,
        threads=threads,
        device=device,
        openvino_precision=openvino_precision,
        decoder=decoder,
        e2e_output=e2e_output,
        e2e_combos=parse_e2e_combos(e2e_combos),
        cache_dir=cache_dir,
        timeout_s=timeout_s,
        json_path=json_path,
        csv_path=csv_path,
        plot_path=plot_path,
    )
    report = run_bench(config, log=lambda text: click.echo(text, err=True))
    click.echo(format_table(report.rows))
    check_gate(report, min_miou)
