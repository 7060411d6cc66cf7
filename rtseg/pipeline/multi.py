"""`MultiPipeline`: many live sources, one model, batched (the nvstreammux + nvinfer pattern).

    source 0: capture -> [newest frame] --\\                     /--> overlay -> sink(s) 0
    source 1: capture -> [newest frame] ----> batched infer ----+--> overlay -> sink(s) 1
    source N: capture -> [newest frame] --/   (one backend call) \\--> overlay -> sink(s) N

Each source is a `Lane` with the single-source stages (CaptureStage, OverlayStage, SinkStage),
its own stop event and its own PipelineStats, so a source that fails or ends is reported and
dropped while the others go on. One BatchInferStage takes the newest frame of every ready
source (round robin when more are ready than the backend's max batch), waits up to
`batch_timeout_s` for the others to deliver, and runs them through one backend call.
"""

from __future__ import annotations

import threading
from collections import Counter
from dataclasses import dataclass, field

from rtseg.core.signals import defer
from rtseg.pipeline.batch_infer import BatchInferStage
from rtseg.pipeline.queues import END, FrameRing, StageQueue
from rtseg.pipeline.runner import PipelineInterrupted, _join_all
from rtseg.pipeline.stages import CaptureStage, OverlayStage, RunContext, SinkStage
from rtseg.pipeline.stats import STOP_REASONS, PipelineStats, StageStats
from rtseg.viz import Visualizer, VizConfig

__all__ = ["Lane", "MultiConfig", "MultiPipeline", "MultiStats", "BatchInferStage"]


@dataclass(frozen=True)
class MultiConfig:
    """How a many-source run is batched and drawn.

    max_frames: frames to read from each source (None: until it ends).
    max_batch: the most frames in one backend call (None: the backend's max_batch; always at
        most the number of sources). batch_timeout_s: once one source has a frame, how long
        infer waits for the other running sources before it runs a smaller batch.
    queue_size: queue capacity after infer for a source that is not live (file sources: every
        frame, in order); live sources keep one frame per queue and drop the older.
    """

    max_frames: int | None = None
    max_batch: int | None = None
    batch_timeout_s: float = 0.01
    viz: VizConfig = field(default_factory=VizConfig)
    queue_size: int = 4
    handle_signals: bool = True
    join_timeout_s: float = 5.0
    poll_s: float = 0.05


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
    """One source's stages and queues: capture -> mailbox (one frame) -> [infer] -> overlay -> sink.

    index / name: how the source is reported and how its outputs are named. source: a
    FrameSource; sinks: its FrameSinks (closed by the pipeline when the lane ends). The lane's
    `ctx` has its own stop event (set by its own failure or by the whole run stopping) and its
    own PipelineStats. status: "running", "ended" or "failed" (then `error` is one line).
    """

    def __init__(self, index: int, name: str, source, sinks=()):
        self.index, self.name, self.source = index, name, source
        self.sinks = list(sinks)
        self.live = bool(getattr(source, "live", False))
        stats = PipelineStats(source=getattr(source, "description", "") or name, live=self.live)
        self.ctx = RunContext(threading.Event(), stats)
        self.status, self.error = "running", None
        self.threads: list[threading.Thread] = []
        self.display_queue: StageQueue | None = None
        self.dropped_after_infer = 0  # counted by the infer thread only

    @property
    def stats(self) -> PipelineStats:
        return self.ctx.stats

    def build(self, model, visualizer, config: MultiConfig, ready: threading.Event, display: bool) -> None:
        stop, poll = self.ctx.stop, config.poll_s
        size = 1 if self.live else config.queue_size
        self.mailbox = NotifyingQueue(1, stop, ready, poll)
        self.to_overlay, self.to_sink = StageQueue(size, stop, poll), StageQueue(size, stop, poll)
        self.display_queue = StageQueue(1, stop, poll) if display else None
        height, width = model.backend.input_size
        self.ring = FrameRing(4, height, width, stop, poll)  # mailbox, capture, infer, spare
        self.threads = [
            CaptureStage(self.ctx, self.source, self.ring, self.mailbox, config.max_frames),
            OverlayStage(
                self.ctx,
                visualizer,
                config.viz.hud,
                self.to_overlay,
                self.to_sink,
                *self.render_plan(display),
            ),  # fmt: skip
            SinkStage(self.ctx, self.sinks, self.to_sink, self.display_queue),
        ]
        for thread in self.threads:
            thread.name = f"rtseg-{thread.stage}-{self.index}"

    def render_plan(self, display: bool) -> tuple[bool, bool]:
        """(render, yuv420p) for the overlay stage, as Pipeline decides it; the mosaic shows the
        rendered frame, so with a window the lane draws RGB."""
        takers = [s for s in self.sinks if getattr(s, "wants_rendered", True)]
        render = bool(takers) or display or not self.sinks
        yuv420p = bool(takers) and not display and all(getattr(s, "accepts_yuv420p", False) for s in takers)
        return render, yuv420p

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


