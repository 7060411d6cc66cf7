"""`Lane`: one source's stages and queues around the pipeline's one infer stage, and the stats of a
run over many lanes.

    source 0: capture -> [mailbox] --\\                     /--> overlay -> sink(s) 0 (+ results)
    source 1: capture -> [mailbox] ----> batched infer ----+--> overlay -> sink(s) 1
    source N: capture -> [mailbox] --/   (one backend call) \\--> overlay -> sink(s) N

Each lane has its own stop event and its own PipelineStats, so a source that fails or ends is
reported and dropped while the others go on. A file lane hands on every frame, in order
(blocking when a queue is full); a live lane keeps the newest frame (older ones are dropped and
counted, before and after infer).
"""

from __future__ import annotations

import threading
from collections import Counter
from dataclasses import dataclass, field

from rtseg.pipeline.queues import END, FrameRing, StageQueue
from rtseg.pipeline.stages import CaptureStage, OverlayStage, RunContext, SinkStage
from rtseg.pipeline.stats import STOP_REASONS, PipelineStats, StageStats

__all__ = ["Lane", "MultiStats", "render_plan"]


class NotifyingQueue(StageQueue):
    """A StageQueue that sets `ready` after every put, so one thread can wait on many queues."""

    def __init__(self, maxsize: int, stop: threading.Event, ready: threading.Event, poll_s: float = 0.05):
        super().__init__(maxsize, stop, poll_s)
        self._ready = ready

    def put(self, item) -> None:
        super().put(item)
        self._ready.set()

    def put_newest(self, item):
        dropped = super().put_newest(item)
        self._ready.set()
        return dropped


class Lane:
    """One source's stages and queues: capture -> mailbox -> [infer] -> overlay -> sink(s).

    index / name: how the source is reported and how its outputs are named (name: the source's
    description by default). source: a FrameSource; sinks: its FrameSinks (closed by the
    pipeline when the lane ends). results: optional StageQueue that gets every written item
    (FrameItem with `ids_full`) and END: the lane's output as an iterator (ResultStream). The
    lane's `ctx` has its own stop event (set by its own failure or by the whole run stopping)
    and its own PipelineStats. status: "running", "ended", "stopped" or "failed" (then `error`
    is one line).
    """

    def __init__(self, index: int, name: str | None, source, sinks=(), results: StageQueue | None = None):
        self.index, self.source = index, source
        self.name = name or source.description or f"source {index}"
        self.sinks, self.results = list(sinks), results
        self.live = source.live
        stats = PipelineStats(source=source.description or self.name, live=self.live)
        self.ctx = RunContext(threading.Event(), stats)
        self.status, self.error = "running", None
        self.threads: list[threading.Thread] = []
        self.display_queue: StageQueue | None = None
        self.dropped_after_infer = 0  # counted by the infer thread only

    @property
    def stats(self) -> PipelineStats:
        return self.ctx.stats

    def build(self, visualizer, config, ready: threading.Event, window: bool, on_written=None) -> None:
        """Make the lane's queues, model-input ring and stage threads (not started).

        config: the run's PipelineConfig; ready: set whenever a frame reaches the mailbox (the
        infer stage waits on it); window: a view takes each written item (newest wins)."""
        stop, poll = self.ctx.stop, config.poll_s
        size = config.live_queue_size if self.live else config.queue_size
        self.mailbox = NotifyingQueue(size, stop, ready, poll)
        self.to_overlay, self.to_sink = StageQueue(size, stop, poll), StageQueue(size, stop, poll)
        self.display_queue = StageQueue(1, stop, poll) if window else None
        height, width = config.input_size
        self.ring = FrameRing(size + 3, height, width, stop, poll)  # mailbox, capture, taken, spare
        render, yuv420p = render_plan(self.sinks, window or self.results is not None)
        self.threads = [
            CaptureStage(self.ctx, self.source, self.ring, self.mailbox, config.max_frames),
            OverlayStage(
                self.ctx, visualizer, config.viz.hud, self.to_overlay, self.to_sink, render, yuv420p
            ),
            SinkStage(self.ctx, self.sinks, self.to_sink, self.display_queue, on_written, self.results),
        ]
        for thread in self.threads:
            thread.name = f"rtseg-{thread.stage}-{self.index}"

    @property
    def ended(self) -> bool:
        """The lane's sink stage has ended (its source ended or failed, or the run stopped)."""
        return bool(self.threads) and not self.threads[-1].is_alive()

    def hand_on(self, item) -> None:
        """Infer thread: pass `item` (or END) to the overlay stage; live lanes never block."""
        if item is END or not self.live:
            self.to_overlay.put(item)
        elif self.to_overlay.put_newest(item) is not None:
            self.dropped_after_infer += 1

    def finish(self, status: str = "ended") -> None:
        """The lane's stages have ended: record why ("ended", or "stopped" with the whole run),
        fold in the drops after infer."""
        self.stats.dropped += self.dropped_after_infer
        self.dropped_after_infer = 0
        self.stats.record_input(self.source)
        failure = self.ctx.errors[0][1] if self.ctx.errors else self.ctx.input_error
        if failure is not None:  # an input error drained what was read; a stage error did not
            self.status, self.error = "failed", _one_line(failure)
            self.stats.stopped_by = "error" if self.ctx.errors else "input_error"
        else:
            self.status = status

    def to_json(self) -> dict:
        return {"index": self.index, "name": self.name, "status": self.status, "error": self.error,
                **self.stats.to_json()}  # fmt: skip


