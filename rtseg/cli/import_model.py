"""`rtseg import MODEL.onnx -o NAME.onnx --mean ... --std ... [--classes camvid|FILE] ...`

Wraps a float NCHW ONNX with a logits output (segmentation_models_pytorch, mmsegmentation, any
exporter) into a model package: uint8 NHWC RGB in, the preprocessing inside the graph, the
logits resized to the input size when smaller, ArgMax to uint8 ids, classes and palette in the
sidecar. Checked against the original on real frames; refused (nothing written) on disagreement.
"""

from __future__ import annotations

import click

from rtseg.cli.path_types import PATH
from rtseg.core.frames import parse_size
from rtseg.errors import InputError


def parse_triple(text: str, what: str) -> tuple[float, float, float]:
    """'0.485,0.456,0.406' (or one value for all three channels) -> three floats."""
    parts = [p for p in text.replace(" ", ",").split(",") if p]
    try:
        values = [float(p) for p in parts]
    except ValueError:
        raise InputError(f"{what} must be 1 or 3 numbers separated by commas, got {text!r}") from None
    if len(values) == 1:
        values *= 3
    if len(values) != 3:
        raise InputError(f"{what} must be 1 or 3 numbers separated by commas, got {text!r}")
    return tuple(values)


@click.command("import")
@click.argument("model", type=PATH)
@click.option("-o", "--output", required=True, type=PATH, help="Package to write: NAME.onnx.")
@click.option(
    "--mean",
    required=True,
    help="Per-channel mean the model was trained with, in its channel order and pixel range "
    "(e.g. 0.485,0.456,0.406 with --input-range 0-1, or 123.675,116.28,103.53 with 0-255).",
)
@click.option("--std", required=True, help="Per-channel std, same order and range as --mean.")
@click.option(
    "--input-range",
    type=click.Choice(["0-1", "0-255"]),
    default="0-1",
    show_default=True,
    help="Pixel range before mean/std: 0-1 (pixels / 255, smp, torchvision) or 0-255 (mmsegmentation).",
)
@click.option(
    "--input-color",
    type=click.Choice(["RGB", "BGR"], case_sensitive=False),
    default="RGB",
    show_default=True,
    help="Channel order the model was trained on (the package always takes RGB).",
)
@click.option(
    "--classes",
    metavar="NAME|FILE",
    help="Label set: camvid, cityscapes, ... or a .json / .txt file (names, optional RGB colours). "
    "Default: class_0, class_1, ...",
)
@click.option("--size", metavar="HxW", help="Input size of the package (needed when the model's is dynamic).")
@click.option(
    "--output-name", metavar="NAME", help="The graph output holding the logits (default: the first)."
)
@click.option(
    "--parity-frames",
    "parity_source",
    metavar="SOURCE",
    help="Real frames for the parity check: a video, a frames folder or glob, or NAME:DIR:SPLIT "
    "(default: generated frames, with a warning).",
)
@click.option("--parity-count", type=click.IntRange(1), default=8, show_default=True)
@click.option(
    "--min-agreement",
    type=click.FloatRange(0, 100),
    default=99.9,
    show_default=True,
    help="Required argmax agreement with the original, percent.",
)
def import_model(
    model,
    output,
    mean,
    std,
    input_range,
    input_color,
    classes,
    size,
    output_name,
    parity_source,
    parity_count,
    min_agreement,
):
    """Wrap MODEL.onnx (float NCHW in, logits out) into a model package, checked against it."""
    from rtseg.export.import_model import ImportConfig, import_onnx
    from rtseg.onnxtools.wrap_onnx import Preprocessing

    preprocessing = Preprocessing(
        mean=parse_triple(mean, "--mean"),
        std=parse_triple(std, "--std"),
        input_range=input_range,
        color=input_color.upper(),
    )
    config = ImportConfig(
        model=model,
        output=output,
        preprocessing=preprocessing,
        classes=classes,
        size=None if size is None else parse_size(size, "--size"),
        output_name=output_name,
        parity_source=parity_source,
        parity_frames=parity_count,
        min_agreement=min_agreement / 100,
    )
    result = import_onnx(config, log=lambda line: click.echo(line, err=True))
    package = result.package
    h, w = package.input_size
    click.echo(
        f"wrote {package.onnx_path} + {package.sidecar_path.name}: uint8 RGB {h}x{w} in, "
        f"{len(package.classes)} classes ({package.meta['dataset']}), {package.precision}"
    )
    click.echo(result.line())
