"""Make a package's ONNX fit TensorRT's uint8 rules before parsing it (the package is untouched).

TensorRT takes a uint8 network input only as the input of a Cast (NVIDIA/TensorRT#3985: its
operator docs list no uint8 for Shape, Transpose or anything else), and its UINT8 type converts
only to and from float32/float16 ("uint8 conversions are not supported for int8, int32, bool").
The exported graph does `Shape(image uint8)`, `Transpose(image uint8) -> Cast(float)` and
`ArgMax (int64) -> Cast(uint8)`, so:
  - a layout op (Transpose/Reshape/...) applied to a uint8 graph input and followed by a Cast
    to float is swapped: Cast first, then the layout op;
  - every other consumer of the uint8 input whose result does not depend on the element type
    (Shape, Size) reads the Cast's float output instead;
  - a Cast to uint8 whose input is not float32/float16 gets a Cast to float32 in front.
All rewrites give bit-identical results (class ids 0..255 are exact in float32). A uint8 use
left over (a graph these rules cannot fix) is a ModelError naming the node, before TensorRT.

`PREP_VERSION` names this set of rules: it is part of the engine cache key, so an engine built
from an older rewrite is rebuilt.
"""

from __future__ import annotations

from pathlib import Path

from rtseg.core.onnx_graph import attribute, consumers
from rtseg.errors import ModelError

PREP_VERSION = 2  # 1: cast swap + widened output cast; 2: Shape/Size read the float cast
LAYOUT_OPS = ("Transpose", "Reshape", "Squeeze", "Unsqueeze", "Flatten", "Identity")
TYPE_BLIND_OPS = ("Shape", "Size")  # their output does not depend on the input's element type


def _elem_types(model) -> dict[str, int]:
    """Element type (TensorProto enum) of every named tensor, from ONNX shape inference."""
    import onnx

    graph = onnx.shape_inference.infer_shapes(model).graph
    types = {t.name: t.data_type for t in graph.initializer}
    types.update(
        {
            v.name: v.type.tensor_type.elem_type
            for v in list(graph.input) + list(graph.value_info) + list(graph.output)
        }
    )
    return types


def _cast_to(node) -> int | None:
    return attribute(node, "to") if node.op_type == "Cast" else None


def _uint8_inputs(graph) -> set[str]:
    from onnx import TensorProto

    return {i.name for i in graph.input if i.type.tensor_type.elem_type == TensorProto.UINT8}


def _swap_input_casts(graph) -> int:
    """Cast(float) after a layout op on a uint8 graph input -> the Cast moves before it."""
    from onnx import TensorProto

    uint8_inputs = _uint8_inputs(graph)
    users = consumers(graph)
    swapped = 0
    layouts = [n for n in graph.node if n.op_type in LAYOUT_OPS and n.input and n.input[0] in uint8_inputs]
    for layout in layouts:
        after = users.get(layout.output[0], [])
        if len(after) != 1 or _cast_to(after[0]) not in (TensorProto.FLOAT, TensorProto.FLOAT16):
            continue
        cast = after[0]
        source, cast_out = layout.input[0], cast.output[0]
        cast.input[0], cast.output[0] = source, layout.output[0] + "_as_float"
        layout.input[0], layout.output[0] = cast.output[0], cast_out
        swapped += 1
    if swapped:
        _casts_first(graph, uint8_inputs)
    return swapped


def _casts_first(graph, uint8_inputs: set[str]) -> None:
    """Keep a topological order: the Casts reading a graph input run before every other node."""
    order = list(graph.node)
    moved = [n for n in order if n.op_type == "Cast" and n.input[0] in uint8_inputs]
    rest = [n for n in order if n not in moved]
    del graph.node[:]
    graph.node.extend(moved + rest)