def render_plan(sinks, shown_elsewhere: bool) -> tuple[bool, bool]:
    """(render, yuv420p) for a lane's overlay stage: draw only when some sink takes pixels (a
    masks-only run draws nothing; a window or a result iterator makes its own picture; a bare
    run with neither still draws, for benchmarks), and in yuv420p when every sink that takes
    pixels accepts it (the MP4 encoder's own format: no RGB picture is made for it)."""
    takers = [s for s in sinks if s.wants_rendered]
    render = bool(takers) or (not sinks and not shown_elsewhere)
    yuv420p = bool(takers) and all(s.accepts_yuv420p for s in takers)
    return render, yuv420p


def _one_line(exc: BaseException) -> str:
    lines = str(exc).strip().splitlines()
    return lines[0] if lines else type(exc).__name__


@dataclass
class MultiStats:
    """What a many-source run measured: every lane's stats, the batches formed, the infer calls."""

    lanes: list[Lane]
    backend: str = ""
    device: str = ""  # Backend.runs_on
    batch_sizes: Counter = field(default_factory=Counter)
    infer: StageStats = field(default_factory=lambda: StageStats("infer"))
    stopped_by: str | None = None

    @property
    def frames(self) -> int:
        return sum(lane.stats.frames for lane in self.lanes)

    @property
    def warnings(self) -> list[str]:
        """Each source's input warnings (damaged packets, ...), prefixed by the source."""
        return [f"source {lane.index} ({lane.name}): {w}" for lane in self.lanes for w in lane.stats.warnings]

    @property
    def wall_s(self) -> float:
        starts = [lane.stats.first_capture_t for lane in self.lanes if lane.stats.first_capture_t]
        ends = [lane.stats.last_write_t for lane in self.lanes if lane.stats.last_write_t]
        return max(max(ends) - min(starts), 0.0) if starts and ends else 0.0

    @property
    def fps(self) -> float:
        return self.frames / self.wall_s if self.wall_s > 0 else 0.0

    def batches_json(self) -> dict:
        count = sum(self.batch_sizes.values())
        mean = sum(size * n for size, n in self.batch_sizes.items()) / count if count else 0.0
        return {"histogram": {str(k): v for k, v in sorted(self.batch_sizes.items())}, "count": count,
                "mean_size": round(mean, 3), "infer": self.infer.to_json()}  # fmt: skip

    def to_json(self) -> dict:
        return {
            "frames": self.frames,
            "fps": round(self.fps, 3),
            "wall_s": round(self.wall_s, 4),
            "backend": self.backend,
            "device": self.device,
            "stopped_by": self.stopped_by,
            "batches": self.batches_json(),
            "sources": [lane.to_json() for lane in self.lanes],
        }

    def summary(self) -> str:
        lines = [f"{len(self.lanes)} sources, {self.frames} frames in {self.wall_s:.2f} s: "
                 f"{self.fps:.1f} fps in all ({self.backend})"]  # fmt: skip
        lines.append(f"{'#':>2} {'source':<24} {'status':<7} {'frames':>6} {'fps':>6} "
                     f"{'lat p50':>8} {'p95 ms':>7} {'dropped':>7}")  # fmt: skip
        for lane in self.lanes:
            s, lat = lane.stats, lane.stats.latency_ms()
            lines.append(f"{lane.index:>2} {lane.name[:24]:<24} {lane.status:<7} {s.frames:>6} {s.fps:>6.1f} "
                         f"{lat['p50']:>8.1f} {lat['p95']:>7.1f} {s.dropped:>7}")  # fmt: skip
        hist = ", ".join(f"{k}: {v}" for k, v in sorted(self.batch_sizes.items())) or "none"
        infer = self.infer.to_json()
        lines.append(f"batches formed (size: count): {hist}; infer {infer['busy_ms_mean']:.1f} ms per call")
        lines.extend(
            f"source {lane.index} ({lane.name}) failed: {lane.error}" for lane in self.lanes if lane.error
        )
        if self.stopped_by:
            reason = "every source ended" if self.stopped_by == "source_end" else None
            lines.append(f"stopped by: {reason or STOP_REASONS.get(self.stopped_by, self.stopped_by)}")
        return "\n".join(lines)
