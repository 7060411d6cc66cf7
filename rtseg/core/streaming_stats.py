"""Streaming statistics in constant memory: count, mean, min, max and percentiles of a stream of
non-negative values (latencies), however long it runs.

Percentiles come from a fixed histogram of logarithmic buckets (each 1 % wider than the last,
from 1e-9 to 1e6 in the values' unit): a value is known to within half a bucket, so a
percentile is within 0.5 % of numpy's exact `np.percentile(values, q)` (linear interpolation
between closest ranks), and exact at the minimum and maximum. Memory is at most ~3,500 counts,
allocated at the first value; `add` is O(1).

One implementation for every latency figure rtseg reports: the pipeline's per-frame latencies,
per-stage busy and wait times and display latencies, and the bench's per-call times.
"""

from __future__ import annotations

import math
from collections.abc import Iterable

import numpy as np

LOW = 1e-9  # values at or below this share the lowest bucket (reported as the minimum)
HIGH = 1e6  # values above this share the highest bucket (reported as the maximum)
GROWTH = 1.01  # each bucket is 1 % wider than the one below it
_LOG_GROWTH = math.log(GROWTH)
BUCKETS = math.ceil(math.log(HIGH / LOW) / _LOG_GROWTH) + 2
SUMMARY_PERCENTILES = (50, 90, 95, 99)


def _bucket(value: float) -> int:
    if value <= LOW:
        return 0
    if value >= HIGH:
        return BUCKETS - 1
    return min(int(math.log(value / LOW) / _LOG_GROWTH) + 1, BUCKETS - 2)


def _bucket_value(index: int) -> float:
    """The geometric middle of bucket `index` (bucket 0 holds values <= LOW)."""
    if index == 0:
        return 0.0
    return LOW * GROWTH ** (index - 0.5)


class StreamingStats:
    """Count, sum, min, max and a log-bucket histogram of the values added (see module doc).

    One writer thread per instance (each pipeline stage owns its own); reading while it writes
    gives a slightly stale but consistent-enough view, never an error.
    """

    __slots__ = ("count", "total", "min", "max", "_counts")

    def __init__(self, values: Iterable[float] = ()):
        self.count = 0
        self.total = 0.0
        self.min = math.inf
        self.max = -math.inf
        self._counts: list[int] | None = None  # allocated at the first value
        self.extend(values)

    def add(self, value: float) -> None:
        """Record one value (NaN is ignored; negative values count as 0)."""
        if value != value:  # NaN
            return
        value = max(float(value), 0.0)
        if self._counts is None:
            self._counts = [0] * BUCKETS
        self._counts[_bucket(value)] += 1
        self.count += 1
        self.total += value
        if value < self.min:
            self.min = value
        if value > self.max:
            self.max = value

    def extend(self, values: Iterable[float]) -> None:
        for value in values:
            self.add(value)

    @property
    def mean(self) -> float:
        return self.total / self.count if self.count else 0.0

    def percentile(self, q: float) -> float:
        """The q-th percentile (0..100), numpy's linear definition, from the histogram; 0 when
        empty. ValueError for q outside 0..100."""
        return self.percentiles([q])[0]

    def percentiles(self, qs: Iterable[float]) -> list[float]:
        qs = list(qs)
        if any(not 0 <= q <= 100 for q in qs):
            raise ValueError(f"percentiles must be within 0..100, got {qs}")
        if not self.count:
            return [0.0 for _ in qs]
        cumulative = np.cumsum(self._counts)
        out = []
        for q in qs:
            rank = q / 100.0 * (self.count - 1)
            low, high = math.floor(rank), math.ceil(rank)
            v_low, v_high = self._nth(cumulative, low), self._nth(cumulative, high)
            out.append(v_low + (rank - low) * (v_high - v_low))
        return out

    def _nth(self, cumulative: np.ndarray, n: int) -> float:
        """The n-th smallest value (0-based), to within its bucket, clamped to [min, max]."""
        if n == 0:
            return self.min
        if n == self.count - 1:
            return self.max
        index = int(np.searchsorted(cumulative, n + 1))
        return min(max(_bucket_value(index), self.min), self.max)

    def summary(self, scale: float = 1.0, digits: int = 3) -> dict[str, float]:
        """{mean, min, p50, p90, p95, p99, max} of the values times `scale` (1000: seconds -> ms),
        rounded to `digits`; zeros when empty. The keys every latency figure of rtseg uses."""
        p50, p90, p95, p99 = self.percentiles(SUMMARY_PERCENTILES)
        values = {
            "mean": self.mean,
            "min": self.min if self.count else 0.0,
            "p50": p50,
            "p90": p90,
            "p95": p95,
            "p99": p99,
            "max": self.max if self.count else 0.0,
        }
        return {key: round(value * scale, digits) for key, value in values.items()}

    def __repr__(self) -> str:
        return f"StreamingStats(count={self.count}, mean={self.mean:.6g}, max={self.max:.6g})"
