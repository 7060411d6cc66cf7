"""FP32 package -> FP16 package: a float16 graph that keeps the uint8 input and class-id output.

onnxconverter-common's converter turns every float tensor and initializer into float16, keeps
`keep_io_types` float I/O (ours are uint8 anyway) and inserts Casts around the ops it blocks.
Two things it gets wrong for our graph, fixed here:
  - the Cast right after the uint8 input keeps `to=FLOAT` while its output is retyped float16,
    which ONNX Runtime refuses ("Type (tensor(float16)) ... does not match"): it is set to FLOAT16;
  - its default block list keeps Resize in float32 (Casts around every upsample); Resize runs in
    float16 on ONNX Runtime's CPU provider and on TensorRT, so it is converted. ArgMax stays in
    float32 (one Cast before it) so ties break the same way as the FP32 graph.
"""

from __future__ import annotations

import warnings
from pathlib import Path

from rtseg.core.package import ModelPackage, relative_reference, write_sidecar
from rtseg.errors import ExportError

KEEP_FLOAT32_OPS = ("ArgMax",)
CONVERT_TO_FP16_OPS = ("Resize", "Upsample")


def _block_list(keep_float32: tuple[str, ...]) -> list[str]:
    from onnxconverter_common import float16

    blocked = [op for op in float16.DEFAULT_OP_BLOCK_LIST if op not in CONVERT_TO_FP16_OPS]
    return blocked + [op for op in keep_float32 if op not in blocked]


def _fix_input_casts(model) -> int:
    """Set `to=FLOAT16` on Casts whose output the converter retyped float16; returns how many."""
    from onnx import TensorProto

    types = {
        v.name: v.type.tensor_type.elem_type for v in list(model.graph.value_info) + list(model.graph.output)
    }
    fixed = 0
    for node in model.graph.node:
        if node.op_type != "Cast":
            continue
        to = next(a for a in node.attribute if a.name == "to")
        if to.i == TensorProto.FLOAT and types.get(node.output[0]) == TensorProto.FLOAT16:
            to.i = TensorProto.FLOAT16
            fixed += 1
    return fixed


def _io_types(model) -> tuple[list[int], list[int]]:
    def types(values):
        return [v.type.tensor_type.elem_type for v in values]

    return types(model.graph.input), types(model.graph.output)


def float16_model(model, keep_float32: tuple[str, ...] = KEEP_FLOAT32_OPS):
    """onnx.ModelProto (float32) -> onnx.ModelProto (float16 inside, same I/O types).

    Raises ExportError when the graph cannot be converted or its I/O types change.
    """
    import onnx
    from onnxconverter_common import float16

    before = _io_types(model)
    try:
        with warnings.catch_warnings():  # "the float32 number ... will be truncated": expected
            warnings.simplefilter("ignore")
            converted = float16.convert_float_to_float16(
                model, keep_io_types=True, op_block_list=_block_list(tuple(keep_float32))
            )
    except ValueError as exc:  # raised for an already-float16 graph
        raise ExportError(f"float16 conversion failed: {exc}") from exc
    _fix_input_casts(converted)
    if _io_types(converted) != before:
        raise ExportError(
            f"float16 conversion changed the graph's I/O types {before} -> {_io_types(converted)}"
        )
    try:
        onnx.checker.check_model(converted)
    except onnx.checker.ValidationError as exc:
        raise ExportError(f"float16 graph is invalid: {str(exc).splitlines()[0]}") from exc
    return converted


def variant_meta(fp32: ModelPackage, out_onnx: Path, precision: str, **extra) -> dict:
    """Sidecar of a precision variant: the FP32 sidecar with its precision, its origin, no
    FP32 parity or metrics, and the checkpoint path re-based to the new folder."""
    meta = {
        k: v
        for k, v in fp32.meta.items()
        if k
        not in (
            "format",
            "format_version",
            "onnx",
            "onnx_sha256",
            "rtseg_version",
            "name",
            "parity",
            "metrics",
            "calibration",
        )
    }
    meta["precision"] = precision
    meta["name"] = out_onnx.stem
    source = meta.get("source")
    if source and source.get("checkpoint"):
        checkpoint = Path(source["checkpoint"])
        if not checkpoint.is_absolute():
            checkpoint = fp32.sidecar_path.parent / checkpoint
        meta["source"] = {**source, "checkpoint": relative_reference(checkpoint, out_onnx.parent)}
    meta["derived_from"] = {
        "onnx": fp32.onnx_path.name,
        "sha256": fp32.meta.get("onnx_sha256"),
        "precision": fp32.precision,
    }
    meta.update(extra)
    return meta


def convert_fp16(
    fp32_package: ModelPackage, out_onnx: str | Path, keep_float32: tuple[str, ...] = KEEP_FLOAT32_OPS
) -> ModelPackage:
    """Write the FP16 package `out_onnx` (+ sidecar) of an FP32 package and return it.

    The graph still takes `(N, H, W, 3) uint8 RGB` and returns `(N, H, W) uint8` class ids;
    the first Cast produces float16 and every float op runs in float16 except `keep_float32`.
    """
    return write_sidecar(out_onnx, fp16_graph(fp32_package, out_onnx, keep_float32))


def fp16_graph(
    fp32_package: ModelPackage, out_onnx: str | Path, keep_float32: tuple[str, ...] = KEEP_FLOAT32_OPS
) -> dict:
    """`convert_fp16` without the sidecar: writes the graph and returns the sidecar fields."""
    import onnx

    if fp32_package.precision != "fp32":
        raise ExportError(
            f"{fp32_package.onnx_path.name} is {fp32_package.precision}; convert from the fp32 package"
        )
    out_onnx = Path(out_onnx)
    out_onnx.parent.mkdir(parents=True, exist_ok=True)
    converted = float16_model(onnx.load(str(fp32_package.onnx_path)), tuple(keep_float32))
    onnx.save(converted, str(out_onnx))
    return variant_meta(
        fp32_package,
        out_onnx,
        "fp16",
        fp16={"converter": "onnxconverter-common", "kept_float32": list(keep_float32)},
    )
