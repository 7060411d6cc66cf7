"""`rtseg bench`: speed, memory and accuracy of a model per backend x precision x size.

Each row (a dict, JSON-ready) describes one combination at one batch size:
`model`, `backend`, `precision`, `size` ("HxW"), `height`, `width`, `batch`,
`status` ("ok" | "skipped" | "failed") and `reason`,
`latency_ms` {p50, p90, p99, mean, min, max} per `infer` call, `infer_fps` (frames / s),
`miou` (on `--data`; `miou_seen_in_training`: True where the model was trained on that split,
so the figure compares packages, not accuracy), `agreement` (argmax agreement with the fp32
reference `agreement_ref` on `agreement_frames` frames from `agreement_source`),
`model_bytes`, `peak_rss_mb`, `gpu_mem_mb`,
`e2e_fps` / `e2e_ratio` / `e2e` (the Pipeline on `--video`, batch-1 rows),
`threads`, `iters`, `warmup`, `runtime`, `timestamp` and `machine` (see machine_info).
"""

from rtseg.bench.config import BenchConfig, DataSpec
from rtseg.bench.machine import machine_info, machine_summary
from rtseg.bench.plot import write_plot
from rtseg.bench.report import format_table, markdown_table, write_csv, write_json
from rtseg.bench.runner import BenchReport, run_bench
from rtseg.bench.stats import latency_summary, throughput_fps
from rtseg.errors import RtsegError


class GateError(RtsegError):
    """A combination's mIoU is under `--min-miou`, or a combination failed."""


def _failure(row: dict) -> str:
    label = f"{row['backend']} {row['precision']} {row['size']}"
    if row["status"] == "failed":
        return f"{label} batch {row['batch']} ({row['reason']})"
    return f"end to end {label} ({row['e2e']['failed']})"


def check_gate(report: BenchReport, min_miou: float | None) -> None:
    """Raise GateError (one line naming the combinations) when any failed or, with
    `min_miou`, when any measured combination's mIoU is under it."""
    failed = report.failed()
    if failed:
        names = "; ".join(_failure(r) for r in failed)
        raise GateError(f"{len(failed)} combination(s) failed: {names}")
    if min_miou is None:
        return
    below = report.below(min_miou)
    if below:
        names = ", ".join(
            f"{r['backend']} {r['precision']} {r['size']} "
            f"({'no mIoU' if r.get('miou') is None else format(r['miou'], '.3f')})"
            for r in below
        )
        raise GateError(f"mIoU under {min_miou:g}: {names}")


__all__ = [
    "BenchConfig",
    "BenchReport",
    "DataSpec",
    "GateError",
    "check_gate",
    "format_table",
    "latency_summary",
    "machine_info",
    "machine_summary",
    "markdown_table",
    "run_bench",
    "throughput_fps",
    "write_csv",
    "write_json",
    "write_plot",
]
