"""Stop-aware bounded queues, the items that travel through them, and the model-input ring.

Every blocking call here waits in short slices and rechecks the shared stop event, so no
thread can stay blocked on a full or empty queue once the run is stopping.
"""

from __future__ import annotations

import queue
import threading
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from rtseg.video.decoded import DecodedFrame

END = object()  # end-of-stream marker, passed on by every stage when it finishes


class StopRequested(Exception):
    """Raised by a queue or ring operation when the shared stop event is set (internal)."""


@dataclass
class FrameItem:
    """One frame on its way through the pipeline.

    decoded: the source's frame as decoded (rtseg.video.decoded.DecodedFrame): converted only
        as far as it is used; `frame` is its full-size (H, W, 3) uint8 RGB picture, made on
        first use (a run that needs no pixels, masks only, never makes it).
    model_input: (h, w, 3) uint8 RGB view into a ring slot, at the model's input size.
    ids: (h, w) uint8 class ids at model size; ids_full: (H, W) uint8 at the frame's size.
    rendered: (H', W', 3) uint8 RGB annotated frame, or an av.VideoFrame in yuv420p when every
        sink that takes pixels accepts one (`accepts_yuv420p`); None when no sink takes pixels.
    t_captured: perf_counter() when the source returned the frame; timings: stage -> (start, end).
    """

    index: int
    decoded: DecodedFrame
    t_captured: float
    slot: int = -1
    model_input: np.ndarray | None = None
    ids: np.ndarray | None = None
    ids_full: np.ndarray | None = None
    rendered: np.ndarray | None = None
    timings: dict[str, tuple[float, float]] = field(default_factory=dict)

    @property
    def frame(self) -> np.ndarray:
        """The full-size `(H, W, 3) uint8 RGB` picture (converted once, on first use)."""
        return self.decoded.rgb()

    @property
    def size(self) -> tuple[int, int]:
        """(H, W) of the source frame."""
        return tuple(self.decoded.size)


class StageQueue:
    """A bounded FIFO between two stages; `get`/`put` raise StopRequested once `stop` is set."""

    def __init__(self, maxsize: int, stop: threading.Event, poll_s: float = 0.05):
        if maxsize < 1:
            raise ValueError(f"queue size must be >= 1, got {maxsize}")
        self._queue: queue.Queue = queue.Queue(maxsize)
        self._stop = stop
        self._poll_s = poll_s

    def put(self, item) -> None:
        """Block until there is room (rechecking the stop event every poll interval)."""
        while True:
            if self._stop.is_set():
                raise StopRequested
            try:
                self._queue.put(item, timeout=self._poll_s)
                return
            except queue.Full:
                continue

    def put_newest(self, item):
        """Put without blocking; when full, drop and return the OLDEST queued item (else None).

        Only valid with a single producer (the capture stage): the consumer can only free room.
        """
        try:
            self._queue.put_nowait(item)
            return None
        except queue.Full:
            pass
        try:
            dropped = self._queue.get_nowait()
        except queue.Empty:  # the consumer took one in between
            dropped = None
        self._queue.put_nowait(item)  # there is room now: no other thread puts
        return dropped

    def get(self):
        """Block until an item arrives (rechecking the stop event every poll interval)."""
        while True:
            if self._stop.is_set():
                raise StopRequested
            try:
                return self._queue.get(timeout=self._poll_s)
            except queue.Empty:
                continue

    def poll(self, timeout_s: float):
        """The next item, or None if none arrives within `timeout_s` (ignores the stop event)."""
        try:
            return self._queue.get(timeout=timeout_s)
        except queue.Empty:
            return None

    def qsize(self) -> int:
        return self._queue.qsize()


class FrameRing:
    """Pre-allocated (h, w, 3) uint8 buffers for model inputs, handed out from a free list.

    A slot is held from capture (resize into it) until the infer stage has run on it, or until
    the frame is dropped; a free list (not a rotating index) keeps a slow inference safe from
    being overwritten while live frames are being dropped around it.
    """

    def __init__(self, count: int, height: int, width: int, stop: threading.Event, poll_s: float = 0.05):
        self.buffers = np.zeros((count, height, width, 3), np.uint8)
        self._free: queue.Queue = queue.Queue()
        for slot in range(count):
            self._free.put(slot)
        self._stop = stop
        self._poll_s = poll_s

    def acquire(self) -> int:
        while True:
            if self._stop.is_set():
                raise StopRequested
            try:
                return self._free.get(timeout=self._poll_s)
            except queue.Empty:
                continue

    def release(self, slot: int) -> None:
        if slot >= 0:
            self._free.put(slot)
