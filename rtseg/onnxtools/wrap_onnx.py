"""Wrap a float NCHW ONNX with a logits output into rtseg's deployable form (no torch needed).

Before: `x` `(N, 3, H, W)` float32/float16, normalised as the model was trained, channels in the
model's colour order -> `logits` `(N, C, h, w)` float (h, w possibly smaller than H, W).
After:  `image` `(N, H, W, 3) uint8 RGB` -> `class_ids` `(N, H, W) uint8`.

Added in the graph, by onnx.helper surgery on the original graph (its nodes are untouched):
Cast to float32 (the only reader of the uint8 input, as TensorRT requires), Transpose to NCHW,
a Gather that reorders RGB to BGR where the model wants BGR, one Mul and one Add for
`(pixel / range - mean) / std`, a Cast to float16 for a float16 model; after the logits a
bilinear Resize (half-pixel centres, like PyTorch's `align_corners=False`) to the input size
when they come out at another size, ArgMax over the classes and a Cast to uint8.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from rtseg.core.onnx_graph import all_graphs, all_nodes, graph_inputs, subgraphs, tensor_dims
from rtseg.errors import ExportError, InputError

INPUT_NAME = "image"
OUTPUT_NAME = "class_ids"
LOGITS_NAME = "rtseg_logits"  # the (resized) logits fed to the ArgMax
MIN_OPSET = 13  # Resize with optional roi / scales, ArgMax, Gather
INPUT_RANGES = {"0-1": 255.0, "0-255": 1.0}  # the model's pixel range -> divisor of 0..255 pixels
COLORS = ("RGB", "BGR")


@dataclass(frozen=True)
class Preprocessing:
    """What the original model expects of its float input.

    mean / std: per channel, in the model's channel order (`color`) and in its pixel range
        (`input_range` "0-1": pixels / 255, e.g. ImageNet's 0.485 / 0.229; "0-255": raw pixels,
        e.g. mmsegmentation's 123.675 / 58.395). The model sees `(pixel / range - mean) / std`.
    color: "RGB" or "BGR", the channel order the model was trained on.
    """

    mean: tuple[float, float, float]
    std: tuple[float, float, float]
    input_range: str = "0-1"
    color: str = "RGB"

    def __post_init__(self):
        if len(self.mean) != 3 or len(self.std) != 3:
            raise InputError(f"mean and std need 3 values each, got {len(self.mean)} and {len(self.std)}")
        if any(not np.isfinite(s) or s <= 0 for s in self.std):
            raise InputError(f"std values must be positive, got {list(self.std)}")
        if not all(np.isfinite(m) for m in self.mean):
            raise InputError(f"mean values must be finite numbers, got {list(self.mean)}")
        if self.input_range not in INPUT_RANGES:
            choices = ", ".join(INPUT_RANGES)
            raise InputError(f"input range must be one of {choices}, got {self.input_range!r}")
        if self.color not in COLORS:
            raise InputError(f"input colour must be RGB or BGR, got {self.color!r}")

    def scale_shift(self) -> tuple[np.ndarray, np.ndarray]:
        """(scale, shift), `(3,)` float32 each, with model_input = pixel * scale + shift."""
        divisor = INPUT_RANGES[self.input_range]
        std, mean = np.asarray(self.std, np.float64), np.asarray(self.mean, np.float64)
        return (1.0 / (divisor * std)).astype(np.float32), (-mean / std).astype(np.float32)

    def apply(self, frames: np.ndarray) -> np.ndarray:
        """The host's reference: `(N, H, W, 3) uint8 RGB` -> `(N, 3, H, W)` float32 model input."""
        x = frames.astype(np.float32)
        if self.color == "BGR":
            x = x[..., ::-1]
        x = x / np.float32(INPUT_RANGES[self.input_range])
        x = (x - np.asarray(self.mean, np.float32)) / np.asarray(self.std, np.float32)
        return np.ascontiguousarray(x.transpose(0, 3, 1, 2))

    def to_json(self) -> dict:
        return {
            "mean": [float(v) for v in self.mean],
            "std": [float(v) for v in self.std],
            "input_range": self.input_range,
            "color": self.color,
        }

    def normalization_0_1(self) -> dict:
        """mean / std for pixels / 255 (the sidecar's `normalization` convention), model order."""
        factor = 255.0 / INPUT_RANGES[self.input_range]
        return {"mean": [float(m) / factor for m in self.mean], "std": [float(s) / factor for s in self.std]}


@dataclass(frozen=True)
class GraphIO:
    """The original graph's float input and logits output, as declared in the ONNX."""

    input_name: str
    input_dtype: int  # onnx.TensorProto elem type (FLOAT or FLOAT16)
    input_shape: tuple  # (batch, 3, H, W); str for symbolic dims
    output_name: str
    output_dtype: int
    output_rank: int
    output_batch: int | str | None = None  # the logits' declared batch dim (None: not declared)

    @property
    def batch(self) -> int | str:
        """The batch the graph takes: fixed when its input's or its output's batch dim is (a graph
        exported with a dynamic input batch but a batch-1 output runs only batches of 1)."""
        fixed = [d for d in (self.input_shape[0], self.output_batch) if isinstance(d, int)]
        return min(fixed) if fixed else "N"

    @property
    def fixed_size(self) -> tuple[int, int] | None:
        """(H, W) when both are fixed in the graph, else None."""
        h, w = self.input_shape[2:]
        return (h, w) if isinstance(h, int) and isinstance(w, int) else None


def inspect_graph(model, output_name: str | None = None) -> GraphIO:
    """The float NCHW input and the logits output of `model`; ExportError naming what is wrong."""
    from onnx import TensorProto

    inputs = graph_inputs(model.graph)
    if len(inputs) != 1:
        raise ExportError(f"the model must have one input, it has {len(inputs)}: {[i.name for i in inputs]}")
    floats = (TensorProto.FLOAT, TensorProto.FLOAT16)
    inp = inputs[0]
    dtype, shape = inp.type.tensor_type.elem_type, tuple(tensor_dims(inp) or ())
    if dtype not in floats:
        raise ExportError(f"input {inp.name!r} is {TensorProto.DataType.Name(dtype)}; expected float NCHW")
    if len(shape) != 4 or (isinstance(shape[1], int) and shape[1] != 3):
        raise ExportError(f"input {inp.name!r} has shape {list(shape)}; expected (N, 3, H, W)")
    outputs = {o.name: o for o in model.graph.output}
    if output_name is not None and output_name not in outputs:
        raise ExportError(f"the model has no output {output_name!r} (outputs: {', '.join(outputs)})")
    out = outputs[output_name] if output_name else model.graph.output[0]
    out_dims = tensor_dims(out) or ()
    out_dtype, rank = out.type.tensor_type.elem_type, len(out_dims)
    if out_dtype not in floats:
        raise ExportError(
            f"output {out.name!r} is {TensorProto.DataType.Name(out_dtype)}, not float logits "
            "(a graph that already outputs class ids cannot be checked against its logits)"
        )
    if rank not in (0, 4):  # 0: rank not declared; checked on the real output
        raise ExportError(f"output {out.name!r} has rank {rank}; expected logits (N, C, h, w)")
    return GraphIO(inp.name, dtype, shape, out.name, out_dtype, rank, out_dims[0] if out_dims else None)


def _rename(graph, old: str, new: str) -> None:
    """Rename tensor `old` to `new` everywhere in `graph` and its subgraphs."""
    for each in all_graphs(graph):
        for node in each.node:
            node.input[:] = [new if n == old else n for n in node.input]
            node.output[:] = [new if n == old else n for n in node.output]
        for collection in (each.input, each.output, each.value_info, each.initializer):
            for item in collection:
                if item.name == old:
                    item.name = new


def _all_names(graph) -> set[str]:
    names = {i.name for i in [*graph.input, *graph.output, *graph.initializer, *graph.value_info]}
    for node in graph.node:
        names.update(node.input)
        names.update(node.output)
    return names


def _with_opset(model):
    """`model` at opset >= MIN_OPSET (converted when older); ExportError if it cannot be."""
    import onnx

    opset = next((o.version for o in model.opset_import if o.domain in ("", "ai.onnx")), 0)
    if opset >= MIN_OPSET:
        return model, opset
    try:
        return onnx.version_converter.convert_version(model, MIN_OPSET), MIN_OPSET
    except Exception as exc:  # the converter raises its own types
        raise ExportError(f"opset {opset} model cannot be converted to opset {MIN_OPSET}: {exc}") from exc


def _needed_names(graph) -> set[str]:
    """Every tensor name a node of `graph` or its subgraphs reads (outer-scope names included)."""
    return {name for node in all_nodes(graph) for name in node.input}


def _prune(graph) -> None:
    """Drop the nodes and initializers nothing reaches from the graph's outputs."""
    needed = {o.name for o in graph.output}
    kept = []
    for node in reversed(list(graph.node)):
        if any(name in needed for name in node.output):
            kept.append(node)
            needed.update(node.input)
            for sub in subgraphs(node):
                needed.update(_needed_names(sub))
    del graph.node[:]
    graph.node.extend(reversed(kept))
    initializers = [t for t in graph.initializer if t.name in needed]
    del graph.initializer[:]
    graph.initializer.extend(initializers)


def _const(name: str, values, dtype=np.int64, shape=None):
    from onnx import numpy_helper

    array = np.asarray(values, dtype=dtype)
    return numpy_helper.from_array(array.reshape(shape) if shape else array, name)


def _pre_nodes(pre: Preprocessing, model_input: str, model_dtype: int):
    """Nodes and constants: `image` uint8 NHWC RGB -> `model_input` (N, 3, H, W) normalised."""
    from onnx import TensorProto, helper

    scale, shift = pre.scale_shift()
    nodes = [
        helper.make_node("Cast", [INPUT_NAME], ["rtseg_float"], to=TensorProto.FLOAT),
        helper.make_node("Transpose", ["rtseg_float"], ["rtseg_nchw"], perm=[0, 3, 1, 2]),
    ]
    consts = [_const("rtseg_scale", scale, np.float32, (1, 3, 1, 1))]
    consts.append(_const("rtseg_shift", shift, np.float32, (1, 3, 1, 1)))
    x = "rtseg_nchw"
    if pre.color == "BGR":
        nodes.append(helper.make_node("Gather", [x, "rtseg_bgr"], ["rtseg_bgr_nchw"], axis=1))
        consts.append(_const("rtseg_bgr", [2, 1, 0]))
        x = "rtseg_bgr_nchw"
    normalised = model_input if model_dtype == TensorProto.FLOAT else "rtseg_normalised"
    nodes.append(helper.make_node("Mul", [x, "rtseg_scale"], ["rtseg_scaled"]))
    nodes.append(helper.make_node("Add", ["rtseg_scaled", "rtseg_shift"], [normalised]))
    if model_dtype != TensorProto.FLOAT:
        nodes.append(helper.make_node("Cast", [normalised], [model_input], to=model_dtype))
    return nodes, consts


def _post_nodes(logits: str, logits_dtype: int, size: tuple[int, int], resize: bool):
    """Nodes and constants: `logits` (N, C, h, w) -> LOGITS_NAME (N, C, H, W) -> `class_ids`."""
    from onnx import TensorProto, helper

    nodes, consts = [], []
    if logits_dtype != TensorProto.FLOAT:
        nodes.append(helper.make_node("Cast", [logits], ["rtseg_logits_float"], to=TensorProto.FLOAT))
        logits = "rtseg_logits_float"
    if resize:
        nodes += [
            helper.make_node("Shape", [logits], ["rtseg_logits_shape"]),
            helper.make_node("Slice", ["rtseg_logits_shape", "rtseg_0", "rtseg_2"], ["rtseg_nc"]),
            helper.make_node("Concat", ["rtseg_nc", "rtseg_hw"], ["rtseg_sizes"], axis=0),
            helper.make_node(
                "Resize",
                [logits, "", "", "rtseg_sizes"],
                [LOGITS_NAME],
                mode="linear",
                coordinate_transformation_mode="half_pixel",
            ),
        ]
        consts += [_const("rtseg_0", [0]), _const("rtseg_2", [2]), _const("rtseg_hw", list(size))]
    else:
        nodes.append(helper.make_node("Identity", [logits], [LOGITS_NAME]))
    nodes.append(helper.make_node("ArgMax", [LOGITS_NAME], ["rtseg_argmax"], axis=1, keepdims=0))
    nodes.append(helper.make_node("Cast", ["rtseg_argmax"], [OUTPUT_NAME], to=TensorProto.UINT8))
    return nodes, consts


def wrap_onnx(model, io: GraphIO, pre: Preprocessing, size: tuple[int, int], logits_size: tuple[int, int]):
    """A new ModelProto: `image` `(N, H, W, 3) uint8 RGB` -> `class_ids` `(N, H, W) uint8`.

    io: the original's input and logits (inspect_graph); size: (H, W) of the new input, which
    must fit the original's input; logits_size: (h, w) the logits come out at for that input
    (measured on the original), resized to `size` when different. `model` is not modified.
    """
    import onnx
    from onnx import TensorProto, helper

    wrapped = onnx.ModelProto()
    wrapped.CopyFrom(model)
    wrapped, _ = _with_opset(wrapped)
    graph = wrapped.graph
    names = {io.input_name: io.input_name, io.output_name: io.output_name}
    for reserved in (INPUT_NAME, OUTPUT_NAME, LOGITS_NAME):
        if reserved in _all_names(graph):
            _rename(graph, reserved, f"{reserved}_original")
            names = {k: (f"{reserved}_original" if v == reserved else v) for k, v in names.items()}
    model_input, logits = names[io.input_name], names[io.output_name]
    batch = io.batch
    pre_nodes, pre_consts = _pre_nodes(pre, model_input, io.input_dtype)
    post_nodes, post_consts = _post_nodes(logits, io.output_dtype, size, tuple(logits_size) != tuple(size))
    original = list(graph.node)
    del graph.node[:]
    graph.node.extend([*pre_nodes, *original, *post_nodes])
    graph.initializer.extend([*pre_consts, *post_consts])
    inputs = [i for i in graph.input if i.name != model_input]
    del graph.input[:]
    h, w = size
    image = helper.make_tensor_value_info(INPUT_NAME, TensorProto.UINT8, [batch, h, w, 3])
    graph.input.extend([image, *inputs])
    del graph.output[:]
    graph.output.append(helper.make_tensor_value_info(OUTPUT_NAME, TensorProto.UINT8, [batch, h, w]))
    kept_info = [v for v in graph.value_info if v.name != model_input]
    del graph.value_info[:]
    graph.value_info.extend(kept_info)
    _prune(graph)
    try:
        onnx.checker.check_model(wrapped)
    except onnx.checker.ValidationError as exc:
        raise ExportError(f"the wrapped graph is not valid ONNX: {str(exc).splitlines()[0]}") from exc
    return wrapped


def with_logits_output(model):
    """A copy of a wrapped model that also outputs LOGITS_NAME `(N, C, H, W)` float32."""
    import onnx
    from onnx import TensorProto, helper

    tapped = onnx.ModelProto()
    tapped.CopyFrom(model)
    tapped.graph.output.append(helper.make_tensor_value_info(LOGITS_NAME, TensorProto.FLOAT, None))
    return tapped
