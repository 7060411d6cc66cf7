"""Every run option, declared once: one click option per RunConfig field, with the field's default.

`rtseg run` takes every group; `rtseg batch` takes the model group and the drawing options it
uses, so the two commands cannot drift (one default, one choice list, one help text per option).
Each option's parameter name is its RunConfig field, so a command builds its configuration with
`RunConfig(source_uri=..., **options)`.
"""

from __future__ import annotations

import dataclasses
import os

import click

from rtseg.assembly import MODE_CHOICES, RunConfig
from rtseg.cli.path_types import PATH
from rtseg.loading import BACKEND_CHOICES, DEVICES

DEVICE_HELP = (
    "Where the model runs: auto (the best this machine has), cpu, cuda (ONNX Runtime's CUDA "
    "provider, torch on CUDA; TensorRT always), or tensorrt (ONNX Runtime's TensorRT provider). "
    "cuda / tensorrt on ONNX Runtime need onnxruntime-gpu in place of onnxruntime."
)
_DEFAULTS = {f.name: f.default for f in dataclasses.fields(RunConfig)}
_PATH = PATH


def _option(*decls: str, **kw):
    """A click option for the RunConfig field named last in `decls`, with the field's default."""
    field = decls[-1]
    kw.setdefault("default", _DEFAULTS[field])
    if not kw.get("is_flag") and kw["default"] is not None:
        kw.setdefault("show_default", True)
    return click.option(*decls, **kw)


# model and engine
MODEL = {
    "model": _option(
        "--model",
        "model",
        type=_PATH,
        help="Model package .onnx (+ .json sidecar), checkpoint "
        "(.pth, torch backend) or engine (.engine, tensorrt backend) [default: the bundled model].",
    ),
    "backend": _option(
        "--backend",
        "backend",
        type=click.Choice(BACKEND_CHOICES),
        help="The engine: auto (torch for a checkpoint, TensorRT for an engine, else the fastest "
        "healthy one here: OpenVINO on a CPU where it passes its probe, else ONNX Runtime).",
    ),
    "device": _option("--device", "device", type=click.Choice(DEVICES), help=DEVICE_HELP),
    "threads": _option(
        "--threads", "threads", type=click.IntRange(min=1), help="CPU threads for the backend."
    ),
}
# input
INPUT = {
    "max_frames": _option(
        "--max-frames",
        "max_frames",
        type=click.IntRange(min=1),
        help="Read at most N frames (of each source).",
    ),
    "realtime": _option(
        "--realtime", "realtime", is_flag=True, help="Pace a file at its frame rate (a live stand-in)."
    ),
    "fps": _option(
        "--fps", "fps", type=click.FloatRange(min=0.1), help="Frame rate of a frames folder / the MP4."
    ),
    "strict": _option(
        "--strict",
        "strict",
        is_flag=True,
        help="Stop (exit 1) at the first damaged packet, undecodable frame or cut-short file "
        "[default: decode through, count and report].",
    ),
}
# outputs
OUTPUTS = {
    "output": _option("--output", "output", type=_PATH, help="Write the annotated video (MP4)."),
    "masks": _option("--masks", "masks", type=_PATH, help="Write class-id masks (PNG per frame)."),
    "save_frames": _option("--save-frames", "save_frames", type=_PATH, help="Write annotated frames (JPEG)."),
    "show": _option(
        "--show",
        "show",
        is_flag=True,
        help="Show the result in a window. Keys: q / Esc quit, space "
        "pause, m overlay / mask / side-by-side, + / - alpha, s snapshot.",
    ),
    "snapshot_dir": _option(
        "--snapshot-dir",
        "snapshot_dir",
        type=_PATH,
        help="Where the window's s key writes rtseg_snapshot_<index>.png.",
    ),
    "stats_json": _option("--stats-json", "stats_json", type=_PATH, help="Write the summary as JSON."),
    "codec": _option("--codec", "codec", help="MP4 encoder: auto, libx264, h264_nvenc."),
    "preset": _option(
        "--preset",
        "preset",
        type=str,
        help="MP4 encoder speed: x264 ultrafast (default: real time on few cores) ... veryslow "
        "(smaller files, more CPU per frame), or NVENC p1..p7; each maps to the other encoder.",
    ),
    "crf": _option(
        "--crf",
        "crf",
        type=click.IntRange(0, 51),
        help="MP4 quality: x264 crf / NVENC cq, lower is better and larger [default: 23].",
    ),
    "quiet": _option("--quiet", "-q", "quiet", is_flag=True, help="No progress bar and no summary."),
}
# drawing
DRAWING = {
    "mode": _option("--mode", "mode", type=click.Choice(MODE_CHOICES)),
    "alpha": _option(
        "--alpha",
        "alpha",
        type=click.FloatRange(0.0, 1.0),
        help="Opacity of the class colours in overlay mode.",
    ),
    "legend": click.option(
        "--legend/--no-legend",
        "legend",
        default=_DEFAULTS["legend"],
        help="Draw the class legend [default: on].",
    ),
    "hud": click.option(
        "--hud/--no-hud", "hud", default=None, help="Draw fps | latency on frames [default: with --show]."
    ),
}
RUN_OPTIONS = {**MODEL, **INPUT, **OUTPUTS, **DRAWING}


def run_options(*names: str):
    """Decorator adding the run options `names` (RunConfig fields; none: all) to a command."""
    chosen = [RUN_OPTIONS[name] for name in (names or RUN_OPTIONS)]

    def decorate(command):
        for option in reversed(chosen):
            command = option(command)
        return command

    return decorate


def device_option(command):
    """`--device auto|cpu|cuda|tensorrt` (default auto), passed to the command as `device`."""
    return MODEL["device"](command)


def environment_option(flag: str, choices: tuple[str, ...], variable: str, help: str):
    """`flag` taking one of `choices`; when given, its value goes to the layers below through
    `$variable` (so batch workers and bench children see it too); not passed to the command."""

    def to_environment(ctx, param, value):
        if value is not None:
            os.environ[variable] = value
        return value

    return click.option(
        flag, type=click.Choice(choices), expose_value=False, callback=to_environment, help=help
    )


def openvino_precision_option(command):
    """`--openvino-precision auto|bf16|f16|f32` (`$RTSEG_OPENVINO_PRECISION`, read by
    rtseg.runtime.openvino_backend)."""
    from rtseg.runtime.openvino_backend import OPENVINO_PRECISIONS, PRECISION_ENV

    help = "What OpenVINO computes in [default: auto: bf16 where the CPU has it, else f32]."
    return environment_option("--openvino-precision", OPENVINO_PRECISIONS, PRECISION_ENV, help)(command)


def engine_options(command):
    """`--openvino-precision` and `--decoder auto|cpu|nvdec` (`$RTSEG_DECODER`, read by
    rtseg.video.hw_decode): what runs a video."""
    from rtseg.video.hw_decode import DECODER_ENV, DECODERS

    help = "Video decoder [default: auto: NVDEC where an NVIDIA GPU opens it, else the CPU]."
    return environment_option("--decoder", DECODERS, DECODER_ENV, help)(openvino_precision_option(command))
