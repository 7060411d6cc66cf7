"""FP32 package -> INT8 package: explicit quantization (Q/DQ) calibrated on real frames.

ONNX Runtime's `quantize_static` in QDQ format, told TensorRT's rules (see qdq_rules): int8
everywhere, symmetric (zero point 0), Conv weights per channel on axis 0, activations per
tensor, biases left in float, ConvTranspose and Softmax never quantized. The uint8 input and
the pre-processing (Transpose, Cast, scale, shift) stay in float: quantization starts at the
normalised image. The calibration reader feeds the uint8 frames to the whole graph.

Where the Q/DQ pairs go (`placement`):
  inputs        (default) only on the inputs of quantized ops. A Conv's output stays float up to
                its activation (ReLU6 = Clip(0, 6)), so the activation's output is what gets
                quantized: the layout TensorRT's guide recommends (it fuses Conv+activation and
                quantizes after). Quantizing the raw Conv output instead (onnxruntime's default)
                spends the int8 range on pre-activation outliers that the Clip throws away: on
                EfficientNet-Lite it dropped argmax agreement with FP32 from 98% to 66-85%.
  conv-outputs  also each Conv's output, with the range of the activation after it (Clip's
                bounds, or [0, max] before a Relu). Same accuracy; ONNX Runtime's CPU provider
                then fuses 36 of 62 convs into QLinearConv instead of 11 (1.5x faster there,
                still slower than FP32). TensorRT does not need it.

`target`: tensorrt (default; the rules above, checked) or cpu: uint8 asymmetric activations with
ReLU6 folded into the quantization range, the layout ONNX Runtime's x86 kernels run end to end
(all 62 convs QLinearConv u8s8, the VNNI instruction's native form; 1.7x faster than FP32 on
one core here). On x86 ONNX Runtime keeps int8 (s8) activations out of its QDQ fusions
(`session.qdqisint8allowed` forces them in, and its s8s8 kernels were 3x slower than FP32).
TensorRT rejects the cpu layout (non-zero zero points), so its sidecar says so and
`rtseg build-engine` refuses it.

`exclude` keeps parts of the network in float, by group or by name:
  depthwise  grouped (depthwise) convolutions    decoder   everything from the decoder on
  head       the classifier conv and after        stem      the first convolution
  an op type (e.g. Resize, Add) or a node name.
"""

from __future__ import annotations

import contextlib
import io
import logging
import os
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from rtseg.core.onnx_graph import constants, consumers
from rtseg.core.package import ModelPackage, write_sidecar
from rtseg.errors import ExportError, InputError, MissingDependencyError
from rtseg.export.fp16 import variant_meta
from rtseg.export.int8_nodes import excluded_nodes
from rtseg.onnxtools.qdq_rules import FLOAT_ONLY_OPS, check_qdq_rules, count_qdq, raise_on_qdq_problems

CALIBRATION_METHODS = ("minmax", "entropy", "percentile")
PLACEMENTS = ("inputs", "conv-outputs")
TARGETS = ("tensorrt", "cpu")
# Op types given Q/DQ: compute ops and the data movers between them. Clip/Relu stay float
# after a quantized Conv (TensorRT and ONNX Runtime fuse them into the conv).
QUANTIZED_OP_TYPES = (
    "Conv",
    "Add",
    "Mul",
    "Concat",
    "Resize",
    "MaxPool",
    "AveragePool",
    "GlobalAveragePool",
    "MatMul",
    "Gemm",
)
# With target cpu these are quantized too: onnxruntime then drops them and gives the conv output
# the activation's range (uint8 [0, 6] for ReLU6). With symmetric int8 they cannot be dropped,
# and quantizing them would put Q/DQ on the raw conv output, so target tensorrt leaves them out.
CPU_ACTIVATION_OPS = ("Clip", "Relu")


