"""One window for many sources: the newest annotated frame of each, tiled in a grid.

Driven from the main thread by MultiPipeline: `update(lane, item)` as frames arrive, `step()`
once a loop (shows the mosaic when something changed, handles keys; False on q / Esc / the
window closed). Each frame shown is recorded in its source's stats (capture -> display latency).
"""

from __future__ import annotations

import math
import time

import cv2
import numpy as np

from rtseg.pipeline.live import QUIT_KEYS

TILE_SIZE = (270, 480)  # (height, width) of one source's tile


def grid_shape(count: int) -> tuple[int, int]:
    """(rows, columns) of the most square grid that holds `count` tiles: 1 -> 1x1, 3 -> 2x2."""
    columns = max(1, math.ceil(math.sqrt(count)))
    return max(1, math.ceil(count / columns)), columns


def compose_mosaic(tiles: list[np.ndarray | None], names: list[str], tile_size=TILE_SIZE) -> np.ndarray:
    """Tile `(H, W, 3) uint8 RGB` frames (None: a black tile) into one `(rows*h, cols*w, 3)`
    uint8 RGB picture, each resized to `tile_size` (height, width) and labelled with its name."""
    rows, columns = grid_shape(len(tiles))
    height, width = tile_size
    mosaic = np.zeros((rows * height, columns * width, 3), np.uint8)
    for position, (tile, name) in enumerate(zip(tiles, names)):
        y, x = (position // columns) * height, (position % columns) * width
        cell = mosaic[y : y + height, x : x + width]
        if tile is not None:
            cell[:] = cv2.resize(tile, (width, height), interpolation=cv2.INTER_AREA)
        cv2.putText(
            cell, name, (8, height - 10), cv2.FONT_HERSHEY_SIMPLEX, 0.5, (255, 255, 255), 1, cv2.LINE_AA
        )
    return mosaic


class MosaicView:
    """The mosaic window of `lanes` on `display` (`show(rgb) -> key`, optional `poll_key()`)."""

    def __init__(self, display, lanes, tile_size=TILE_SIZE):
        self.display = display
        self.positions = {lane.index: position for position, lane in enumerate(lanes)}
        self.names = [f"{lane.index}: {lane.name}" for lane in lanes]
        self.tiles: list[np.ndarray | None] = [None] * len(lanes)
        self.tile_size = tile_size
        self._new: list = []  # (lane, item) arrived since the last show

    def update(self, lane, item) -> None:
        self.tiles[self.positions[lane.index]] = item.rendered
        self._new.append((lane, item))

    def step(self) -> bool:
        if self._new:
            key = self.display.show(compose_mosaic(self.tiles, self.names, self.tile_size))
            shown = time.perf_counter()
            for lane, item in self._new:
                lane.stats.record_display(item.t_captured, shown)
            self._new.clear()
        else:
            poll = getattr(self.display, "poll_key", None)
            key = poll() if callable(poll) else -1
        return key is None or key < 0 or (key & 0xFF) not in QUIT_KEYS

    def close(self) -> None:
        self.display.close()