class MultiPipeline:
    """Run `lanes` (one per source) through `model` with one batched infer stage.

    model: a LoadedModel; its backend is called from the infer thread only. on_event(line): told
    when a source ends or fails (it is dropped; the others go on). display: optional mosaic
    (`MosaicView`-like: `update(lane, item)`, `step() -> bool` False to quit, `close()`), driven
    from the calling thread. Returns MultiStats; re-raises an infer error after closing outputs.
    """

    def __init__(self, lanes, model, config: MultiConfig | None = None, display=None, on_event=None):
        self.lanes, self.model = list(lanes), model
        self.config = config or MultiConfig()
        self.display = display
        self.on_event = on_event or (lambda line: None)
        self.visualizer = Visualizer(self.config.viz, model.classes, model.palette)

    def max_batch(self) -> int:
        limit = self.config.max_batch or self.model.backend.max_batch
        return max(1, min(limit, len(self.lanes)))

    def run(self) -> MultiStats:
        cfg, stop, ready = self.config, threading.Event(), threading.Event()
        backend = self.model.backend
        stats = MultiStats(self.lanes, backend=backend.describe(), device=backend.runs_on)
        for lane in self.lanes:
            lane.stats.backend, lane.stats.device = stats.backend, stats.device
        errors: list[BaseException] = []

        def on_error(exc):
            errors.append(exc)
            stop.set()

        infer = BatchInferStage(self.lanes, self.model.backend, self.max_batch(), cfg.batch_timeout_s,
                                stop, ready, stats, on_error)  # fmt: skip
        try:
            with defer(stop, cfg.handle_signals) as guard:
                try:
                    self._start(infer, ready)
                    stats.stopped_by = self._supervise(stop)
                finally:
                    self._stop_all(stop, infer)
        finally:
            if self.display is not None:
                self.display.close()
        if guard.received is not None:
            stats.stopped_by = guard.received
            raise PipelineInterrupted(guard.received, stats)
        if errors:
            stats.stopped_by = "error"
            raise errors[0]
        return stats

    def _start(self, infer: BatchInferStage, ready: threading.Event) -> None:
        for lane in self.lanes:
            lane.build(self.model, self.visualizer, self.config, ready, self.display is not None)
            for thread in lane.threads:
                thread.start()
        infer.start()

    def _supervise(self, stop: threading.Event) -> str:
        """Main thread: drive the mosaic, end lanes as their sink stage ends, until all have."""
        running = list(self.lanes)
        while running and not stop.is_set():
            if self.display is None:
                stop.wait(self.config.poll_s)
            else:
                arrived = [(lane, lane.display_queue.poll(0)) for lane in running]
                for lane, item in arrived:
                    if item is not None:
                        self.display.update(lane, item)
                if not self.display.step():
                    return "user"
                if all(item is None for _, item in arrived):
                    stop.wait(0.01)  # nothing new: let the window breathe, do not spin
            for lane in [lane for lane in running if not lane.threads[-1].is_alive()]:
                running.remove(lane)
                self._end_lane(lane, len(running))
        return "source_end" if not running else "stopped"

    def _end_lane(self, lane: Lane, still_running: int) -> None:
        _join_all(lane.threads, self.config.join_timeout_s)
        self._close_sinks(lane)
        lane.finish()
        what = (
            f"failed: {lane.error}" if lane.status == "failed" else f"ended after {lane.stats.frames} frames"
        )
        self.on_event(f"rtseg: source {lane.index} ({lane.name}) {what}; {still_running} still running")

    def _close_sinks(self, lane: Lane) -> None:
        for sink in lane.sinks:
            try:
                sink.close()
            except Exception as exc:  # noqa: BLE001 - a sink that cannot close fails its lane only
                lane.ctx.fail("sink", exc)

    def _stop_all(self, stop: threading.Event, infer: BatchInferStage) -> None:
        stop.set()
        for lane in self.lanes:
            lane.ctx.stop.set()
        infer.join(self.config.join_timeout_s)
        for lane in self.lanes:
            if lane.status == "running":
                _join_all(lane.threads, self.config.join_timeout_s)
                self._close_sinks(lane)
                lane.finish("stopped")
