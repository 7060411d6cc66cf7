"""Latency statistics of per-call times, and throughput.

The summary is rtseg's one latency summary (rtseg.core.streaming_stats, the pipeline's too):
keys mean, min, p50, p90, p95, p99, max; percentiles within 0.5 % of the exact ones.
"""

from __future__ import annotations

from collections.abc import Sequence

from rtseg.core.streaming_stats import StreamingStats
from rtseg.errors import InputError


def latency_summary(samples_ms: Sequence[float]) -> dict[str, float]:
    """{"mean", "min", "p50", "p90", "p95", "p99", "max"} of per-call latencies in milliseconds."""
    stats = StreamingStats(samples_ms)
    if not stats.count:
        raise InputError("no timing samples to summarise")
    return stats.summary()


def throughput_fps(samples_ms: Sequence[float], batch: int) -> float:
    """Frames per second over the timed calls: `batch * calls / total seconds`."""
    total_s = float(sum(samples_ms)) / 1000.0
    if total_s <= 0:
        raise InputError("timed calls add up to zero seconds; cannot compute a throughput")
    return batch * len(samples_ms) / total_s
