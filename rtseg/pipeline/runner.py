"""`Pipeline(lanes, model, config).run()`: the one threaded run, one source or many.

    lane 0: capture -> [mailbox] --\\                          /--> overlay -> sink(s) 0
    lane N: capture -> [mailbox] ----> infer (batches ready lanes) --> overlay -> sink(s) N

Each source is a Lane (rtseg.pipeline.lane); one InferStage (rtseg.pipeline.infer) batches the
queued frame of every ready lane into one backend call, up to the backend's max batch. One lane
is the single-source run: every frame of a file in order, newest frame for a live source, and
the backend's submit / wait overlap. The main thread supervises: it drives the window
(LiveView: one frame or a mosaic, the same keys), ends each lane as its sink stage ends
(closing its sinks, so an MP4 is always playable), stays responsive to Ctrl-C / SIGTERM, and
on every path joins the stages and closes the sinks and the window.

Errors: an infer error (or a window that fails) stops every lane and is raised; a lane's own
failure (a source or sink error) ends that lane only, reported in its status while the others
go on; the run raises it when no lane ended well (so a one-source run raises its failure: a
stage error as it is, an input failure as SourceFailed once every frame read before it was
written).
"""

from __future__ import annotations

import sys
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path

from rtseg.core.signals import HANDLED_SIGNALS, Interrupted, defer, exit_status
from rtseg.errors import InputError
from rtseg.pipeline.infer import InferStage
from rtseg.pipeline.lane import Lane, MultiStats
from rtseg.pipeline.live import QUIT_KEYS, LiveView
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
    max_batch: the most frames in one backend call (None: the backend's max_batch; always at
        most the number of lanes). batch_timeout_s: once one lane has a frame, how long infer
        waits for the other running lanes before it runs a smaller batch.
    input_size: (height, width) of the model input; set by Pipeline from the backend.
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
    max_batch: int | None = None
    batch_timeout_s: float = 0.01
    input_size: tuple[int, int] = (0, 0)

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

    def __init__(self, signal_name: str, stats):
        super().__init__(signal_name)
        self.stats = stats


class SourceFailed(InputError):
    """The source failed mid-run (corrupt image, read error, strict damage): every frame read
    before the failure reached every sink, the sinks are closed, and `stats` is complete.

    The message is the source's own one line (file and frame index)."""

    def __init__(self, error: InputError, stats):
        super().__init__(str(error))
        self.stats = stats


