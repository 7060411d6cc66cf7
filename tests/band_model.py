"""A hand-built model package whose output follows its input: ids = min(red // 24, 10).

The randomly initialised tiny network predicts one class everywhere, so it cannot show that
frame i's mask came from frame i. This ONNX graph (uint8 NHWC RGB in, uint8 ids out, dynamic
batch, like an exported package) can, and it costs milliseconds to build.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from rtseg.core.package import ModelPackage, write_sidecar
from rtseg.data.labels import CAMVID


def band_ids(images: np.ndarray) -> np.ndarray:
    """(N, H, W, 3) uint8 RGB -> (N, H, W) uint8: what the band model computes."""
    return np.minimum(images[..., 0] // 24, 10).astype(np.uint8)


def band_graph(height: int = 64, width: int = 96):
    """The band model's ONNX ModelProto: (N, height, width, 3) uint8 in, (N, height, width) uint8 out."""
    import onnx
    from onnx import TensorProto, helper

    const = lambda name, values, dtype=TensorProto.INT64: helper.make_tensor(  # noqa: E731
        name, dtype, [len(values)], values
    )
    nodes = [
        helper.make_node("Slice", ["image", "start", "end", "axis"], ["red"]),
        helper.make_node("Squeeze", ["red", "axis"], ["red2"]),
        helper.make_node("Cast", ["red2"], ["redf"], to=TensorProto.FLOAT),
        helper.make_node("Div", ["redf", "step"], ["scaled"]),
        helper.make_node("Floor", ["scaled"], ["bands"]),
        helper.make_node("Min", ["bands", "top"], ["clipped"]),
        helper.make_node("Cast", ["clipped"], ["class_ids"], to=TensorProto.UINT8),
    ]
    graph = helper.make_graph(
        nodes,
        "band_model",
        [helper.make_tensor_value_info("image", TensorProto.UINT8, ["N", height, width, 3])],
        [helper.make_tensor_value_info("class_ids", TensorProto.UINT8, ["N", height, width])],
        initializer=[
            const("start", [0]),
            const("end", [1]),
            const("axis", [3]),
            const("step", [24.0], TensorProto.FLOAT),
            const("top", [10.0], TensorProto.FLOAT),
        ],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    return model


def make_band_package(folder: Path, height: int = 64, width: int = 96) -> ModelPackage:
    import onnx

    folder.mkdir(parents=True, exist_ok=True)
    onnx_path = folder / "band.onnx"
    onnx.save(band_graph(height, width), str(onnx_path))
    return write_sidecar(onnx_path, band_meta("band", height, width))


def band_meta(name: str, height: int, width: int) -> dict:
    """The sidecar fields of an 11-class CamVid class-id package taking (height, width) frames
    (write_sidecar adds format, onnx and hashes)."""
    return {
        "name": name,
        "dataset": "camvid",
        "classes": list(CAMVID.classes),
        "palette": [list(map(int, c)) for c in CAMVID.palette],
        "input": {
            "name": "image",
            "layout": "NHWC",
            "dtype": "uint8",
            "color": "RGB",
            "height": height,
            "width": width,
        },
        "normalization": {"mean": [0.0] * 3, "std": [1.0] * 3},
        "output": {"name": "class_ids", "kind": "class_ids", "dtype": "uint8"},
        "precision": "fp32",
        "model": {"arch": name, "encoder": "none"},
        "source": None,
    }
