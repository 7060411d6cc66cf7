"""`Pipeline(source, model, sinks, config).run() -> PipelineStats`: the threaded run.

Threads: capture -> infer -> overlay -> sink, joined by bounded queues. The main thread
supervises: it drives the window (GUI toolkits want the main thread: rendering the picture,
keys, HUD and snapshots live in `LiveView`), waits for the end while staying responsive to
Ctrl-C / SIGTERM, then joins the stages and closes the sinks on every path (success, stage
error, user quit, signal, the source ending), so an MP4 is always playable.
"""

from __future__ import annotations

import sys
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from rtseg.core.signals import HANDLED_SIGNALS, Interrupted, defer, exit_status
from rtseg.errors import InputError
from rtseg.pipeline.live import QUIT_KEYS, LiveView
from rtseg.pipeline.queues import FrameRing, StageQueue
from rtseg.pipeline.stages import (
    CaptureStage,
    InferStage,
    OverlayStage,
    RunContext,
    SinkStage,
)
from rtseg.pipeline.stats import PipelineStats
from rtseg.viz import Visualizer, VizConfig

__all__ = [
    "QUIT_KEYS",
    "SIGNAL_EXIT_STATUS",
    "Pipeline",
    "PipelineConfig",
    "PipelineInterrupted",
    "SourceFailed",
]

DISPLAY_POLL_S = 0.01  # the window's event loop runs at least this often while no frame arrives
SIGNAL_EXIT_STATUS = {sig.name: exit_status(sig.name) for sig in HANDLED_SIGNALS}


@dataclass(frozen=True)
class PipelineConfig:
    """How a run is threaded and drawn.

    queue_size: capacity of the queues between stages (file sources block when full).
    live_queue_size: capacity of every queue for live sources, where the newest frame wins
        (1: infer always takes the freshest frame and little waits downstream; lowest latency).
    max_frames: read at most this many frames from the source (None: until it ends).
    viz: drawing mode, alpha, legend and HUD (fps | latency drawn on the frame when viz.hud).
    progress: tqdm bar on stderr with live fps (only when stderr is a terminal).
    handle_signals: turn SIGINT / SIGTERM / SIGHUP into a clean stop while running in the main
        thread (rtseg.core.signals.defer); False: the caller owns the signals.
    join_timeout_s: how long to wait for the stages to end once the run is stopping.
    snapshot_dir: where the window's `s` key writes `rtseg_snapshot_<index>.png`.
    """

    queue_size: int = 4
    live_queue_size: int = 1
    max_frames: int | None = None
    viz: VizConfig = field(default_factory=VizConfig)
    progress: bool = False
    handle_signals: bool = True
    join_timeout_s: float = 5.0
    poll_s: float = 0.05
    snapshot_dir: Path = Path(".")

    def __post_init__(self):
        if self.queue_size < 1 or self.live_queue_size < 1:
            raise ValueError("queue sizes must be >= 1")
        if self.max_frames is not None and self.max_frames < 1:
            raise ValueError(f"max_frames must be >= 1, got {self.max_frames}")


class PipelineInterrupted(Interrupted):
    """Ctrl-C, SIGTERM or SIGHUP stopped the run; the sinks are closed and `stats` is complete.

    A KeyboardInterrupt (rtseg.core.signals.Interrupted), so a script that does not catch it
    still stops as on Ctrl-C. `exit_status` is the shell convention: 128 + the signal number
    (130 SIGINT, 143 SIGTERM, 129 SIGHUP).
    """

    def __init__(self, signal_name: str, stats: PipelineStats):
        super().__init__(signal_name)
        self.stats = stats


class SourceFailed(InputError):
    """The source failed mid-run (corrupt image, read error, strict damage): every frame read
    before the failure reached every sink, the sinks are closed, and `stats` is complete.

    The message is the source's own one line (file and frame index)."""

    def __init__(self, error: InputError, stats: PipelineStats):
        super().__init__(str(error))
        self.stats = stats


