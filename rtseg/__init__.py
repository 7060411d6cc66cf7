"""rtseg: real-time semantic segmentation of road video (ONNX Runtime, PyTorch, TensorRT).

The Python API (see rtseg.api) is loaded on first use, so `import rtseg` imports neither
torch nor onnxruntime nor OpenCV:

    import rtseg
    seg = rtseg.load()                    # a Segmenter on the bundled model
    ids = seg(frame)                      # (H, W, 3) uint8 RGB -> (H, W) uint8 class ids
    stats = rtseg.run("road.mp4", output="annotated.mp4")
"""

from __future__ import annotations

__version__ = "0.1.0"

from rtseg.errors import RtsegError  # noqa: E402

# public name -> module that defines it (imported by __getattr__ on first access)
_LAZY = {
    "load": "rtseg.api",
    "run": "rtseg.api",
    "RunConfig": "rtseg.api",
    "Segmenter": "rtseg.api",
    "FrameResult": "rtseg.api",
    "ResultStream": "rtseg.api",
    "import_onnx": "rtseg.api",
    "import_module": "rtseg.api",
    "export_triton": "rtseg.api",
}

__all__ = ["RtsegError", "__version__", *_LAZY]


def __getattr__(name: str):
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'rtseg' has no attribute {name!r}")
    import importlib

    value = getattr(importlib.import_module(module), name)
    globals()[name] = value  # later lookups skip __getattr__
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY))
