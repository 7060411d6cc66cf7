"""What the double-buffered backends share (TensorRT, torch on CUDA): slots used in turn, the
handle of a submitted batch, and a large batch run through the slots with one chunk in flight
per slot.

A slot is anything with a `pending` attribute (the Pending not yet collected, or None); it holds
the buffers, stream and event of one batch in flight.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable

import numpy as np


class Pending:
    """A submitted batch of `count` frames on `slot`; `wait()` returns its `(count, H, W) uint8`
    class ids, from `finish(slot, count)` the first time (it waits for the slot's work)."""

    def __init__(self, slot, count: int, finish: Callable[[object, int], np.ndarray]):
        self.slot, self.count, self._finish = slot, count, finish
        self._result: np.ndarray | None = None

    def wait(self) -> np.ndarray:
        if self._result is None:
            self._result = self._finish(self.slot, self.count)
            self.slot.pending = None
        return self._result


class SlotRing:
    """The slots of a backend, handed out in turn."""

    def __init__(self):
        self.slots: list = []
        self._next = 0

    def __len__(self) -> int:
        return len(self.slots)

    def take(self):
        """The next slot, its previous batch collected first (its buffers are about to be reused)."""
        slot = self.slots[self._next]
        self._next = (self._next + 1) % len(self.slots)
        if slot.pending is not None:
            slot.pending.wait()
        return slot


def infer_through_slots(
    submit: Callable[[np.ndarray], Pending],
    images: np.ndarray,
    max_batch: int,
    depth: int,
    input_size: tuple[int, int],
) -> np.ndarray:
    """`(N, H, W, 3) uint8` frames in chunks of `max_batch`, `depth` chunks in flight at once;
    returns the `(N, H, W) uint8` ids in order."""
    results, in_flight = [], deque()
    for start in range(0, len(images), max_batch):
        if len(in_flight) == depth:
            results.append(in_flight.popleft().wait())
        in_flight.append(submit(images[start : start + max_batch]))
    results.extend(p.wait() for p in in_flight)
    return np.concatenate(results) if results else np.empty((0, *input_size), np.uint8)