@dataclass(frozen=True)
class Int8Options:
    """How to quantize. `method`: minmax | entropy | percentile; `exclude`: groups, op types or
    node names kept in float; `placement`: inputs | conv-outputs and `target`: tensorrt | cpu
    (module doc); `percentile`: for method percentile; `quant_pre_process`: run onnxruntime's
    shape inference and graph clean-up first; `extra_options`: more onnxruntime quantizer
    options (override ours)."""

    method: str = "minmax"
    exclude: tuple[str, ...] = ()
    placement: str = "inputs"
    target: str = "tensorrt"
    percentile: float = 99.999
    op_types: tuple[str, ...] = QUANTIZED_OP_TYPES
    quant_pre_process: bool = True
    extra_options: dict = field(default_factory=dict, hash=False)

    def __post_init__(self):
        if self.method not in CALIBRATION_METHODS:
            raise ExportError(
                f"unknown calibration method {self.method!r}; choose from {', '.join(CALIBRATION_METHODS)}"
            )
        if self.target not in TARGETS:
            raise ExportError(f"unknown int8 target {self.target!r}; choose from {', '.join(TARGETS)}")
        if self.placement not in PLACEMENTS:
            raise ExportError(
                f"unknown Q/DQ placement {self.placement!r}; choose from {', '.join(PLACEMENTS)}"
            )
        bad = [op for op in self.op_types if op in FLOAT_ONLY_OPS]
        if bad:
            raise ExportError(f"{', '.join(bad)} must stay in float for TensorRT; remove from op_types")


class FramesReader:
    """onnxruntime CalibrationDataReader over `(N, H, W, 3) uint8 RGB` frames, one a batch.

    Supports `set_range` and `len` so the calibrator can collect in strides (bounded memory).
    """

    def __init__(self, frames: np.ndarray, input_name: str):
        self.frames = frames
        self.input_name = input_name
        self.start, self.end = 0, len(frames)
        self.position = 0

    def __len__(self) -> int:
        return len(self.frames)

    def set_range(self, start_index: int, end_index: int) -> None:
        self.start, self.end = start_index, end_index
        self.position = start_index

    def get_next(self) -> dict | None:
        if self.position >= self.end:
            return None
        batch = np.ascontiguousarray(self.frames[self.position : self.position + 1])
        self.position += 1
        return {self.input_name: batch}

    def rewind(self) -> None:
        self.position = self.start


def _stride(count: int, most: int = 8) -> int:
    return max(d for d in range(1, min(count, most) + 1) if count % d == 0)


def _check_frames(frames: np.ndarray, size: tuple[int, int]) -> None:
    h, w = size
    if (
        not isinstance(frames, np.ndarray)
        or frames.dtype != np.uint8
        or frames.ndim != 4
        or frames.shape[1:] != (h, w, 3)
        or len(frames) == 0
    ):
        got = f"{frames.shape} {frames.dtype}" if isinstance(frames, np.ndarray) else type(frames).__name__
        raise InputError(f"calibration frames must be (N, {h}, {w}, 3) uint8 RGB, got {got}")


def _pre_process(src: Path, dst: Path) -> Path:
    from onnxruntime.quantization.shape_inference import quant_pre_process

    quant_pre_process(str(src), str(dst), skip_symbolic_shape=False)
    return dst


def activation_ranges(graph) -> dict[str, dict]:
    """TensorQuantOverrides giving each Conv output the range of the activation that follows it:
    Clip(lo, hi) -> [lo, hi]; Relu -> [0, calibrated max]."""
    consts = constants(graph)
    users = consumers(graph)
    overrides = {}
    for node in graph.node:
        after = users.get(node.output[0], []) if node.op_type == "Conv" else []
        if len(after) != 1:
            continue
        act = after[0]
        if act.op_type == "Relu":
            overrides[node.output[0]] = [{"rmin": np.float32(0.0)}]
        elif act.op_type == "Clip" and len(act.input) == 3 and all(i in consts for i in act.input[1:]):
            low, high = (np.float32(consts[name]) for name in act.input[1:3])
            overrides[node.output[0]] = [{"rmin": low, "rmax": high}]
    return overrides


def _quantize(
    model_path: Path,
    out_onnx: Path,
    frames: np.ndarray,
    graph,
    options: Int8Options,
    nodes_to_exclude: set[str],
    op_types: list[str],
) -> None:
    from onnxruntime.quantization import CalibrationMethod, QuantFormat, QuantType, quantize_static

    method = {
        "minmax": CalibrationMethod.MinMax,
        "entropy": CalibrationMethod.Entropy,
        "percentile": CalibrationMethod.Percentile,
    }[options.method]
    extra = {
        "WeightSymmetric": True,
        "CalibStridedMinMax": _stride(len(frames)),
        "CalibPercentile": options.percentile,
    }
    activation_type = QuantType.QInt8
    if options.target == "cpu":  # uint8 asymmetric: Clip/Relu folded, u8s8 kernels
        activation_type = QuantType.QUInt8
    else:  # TensorRT: symmetric int8, float biases
        extra.update(ActivationSymmetric=True, QuantizeBias=False)
        if options.placement == "inputs":
            extra["OpTypesToExcludeOutputQuantization"] = ["Conv"]
        else:
            extra["TensorQuantOverrides"] = activation_ranges(graph)
    extra.update(options.extra_options)
    input_name = graph.input[0].name
    quantize_static(
        str(model_path),
        str(out_onnx),
        FramesReader(frames, input_name),
        quant_format=QuantFormat.QDQ,
        op_types_to_quantize=op_types,
        per_channel=True,
        activation_type=activation_type,
        weight_type=QuantType.QInt8,
        nodes_to_exclude=sorted(nodes_to_exclude),
        calibrate_method=method,
        extra_options=extra,
    )


