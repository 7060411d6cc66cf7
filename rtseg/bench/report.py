"""Benchmark output: a terminal table, JSON (a list of rows), CSV, Markdown (the plot: plot.py)."""

from __future__ import annotations

import csv
import io
import json
import math
from pathlib import Path

from rtseg.core.package import portable
from rtseg.core.paths import atomic_write_text
from rtseg.errors import OutputError

CSV_COLUMNS = (
    "model",
    "backend",
    "precision",
    "size",
    "batch",
    "status",
    "reason",
    "latency_p50_ms",
    "latency_p90_ms",
    "latency_p99_ms",
    "cpu_ms_per_call",
    "infer_fps",
    "e2e_fps",
    "e2e_ratio",
    "codec_path",
    "miou",
    "pixel_acc",
    "miou_seen_in_training",
    "agreement",
    "agreement_ref",
    "model_bytes",
    "peak_rss_mb",
    "gpu_mem_mb",
    "threads",
    "runtime",
    "device",
    "cpu",
    "gpu",
    "onnxruntime",
    "openvino",
    "torch",
    "tensorrt",
    "rtseg",
    "timestamp",
)


def _clean(value):
    """NaN / inf -> None, recursively, so the JSON stays valid."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _clean(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_clean(v) for v in value]
    return value


def prepare_output(path: str | Path) -> Path:
    """`path` with its folder made (the command checked beforehand that it can be: check_paths)."""
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise OutputError(f"{path}: cannot create folder {path.parent} ({exc.strerror})") from None
    return path


def write_json(rows: list[dict], path: str | Path) -> Path:
    """The rows as a JSON list (machine info inside each row; paths by name, see portable);
    replaces `path` only when whole."""
    path = prepare_output(path)
    return atomic_write_text(path, json.dumps(_clean(portable(rows)), indent=2) + "\n")


def csv_record(row: dict) -> dict:
    """One flat CSV record of a row (machine reduced to CPU, GPU and key versions)."""
    machine = row.get("machine") or {}
    versions = machine.get("versions") or {}
    latency = row.get("latency_ms") or {}
    e2e = row.get("e2e") or {}
    record = {key: row.get(key) for key in CSV_COLUMNS}
    record.update(
        latency_p50_ms=latency.get("p50"),
        latency_p90_ms=latency.get("p90"),
        latency_p99_ms=latency.get("p99"),
        cpu=machine.get("cpu"),
        gpu="; ".join(g["name"] for g in machine.get("gpus") or []) or None,
        codec_path=f"{e2e['decoder']} -> {e2e['encoder']}" if e2e.get("decoder") else None,
        **{k: versions.get(k) for k in ("onnxruntime", "openvino", "torch", "tensorrt", "rtseg")},
    )
    return _clean(record)


def write_csv(rows: list[dict], path: str | Path) -> Path:
    path = prepare_output(path)
    text = io.StringIO(newline="")
    writer = csv.DictWriter(text, fieldnames=CSV_COLUMNS)
    writer.writeheader()
    for row in rows:
        writer.writerow(csv_record(row))
    return atomic_write_text(path, text.getvalue())


def _num(value, fmt: str) -> str:
    return "-" if value is None or (isinstance(value, float) and math.isnan(value)) else fmt % value


def precision_label(row: dict) -> str:
    """The package's precision, and what an engine computed it in when that differs: OpenVINO's
    "openvino[CPU, bf16, 2 threads]" on the fp32 package is "fp32 (bf16)"."""
    runtime = row.get("runtime") or ""
    if row.get("backend") == "openvino" and "[" in runtime:
        compute = runtime.split("[", 1)[1].split(",")[1].strip() if runtime.count(",") >= 2 else ""
        if compute and compute not in (row["precision"], "int8"):
            return f"{row['precision']} ({compute})"
    return row["precision"]


def backend_label(row: dict) -> str:
    """The backend, with where it ran when that is not implied: "onnxruntime (cuda)"."""
    device = row.get("device")
    if device in (None, "cpu") or (row["backend"] == "tensorrt" and device == "cuda"):
        return row["backend"]
    return f"{row['backend']} ({device})"


def _cells(row: dict) -> list[str]:
    lat = row.get("latency_ms") or {}
    e2e = _num(row.get("e2e_fps"), "%.1f")
    if row.get("e2e_ratio") is not None:
        e2e += f" ({row['e2e_ratio']:.0%})"
    return [
        backend_label(row),
        precision_label(row),
        row["size"],
        str(row["batch"]),
        _num(lat.get("p50"), "%.1f"),
        _num(row.get("cpu_ms_per_call"), "%.1f"),
        _num(lat.get("p90"), "%.1f"),
        _num(lat.get("p99"), "%.1f"),
        _num(row.get("infer_fps"), "%.1f"),
        e2e,
        _num(row.get("miou"), "%.3f"),
        _num(row.get("agreement"), "%.4f"),
        _num(_mb(row.get("model_bytes")), "%.1f"),
        _num(row.get("peak_rss_mb"), "%.0f"),
    ]


HEADER = [
    "backend",
    "precision",
    "size",
    "batch",
    "p50 ms",
    "CPU ms",
    "p90 ms",
    "p99 ms",
    "fps",
    "e2e fps",
    "mIoU",
    "agree",
    "model MB",
    "RSS MB",
]


def _mb(value):
    return None if value is None else value / 2**20


def not_measured(rows: list[dict]) -> list[str]:
    """Skipped / failed combinations grouped by backend, size and reason, one line each
    ("tensorrt fp32, fp16, int8 360x480: skipped: TensorRT not installed"), then end-to-end
    runs that were skipped or failed."""
    groups: dict[tuple, list[str]] = {}
    for row in rows:
        if row["status"] != "ok":
            key = (row["backend"], row["size"], row["batch"], row["status"], row["reason"])
            groups.setdefault(key, []).append(row["precision"])
    lines = []
    for (backend, size, batch, status, reason), precisions in groups.items():
        at_batch = f" batch {batch}" if batch != 1 else ""
        lines.append(f"{backend} {', '.join(precisions)} {size}{at_batch}: {status}: {reason}")
    for row in rows:
        for status in ("skipped", "failed"):
            if status in (row.get("e2e") or {}):
                lines.append(
                    f"end to end {row['backend']} {row['precision']} {row['size']}: "
                    f"{status}: {row['e2e'][status]}"
                )
    return lines


def time_breakdown(rows: list[dict]) -> list[str]:
    """Per end-to-end run, where the time goes: busy milliseconds per frame in each pipeline
    stage ("onnxruntime int8 360x480: 12.3 fps; capture 10.2, infer 61.0, overlay 4.1,
    sink 28.9 ms")."""
    lines = []
    for row in rows:
        stages = (row.get("e2e") or {}).get("stages") or {}
        parts = [
            f"{name} {stage['busy_ms_mean']:.1f}"
            for name, stage in stages.items()
            if isinstance(stage, dict) and stage.get("busy_ms_mean") is not None
        ]
        if parts and row.get("e2e_fps") is not None:
            lines.append(
                f"{row['backend']} {row['precision']} {row['size']}: "
                f"{row['e2e_fps']:.1f} fps; {', '.join(parts)} ms"
            )
    return lines


def format_table(rows: list[dict]) -> str:
    """The measured rows as an aligned text table, then what was not measured and why."""
    body = [_cells(r) for r in rows if r["status"] == "ok"]
    widths = [max(len(h), *(len(c[i]) for c in body)) if body else len(h) for i, h in enumerate(HEADER)]
    numeric = set(range(3, len(HEADER)))

    def line(cells):
        return "  ".join(
            c.rjust(w) if i in numeric else c.ljust(w) for i, (c, w) in enumerate(zip(cells, widths))
        ).rstrip()

    out = [line(HEADER), line(["-" * w for w in widths])] + [line(c) for c in body]
    out += [f"  {text}" for text in not_measured(rows)]
    breakdown = time_breakdown(rows)
    if breakdown:
        out += ["end to end, busy ms per frame in each pipeline stage:"]
        out += [f"  {text}" for text in breakdown]
    return "\n".join(out)


MD_HEADER = (
    "| Backend | Precision | Input (HxW) | Batch | Latency p50 / p90 / p99 (ms) | CPU ms / call | "
    "Inference fps | End-to-end fps (share) | mIoU | Agreement with fp32 | Model MB | "
    "Peak RSS MB |\n|---|---|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|"
)


def _md_row(row: dict) -> str:
    lat = row.get("latency_ms") or {}
    latency = " / ".join(_num(lat.get(k), "%.1f") for k in ("p50", "p90", "p99"))
    e2e = _num(row.get("e2e_fps"), "%.1f")
    if row.get("e2e_ratio") is not None:
        e2e += f" ({row['e2e_ratio']:.0%})"
    cells = [
        backend_label(row),
        precision_label(row),
        row["size"],
        str(row["batch"]),
        latency,
        _num(row.get("cpu_ms_per_call"), "%.1f"),
        _num(row.get("infer_fps"), "%.1f"),
        e2e,
        _num(row.get("miou"), "%.3f"),
        _num(row.get("agreement"), "%.4f"),
        _num(_mb(row.get("model_bytes")), "%.1f"),
        _num(row.get("peak_rss_mb"), "%.0f"),
    ]
    return "| " + " | ".join(cells) + " |"


def markdown_table(rows: list[dict], plot: str | None = None) -> str:
    """README section: the machine, what was measured on what, the table, what was not
    measured and why, and the plot (a path relative to the README)."""
    from rtseg.bench.machine import machine_summary

    if not rows:
        raise OutputError("no benchmark rows to put in a table")
    first = rows[0]
    facts = [
        f"Model `{first['model']}`",
        f"{first['iters']} timed calls after {first['warmup']} warm-up calls",
    ]
    if first.get("data"):
        images = next((r["miou_images"] for r in rows if r.get("miou_images")), None)
        seen = any(r.get("miou_seen_in_training") for r in rows)
        facts.append(
            f"mIoU on {first['data']}"
            + (f" ({images} images)" if images else "")
            + (" (a split the model was trained on: it compares the packages, not accuracy)" if seen else "")
        )
    if first.get("video"):
        facts.append(
            f"end to end: {Path(first['video']).name} decoded, segmented, overlaid "
            f"and encoded (share = end-to-end fps / inference fps)"
        )
    lines = [
        f"Measured on {machine_summary(first['machine'])}, {first['timestamp']}.",
        "; ".join(facts) + ".",
        "",
        MD_HEADER,
    ]
    lines += [_md_row(r) for r in rows if r["status"] == "ok"]
    breakdown = time_breakdown(rows)
    if breakdown:
        lines += [
            "",
            "Where the end-to-end time goes: busy milliseconds per frame in each "
            "pipeline stage (the stages run in parallel threads; the busiest sets the fps):",
            "",
        ] + [f"- {text}" for text in breakdown]
    missing = not_measured(rows)
    if missing:
        lines += ["", "Not measured here:", ""] + [f"- {text}" for text in missing]
    if plot:
        lines += ["", f"![inference and end-to-end fps against accuracy]({plot})"]
    return "\n".join(lines)
