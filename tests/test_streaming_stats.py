"""rtseg.core.streaming_stats: percentiles within 1 % of exact, in constant memory."""

from __future__ import annotations

import math
import sys

import numpy as np
import pytest

from rtseg.core.streaming_stats import BUCKETS, StreamingStats
from rtseg.pipeline.stats import PipelineStats

RNG = np.random.default_rng(7)
DATA = {
    "latencies (log-normal, 30 ms)": RNG.lognormal(math.log(0.03), 0.5, 50_000),
    "uniform 1..100 ms": RNG.uniform(1.0, 100.0, 20_000),
    "bimodal (cache hits and misses)": np.concatenate(
        [RNG.normal(0.004, 0.0005, 9_000), RNG.normal(0.040, 0.004, 1_000)]
    ),
    "the integers 1..100": np.arange(1, 101, dtype=np.float64),
    "a few samples": RNG.exponential(0.002, 17),
}


@pytest.mark.parametrize("name", list(DATA))
def test_percentiles_within_one_percent_of_exact(name):
    values = DATA[name]
    stats = StreamingStats(values)
    for q in (50, 90, 95, 99):
        exact = float(np.percentile(values, q))
        assert stats.percentile(q) == pytest.approx(exact, rel=0.01), (name, q)
    assert stats.count == len(values)
    assert stats.mean == pytest.approx(values.mean())
    assert (stats.min, stats.max) == (values.min(), values.max())
    assert stats.percentile(0) == values.min() and stats.percentile(100) == values.max()


def test_memory_is_constant_however_many_values():
    stats = StreamingStats([0.01])
    size = sys.getsizeof(stats._counts)
    stats.extend(RNG.lognormal(math.log(0.01), 1.0, 200_000))
    assert len(stats._counts) == BUCKETS and sys.getsizeof(stats._counts) == size
    assert stats.count == 200_001


def test_edges_empty_zero_negative_nan_huge():
    empty = StreamingStats()
    assert empty.summary() == dict.fromkeys(("mean", "min", "p50", "p90", "p95", "p99", "max"), 0.0)
    stats = StreamingStats([0.0, -1.0, float("nan"), 1e12])
    assert stats.count == 3 and stats.min == 0.0 and stats.max == 1e12
    assert stats.percentile(50) == 0.0
    with pytest.raises(ValueError, match="0..100"):
        stats.percentile(101)


def test_pipeline_stats_keep_no_per_frame_list():
    stats = PipelineStats(frames_read=1)
    for i in range(10_000):
        stats.record_written(i * 0.01, i * 0.01 + 0.02 + (i % 10) * 0.001)
        stats.record_display(i * 0.01, i * 0.01 + 0.05)
        stats.stages["infer"].record(0.004, 0.001)
    assert not any(isinstance(v, list) for v in vars(stats).values())
    data = stats.to_json()
    assert data["frames"] == 10_000 and data["stages"]["infer"]["items"] == 10_000
    assert data["latency_ms"]["p50"] == pytest.approx(24.5, rel=0.01)
    assert data["latency_ms"]["max"] == pytest.approx(29.0)
    assert data["display_latency_ms"]["p95"] == pytest.approx(50.0, rel=0.01)
    assert set(data["latency_ms"]) == {"mean", "min", "p50", "p90", "p95", "p99", "max"}