class Pipeline:
    """Segment every frame of each lane's source with `model` and write the results to its sinks.

    lanes: Lanes (rtseg.pipeline.lane), one per source; `Pipeline.single` builds the one lane of
        a one-source run. model: a LoadedModel (backend + classes + palette); the backend is
        called from the infer thread only. The sources and the model stay open (the caller owns
        them); `run()` closes the sinks and the display on every path.
    display: optional Display (rtseg.video.base), driven from the calling thread by a LiveView:
        it shows the newest frame (one lane) or a mosaic (several), rendered with the view's
        mode / alpha and a HUD (fps | capture->display ms | drops); keys q / Esc quit, space
        pause, m mode, + / - alpha, s snapshot.
    visualizer: optional replacement for `Visualizer(config.viz, model.classes, model.palette)`.
    on_event(line): told when a lane ends or fails while others run on.
    """

    def __init__(self, lanes: Sequence[Lane], model, config: PipelineConfig | None = None, display=None,
                 visualizer=None, on_event: Callable[[str], None] | None = None):  # fmt: skip
        if not lanes:
            raise ValueError("a pipeline needs at least one lane")
        self.lanes, self.model = list(lanes), model
        self.config = replace(config or PipelineConfig(), input_size=tuple(model.backend.input_size))
        self.display = display
        self.visualizer = visualizer or Visualizer(self.config.viz, model.classes, model.palette)
        self.on_event = on_event or (lambda line: None)
        backend = model.backend
        self.stats = MultiStats(self.lanes, backend=backend.describe(), device=backend.runs_on)
        self.stop = threading.Event()
        self.ready = threading.Event()  # set whenever a frame reaches a lane's mailbox
        self.errors: list[tuple[str, BaseException]] = []  # run-wide: infer, window
        self.infer: InferStage | None = None
        self.view: LiveView | None = None
        self._progress = None

    @classmethod
    def single(cls, source, model, sinks: Sequence = (), config: PipelineConfig | None = None,
               display=None, visualizer=None) -> Pipeline:  # fmt: skip
        """The run of one source into `sinks` (one lane)."""
        return cls([Lane(0, None, source, sinks)], model, config, display, visualizer)

    @property
    def result(self):
        """The run's stats: one lane's PipelineStats (what a one-source run reports), or the
        MultiStats over every lane."""
        return self.lanes[0].stats if len(self.lanes) == 1 else self.stats

    def max_batch(self) -> int:
        limit = self.config.max_batch or self.model.backend.max_batch
        return max(1, min(limit, len(self.lanes)))

    def run(self):
        """Run until every lane ended (or max_frames, q, Ctrl-C, SIGTERM, an error).

        Returns `result`. Raises the first infer or window error (after closing the sinks);
        PipelineInterrupted (a KeyboardInterrupt carrying the stats) on Ctrl-C / SIGTERM /
        SIGHUP (a signal never cuts the closing of the sinks short); when no lane ended well,
        its first failure: a stage error as raised, an input failure as SourceFailed (an
        InputError carrying the stats).
        """
        with defer(self.stop, self.config.handle_signals) as guard:
            try:
                self.start()
                self.supervise()
            finally:
                self.finish()
        if guard.received is not None:
            self.stats.stopped_by = self.result.stopped_by = guard.received
            raise PipelineInterrupted(guard.received, self.result)
        self.raise_failure()
        return self.result

    def start(self) -> None:
        """Build and start every lane's stages and the infer stage."""
        cfg = self.config
        self._progress = _progress_bar(cfg.progress, self._progress_total())
        on_written = (lambda n: self._progress.update(1)) if self._progress is not None else None
        window = self.display is not None
        if window:
            self.view = LiveView(self.display, self.visualizer, cfg.viz, self.lanes, cfg.snapshot_dir)
        for lane in self.lanes:
            lane.stats.backend, lane.stats.device = self.stats.backend, self.stats.device
            lane.build(self.visualizer, cfg, self.ready, window, on_written)
        self.infer = InferStage(self.lanes, self.model.backend, self.max_batch(), cfg.batch_timeout_s,
                                self.stop, self.ready, self.stats, self._fail_infer)  # fmt: skip
        for lane in self.lanes:
            for thread in lane.threads:
                thread.start()
        self.infer.start()

    def _fail_infer(self, exc: BaseException) -> None:
        self.errors.append(("infer", exc))
        self.stop.set()

    def _progress_total(self) -> int | None:
        if len(self.lanes) > 1:
            return None
        total = self.lanes[0].source.frame_count
        if self.config.max_frames is not None:
            total = min(total, self.config.max_frames) if total else self.config.max_frames
        return total

    def supervise(self) -> None:
        """Main-thread loop: drive the window, end lanes as their sink stage ends, until every
        lane has ended, the user quits or the run is stopping."""
        running = list(self.lanes)
        while running and not self.stop.is_set():
            if self.view is None:
                running[0].threads[-1].join(self.config.poll_s)
            else:
                arrived = [(self.lanes.index(lane), lane.display_queue.poll(0)) for lane in running]
                arrived = [(position, item) for position, item in arrived if item is not None]
                if not self.view.step(arrived):
                    for lane in running:
                        lane.stats.stopped_by = "user"
                    self.stats.stopped_by = "user"
                    return
                if not arrived:
                    self.stop.wait(DISPLAY_POLL_S)  # nothing new: let the window breathe
            for lane in [lane for lane in running if lane.ended]:
                running.remove(lane)
                self._end_lane(lane, "ended")
                self._say_ended(lane, len(running))
        if not running:
            self.stats.stopped_by = "source_end"

    def finish(self) -> None:
        """Stop every stage, end every lane still running ("stopped", closing its sinks), close
        the window and the progress bar. Idempotent."""
        self.stop.set()
        for lane in self.lanes:
            lane.ctx.stop.set()
        if self.infer is not None:
            self.infer.join(self.config.join_timeout_s)
        for lane in self.lanes:
            if lane.status == "running":
                self._end_lane(lane, "stopped")
        if self.display is not None:
            try:
                self.display.close()
            except Exception as exc:  # noqa: BLE001 - raised by run() once all is closed
                self.errors.append(("window", exc))
        if self._progress is not None:
            self._progress.close()
            self._progress = None

    def _end_lane(self, lane: Lane, status: str) -> None:
        _join_all(lane.threads, self.config.join_timeout_s)
        self._close_sinks(lane)
        lane.finish(status)

    def _say_ended(self, lane: Lane, still_running: int) -> None:
        what = (
            f"failed: {lane.error}" if lane.status == "failed" else f"ended after {lane.stats.frames} frames"
        )
        self.on_event(f"rtseg: source {lane.index} ({lane.name}) {what}; {still_running} still running")

    def _close_sinks(self, lane: Lane) -> None:
        """Close the lane's sinks (flushes the MP4); never while its sink thread writes. A sink
        that cannot close fails its lane, after the lane's other sinks are closed."""
        if lane.threads and lane.threads[-1].is_alive():
            print(
                f"rtseg: warning: the sink stage of source {lane.index} did not stop within "
                f"{self.config.join_timeout_s} s; outputs may be incomplete",
                file=sys.stderr,
            )
            return
        for sink in lane.sinks:
            try:
                sink.close()
            except Exception as exc:  # noqa: BLE001 - a sink that cannot close fails its lane
                lane.ctx.fail("sink", exc)

    def raise_failure(self) -> None:
        """Raise the run's first error, or the first lane failure when no lane ended well."""
        if self.errors:
            self.stats.stopped_by = self.result.stopped_by = "error"
            stage, exc = self.errors[0]
            _note(exc, f"(raised in the pipeline's {stage} stage)")
            raise exc
        if any(lane.status != "failed" for lane in self.lanes):
            return
        lane = self.lanes[0]
        if lane.ctx.errors:
            stage, exc = lane.ctx.errors[0]
            _note(exc, f"(raised in the pipeline's {stage} stage)")
            raise exc
        raise SourceFailed(lane.ctx.input_error, self.result) from None


def _note(exc: BaseException, note: str) -> None:
    if hasattr(exc, "add_note") and note not in getattr(exc, "__notes__", []):
        exc.add_note(note)


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