class Pipeline:
    """Segment every frame of `source` with `model` and write the results to `sinks`.

    source: a FrameSource (`read() -> (H, W, 3) uint8 RGB | None`, `live`, `frame_count`).
    model: a LoadedModel (backend + classes + palette); the backend is called from one thread.
    sinks: FrameSinks (`write(index, rendered, ids)`); `run()` closes them on every path.
    display: optional window (`show(rgb) -> key`, optional `poll_key() -> key`, `close()`),
        driven from the calling thread by a LiveView: it shows the newest frame, rendered with
        the view's mode / alpha and a HUD (fps | capture->display ms | drops); keys q / Esc
        quit, space pause, m mode, + / - alpha, s snapshot. The source and the model stay
        open (the caller owns them).
    visualizer: optional replacement for `Visualizer(config.viz, model.classes, model.palette)`.
    """

    def __init__(
        self,
        source,
        model,
        sinks: Sequence = (),
        config: PipelineConfig | None = None,
        display=None,
        visualizer=None,
    ):
        self.source = source
        self.model = model
        self.sinks = list(sinks)
        self.config = config or PipelineConfig()
        self.display = display
        self.visualizer = visualizer or Visualizer(self.config.viz, model.classes, model.palette)

    def run(self) -> PipelineStats:
        """Run to the end of the source (or max_frames, q, Ctrl-C, SIGTERM, an error).

        Returns the stats. Re-raises the first exception of any stage (after closing the sinks).
        Raises PipelineInterrupted (a KeyboardInterrupt carrying the stats) on Ctrl-C / SIGTERM /
        SIGHUP (a signal never cuts the closing of the sinks short), and SourceFailed (an
        InputError carrying the stats) when the source failed mid-run, once every frame read
        before the failure went through every sink.
        """
        cfg, stop = self.config, threading.Event()
        stats = PipelineStats(
            backend=self.model.backend.describe(),
            device=self.model.backend.runs_on,
            source=getattr(self.source, "description", ""),
            live=bool(getattr(self.source, "live", False)),
        )
        ctx = RunContext(stop, stats)
        progress = _progress_bar(cfg.progress, self._progress_total())
        threads: list[threading.Thread] = []
        try:
            with defer(stop, cfg.handle_signals) as guard:
                try:
                    self._start_threads(ctx, progress, threads)
                    self._supervise(ctx, threads)
                finally:
                    stop.set()
                    _join_all(threads, cfg.join_timeout_s)
                    self._close_outputs(ctx, threads)
        finally:
            if progress is not None:
                progress.close()
            stats.record_input(self.source)
        if guard.received is not None:
            stats.stopped_by = guard.received
            raise PipelineInterrupted(guard.received, stats)
        if ctx.errors:
            stats.stopped_by = "error"
            stage, exc = ctx.errors[0]
            if hasattr(exc, "add_note"):
                exc.add_note(f"(raised in the pipeline's {stage} stage)")
            raise exc
        if ctx.input_error is not None:
            raise SourceFailed(ctx.input_error, stats) from None
        return stats

    def _progress_total(self) -> int | None:
        total = getattr(self.source, "frame_count", None)
        if self.config.max_frames is not None:
            total = min(total, self.config.max_frames) if total else self.config.max_frames
        return total

    def _start_threads(self, ctx: RunContext, progress, threads: list[threading.Thread]) -> None:
        """Build the queues and stages and start them, appending each to `threads` as it starts."""
        cfg, stop, poll = self.config, ctx.stop, self.config.poll_s
        live = bool(getattr(self.source, "live", False))
        size = cfg.live_queue_size if live else cfg.queue_size
        to_infer, to_overlay, to_sink = (StageQueue(size, stop, poll) for _ in range(3))
        self.display_queue = StageQueue(1, stop, poll) if self.display is not None else None
        height, width = self.model.backend.input_size
        ring = FrameRing(size + 3, height, width, stop, poll)  # in the queue, in capture, in infer
        on_written = (lambda n: progress.update(1)) if progress is not None else None
        stages = [
            CaptureStage(ctx, self.source, ring, to_infer, cfg.max_frames),
            InferStage(ctx, self.model.backend, ring, to_infer, to_overlay),
            OverlayStage(ctx, self.visualizer, cfg.viz.hud, to_overlay, to_sink, *self._render_plan()),
            SinkStage(ctx, self.sinks, to_sink, self.display_queue, on_written),
        ]
        for stage in stages:
            stage.start()
            threads.append(stage)

    def _render_plan(self) -> tuple[bool, bool]:
        """(render, yuv420p) for the overlay stage: draw only when some sink takes pixels (a
        masks-only run draws nothing; with no sinks, a window renders its own picture and a
        bare run still draws, for benchmarks), and in yuv420p when every sink that takes pixels
        accepts it (the MP4 encoder's own format: no RGB picture is made for it)."""
        takers = [s for s in self.sinks if getattr(s, "wants_rendered", True)]
        render = bool(takers) or (not self.sinks and self.display is None)
        yuv420p = bool(takers) and all(getattr(s, "accepts_yuv420p", False) for s in takers)
        return render, yuv420p

    def _supervise(self, ctx: RunContext, threads: list[threading.Thread]) -> None:
        """Main-thread loop until the sink stage ends, the user quits or the run is stopping."""
        sink_thread = threads[-1]
        view = None
        if self.display is not None:
            view = LiveView(
                self.display,
                self.visualizer,
                self.config.viz,
                ctx.stats,
                pause_event=ctx.paused,
                snapshot_dir=self.config.snapshot_dir,
            )
        while sink_thread.is_alive() and not ctx.stop.is_set():
            if view is None:
                sink_thread.join(self.config.poll_s)
            elif not view.step(self.display_queue.poll(DISPLAY_POLL_S)):
                ctx.stats.stopped_by = "user"
                return

    def _close_outputs(self, ctx: RunContext, threads: list[threading.Thread]) -> None:
        """Close every sink (flushes the MP4) and the window; never while the sink thread writes.

        A failure to close is handed on like a stage error, after every other output is closed.
        """
        if len(threads) == 4 and threads[-1].is_alive():
            print(
                f"rtseg: warning: the sink stage did not stop within {self.config.join_timeout_s} s; "
                "outputs may be incomplete",
                file=sys.stderr,
            )
            return
        for output in [*self.sinks, *([self.display] if self.display is not None else [])]:
            try:
                output.close()
            except Exception as exc:  # noqa: BLE001 - re-raised by run() once all are closed
                ctx.fail("sink", exc)


def _join_all(threads: list[threading.Thread], timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    for thread in threads:
        thread.join(max(deadline - time.monotonic(), 0.01))


def _progress_bar(enabled: bool, total: int | None):
    """A tqdm bar on stderr (frames, live fps), or None when disabled or stderr is no terminal."""
    if not enabled or not sys.stderr.isatty():
        return None
    from tqdm import tqdm

    return tqdm(total=total, unit="frame", file=sys.stderr, dynamic_ncols=True, smoothing=0.3, desc="rtseg")
