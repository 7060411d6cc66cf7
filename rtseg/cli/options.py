"""Options that several commands share."""

from __future__ import annotations

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
