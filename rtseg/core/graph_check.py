"""Does a sidecar describe its graph? Compare the sidecar with the ONNX's real inputs and outputs.

Read with `onnx.load(path, load_external_data=False)` (no weights file is opened, nothing runs):
  - one image input, uint8, rank 4 NHWC with 3 channels, and the sidecar's height and width
    where the graph fixes them (a dynamic dimension accepts any);
  - the first output (the one every backend reads) is the sidecar's output, by name when the
    sidecar names it, and its kind fits: `class_ids` is an (N, H, W) integer map, `logits`
    an (N, C, H, W) float tensor with C = the number of classes; H, W are the input's;
  - for an id map made by ArgMax, the channel count it takes the argmax over is the number of
    classes (ids beyond the palette would draw black and be counted as nothing).
Each disagreement is a GraphMismatch whose text is one line.
"""

from __future__ import annotations

from pathlib import Path

from rtseg.core.onnx_graph import attribute, graph_inputs, producers, tensor_dims

INTEGER_TYPES = ("uint8", "int8", "uint16", "int16", "uint32", "int32", "uint64", "int64")
FLOAT_TYPES = ("float32", "float16", "float64", "bfloat16")
_NUMPY_NAMES = {"FLOAT": "float32", "DOUBLE": "float64", "FLOAT16": "float16", "BFLOAT16": "bfloat16"}
PASS_THROUGH = ("Cast", "Identity", "Squeeze", "Unsqueeze", "Reshape")  # keep the argmax's ids


class GraphMismatch(ValueError):
    """The graph disagrees with its sidecar, or is not a readable ONNX graph (one-line text)."""


def _dtype(value_info) -> str:
    """The element type in numpy's words: 'uint8', 'float32', ..."""
    import onnx

    name = onnx.TensorProto.DataType.Name(value_info.type.tensor_type.elem_type)
    return _NUMPY_NAMES.get(name, name.lower())


def _describe(value_info) -> str:
    dims = tensor_dims(value_info)
    shape = "(rank unknown)" if dims is None else "(" + ", ".join(map(str, dims)) + ")"
    return f"{shape} {_dtype(value_info)}"


def _fixed(dim, expected: int) -> bool:
    """Whether a graph dimension contradicts `expected` (a dynamic one never does)."""
    return isinstance(dim, int) and dim > 0 and dim != expected


def load_graph(onnx_path: str | Path):
    """The ModelProto without external weights; GraphMismatch when it cannot be parsed."""
    import onnx
    from google.protobuf.message import DecodeError

    try:
        return onnx.load(str(onnx_path), load_external_data=False)
    except (DecodeError, ValueError, RuntimeError, OSError) as exc:
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        raise GraphMismatch(f"not a readable ONNX graph ({first})") from None


def _check_input(graph, spec: dict) -> None:
    inputs = graph_inputs(graph)
    if len(inputs) != 1:
        raise GraphMismatch(f"the graph has {len(inputs)} inputs; a model package takes one image input")
    image, height, width = inputs[0], spec["height"], spec["width"]
    if spec.get("name") and image.name != spec["name"]:
        raise GraphMismatch(f"the sidecar's input is {spec['name']!r} but the graph's is {image.name!r}")
    dims = tensor_dims(image)
    wrong_shape = dims is None or len(dims) != 4 or _fixed(dims[3], 3)
    if wrong_shape or _fixed(dims[1], height) or _fixed(dims[2], width) or _dtype(image) != "uint8":
        raise GraphMismatch(
            f"the graph's input {image.name!r} is {_describe(image)}; the sidecar says "
            f"(N, {height}, {width}, 3) uint8 NHWC"
        )


def _check_output(graph, meta: dict) -> None:
    if not graph.output:
        raise GraphMismatch("the graph has no output")
    out, spec = graph.output[0], meta["output"]
    if spec.get("name") and out.name != spec["name"]:
        raise GraphMismatch(
            f"the sidecar's output is {spec['name']!r} but the graph's (first) is {out.name!r}"
        )
    dims, dtype, kind = tensor_dims(out), _dtype(out), spec["kind"]
    height, width = meta["input"]["height"], meta["input"]["width"]
    classes = len(meta["classes"])
    if kind == "class_ids":
        fits = dims is not None and len(dims) == 3 and dtype in INTEGER_TYPES
        expected = f"class ids (N, {height}, {width}) integers"
    else:
        fits = dims is not None and len(dims) == 4 and dtype in FLOAT_TYPES and not _fixed(dims[1], classes)
        expected = f"logits (N, {classes}, {height}, {width}) floats"
    if fits and (_fixed(dims[-2], height) or _fixed(dims[-1], width)):
        fits = False
    if not fits:
        raise GraphMismatch(
            f"the graph's output {out.name!r} is {_describe(out)}; the sidecar says {expected}"
        )
    declared = spec.get("dtype")
    if declared and _NUMPY_NAMES.get(declared.upper(), declared.lower()) != dtype:
        raise GraphMismatch(f"the sidecar's output dtype is {declared} but the graph's is {dtype}")


def _argmax_channels(model, output_name: str) -> int | None:
    """The static size of the axis an ArgMax producing `output_name` reduces, or None."""
    made_by = producers(model.graph)
    node, name = made_by.get(output_name), output_name
    while node is not None and node.op_type in PASS_THROUGH:
        name = node.input[0]
        node = made_by.get(name)
    if node is None or node.op_type != "ArgMax":
        return None
    axis = attribute(node, "axis", 0)
    shapes = {v.name: v for v in (*model.graph.value_info, *model.graph.input, *model.graph.output)}
    if node.input[0] not in shapes:
        import onnx

        try:
            inferred = onnx.shape_inference.infer_shapes(model)
        except (onnx.shape_inference.InferenceError, ValueError, RuntimeError):
            return None
        shapes = {v.name: v for v in inferred.graph.value_info}
    dims = tensor_dims(shapes[node.input[0]]) if node.input[0] in shapes else None
    if not dims or not -len(dims) <= axis < len(dims):
        return None
    size = dims[axis]
    return size if isinstance(size, int) and size > 0 else None


def check_graph(onnx_path: str | Path, meta: dict) -> None:
    """GraphMismatch (one line) unless the ONNX at `onnx_path` is what the (schema-valid)
    sidecar `meta` says; see the module doc."""
    model = load_graph(onnx_path)
    _check_input(model.graph, meta["input"])
    _check_output(model.graph, meta)
    if meta["output"]["kind"] == "class_ids":
        channels = _argmax_channels(model, model.graph.output[0].name)
        classes = len(meta["classes"])
        if channels is not None and channels != classes:
            raise GraphMismatch(
                f"the graph's ids are an argmax over {channels} channels but the sidecar "
                f"names {classes} classes (and palette colours)"
            )
