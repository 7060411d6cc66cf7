"""Model packages that lie: hand-built ONNX graphs beside sidecars written as raw JSON (not
through write_sidecar, which would refuse them), for the load-time checks.

Every graph takes `(N, H, W, 3)` and is a few nodes; `sidecar(...)` is a valid CamVid sidecar
for a 64x96 class-id graph, to be spoiled one field at a time.
"""

from __future__ import annotations

import copy
import json
from pathlib import Path

from band_model import band_meta

HEIGHT, WIDTH = 64, 96


def _graph(nodes, inputs, outputs, initializers=()):
    import onnx
    from onnx import helper

    graph = helper.make_graph(nodes, "hostile", inputs, outputs, initializer=list(initializers))
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    return model


def _channels(channels: int):
    """Nodes and weights: uint8 NHWC `image` -> float NCHW `nchw` with `channels` channels (the
    input's 3 tiled and cut)."""
    from onnx import TensorProto, helper

    weights = [
        helper.make_tensor("reps", TensorProto.INT64, [4], [1, 1, 1, -(-channels // 3)]),
        helper.make_tensor("starts", TensorProto.INT64, [1], [0]),
        helper.make_tensor("ends", TensorProto.INT64, [1], [channels]),
        helper.make_tensor("axes", TensorProto.INT64, [1], [3]),
    ]
    nodes = [
        helper.make_node("Cast", ["image"], ["f"], to=TensorProto.FLOAT),
        helper.make_node("Tile", ["f", "reps"], ["tiled"]),
        helper.make_node("Slice", ["tiled", "starts", "ends", "axes"], ["sliced"]),
        helper.make_node("Transpose", ["sliced"], ["nchw"], perm=[0, 3, 1, 2]),
    ]
    return nodes, weights


def argmax_graph(channels: int = 3, height: int = HEIGHT, width: int = WIDTH):
    """uint8 NHWC -> float NCHW of `channels` -> ArgMax over them -> (N, H, W) uint8 ids."""
    from onnx import TensorProto, helper

    nodes, weights = _channels(channels)
    nodes += [
        helper.make_node("ArgMax", ["nchw"], ["am"], axis=1, keepdims=0),
        helper.make_node("Cast", ["am"], ["class_ids"], to=TensorProto.UINT8),
    ]
    return _graph(
        nodes,
        [helper.make_tensor_value_info("image", TensorProto.UINT8, ["N", height, width, 3])],
        [helper.make_tensor_value_info("class_ids", TensorProto.UINT8, ["N", height, width])],
        weights,
    )


def float_input_graph():
    """Like argmax_graph(11) but its input is float32 (the sidecar says uint8)."""
    from onnx import TensorProto, helper

    nodes = [
        helper.make_node("ReduceMax", ["image"], ["m"], axes=[3], keepdims=0),
        helper.make_node("Cast", ["m"], ["class_ids"], to=TensorProto.UINT8),
    ]
    return _graph(
        nodes,
        [helper.make_tensor_value_info("image", TensorProto.FLOAT, ["N", HEIGHT, WIDTH, 3])],
        [helper.make_tensor_value_info("class_ids", TensorProto.UINT8, ["N", HEIGHT, WIDTH])],
    )


def rank4_ids_graph():
    """Ids as (N, 1, H, W) uint8 (keepdims=1): not the (N, H, W) map a package promises."""
    from onnx import TensorProto, helper

    nodes = [
        helper.make_node("Cast", ["image"], ["f"], to=TensorProto.FLOAT),
        helper.make_node("Transpose", ["f"], ["nchw"], perm=[0, 3, 1, 2]),
        helper.make_node("ArgMax", ["nchw"], ["am"], axis=1, keepdims=1),
        helper.make_node("Cast", ["am"], ["class_ids"], to=TensorProto.UINT8),
    ]
    return _graph(
        nodes,
        [helper.make_tensor_value_info("image", TensorProto.UINT8, ["N", HEIGHT, WIDTH, 3])],
        [helper.make_tensor_value_info("class_ids", TensorProto.UINT8, ["N", 1, HEIGHT, WIDTH])],
    )


def logits_graph(channels: int):
    """(N, channels, H, W) float logits (the input tiled over channels)."""
    from onnx import TensorProto, helper

    nodes, weights = _channels(channels)
    nodes.append(helper.make_node("Identity", ["nchw"], ["logits"]))
    return _graph(
        nodes,
        [helper.make_tensor_value_info("image", TensorProto.UINT8, ["N", HEIGHT, WIDTH, 3])],
        [helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["N", channels, HEIGHT, WIDTH])],
        weights,
    )


def sidecar(name: str = "hostile", **changes) -> dict:
    """A valid sidecar of an 11-class CamVid 64x96 class-id package; `changes` replace fields
    (dotted keys for nested ones: `**{"input.height": 32}`)."""
    meta = {
        "format": "rtseg-model",
        "format_version": 1,
        "onnx": f"{name}.onnx",
        **band_meta(name, HEIGHT, WIDTH),
    }
    meta = copy.deepcopy(meta)
    for key, value in changes.items():
        *path, last = key.split(".")
        target = meta
        for part in path:
            target = target[part]
        target[last] = value
    return meta


def write_package(folder: Path, graph, meta: dict) -> Path:
    """`folder/<name>.onnx` + `<name>.json` exactly as given (no validation); the ONNX path."""
    import onnx

    folder.mkdir(parents=True, exist_ok=True)
    name = meta.get("onnx")
    onnx_path = folder / (name if isinstance(name, str) and name else "hostile.onnx")
    onnx.save(graph, str(onnx_path))
    onnx_path.with_suffix(".json").write_text(json.dumps(meta))
    return onnx_path