@contextlib.contextmanager
def _quiet_quantizer():
    """The quantizer logs advice and its histogram calibrators print to stdout: keep them quiet."""
    logger = logging.getLogger()
    level = logger.level
    logger.setLevel(logging.ERROR)
    try:
        with contextlib.redirect_stdout(io.StringIO()):
            yield
    finally:
        logger.setLevel(level)


def quantize_int8(
    fp32_package: ModelPackage,
    out_onnx: str | Path,
    calib_frames: np.ndarray,
    options: Int8Options | None = None,
    calib_source: str = "",
) -> ModelPackage:
    """Write the INT8 (Q/DQ) package `out_onnx` (+ sidecar) of an FP32 package.

    `calib_frames`: `(N, H, W, 3) uint8 RGB` real frames at the package's input size.
    For target tensorrt the result is checked against TensorRT's Q/DQ rules (ExportError on a
    violation, and nothing is left at `out_onnx`); the sidecar's
    `calibration.tensorrt_compatible` says whether it passes them.
    """
    meta = int8_graph(fp32_package, out_onnx, calib_frames, options, calib_source)
    return write_sidecar(out_onnx, meta)


def int8_graph(
    fp32_package: ModelPackage,
    out_onnx: str | Path,
    calib_frames: np.ndarray,
    options: Int8Options | None = None,
    calib_source: str = "",
) -> dict:
    """`quantize_int8` without the sidecar: writes the graph (only once it passes the checks) and
    returns the sidecar fields."""
    try:
        import onnx
        import onnxruntime.quantization  # noqa: F401
    except ImportError as exc:
        raise MissingDependencyError("onnxruntime", "", "INT8 quantization") from exc
    options = options or Int8Options()
    if fp32_package.precision != "fp32":
        raise ExportError(
            f"{fp32_package.onnx_path.name} is {fp32_package.precision}; quantize from the fp32 package"
        )
    _check_frames(calib_frames, fp32_package.input_size)
    out_onnx = Path(out_onnx)
    out_onnx.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix=".rtseg-int8-", dir=out_onnx.parent) as tmp:
        source = Path(fp32_package.onnx_path)
        if options.quant_pre_process:
            with _quiet_quantizer():
                source = _pre_process(source, Path(tmp) / "pre.onnx")
        graph = onnx.load(str(source)).graph
        names, skipped_ops = excluded_nodes(graph, options.exclude)
        op_types = [op for op in options.op_types if op not in skipped_ops]
        if options.target == "cpu":  # "removable" activations: Clip/Relu fold into the conv's Q range
            op_types += [op for op in CPU_ACTIVATION_OPS if op not in op_types + sorted(skipped_ops)]
        quantized = Path(tmp) / out_onnx.name
        with _quiet_quantizer():
            _quantize(source, quantized, calib_frames, graph, options, names, op_types)
        model = onnx.load(str(quantized))  # read once for both checks
        problems = check_qdq_rules(model)
        if options.target == "tensorrt":
            raise_on_qdq_problems(problems, out_onnx.name)
        qdq_nodes = count_qdq(model)
        os.replace(quantized, out_onnx)
    calibration = _calibration_record(options, len(calib_frames), calib_source, op_types)
    calibration.update(tensorrt_compatible=not problems, qdq_nodes=qdq_nodes)
    return variant_meta(fp32_package, out_onnx, "int8", calibration=calibration)


def _calibration_record(options: Int8Options, frames: int, source: str, op_types: list[str]) -> dict:
    """The sidecar's `calibration` entry (the checks' results are added by the caller)."""
    return {
        "method": options.method,
        "frames": int(frames),
        "source": source,
        "excluded": list(options.exclude),
        "target": options.target,
        "placement": options.placement if options.target == "tensorrt" else "onnxruntime-default",
        "op_types": op_types,
        "excluded_ops": sorted(FLOAT_ONLY_OPS),
        "quant_pre_process": options.quant_pre_process,
        **({"percentile": options.percentile} if options.method == "percentile" else {}),
    }
