"""`ResultStream`: a lazy iterator of per-frame results: a Pipeline lane whose sink is the caller.

The same Pipeline as `rtseg run` (capture, the one infer stage, overlay, sink; newest frame wins
for live sources), with one lane whose output is a queue the caller's loop takes from: the
overlay stage upsamples each frame's ids to its size and draws nothing. Stopping early (break,
`close()`, garbage collection, the `with` block's end) stops and joins the threads; nothing
keeps running behind the caller's back.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import numpy as np

from rtseg.pipeline.lane import Lane
from rtseg.pipeline.queues import END, FrameItem, StageQueue, StopRequested
from rtseg.pipeline.runner import Pipeline, PipelineConfig
from rtseg.pipeline.stats import PipelineStats

__all__ = ["FrameResult", "ResultStream"]


@dataclass(frozen=True)
class _Undrawn:
    """The model as the stream's pipeline sees it: a backend, nothing to draw with."""

    backend: object
    classes: tuple = ()
    palette: np.ndarray = field(default_factory=lambda: np.zeros((1, 3), np.uint8))


@dataclass(frozen=True)
class FrameResult:
    """One frame of a stream, in source order.

    index: frame number in the source (0-based; live sources skip the dropped ones).
    frame: `(H, W, 3) uint8 RGB` as the source delivered it.
    ids: `(H, W) uint8` class ids at the frame's size.
    timestamp: seconds from the stream's first captured frame to this frame's capture.
    latency_ms: milliseconds from this frame's capture to this result being handed out.
    """

    index: int
    frame: np.ndarray
    ids: np.ndarray
    timestamp: float
    latency_ms: float


class ResultStream:
    """Iterator of FrameResult over `source` run through `backend` (see the module docstring).

    source: a FrameSource; closed by `close()` when `owns_source`. backend: a Backend, called
        from the infer thread only. max_frames: read at most this many frames. queue_size:
        frames in flight between the stages for a file source (live sources: 1, newest wins).
    `stats`: the PipelineStats (frames handed out, dropped, stage times, latencies).
    """

    def __init__(
        self,
        source,
        backend,
        *,
        max_frames: int | None = None,
        queue_size: int = 4,
        owns_source: bool = False,
        poll_s: float = 0.05,
        join_timeout_s: float = 5.0,
    ):
        if queue_size < 1:
            raise ValueError(f"queue_size must be >= 1, got {queue_size}")
        self._source, self._owns_source = source, owns_source
        config = PipelineConfig(max_frames=max_frames, queue_size=queue_size, handle_signals=False,
                                poll_s=poll_s, join_timeout_s=join_timeout_s)  # fmt: skip
        size = config.live_queue_size if source.live else queue_size
        self._lane = Lane(0, None, source)
        self._results = self._lane.results = StageQueue(size, self._lane.ctx.stop, poll_s)
        self._pipeline = Pipeline([self._lane], _Undrawn(backend), config)
        self.stats: PipelineStats = self._lane.stats
        self._started = self._done = False

    def __iter__(self) -> ResultStream:
        return self

    def __next__(self) -> FrameResult:
        if self._done:
            raise StopIteration
        if not self._started:
            self._started = True
            self._pipeline.start()
        try:
            item = self._results.get()
        except StopRequested:  # a stage failed (or close() was called from another thread)
            item = END
        if item is END:
            self._finish()
            raise StopIteration
        return self._result(item)

    def _result(self, item: FrameItem) -> FrameResult:
        handed_out = time.perf_counter()
        first = self.stats.first_capture_t if self.stats.first_capture_t is not None else item.t_captured
        return FrameResult(
            item.index,
            item.frame,
            item.ids_full,
            item.t_captured - first,
            1000.0 * (handed_out - item.t_captured),
        )

    def _finish(self) -> None:
        """End of the stream: end the lane and the threads, close the source, raise a stage
        error, or the source's InputError once every frame read before it was handed out."""
        self._pipeline.supervise()  # the lane's sink stage has ended: "ended", or "failed"
        self.close()
        lane = self._lane
        if lane.ctx.errors:
            stage, exc = lane.ctx.errors[0]
            raise exc
        if self._pipeline.errors:
            raise self._pipeline.errors[0][1]
        if lane.ctx.input_error is not None:
            raise lane.ctx.input_error

    def close(self) -> None:
        """Stop the threads and close the source if this stream opened it (idempotent)."""
        if self._done:
            return
        self._done = True
        if self._started:
            if self._lane.status == "running" and self.stats.stopped_by is None:
                self.stats.stopped_by = "user"  # stopped before the source ended
            self._pipeline.finish()
        if self._owns_source and not any(t.is_alive() for t in self._lane.threads):
            self._source.close()

    @property
    def closed(self) -> bool:
        return self._done

    def __enter__(self) -> ResultStream:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def __del__(self):
        if not getattr(self, "_done", True):
            self.close()
