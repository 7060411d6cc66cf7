"""Options that several commands share."""

from __future__ import annotations

import os

import click

from rtseg.loading import DEVICES

DEVICE_HELP = (
    "Where the model runs: auto (the best this machine has), cpu, cuda (ONNX Runtime's CUDA "
    "provider, torch on CUDA; TensorRT always), or tensorrt (ONNX Runtime's TensorRT provider). "
    "cuda / tensorrt on ONNX Runtime need onnxruntime-gpu in place of onnxruntime."
)


def device_option(command):
    """`--device auto|cpu|cuda|tensorrt` (default auto), passed to the command as `device`."""
    return click.option(
        "--device", type=click.Choice(DEVICES), default="auto", show_default=True, help=DEVICE_HELP
    )(command)


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
