"""rtseg: real-time semantic segmentation of road video (ONNX Runtime, PyTorch, TensorRT)."""

__version__ = "0.1.0"

from rtseg.errors import RtsegError  # noqa: E402

__all__ = ["RtsegError", "__version__"]
