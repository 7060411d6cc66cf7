"""One exception family. The CLI prints any RtsegError as one line and exits with status 1."""


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


class MissingDependencyError(BackendError):
    """An optional package is not installed; the message names the pip extra."""

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
