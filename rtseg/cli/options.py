"""Every run option, declared once: one click option per field of RunConfig's sub-configs
(rtseg.assembly.config: engine, input, outputs, drawing), with the field's default.

`rtseg run` takes every group; `rtseg batch` takes the options of an archive, so the two
commands cannot drift (one default, one choice list, one help text per option). Each option's
parameter name is its sub-config field, so a command builds its configuration with
`RunConfig.of(source_uri, **options)` (or one sub-config with `split_options`).
"""

from __future__ import annotations

import click

from rtseg.assembly import MODE_CHOICES, option_fields
from rtseg.cli.path_types import PATH
from rtseg.loading import BACKEND_CHOICES, DEVICES
from rtseg.runtime.openvino_backend import OPENVINO_PRECISIONS
from rtseg.video.hw_decode import DECODERS

DEVICE_HELP = (
    "Where the model runs: auto (the best this machine has), cpu, cuda (ONNX Runtime's CUDA "
    "provider, torch on CUDA; TensorRT always), or tensorrt (ONNX Runtime's TensorRT provider). "
    "cuda / tensorrt on ONNX Runtime need onnxruntime-gpu in place of onnxruntime."
)
_DEFAULTS = {name: f.default for name, f in option_fields().items()}
_PATH = PATH


def _option(*decls: str, **kw):
    """A click option for the sub-config field named last in `decls`, with the field's default."""
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
    "openvino_precision": _option(
        "--openvino-precision",
        "openvino_precision",
        type=click.Choice(OPENVINO_PRECISIONS),
        help="What OpenVINO computes in [default: $RTSEG_OPENVINO_PRECISION, else auto: bf16 where "
        "the CPU has it, else f32].",
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
    "decoder": _option(
        "--decoder",
        "decoder",
        type=click.Choice(DECODERS),
        help="Video decoder [default: $RTSEG_DECODER, else auto: NVDEC where an NVIDIA GPU opens it, "
        "else the CPU].",
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
    """Decorator adding the run options `names` (sub-config fields; none: all) to a command."""
    chosen = [RUN_OPTIONS[name] for name in (names or RUN_OPTIONS)]

    def decorate(command):
        for option in reversed(chosen):
            command = option(command)
        return command

    return decorate
