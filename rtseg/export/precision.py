"""Checkpoint -> model package at a chosen precision, with parity against PyTorch on real frames.

Always exports FP32 first (the reference graph, checked against PyTorch), then converts it to
FP16 or INT8 and checks the final graph against PyTorch again: max |logit diff| and argmax
agreement. An export below the precision's agreement threshold fails with ExportError and
leaves no package behind.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from rtseg.core.package import (
    PRECISIONS,
    ModelPackage,
    relative_reference,
    sidecar_for,
    staged_package,
    write_sidecar,
)
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


def _convert_graph(fp32: ModelPackage, out_onnx: Path, config: ExportConfig, size, log) -> dict:
    """Write the FP16 / INT8 graph of `fp32` to `out_onnx`; returns its sidecar fields."""
    if config.precision == "fp16":
        from rtseg.export.fp16 import fp16_graph

        return fp16_graph(fp32, out_onnx)
    from rtseg.export.int8 import int8_graph

    frames = calibration_frames(config.calib_source, config.calib_frames, size, seed=config.seed)
    log(f"calibrating int8 ({config.int8.method}) on {len(frames)} frames from {config.calib_source}")
    return int8_graph(fp32, out_onnx, frames, config.int8, calib_source=str(config.calib_source))


def export_model(config: ExportConfig, log: Callable[[str], None] = lambda line: None) -> ExportResult:
    """Export `config.checkpoint` to the package `config.output` at `config.precision`.

    Every path is checked before the work starts (export_paths). One pass: the checkpoint is
    loaded and the model built once; everything is written in a hidden folder beside the output
    (staged_package), and the graph and its sidecar move into place only when every check
    passed: a failed export (parity, Ctrl-C, a full disk) leaves an existing package as it was.
    """
    from rtseg.core.checkpoint import load_checkpoint
    from rtseg.export.onnx_export import check_parity
    from rtseg.export.package_export import export_fp32_graph, parity_record
    from rtseg.models import model_from_checkpoint

    export_paths(config)
    payload = load_checkpoint(config.checkpoint)
    model = model_from_checkpoint(payload)
    size = tuple(config.input_size or payload["input_size"])
    frames, source = parity_frames(config, size, log)
    threshold = config.min_agreement if config.min_agreement is not None else MIN_AGREEMENT[config.precision]
    output, checkpoint = Path(config.output), Path(config.checkpoint)
    with staged_package(output) as staged:
        tmp = staged.parent
        if config.precision == "fp32":
            meta, report = export_fp32_graph(payload, model, checkpoint, staged, frames, size, threshold)
            fp32_report, vs_fp32 = report, 1.0
            meta["parity"] = parity_record(report, source)
        else:
            fp32_path = tmp / f"{output.stem}_fp32.onnx"
            fp32_meta, fp32_report = export_fp32_graph(payload, model, checkpoint, fp32_path, frames, size)
            log(f"fp32 {fp32_report.line()}")
            meta = _convert_graph(write_sidecar(fp32_path, fp32_meta), staged, config, size, log)
            norm = payload["normalization"]
            report = check_parity(
                model, staged, frames, norm["mean"], norm["std"], min_agreement=threshold, max_diff=None
            )
            vs_fp32 = argmax_agreement(fp32_path, staged, frames)
            meta["parity"] = parity_record(report, source, argmax_agreement_vs_fp32=vs_fp32)
        # the checkpoint was named relative to the temporary folder: name it from the output's
        meta["source"] = {**meta["source"], "checkpoint": relative_reference(checkpoint, output.parent)}
        package = write_sidecar(staged, meta)
    final = ModelPackage(output.resolve(), sidecar_for(output).resolve(), package.meta)
    return ExportResult(final, report, fp32_report, source, vs_fp32)


def export_paths(config: ExportConfig) -> None:
    """Check every input and output before the work starts: the package must not overwrite the
    checkpoint or a calibration / parity input, and its folder must be writable."""
    sources = [
        ("--calib", frames_source_path(config.calib_source)),
        ("--parity-frames", frames_source_path(config.parity_source)),
    ]
    check_paths(
        inputs=[("checkpoint", config.checkpoint), *sources],
        outputs=[("--output", config.output), ("--output's sidecar", sidecar_for(config.output))],
    )


def frames_source_path(spec: str | None) -> str | None:
    """The file or folder a frames source names: itself, or DIR of `camvid:DIR:SPLIT`."""
    if not spec or Path(spec).exists():
        return spec
    parts = str(spec).split(":")
    return parts[1] if len(parts) == 3 and Path(parts[1]).exists() else None
