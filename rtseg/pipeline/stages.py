"""The stage threads of a lane: capture -> (the run's one infer stage, rtseg.pipeline.infer) ->
overlay -> sink.

Each stage is a thread that takes items from its inbox, does its one job and passes them on.
Every stage ends in `finally`: it passes the END marker downstream (unless the run is
stopping) and hands an exception, if any, to the main thread through `RunContext.fail`.

Two kinds of failure: a stage's own error (a bug, a backend or sink failure) stops every stage
at once; an input failure (the source raises InputError: a corrupt image, a read error) only
ends the capture stage, which records it (`RunContext.input_error`) and passes END on, so every
frame read before it reaches every sink; the runner raises it once the sinks are closed.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np

from rtseg.core.frames import resize_frame, resize_ids
from rtseg.errors import InputError
from rtseg.pipeline.queues import END, FrameItem, FrameRing, StageQueue, StopRequested
from rtseg.pipeline.stats import PipelineStats, RateMeter
from rtseg.video.decoded import DecodedFrame, new_yuv420p_frame


@dataclass
class RunContext:
    """What the stages of one run share: the stop event, the stats and the first errors."""

    stop: threading.Event
    stats: PipelineStats
    paused: threading.Event = field(default_factory=threading.Event)  # holds non-live capture
    meter: RateMeter = field(default_factory=RateMeter)
    errors: list[tuple[str, BaseException]] = field(default_factory=list)
    input_error: InputError | None = None  # the source failed: drained, raised after the sinks
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def fail(self, stage: str, exc: BaseException) -> None:
        with self._lock:
            self.errors.append((stage, exc))
        self.stop.set()


class StageThread(threading.Thread):
    """Base: loop over the inbox, `process` each item, pass it on; END or stop ends the loop."""

    stage = "stage"

    def __init__(self, ctx: RunContext, inbox: StageQueue | None, outbox: StageQueue | None):
        super().__init__(name=f"rtseg-{self.stage}", daemon=True)
        self.ctx = ctx
        self.inbox = inbox
        self.outbox = outbox
        self.timing = ctx.stats.stages[self.stage]

    def run(self) -> None:
        try:
            self.loop()
        except StopRequested:
            pass
        except BaseException as exc:  # noqa: BLE001 - handed to the main thread, which re-raises it
            self.ctx.fail(self.stage, exc)
        finally:
            self.finish()

    def loop(self) -> None:
        while True:
            t_wait = time.perf_counter()
            item = self.inbox.get()
            start = time.perf_counter()
            if item is END:
                return
            self.process(item)
            end = time.perf_counter()
            item.timings[self.stage] = (start, end)
            self.timing.record(end - start, start - t_wait)
            if self.outbox is not None:
                self.outbox.put(item)

    def process(self, item: FrameItem) -> None:
        raise NotImplementedError

    def finish(self) -> None:
        if self.outbox is None or self.ctx.stop.is_set():
            return
        try:
            self.outbox.put(END)
        except StopRequested:
            pass


def resize_into(frame: np.ndarray, out: np.ndarray) -> None:
    """Resize (H, W, 3) uint8 RGB `frame` into the pre-allocated (h, w, 3) `out`."""
    resize_frame(frame, out.shape[:2], out=out)


class CaptureStage(StageThread):
    """Reads the source, resizes each frame into a ring slot at the model's input size (from
    the decoder's own picture: colour conversion and resize in one swscale step).

    File sources: every frame, blocking when the queue to infer is full, and held while the
    view is paused. Live sources (`source.live`): never blocks; the oldest queued frame is
    dropped and counted instead. The source's end (`read()` -> None: end of file, stream over,
    camera gone) ends the run normally: stopped_by "source_end". An InputError from the source
    ends reading the same way (what was read drains to the sinks), recorded as the run's
    `input_error`: stopped_by "input_error".
    """

    stage = "capture"

    def __init__(
        self, ctx: RunContext, source, ring: FrameRing, outbox: StageQueue, max_frames: int | None = None
    ):
        super().__init__(ctx, None, outbox)
        self.source = source
        self.ring = ring
        self.live = source.live
        self.max_frames = max_frames

    def loop(self) -> None:
        stats, index = self.ctx.stats, 0
        while self.max_frames is None or index < self.max_frames:
            t_wait = time.perf_counter()
            self.wait_while_paused()
            slot = self.ring.acquire()
            start = time.perf_counter()
            frame = self.read_frame()
            t_captured = time.perf_counter()
            if frame is None:
                self.ring.release(slot)
                ended = "input_error" if self.ctx.input_error else "source_end"
                stats.stopped_by = stats.stopped_by or ended
                return
            if stats.first_capture_t is None:
                stats.first_capture_t = t_captured
            frame.model_input(self.ring.buffers[slot])
            end = time.perf_counter()
            item = FrameItem(index, frame, t_captured, slot, self.ring.buffers[slot])
            item.timings[self.stage] = (start, end)
            stats.frames_read += 1
            self.put(item)
            self.timing.record(end - start, (start - t_wait) + (time.perf_counter() - end))
            index += 1
        stats.stopped_by = stats.stopped_by or "max_frames"

    def read_frame(self) -> DecodedFrame | None:
        """The source's next frame as decoded (FrameSource.read_frame), or None at its end or
        when it failed (`ctx.input_error`)."""
        try:
            return self.source.read_frame()
        except InputError as exc:
            self.ctx.input_error = exc
            return None

    def wait_while_paused(self) -> None:
        """A file source waits while the view is paused (a live one keeps reading and dropping)."""
        while not self.live and self.ctx.paused.is_set():
            if self.ctx.stop.wait(0.02):
                raise StopRequested

    def put(self, item: FrameItem) -> None:
        if not self.live:
            self.outbox.put(item)
            return
        dropped = self.outbox.put_newest(item)
        if dropped is not None:
            self.ring.release(dropped.slot)
            self.ctx.stats.dropped += 1


class OverlayStage(StageThread):
    """Upsamples the ids to the frame's size and renders the annotated frame (+ HUD) for the
    sinks. With `render=False` (no sink takes pixels: masks only, or a window and no sinks,
    where the main thread renders what it shows) only the upsampling is done and
    `item.rendered` stays None. With `yuv420p=True` (every sink that takes pixels accepts
    yuv420p: the MP4 sink) the overlay is drawn straight into yuv420p planes from the decoder's
    own picture where `render_for_sinks` can (see there), so no full-size RGB is ever made."""

    stage = "overlay"

    def __init__(
        self,
        ctx: RunContext,
        visualizer,
        hud: bool,
        inbox: StageQueue,
        outbox: StageQueue,
        render: bool = True,
        yuv420p: bool = False,
    ):
        super().__init__(ctx, inbox, outbox)
        self.visualizer = visualizer
        self.hud = hud
        self.render = render
        self.yuv420p = yuv420p

    def process(self, item: FrameItem) -> None:
        item.ids_full = resize_ids(item.ids, item.size)
        if not self.render:
            return
        hud = None
        if self.hud:
            fps, latency_ms = self.ctx.meter.snapshot()
            hud = f"{fps:.1f} fps | {latency_ms:.0f} ms"
        item.rendered = render_for_sinks(self.visualizer, item.decoded, item.ids_full, hud, self.yuv420p)


def render_for_sinks(visualizer, decoded: DecodedFrame, ids_full: np.ndarray, hud: str | None, yuv420p: bool):
    """The annotated picture of `decoded` with `(H, W) uint8` ids: an av.VideoFrame in yuv420p
    drawn on the decoder's own planes when `yuv420p` is asked for and possible (a yuv420p
    decoder picture of even size, overlay or mask mode, no HUD line), else `(H', W', 3) uint8
    RGB` drawn on the frame's RGB picture."""
    planes = decoded.yuv420p_planes() if yuv420p and hud is None else None
    if planes is not None and visualizer.can_render_yuv420p():
        frame, out = new_yuv420p_frame(decoded.size)
        visualizer.render_yuv420p(planes, ids_full, out)
        return frame
    return visualizer.render(decoded.rgb(), ids_full, hud=hud)


class SinkStage(StageThread):
    """Writes each rendered frame and its ids to every sink; hands the item to the window, if
    any, through `display_queue` (newest wins: the window never lags behind the sinks), and to
    `results` (the lane's iterator, every item and END), if any."""

    stage = "sink"

    def __init__(
        self,
        ctx: RunContext,
        sinks: Sequence,
        inbox: StageQueue,
        display_queue: StageQueue | None = None,
        on_written: Callable[[int], None] | None = None,
        results: StageQueue | None = None,
    ):
        super().__init__(ctx, inbox, results)
        self.sinks = list(sinks)
        self.display_queue = display_queue
        self.on_written = on_written

    def process(self, item: FrameItem) -> None:
        for sink in self.sinks:
            sink.write(item.index, item.rendered, item.ids_full)
        written = time.perf_counter()
        stats = self.ctx.stats
        stats.record_written(item.t_captured, written)
        self.ctx.meter.tick(written, written - item.t_captured)
        if self.display_queue is not None:
            self.display_queue.put_newest(item)
        if self.on_written is not None:
            self.on_written(stats.frames)
