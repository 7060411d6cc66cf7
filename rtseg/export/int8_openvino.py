"""The INT8 package for OpenVINO: the FP32 package quantized post-training by NNCF (OpenVINO's own
quantizer), calibrated on real frames, written as a package variant `NAME_int8ov.onnx` + sidecar.

NNCF's ONNX backend places QuantizeLinear/DequantizeLinear pairs where OpenVINO's CPU plugin
fuses them into its INT8 (VNNI / AMX) kernels; the result is still an ONNX package (ONNX Runtime
reads it too, for parity), so the package format, hashing and sidecar stay one. The package's
own pre- and post-processing (uint8 input, normalization, argmax) stay in float: NNCF quantizes
the convolutions and matrix products. Which package the default runs is decided from measured
val mIoU and OpenVINO ms per frame in the sidecars (rtseg.core.package.pick_openvino_variant).
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import numpy as np

from rtseg.core.package import ModelPackage, write_sidecar
from rtseg.errors import ExportError, MissingDependencyError
from rtseg.export.fp16 import variant_meta


def _check_calibration(fp32_package: ModelPackage, frames: np.ndarray) -> None:
    h, w = fp32_package.input_size
    if fp32_package.precision != "fp32":
        name, precision = fp32_package.onnx_path.name, fp32_package.precision
        raise ExportError(f"{name} is {precision}; quantize the fp32 package")
    if frames.ndim != 4 or frames.shape[1:] != (h, w, 3) or frames.dtype != np.uint8 or not len(frames):
        got = f"{frames.shape} {frames.dtype}"
        raise ExportError(f"calibration frames must be (N, {h}, {w}, 3) uint8, got {got}")


def quantize_int8_openvino(
    fp32_package: ModelPackage,
    out_onnx: str | Path,
    calib_frames: np.ndarray,
    calib_source: str = "",
) -> ModelPackage:
    """Write the NNCF INT8 package `out_onnx` (+ sidecar, precision "int8", calibration target
    "openvino") of `fp32_package`, calibrated on `calib_frames` `(N, H, W, 3) uint8 RGB` at the
    package's input size. MissingDependencyError without nncf (the `int8-openvino` extra)."""
    try:
        import nncf
        import onnx
    except ImportError as exc:
        raise MissingDependencyError("nncf", "int8-openvino", "OpenVINO INT8 quantization") from exc
    _check_calibration(fp32_package, calib_frames)
    model = onnx.load(str(fp32_package.onnx_path))
    input_name = model.graph.input[0].name
    dataset = nncf.Dataset(list(calib_frames), lambda frame: {input_name: frame[None]})
    quantized = nncf.quantize(model, dataset, subset_size=len(calib_frames))
    out_onnx = Path(out_onnx)
    out_onnx.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix=".rtseg-int8ov-", dir=out_onnx.parent) as tmp:
        written = Path(tmp) / out_onnx.name
        onnx.save(quantized, str(written))
        os.replace(written, out_onnx)
    calibration = {
        "method": "nncf-post-training",
        "frames": int(len(calib_frames)),
        "source": calib_source,
        "target": "openvino",
        "nncf": nncf.__version__,
    }
    return write_sidecar(out_onnx, variant_meta(fp32_package, out_onnx, "int8", calibration=calibration))
