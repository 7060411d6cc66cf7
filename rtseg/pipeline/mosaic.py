"""One window for many sources: the newest annotated frame of each, tiled in a grid (what
rtseg.pipeline.live.LiveView shows when a run has several lanes)."""

from __future__ import annotations

import math

import cv2
import numpy as np

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
