"""`InferStage`: the one infer thread of a Pipeline, batching the queued frame of every ready lane
(rtseg.pipeline.lane.Lane) into one backend call. Every backend call of a run lives here."""

from __future__ import annotations

import threading
import time

import numpy as np

from rtseg.errors import ModelError
from rtseg.pipeline.queues import END, StopRequested

__all__ = ["InferStage", "checked_ids"]


class InferStage(threading.Thread):
    """Batches the queued frame of every ready lane into one backend call (one lane: batch 1,
    every frame of a file in order; newest frame for a live source).

    Frames go through the Backend contract's `submit` / `wait`. A backend whose submit
    `overlaps` (TensorRT's two slots) keeps one batch in flight: the next batch is submitted
    before the previous one is waited for, when frames are ready for it; when none are, the
    batch in flight is finished at once (no added latency). Ends when every lane has ended; a
    backend error stops the whole run (`on_error`). A lane whose own stop is set (it failed) is
    dropped from the batching at once; a lane's END is passed on after its last frame.
    """

    def __init__(self, lanes, backend, max_batch: int, timeout_s: float, stop, ready, stats, on_error):
        super().__init__(name="rtseg-infer", daemon=True)
        self.lanes, self.backend, self.max_batch = list(lanes), backend, max(1, max_batch)
        self.timeout_s, self.stop, self.ready = timeout_s, stop, ready
        self.stats, self.on_error = stats, on_error
        height, width = backend.input_size
        self.buffer = np.zeros((self.max_batch, height, width, 3), np.uint8)  # submit copies it
        self.ended: list = []  # lanes whose END waits for their last frame to be passed on
        self._next = 0  # round-robin start, so no lane waits behind the others forever

    def run(self) -> None:
        try:
            self.loop(list(self.lanes), self.backend.overlaps)
        except StopRequested:
            pass
        except BaseException as exc:  # noqa: BLE001 - handed to the main thread, which re-raises it
            self.on_error(exc)

    def loop(self, active: list, ahead: bool) -> None:
        pending = None  # (batch, handle, start) in flight
        while active or pending is not None:
            if pending is None:
                self._flush_ends()
                batch = self.gather(active, wait=True)
            else:
                batch = self.gather(active, wait=False)
                if not batch:  # nothing ready behind it: finish the batch in flight now
                    pending = self._finish(*pending)
                    continue
            if not batch:
                continue
            submitted = self._submit(batch)
            if pending is not None:
                self._finish(*pending)
            pending = submitted if ahead else self._finish(*submitted)
        self._flush_ends()

    def scan(self, active: list, taken: dict) -> None:
        """Take the queued frame of each lane not yet in `taken` (up to max_batch), in round-robin
        order; drop lanes that ended (END kept for later) or failed."""
        if self.stop.is_set():
            raise StopRequested
        order = active[self._next % len(active) :] + active[: self._next % len(active)]
        for lane in order:
            if len(taken) >= self.max_batch:
                return
            if lane in taken:
                continue
            if lane.ctx.stop.is_set():
                active.remove(lane)
                continue
            item = lane.mailbox.poll(0)
            if item is END:
                active.remove(lane)
                self.ended.append(lane)
            elif item is not None:
                taken[lane] = (item, time.perf_counter())

    def gather(self, active: list, wait: bool = True) -> list:
        """[(lane, item, t_taken)]. wait: block until a frame is ready (or every lane ended), then
        up to `timeout_s` for the other lanes; else only what is ready now."""
        taken: dict = {}
        deadline = None
        while active:
            self.ready.clear()
            self.scan(active, taken)
            if not wait or (taken and len(taken) >= min(self.max_batch, len(active))):
                break
            now = time.perf_counter()
            if taken and deadline is None:
                deadline = now + self.timeout_s
            if deadline is not None and now >= deadline:
                break
            self.ready.wait(0.05 if deadline is None else max(deadline - now, 0.0))
        self._next += max(1, len(taken))
        return [(lane, item, t) for lane, (item, t) in taken.items()]

    def _submit(self, batch: list):
        start = time.perf_counter()
        for i, (lane, item, _) in enumerate(batch):
            self.buffer[i] = item.model_input
            lane.ring.release(item.slot)
            item.slot, item.model_input = -1, None
        return batch, self.backend.submit(self.buffer[: len(batch)]), start

    def _finish(self, batch: list, handle, start: float) -> None:
        ids = checked_ids(handle.wait(), len(batch), self.buffer.shape[1:3], batch[0][1].index)
        end = time.perf_counter()
        self.stats.batch_sizes[len(batch)] += 1
        self.stats.infer.record(end - start, 0.0)
        for i, (lane, item, t_taken) in enumerate(batch):
            item.ids = ids[i]
            item.timings["infer"] = (start, end)
            lane.stats.stages["infer"].record(end - start, start - t_taken)
            self._pass_on(lane, item)
        return None

    def _flush_ends(self) -> None:
        ended, self.ended = self.ended, []
        for lane in ended:
            self._pass_on(lane, END)

    @staticmethod
    def _pass_on(lane, item) -> None:
        try:
            lane.hand_on(item)
        except StopRequested:  # the lane failed or the run is stopping: nothing more for it
            pass


def checked_ids(ids, count: int, size: tuple[int, int], index: int) -> np.ndarray:
    """The backend's `(count, h, w) uint8` ids as they are; ModelError (one line) for anything
    else (a graph whose output shape depends on its input). index: the first frame's index."""
    h, w = size
    if not isinstance(ids, np.ndarray) or ids.shape != (count, h, w) or ids.dtype != np.uint8:
        got = f"{ids.shape} {ids.dtype}" if isinstance(ids, np.ndarray) else type(ids).__name__
        raise ModelError(
            f"the model returned {got} for frame {index}; expected ({count}, {h}, {w}) uint8 ids"
        )
    return ids
