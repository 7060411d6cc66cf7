"""Make a package's ONNX fit TensorRT's uint8 rules before parsing it (the package is untouched).

TensorRT's UINT8 type only converts to and from float32/float16 (DataType.UINT8: "use an
IdentityLayer to convert uint8 network-level inputs to float prior to use with other layers ...
uint8 conversions are not supported for int8, int32, bool"). The exported graph does
`Transpose(image uint8) -> Cast(float)` and `ArgMax (int64) -> Cast(uint8)`, so:
  - a layout op (Transpose/Reshape/...) applied to a uint8 graph input and followed by a Cast
    to float is swapped: Cast first, then the layout op;
  - a Cast to uint8 whose input is not float32/float16 gets a Cast to float32 in front.
Both rewrites give bit-identical results (class ids 0..255 are exact in float32).
"""

from __future__ import annotations

from pathlib import Path

LAYOUT_OPS = ("Transpose", "Reshape", "Squeeze", "Unsqueeze", "Flatten", "Identity")


def _elem_types(model) -> dict[str, int]:
    import onnx

    inferred = onnx.shape_inference.infer_shapes(model)
    graph = inferred.graph
    return {
        v.name: v.type.tensor_type.elem_type
        for v in list(graph.input) + list(graph.value_info) + list(graph.output)
    }


def _swap_input_casts(graph, types: dict[str, int]) -> int:
    """Cast(float) after a layout op on a uint8 graph input -> the Cast moves before it."""
    from onnx import TensorProto

    uint8_inputs = {i.name for i in graph.input if i.type.tensor_type.elem_type == TensorProto.UINT8}
    users: dict[str, list] = {}
    for node in graph.node:
        for name in node.input:
            users.setdefault(name, []).append(node)
    swapped = 0
    layouts = [n for n in graph.node if n.op_type in LAYOUT_OPS and n.input and n.input[0] in uint8_inputs]
    for layout in layouts:
        after = users.get(layout.output[0], [])
        if len(after) != 1 or after[0].op_type != "Cast":
            continue
        cast = after[0]
        to = next(a.i for a in cast.attribute if a.name == "to")
        if to not in (TensorProto.FLOAT, TensorProto.FLOAT16):
            continue
        source, cast_out = layout.input[0], cast.output[0]
        cast.input[0], cast.output[0] = source, layout.output[0] + "_as_float"
        layout.input[0], layout.output[0] = cast.output[0], cast_out
        swapped += 1
    if swapped:  # keep a topological order: each moved Cast now runs before its layout op
        order = list(graph.node)
        moved = [n for n in order if n.op_type == "Cast" and n.input[0] in uint8_inputs]
        rest = [n for n in order if n not in moved]
        del graph.node[:]
        graph.node.extend(moved + rest)
    return swapped


def _widen_output_casts(graph, types: dict[str, int]) -> int:
    """Cast(to uint8) from an integer/bool -> Cast(to float32) then Cast(to uint8)."""
    from onnx import TensorProto, helper

    nodes, added = [], 0
    for node in graph.node:
        to = next((a.i for a in node.attribute if a.name == "to"), None) if node.op_type == "Cast" else None
        source_type = types.get(node.input[0], TensorProto.UNDEFINED) if node.input else None
        if to == TensorProto.UINT8 and source_type not in (TensorProto.FLOAT, TensorProto.FLOAT16):
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


def prepare_for_tensorrt(model):
    """A copy of `model` (onnx.ModelProto) rewritten for TensorRT's uint8 rules (module doc)."""
    import onnx

    prepared = onnx.ModelProto()
    prepared.CopyFrom(model)
    types = _elem_types(prepared)
    _swap_input_casts(prepared.graph, types)
    _widen_output_casts(prepared.graph, types)
    onnx.checker.check_model(prepared)
    return prepared


def write_prepared(onnx_path: str | Path, out_path: str | Path) -> Path:
    """Write the TensorRT-ready copy of `onnx_path` to `out_path` (single file)."""
    import onnx

    out_path = Path(out_path)
    onnx.save(prepare_for_tensorrt(onnx.load(str(onnx_path))), str(out_path))
    return out_path
