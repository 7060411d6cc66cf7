"""TensorRT's rules for explicit quantization (Q/DQ ONNX), checked by walking the graph.

TensorRT builds an INT8 engine from QuantizeLinear/DequantizeLinear pairs only when:
  - quantization is symmetric: every zero point is present (or implied int8 by `output_dtype`)
    and equal to 0, of type int8 (a missing zero point means uint8 in ONNX);
  - scales are constant and positive;
  - activations are quantized per tensor (scalar scale);
  - Conv weights are quantized per output channel, on axis 0 (one scale per filter);
  - biases stay in float (no DequantizeLinear on an int32 bias);
  - ConvTranspose and Softmax are left in float here (no DequantizeLinear feeds them).
`check_qdq_rules` lists every violation; `assert_trt_qdq_rules` raises ExportError on any.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from rtseg.core.onnx_graph import attribute, constants, input_uses, producers
from rtseg.errors import ExportError

FLOAT_ONLY_OPS = ("ConvTranspose", "Softmax")
WEIGHT_INPUT = {"Conv": 1, "ConvTranspose": 1, "Gemm": 1, "MatMul": 1}
BIAS_INPUT = {"Conv": 2, "ConvTranspose": 2, "Gemm": 2}


def _load(model):
    import onnx
    from google.protobuf.message import DecodeError

    if isinstance(model, (str, Path)):
        try:
            return onnx.load(str(model))
        except (OSError, DecodeError, ValueError) as exc:
            raise ExportError(f"cannot read ONNX {model}: {exc}") from exc
    return model


def _zero_point_problems(node, consts: dict) -> list[str]:
    from onnx import TensorProto

    label = f"{node.op_type} {node.name or node.output[0]!r}"
    if len(node.input) < 3 or not node.input[2]:
        if node.op_type == "QuantizeLinear" and attribute(node, "output_dtype") == TensorProto.INT8:
            return []
        data = consts.get(node.input[0])  # an activation's dtype is its QuantizeLinear's, checked there
        if node.op_type == "DequantizeLinear" and (data is None or data.dtype == np.int8):
            return []
        return [f"{label}: no zero point, which means uint8 (TensorRT needs int8 with zero point 0)"]
    zero_point = consts.get(node.input[2])
    if zero_point is None:
        return [f"{label}: zero point {node.input[2]!r} is not a constant"]
    problems = []
    if zero_point.dtype != np.int8:
        problems.append(f"{label}: zero point is {zero_point.dtype}, TensorRT needs int8")
    if np.any(zero_point != 0):
        problems.append(f"{label}: non-zero zero point (asymmetric quantization); TensorRT needs 0")
    return problems


def _scale_problems(node, consts: dict) -> tuple[list[str], np.ndarray | None]:
    label = f"{node.op_type} {node.name or node.output[0]!r}"
    scale = consts.get(node.input[1]) if len(node.input) > 1 else None
    if scale is None:
        return [f"{label}: scale is not a constant"], None
    if np.any(~np.isfinite(scale)) or np.any(scale <= 0):
        return [f"{label}: scale must be finite and positive"], scale
    return [], scale


def _weight_value(name: str, consts: dict, made_by: dict) -> np.ndarray | None:
    """The constant behind a DQ input: an initializer, or a QuantizeLinear of one."""
    if name in consts:
        return consts[name]
    producer = made_by.get(name)
    if producer is not None and producer.op_type == "QuantizeLinear":
        return consts.get(producer.input[0])
    return None


def _dq_placement_problems(node, scale, consts: dict, users: dict, made_by: dict) -> list[str]:
    """Per-channel weights on axis 0, per-tensor activations, no quantized bias, no float-only op."""
    label = f"DequantizeLinear {node.name or node.output[0]!r}"
    weight = _weight_value(node.input[0], consts, made_by)
    is_weight = weight is not None
    problems = []
    for user, index in users.get(node.output[0], []):
        if user.op_type in FLOAT_ONLY_OPS:
            problems.append(f"{label}: feeds {user.op_type} {user.name!r}, which must stay in float")
        elif BIAS_INPUT.get(user.op_type) == index:
            problems.append(f"{label}: quantized bias of {user.op_type} {user.name!r}; keep biases in float")
        elif user.op_type == "Conv" and index == 1:
            axis = attribute(node, "axis", 1)
            channels = weight.shape[0] if weight is not None and weight.ndim else None
            if scale.size <= 1:
                problems.append(
                    f"{label}: Conv {user.name!r} weight quantized per tensor; "
                    "TensorRT rules here need per-channel (axis 0)"
                )
            elif axis != 0 or (channels is not None and scale.size != channels):
                problems.append(
                    f"{label}: Conv {user.name!r} weight scales on axis {axis} "
                    f"({scale.size} scales); need one per output channel on axis 0"
                )
    if not is_weight and scale is not None and scale.size > 1:
        problems.append(
            f"{label}: activation quantized per channel ({scale.size} scales); "
            "TensorRT needs per-tensor activations"
        )
    return problems


def check_qdq_rules(model) -> list[str]:
    """Every way the Q/DQ nodes of `model` (a path or onnx.ModelProto) break TensorRT's rules.

    Returns one readable line per violation; empty when the graph is fine (or has no Q/DQ).
    """
    graph = _load(model).graph
    consts = constants(graph)
    users = input_uses(graph)
    made_by = producers(graph)
    problems: list[str] = []
    for node in graph.node:
        if node.op_type not in ("QuantizeLinear", "DequantizeLinear"):
            continue
        scale_problems, scale = _scale_problems(node, consts)
        problems += scale_problems + _zero_point_problems(node, consts)
        if node.op_type == "DequantizeLinear" and scale is not None:
            data = consts.get(node.input[0])
            if data is not None and data.dtype == np.int32:
                problems.append(
                    f"DequantizeLinear {node.name or node.output[0]!r}: int32 input "
                    "(a quantized bias); TensorRT needs biases in float"
                )
            problems += _dq_placement_problems(node, scale, consts, users, made_by)
        elif scale is not None and scale.size > 1 and _weight_value(node.input[0], consts, {}) is None:
            problems.append(
                f"QuantizeLinear {node.name or node.output[0]!r}: activation quantized per "
                f"channel ({scale.size} scales); TensorRT needs per-tensor activations"
            )
    return list(dict.fromkeys(problems))


def count_qdq(model) -> dict[str, int]:
    """{"QuantizeLinear": n, "DequantizeLinear": m} of a path or ModelProto."""
    graph = _load(model).graph
    ops = ("QuantizeLinear", "DequantizeLinear")
    return {op: sum(1 for n in graph.node if n.op_type == op) for op in ops}


def assert_trt_qdq_rules(model, name: str = "") -> None:
    """Raise ExportError listing the violations (at most 5 shown) when the graph breaks a rule."""
    raise_on_qdq_problems(check_qdq_rules(model), name)


def raise_on_qdq_problems(problems: list[str], name: str = "") -> None:
    """ExportError listing `check_qdq_rules`' problems (at most 5 shown); nothing when none."""
    if problems:
        shown = "; ".join(problems[:5]) + (f"; and {len(problems) - 5} more" if len(problems) > 5 else "")
        where = f"{name}: " if name else ""
        raise ExportError(f"{where}{len(problems)} Q/DQ node(s) break TensorRT's rules: {shown}")
