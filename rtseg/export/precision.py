"""Checkpoint -> model package at a chosen precision, with parity against PyTorch on real frames.

Always exports FP32 first (the reference graph, checked against PyTorch), then converts it to
FP16 or INT8 and checks the final graph against PyTorch again: max |logit diff| and argmax
agreement. An export below the precision's agreement threshold fails with ExportError and
leaves no package behind.
"""

from __future__ import annotations

import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from rtseg.core.package import PRECISIONS, ModelPackage, sidecar_for, staged_package, write_sidecar
from rtseg.core.paths import check_paths
from rtseg.errors import InputError
from rtseg.export.calibration import calibration_frames, synthetic_road_frames
from rtseg.export.int8 import Int8Options

if TYPE_CHECKING:  # torch: imported when an export runs, not with this module
    from rtseg.export.onnx_export import ParityReport

# Minimum argmax agreement with PyTorch per precision (fraction of pixels).
MIN_AGREEMENT = {"fp32": 0.999, "fp16": 0.99, "int8": 0.95}


@dataclass(frozen=True)
class ExportConfig:
    """What `rtseg export` does. `input_size` (h, w) defaults to the checkpoint's; `parity_source`
    defaults to `calib_source`; `min_agreement` defaults to MIN_AGREEMENT[precision]."""

    checkpoint: Path
    output: Path
    precision: str = "fp32"
    input_size: tuple[int, int] | None = None
    calib_source: str | None = None
    calib_frames: int = 64
    int8: Int8Options = field(default_factory=Int8Options)
    parity_source: str | None = None
    parity_frames: int = 16
    min_agreement: float | None = None
    seed: int = 0

    def __post_init__(self):
        if self.precision not in PRECISIONS:
            raise InputError(f"precision must be one of {', '.join(PRECISIONS)}, got {self.precision!r}")
        if self.precision == "int8" and not self.calib_source:
            raise InputError("int8 needs real calibration frames: give --calib VIDEO|FOLDER|camvid:DIR:SPLIT")
        if Path(self.output).suffix != ".onnx":
            raise InputError(f"output {self.output} must end in .onnx (its sidecar .json goes beside it)")


@dataclass(frozen=True)
class ExportResult:
    package: ModelPackage
    parity: ParityReport  # the final graph against PyTorch
    fp32_parity: ParityReport  # the intermediate FP32 graph against PyTorch
    parity_source: str  # where the parity frames came from
    agreement_vs_fp32: float | None = None  # argmax agreement of the final graph with the FP32 one


