"""Checkpoint -> FP32 model package (ONNX + sidecar), with the parity check."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from rtseg.core.checkpoint import load_checkpoint, training_record
from rtseg.core.package import ModelPackage, relative_reference, sha256_file, write_sidecar
from rtseg.errors import ExportError
from rtseg.export import graph_cache
from rtseg.export.onnx_export import ParityReport, check_parity, deployable_graph, torch_to_onnx
from rtseg.models import model_from_checkpoint


def package_meta(
    payload: dict, checkpoint: Path, input_size: tuple[int, int], precision: str, output_dir: Path
) -> dict:
    """Sidecar fields derived from a checkpoint payload (see rtseg.core.package)."""
    h, w = input_size
    source = relative_reference(checkpoint, output_dir)
    training = training_record(payload)  # what `rtseg eval` / bench flag as not held out
    return {
        **({"training": training} if training else {}),
        "dataset": payload["labels"]["name"],
        "classes": list(payload["labels"]["classes"]),
        "palette": [list(map(int, c)) for c in payload["labels"]["palette"]],
        "input": {
            "name": "image",
            "layout": "NHWC",
            "dtype": "uint8",
            "color": "RGB",
            "height": int(h),
            "width": int(w),
        },
        "normalization": {k: list(v) for k, v in payload["normalization"].items()},
        "output": {"name": "class_ids", "kind": "class_ids", "dtype": "uint8"},
        "precision": precision,
        "model": {"arch": payload["model"]["arch"], "encoder": payload["model"]["encoder"]},
        "source": {"checkpoint": source, "sha256": sha256_file(checkpoint)},
    }


def parity_record(report: ParityReport, source: str | None = None, **extra) -> dict:
    """The sidecar's `parity` entry for a check against PyTorch."""
    record = {
        "against": "pytorch",
        "max_abs_logit_diff": report.max_abs_logit_diff,
        "argmax_agreement": report.argmax_agreement,
        "frames": report.frames,
    }
    if source is not None:
        record["frames_source"] = source
    return {**record, **extra}


def export_fp32_graph(
    payload: dict,
    model,
    checkpoint: Path,
    onnx_path: Path,
    frames: np.ndarray,
    size: tuple[int, int],
    min_agreement: float = 0.999,
) -> tuple[dict, ParityReport]:
    """Write the FP32 graph of an already loaded checkpoint (`payload`, and `model` built from it)
    to `onnx_path`, check it against PyTorch on `frames`, and return the sidecar fields (with
    the parity record) and the report; the sidecar itself is the caller's to write."""
    norm = payload["normalization"]
    graph = deployable_graph(model, size, norm["mean"], norm["std"])
    onnx_path.parent.mkdir(parents=True, exist_ok=True)
    cached = torch_to_onnx(*graph, onnx_path)
    try:
        report = check_parity(
            model, onnx_path, frames, norm["mean"], norm["std"], min_agreement=min_agreement
        )
    except ExportError:
        if cached is None:
            raise
        graph_cache.evict(cached)  # a cached graph that disagrees is never trusted: export afresh
        torch_to_onnx(*graph, onnx_path, use_cache=False)
        report = check_parity(
            model, onnx_path, frames, norm["mean"], norm["std"], min_agreement=min_agreement
        )
    meta = package_meta(payload, checkpoint, size, "fp32", onnx_path.parent)
    meta["parity"] = parity_record(report)
    return meta, report


def export_checkpoint(
    checkpoint: str | Path,
    onnx_path: str | Path,
    frames: np.ndarray,
    input_size: tuple[int, int] | None = None,
    min_agreement: float = 0.999,
) -> tuple[ModelPackage, ParityReport]:
    """Export an FP32 package. `frames`: `(N, H, W, 3) uint8 RGB` at the input size, used for
    the parity check (real frames, not noise)."""
    checkpoint, onnx_path = Path(checkpoint), Path(onnx_path)
    payload = load_checkpoint(checkpoint)
    size = tuple(input_size or payload["input_size"])
    meta, report = export_fp32_graph(
        payload, model_from_checkpoint(payload), checkpoint, onnx_path, frames, size, min_agreement
    )
    return write_sidecar(onnx_path, meta), report
