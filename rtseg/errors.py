"""One exception family. The CLI prints any RtsegError as one line and exits with status 1."""

from __future__ import annotations

import importlib
from types import ModuleType


class RtsegError(Exception):
    """Base class of every error rtseg raises on purpose (bad input, missing extra, no device)."""


class InputError(RtsegError):
    """A video, frames folder, camera, dataset or other input cannot be used."""


class ModelError(RtsegError):
    """A file is not a usable model package, checkpoint or engine."""


class OutputError(RtsegError):
    """An output path cannot be written."""


class BackendError(RtsegError):
    """A runtime backend (onnxruntime, torch, tensorrt) is unavailable or failed."""


class MissingDependencyError(BackendError, ImportError):
    """An optional package is not installed; the message names the pip extra.

    Also an ImportError, so a module that needs the package by nature (a torch `nn.Module`)
    raises it at import and `except ImportError` fallbacks still work."""

    def __init__(self, package: str, extra: str, what: str = ""):
        hint = f" (pip install 'rtseg[{extra}]')" if extra else ""
        purpose = f" for {what}" if what else ""
        super().__init__(f"{package} is required{purpose} but is not installed{hint}")
        self.package = package
        self.extra = extra


class DeviceError(BackendError):
    """No GPU, or the GPU cannot be used."""


class ExportError(RtsegError):
    """Export to ONNX, precision conversion or a parity check failed."""


# The pip extra that brings each optional package (setup.py's extras_require).
EXTRA_OF = {
    "torch": "train",
    "onnxscript": "train",
    "onnxconverter_common": "train",
    "tensorrt": "trt",
    "cuda": "trt",
    "pycuda": "pycuda",
    "matplotlib": "plot",
    "ray": "ray",
}

# What each optional package is for, when the caller does not say.
PURPOSE_OF = {"torch": "training, export and the torch backend"}


def import_optional(name: str, what: str = "", extra: str | None = None) -> ModuleType:
    """`import name`, or MissingDependencyError naming the pip extra when it is not installed.

    `what` says what needs it ("rtseg export"); `extra` defaults to EXTRA_OF of the top package.
    Only a missing `name` itself becomes the error: a broken install still raises its own error.
    """
    try:
        return importlib.import_module(name)
    except ModuleNotFoundError as exc:
        top = name.partition(".")[0]
        if exc.name is None or exc.name.partition(".")[0] != top:
            raise
        extra = EXTRA_OF.get(top, "") if extra is None else extra
        raise MissingDependencyError(top, extra, what or PURPOSE_OF.get(top, "")) from None
