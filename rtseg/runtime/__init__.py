"""Backends behind one interface (`Backend`): onnxruntime, torch, tensorrt. Which backend runs a
model, and finding or building a TensorRT engine, is decided above this package (rtseg.loading)."""

from rtseg.runtime.base import Backend

__all__ = ["Backend"]