def _float_cast_of(graph, name: str):
    """The output name of a Cast-to-float reading `name`, adding one if there is none."""
    from onnx import TensorProto, helper

    for node in graph.node:
        if (
            node.input
            and node.input[0] == name
            and _cast_to(node) in (TensorProto.FLOAT, TensorProto.FLOAT16)
        ):
            return node.output[0]
    out = f"{name}_as_float"
    graph.node.insert(
        0, helper.make_node("Cast", [name], [out], name=f"{name}_to_float", to=TensorProto.FLOAT)
    )
    return out


def _redirect_type_blind_users(graph) -> int:
    """Shape/Size of a uint8 graph input read the input's float Cast instead (same result)."""
    moved = 0
    for name in sorted(_uint8_inputs(graph)):
        blind = [n for n in graph.node if n.op_type in TYPE_BLIND_OPS and name in n.input]
        if not blind:
            continue
        float_name = _float_cast_of(graph, name)
        for node in blind:
            node.input[:] = [float_name if i == name else i for i in node.input]
            moved += 1
    return moved


def _widen_output_casts(graph, types: dict[str, int]) -> int:
    """Cast(to uint8) from an integer/bool -> Cast(to float32) then Cast(to uint8)."""
    from onnx import TensorProto, helper

    nodes, added = [], 0
    for node in graph.node:
        source_type = types.get(node.input[0], TensorProto.UNDEFINED) if node.input else None
        if _cast_to(node) == TensorProto.UINT8 and source_type not in (
            TensorProto.FLOAT,
            TensorProto.FLOAT16,
        ):
            widened = node.input[0] + "_as_float"
            nodes.append(
                helper.make_node(
                    "Cast",
                    [node.input[0]],
                    [widened],
                    name=f"{node.name or 'cast'}_to_float",
                    to=TensorProto.FLOAT,
                )
            )
            node.input[0] = widened
            added += 1
        nodes.append(node)
    if added:
        del graph.node[:]
        graph.node.extend(nodes)
    return added


def uint8_violations(model) -> list[str]:
    """What TensorRT would reject about uint8 in `model` (onnx.ModelProto): every use of a uint8
    tensor by anything but a Cast to float, and every Cast between uint8 and a non-float type."""
    from onnx import TensorProto

    floats = (TensorProto.FLOAT, TensorProto.FLOAT16)
    types = _elem_types(model)
    problems = []
    for node in model.graph.node:
        label = f"{node.op_type} node {node.name or '(unnamed)'}"
        for name in node.input:
            if name and types.get(name) == TensorProto.UINT8 and _cast_to(node) not in floats:
                problems.append(f"uint8 tensor {name!r} feeds {label}")
        if _cast_to(node) == TensorProto.UINT8 and types.get(node.input[0]) not in floats:
            problems.append(f"{label} casts {node.input[0]!r} to uint8 from a non-float type")
    return problems


def prepare_for_tensorrt(model):
    """A copy of `model` (onnx.ModelProto) rewritten for TensorRT's uint8 rules (module doc).

    ModelError when a uint8 use is left that the rules cannot fix."""
    import onnx

    prepared = onnx.ModelProto()
    prepared.CopyFrom(model)
    types = _elem_types(prepared)
    _swap_input_casts(prepared.graph)
    _redirect_type_blind_users(prepared.graph)
    _widen_output_casts(prepared.graph, types)
    onnx.checker.check_model(prepared)
    problems = uint8_violations(prepared)
    if problems:
        raise ModelError(
            f"cannot make the graph fit TensorRT's uint8 rules ({len(problems)} problem(s), first: "
            f"{problems[0]}); TensorRT takes a uint8 input only into a Cast to float"
        )
    return prepared


def write_prepared(onnx_path: str | Path, out_path: str | Path) -> Path:
    """Write the TensorRT-ready copy of `onnx_path` to `out_path` (one file, weights inside)."""
    import onnx

    out_path = Path(out_path)
    onnx.save(prepare_for_tensorrt(onnx.load(str(onnx_path))), str(out_path))
    return out_path
