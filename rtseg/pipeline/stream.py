"""`ResultStream`: a lazy iterator of per-frame results with capture and infer threads behind it.

The same capture and infer stages as `Pipeline` (ring of model-size buffers, bounded queues,
newest-frame-wins for live sources, a shared stop event), but the caller's loop takes the place
of the overlay and sink stages: each `next()` upsamples one frame's ids to its size and hands
it out. Stopping early (break, `close()`, garbage collection, the `with` block's end) sets the
stop event and joins the threads; nothing keeps running behind the caller's back.
"""

from __future__ import annotations

import sys
import threading
import time
from dataclasses import dataclass

import numpy as np

from rtseg.core.frames import resize_ids
from rtseg.pipeline.queues import END, FrameItem, FrameRing, StageQueue, StopRequested
from rtseg.pipeline.stages import CaptureStage, InferStage, RunContext
from rtseg.pipeline.stats import PipelineStats

__all__ = ["FrameResult", "ResultStream"]


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

    source: a FrameSource (`read() -> (H, W, 3) uint8 RGB | None`, `live`); closed by `close()`
        when `owns_source`. backend: a Backend (`input_size`, `infer`), called from the infer
        thread only. max_frames: read at most this many frames. queue_size: frames in flight
        between the stages for a file source (live sources: 1, the newest frame wins).
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
        self._source = source
        self._backend = backend
        self._owns_source = owns_source
        self._max_frames = max_frames
        self._join_timeout_s = join_timeout_s
        live = bool(getattr(source, "live", False))
        self.stats = PipelineStats(
            backend=backend.describe(),
            device=backend.runs_on,
            source=getattr(source, "description", ""),
            live=live,
        )
        self._ctx = RunContext(threading.Event(), self.stats)
        self._size = 1 if live else queue_size
        self._poll_s = poll_s
        self._outbox: StageQueue | None = None
        self._threads: list[threading.Thread] = []
        self._done = False

    def __iter__(self) -> ResultStream:
        return self

    def _start(self) -> None:
        ctx, size, poll = self._ctx, self._size, self._poll_s
        to_infer, self._outbox = StageQueue(size, ctx.stop, poll), StageQueue(size, ctx.stop, poll)
        height, width = self._backend.input_size
        ring = FrameRing(size + 3, height, width, ctx.stop, poll)  # queued, in capture, in infer
        self._threads = [
            CaptureStage(ctx, self._source, ring, to_infer, self._max_frames),
            InferStage(ctx, self._backend, ring, to_infer, self._outbox),
        ]
        for thread in self._threads:
            thread.start()

    def __next__(self) -> FrameResult:
        if self._done:
            raise StopIteration
        if self._outbox is None:
            self._start()
        try:
            item = self._outbox.get()
        except StopRequested:  # a stage failed (or close() was called from another thread)
            item = END
        if item is END:
            self._finish()
            raise StopIteration
        return self._result(item)

    def _result(self, item: FrameItem) -> FrameResult:
        start = time.perf_counter()
        ids = resize_ids(item.ids, item.frame.shape[:2])
        handed_out = time.perf_counter()
        stats = self.stats
        stats.stages["overlay"].record(handed_out - start)
        stats.record_written(item.t_captured, handed_out)
        first = stats.first_capture_t if stats.first_capture_t is not None else item.t_captured
        return FrameResult(
            item.index,
            item.frame,
            ids,
            item.t_captured - first,
            1000.0 * (handed_out - item.t_captured),
        )

    def _finish(self) -> None:
        """End of the stream: stop and join the threads, close the source, raise a stage error,
        or the source's InputError once every frame read before it was handed out."""
        self.stats.record_input(self._source)
        self.close()
        if self._ctx.errors:
            self.stats.stopped_by = "error"
            stage, exc = self._ctx.errors[0]
            if hasattr(exc, "add_note"):
                exc.add_note(f"(raised in the stream's {stage} stage)")
            raise exc
        if self._ctx.input_error is not None:
            raise self._ctx.input_error

    def close(self) -> None:
        """Stop the threads and close the source if this stream opened it (idempotent)."""
        if self._done:
            return
        self._done = True
        if self._outbox is not None and self.stats.stopped_by is None:
            self.stats.stopped_by = "user"  # stopped before the source ended
        self._ctx.stop.set()
        deadline = time.monotonic() + self._join_timeout_s
        for thread in self._threads:
            thread.join(max(deadline - time.monotonic(), 0.01))
        stuck = [t.name for t in self._threads if t.is_alive()]
        if stuck:
            print(
                f"rtseg: warning: {', '.join(stuck)} did not stop within {self._join_timeout_s} s",
                file=sys.stderr,
            )
        elif self._owns_source:
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
