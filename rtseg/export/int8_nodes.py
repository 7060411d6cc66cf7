"""Which nodes of an FP32 graph INT8 quantization keeps in float: the pre-processing before the
first Conv, and the groups, op types or node names given to `--int8-exclude`."""

from __future__ import annotations

from rtseg.core.onnx_graph import attribute, consumers, producers
from rtseg.errors import InputError

EXCLUDE_GROUPS = ("depthwise", "decoder", "head", "stem")
ENCODER_PREFIX = "model.encoder."


def _descendants(graph, starts: list) -> set[str]:
    """Names of `starts` and every node downstream of them."""
    users = consumers(graph)
    seen: set[str] = set()
    stack = list(starts)
    while stack:
        node = stack.pop()
        if node.name in seen:
            continue
        seen.add(node.name)
        for out in node.output:
            stack.extend(users.get(out, []))
    return seen


def preprocessing_nodes(graph) -> set[str]:
    """Names of the nodes upstream of the first Conv (uint8 -> normalised float), kept in float."""
    made_by = producers(graph)
    first_conv = next((n for n in graph.node if n.op_type == "Conv"), None)
    if first_conv is None:
        return set()
    seen: set[str] = set()
    stack = [made_by[first_conv.input[0]]] if first_conv.input[0] in made_by else []
    while stack:
        node = stack.pop()
        if node.name in seen:
            continue
        seen.add(node.name)
        stack.extend(made_by[i] for i in node.input if i in made_by)
    return seen


def _group_nodes(graph, group: str) -> set[str]:
    convs = [n for n in graph.node if n.op_type == "Conv"]
    if group == "depthwise":
        return {n.name for n in convs if attribute(n, "group", 1) > 1}
    if group == "stem":
        return {convs[0].name} if convs else set()
    if group == "head":
        return _descendants(graph, convs[-1:])
    if group == "decoder":
        return _descendants(graph, [n for n in convs if not n.input[1].startswith(ENCODER_PREFIX)])
    raise AssertionError(group)


def excluded_nodes(graph, exclude: tuple[str, ...]) -> tuple[set[str], set[str]]:
    """(node names, op types) that `exclude` keeps in float, plus the pre-processing nodes.

    InputError for a word that is no group, op type or node name of this graph.
    """
    names = preprocessing_nodes(graph)
    op_types: set[str] = set()
    all_ops = {n.op_type for n in graph.node}
    all_names = {n.name for n in graph.node}
    for word in exclude:
        if word in EXCLUDE_GROUPS:
            names |= _group_nodes(graph, word)
        elif word in all_ops:
            op_types.add(word)
        elif word in all_names:
            names.add(word)
        else:
            raise InputError(
                f"--int8-exclude {word!r} is no group ({', '.join(EXCLUDE_GROUPS)}), "
                "op type or node name of this graph"
            )
    return names, op_types