def argmax_agreement(onnx_a: str | Path, onnx_b: str | Path, frames: np.ndarray, threads: int = 2) -> float:
    """Fraction of pixels where two class-id graphs agree on `(N, H, W, 3) uint8 RGB` frames."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.log_severity_level = 3
    options.intra_op_num_threads = threads
    sessions = [
        ort.InferenceSession(str(p), options, providers=["CPUExecutionProvider"]) for p in (onnx_a, onnx_b)
    ]
    name = sessions[0].get_inputs()[0].name
    agree = 0
    for frame in frames:
        a, b = (s.run(None, {name: frame[None]})[0] for s in sessions)
        agree += int((a == b).sum())
    return agree / max(1, frames.shape[0] * frames.shape[1] * frames.shape[2])


def parity_frames(config: ExportConfig, size: tuple[int, int], log: Callable[[str], None]):
    """(frames, description): real frames from --parity-frames or --calib, else generated ones."""
    source = config.parity_source or config.calib_source
    if source:
        # another seed than calibration's, so parity is mostly measured on frames it did not see
        return calibration_frames(source, config.parity_frames, size, seed=config.seed + 1), str(source)
    log(
        "warning: no --parity-frames or --calib given: checking parity on generated road-like frames; "
        "give real frames for a meaningful check"
    )
    return synthetic_road_frames(config.parity_frames, size, seed=config.seed), "generated frames"


def _convert(fp32: ModelPackage, config: ExportConfig, size, log, output: Path) -> ModelPackage:
    if config.precision == "fp16":
        from rtseg.export.fp16 import convert_fp16

        return convert_fp16(fp32, output)
    from rtseg.export.int8 import quantize_int8

    frames = calibration_frames(config.calib_source, config.calib_frames, size, seed=config.seed)
    log(f"calibrating int8 ({config.int8.method}) on {len(frames)} frames from {config.calib_source}")
    return quantize_int8(fp32, output, frames, config.int8, calib_source=str(config.calib_source))


def export_paths(config: ExportConfig) -> None:
    """Check every input and output before the work starts: the package must not overwrite the
    checkpoint or a calibration / parity input, and its folder must be writable."""
    sources = [
        ("--calib", _source_path(config.calib_source)),
        ("--parity-frames", _source_path(config.parity_source)),
    ]
    check_paths(
        inputs=[("checkpoint", config.checkpoint), *sources],
        outputs=[("--output", config.output), ("--output's sidecar", sidecar_for(config.output))],
    )


def _source_path(spec: str | None) -> str | None:
    """The file or folder a frames source names: itself, or DIR of `camvid:DIR:SPLIT`."""
    if not spec or Path(spec).exists():
        return spec
    parts = str(spec).split(":")
    return parts[1] if len(parts) == 3 and Path(parts[1]).exists() else None


def _record_parity(package: ModelPackage, report: ParityReport, source: str, **extra) -> ModelPackage:
    meta = dict(package.meta)
    meta["parity"] = {
        "against": "pytorch",
        "max_abs_logit_diff": report.max_abs_logit_diff,
        "argmax_agreement": report.argmax_agreement,
        "frames": report.frames,
        "frames_source": source,
        **extra,
    }
    return write_sidecar(package.onnx_path, meta)


def export_model(config: ExportConfig, log: Callable[[str], None] = lambda line: None) -> ExportResult:
    """Export `config.checkpoint` to the package `config.output` at `config.precision`.

    Every path is checked before the work starts (export_paths); the package is written in a
    hidden folder beside the output and renamed into place only when complete and checked, so
    a failure (parity, Ctrl-C, a full disk) leaves an existing package as it was."""
    from rtseg.core.checkpoint import load_checkpoint

    export_paths(config)
    payload = load_checkpoint(config.checkpoint)
    size = tuple(config.input_size or payload["input_size"])
    frames, source = parity_frames(config, size, log)
    threshold = config.min_agreement if config.min_agreement is not None else MIN_AGREEMENT[config.precision]
    output = Path(config.output)
    with staged_package(output) as staged:
        result = _export_staged(config, payload, staged, frames, size, source, threshold, log)
    package = result.package
    final = ModelPackage(output.resolve(), sidecar_for(output).resolve(), package.meta)
    return replace(result, package=final)


def _export_staged(config, payload, output: Path, frames, size, source, threshold, log) -> ExportResult:
    """The export into `output` (a staged path: a failure leaves no package behind)."""
    from rtseg.export.onnx_export import check_parity
    from rtseg.export.package_export import export_checkpoint
    from rtseg.models import model_from_checkpoint

    if config.precision == "fp32":
        package, report = export_checkpoint(
            config.checkpoint,
            output,
            frames,
            size,
            min_agreement=threshold,
            relative_to=Path(config.output).parent,
        )
        package = _record_parity(package, report, source)
        return ExportResult(package, report, report, source, 1.0)
    with tempfile.TemporaryDirectory(prefix="rtseg-export-") as tmp:
        fp32_path = Path(tmp) / f"{output.stem}_fp32.onnx"
        fp32, fp32_report = export_checkpoint(config.checkpoint, fp32_path, frames, size)
        log(f"fp32 {fp32_report.line()}")
        package = _convert(fp32, config, size, log, output)
        norm = payload["normalization"]
        model = model_from_checkpoint(payload)
        report = check_parity(
            model, output, frames, norm["mean"], norm["std"], min_agreement=threshold, max_diff=None
        )
        vs_fp32 = argmax_agreement(fp32_path, output, frames)
    package = _record_parity(package, report, source, argmax_agreement_vs_fp32=vs_fp32)
    return ExportResult(package, report, fp32_report, source, vs_fp32)
