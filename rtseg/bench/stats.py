"""Latency statistics: percentiles of per-call times, and throughput."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from rtseg.errors import InputError


def percentile(samples: Sequence[float], q: float) -> float:
    """The q-th percentile (0..100) with linear interpolation between closest ranks
    (numpy's default, "linear": the value at rank (n - 1) * q / 100)."""
    if len(samples) == 0:
        raise InputError("no timing samples to take a percentile of")
    if not 0 <= q <= 100:
        raise InputError(f"percentile {q} is outside 0..100")
    return float(np.percentile(np.asarray(samples, dtype=np.float64), q))


def latency_summary(samples_ms: Sequence[float]) -> dict[str, float]:
    """{"p50", "p90", "p99", "mean", "min", "max"} of per-call latencies in milliseconds."""
    values = np.asarray(samples_ms, dtype=np.float64)
    if values.size == 0:
        raise InputError("no timing samples to summarise")
    summary = {f"p{q}": percentile(values, q) for q in (50, 90, 99)}
    summary.update(mean=float(values.mean()), min=float(values.min()), max=float(values.max()))
    return summary


def throughput_fps(samples_ms: Sequence[float], batch: int) -> float:
    """Frames per second over the timed calls: `batch * calls / total seconds`."""
    total_s = float(np.sum(samples_ms)) / 1000.0
    if total_s <= 0:
        raise InputError("timed calls add up to zero seconds; cannot compute a throughput")
    return batch * len(samples_ms) / total_s
