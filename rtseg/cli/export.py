"""`rtseg export CHECKPOINT -o NAME.onnx [--precision fp32|fp16|int8] [--calib SOURCE] ...`"""

from __future__ import annotations

import click

from rtseg.cli.path_types import PATH
from rtseg.core.frames import format_size, parse_size


def _split_words(values: tuple[str, ...]) -> tuple[str, ...]:
    return tuple(w.strip() for v in values for w in v.split(",") if w.strip())


@click.command("export")
@click.argument("checkpoint", type=PATH)
@click.option(
    "-o",
    "--output",
    required=True,
    type=PATH,
    help="Package to write: NAME.onnx (+ NAME.json beside it).",
)
@click.option("--precision", type=click.Choice(["fp32", "fp16", "int8"]), default="fp32", show_default=True)
@click.option(
    "--calib",
    "calib_source",
    metavar="SOURCE",
    help="INT8 calibration frames: a video, a frames folder or glob, or camvid:DIR:SPLIT.",
)
@click.option(
    "--calib-frames",
    type=click.IntRange(1),
    default=64,
    show_default=True,
    help="Number of calibration frames, evenly spaced over the source.",
)
@click.option(
    "--calib-method",
    type=click.Choice(["minmax", "entropy", "percentile"]),
    default="minmax",
    show_default=True,
)
@click.option(
    "--percentile",
    type=click.FloatRange(90, 100),
    default=99.999,
    show_default=True,
    help="Percentile of |activation| kept, for --calib-method percentile.",
)
@click.option(
    "--int8-exclude",
    multiple=True,
    metavar="WHAT",
    help="Keep in float: depthwise, decoder, head, stem, an op type or a node name "
    "(repeatable or comma-separated).",
)
@click.option(
    "--int8-target",
    type=click.Choice(["tensorrt", "cpu"]),
    default="tensorrt",
    show_default=True,
    help="tensorrt: symmetric int8 Q/DQ that TensorRT accepts (checked). cpu: uint8 asymmetric, "
    "about 4x faster on ONNX Runtime's CPU provider, rejected by TensorRT.",
)
@click.option(
    "--int8-placement",
    type=click.Choice(["inputs", "conv-outputs"]),
    default="inputs",
    show_default=True,
    help="Q/DQ on op inputs only, or also on Conv outputs (activation range).",
)
@click.option("--size", metavar="HxW", help="Input size of the graph (default: the checkpoint's).")
@click.option(
    "--parity-frames",
    "parity_source",
    metavar="SOURCE",
    help="Real frames for the parity check (default: the --calib source).",
)
@click.option("--parity-count", type=click.IntRange(1), default=16, show_default=True)
@click.option(
    "--min-agreement",
    type=click.FloatRange(0, 100),
    default=None,
    help="Required argmax agreement with PyTorch, percent (default 99.9 fp32, 99 fp16, 95 int8).",
)
@click.option("--seed", type=int, default=0, show_default=True)
def export(
    checkpoint,
    output,
    precision,
    calib_source,
    calib_frames,
    calib_method,
    percentile,
    int8_exclude,
    int8_target,
    int8_placement,
    size,
    parity_source,
    parity_count,
    min_agreement,
    seed,
):
    """Export CHECKPOINT to a model package at the chosen precision, checked against PyTorch."""
    from rtseg.export.int8 import Int8Options
    from rtseg.export.precision import ExportConfig, export_model

    config = ExportConfig(
        checkpoint=checkpoint,
        output=output,
        precision=precision,
        input_size=parse_size(size, "--size") if size else None,
        calib_source=calib_source,
        calib_frames=calib_frames,
        int8=Int8Options(
            method=calib_method,
            exclude=_split_words(int8_exclude),
            percentile=percentile,
            target=int8_target,
            placement=int8_placement,
        ),
        parity_source=parity_source,
        parity_frames=parity_count,
        min_agreement=None if min_agreement is None else min_agreement / 100,
        seed=seed,
    )
    result = export_model(config, log=lambda line: click.echo(line, err=True))
    package = result.package
    click.echo(
        f"wrote {package.onnx_path} + {package.sidecar_path.name}: {package.precision}, "
        f"{format_size(package.input_size)} (HxW), {len(package.classes)} classes"
    )
    click.echo(f"{package.precision} vs pytorch: {result.parity.line()} on {result.parity_source}")
    if result.agreement_vs_fp32 is not None and package.precision != "fp32":
        agreement = 100 * result.agreement_vs_fp32
        click.echo(f"{package.precision} vs fp32 onnx: argmax agreement {agreement:.3f}%")
    calibration = package.meta.get("calibration")
    if calibration:
        q = calibration["qdq_nodes"]
        ok = calibration["tensorrt_compatible"]
        rules = "TensorRT Q/DQ rules ok" if ok else "for the CPU, not TensorRT"
        click.echo(
            f"int8: {calibration['method']} calibration on {calibration['frames']} frames, "
            f"{q['QuantizeLinear']} Q / {q['DequantizeLinear']} DQ nodes, {rules}"
        )
