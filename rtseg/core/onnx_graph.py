"""Small lookups over an onnx GraphProto, shared by the graph check, export and the engine prep.

Every function reads the protobuf as it is (nothing is copied, nothing runs); `graph` is an
onnx.GraphProto, a node an onnx.NodeProto, a value an onnx.ValueInfoProto.
"""

from __future__ import annotations

import numpy as np


def input_uses(graph) -> dict[str, list[tuple]]:
    """Tensor name -> every (node, input index) of `graph` that reads it, in node order."""
    uses: dict[str, list[tuple]] = {}
    for node in graph.node:
        for index, name in enumerate(node.input):
            uses.setdefault(name, []).append((node, index))
    return uses


def consumers(graph) -> dict[str, list]:
    """Tensor name -> the nodes of `graph` that read it (a node once per input that reads it)."""
    return {name: [node for node, _ in uses] for name, uses in input_uses(graph).items()}


def producers(graph) -> dict[str, object]:
    """Tensor name -> the node of `graph` that outputs it."""
    return {out: node for node in graph.node for out in node.output}


def attribute(node, name: str, default=None):
    """The value of attribute `name` of `node` (an int, float, tensor, ...), or `default`."""
    from onnx import helper

    for attr in node.attribute:
        if attr.name == name:
            return helper.get_attribute_value(attr)
    return default


def constants(graph) -> dict[str, np.ndarray]:
    """Initializers and the outputs of Constant nodes with a `value` tensor, by name."""
    from onnx import numpy_helper

    values = {init.name: numpy_helper.to_array(init) for init in graph.initializer}
    for node in graph.node:
        if node.op_type == "Constant":
            for attr in node.attribute:
                if attr.name == "value":
                    values[node.output[0]] = numpy_helper.to_array(attr.t)
    return values


def graph_inputs(graph) -> list:
    """The graph's real inputs: its `input` values that are not initializers."""
    weights = {w.name for w in graph.initializer}
    return [i for i in graph.input if i.name not in weights]


def tensor_dims(value) -> list[int | str] | None:
    """Static sizes as ints, dynamic ones as their name ('N') or '?'; None when rank unknown."""
    tensor = value.type.tensor_type
    if not tensor.HasField("shape"):
        return None
    return [d.dim_value if d.HasField("dim_value") else (d.dim_param or "?") for d in tensor.shape.dim]


def subgraphs(node) -> list:
    """The graphs held in `node`'s attributes (If / Loop / Scan bodies), not nested further."""
    found = []
    for attr in node.attribute:
        if attr.HasField("g"):
            found.append(attr.g)
        found.extend(attr.graphs)
    return found


def all_graphs(graph):
    """`graph`, then every subgraph at any depth (each before its own subgraphs)."""
    yield graph
    for node in graph.node:
        for sub in subgraphs(node):
            yield from all_graphs(sub)


def all_nodes(graph):
    """Every node of `graph` and of its subgraphs at any depth."""
    for each in all_graphs(graph):
        yield from each.node


def external_data_files(path) -> list:
    """The files holding an ONNX model's external weights (`NAME.onnx.data`, ...), as Paths beside
    `path`, in the order first named; [] for a self-contained model or one that does not parse.
    Reads the graph without the weights."""
    from pathlib import Path

    import onnx

    try:
        model = onnx.load(str(path), load_external_data=False)
    except Exception:  # noqa: BLE001 - not an ONNX file: the loader says so later
        return []
    found: dict = {}
    for graph in all_graphs(model.graph):
        for tensor in graph.initializer:
            if tensor.data_location == onnx.TensorProto.EXTERNAL:
                where = {entry.key: entry.value for entry in tensor.external_data}.get("location")
                if where:
                    found.setdefault(Path(path).parent / where)
    return list(found)
