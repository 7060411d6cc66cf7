"""The class legend (colour swatches + names, rendered once per frame size) and the HUD line."""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

FONT = cv2.FONT_HERSHEY_SIMPLEX
_FONT_PX = 22.0  # cap height of FONT at scale 1.0, in pixels
MIN_ROW_PX = 10  # smaller text is unreadable: no legend then
MAX_ROW_PX = 20


@dataclass(frozen=True)
class LegendPanel:
    """A pre-rendered legend: `panel (h, w, 3) uint8 RGB` drawn at (x, y); `ink (h, w, 3) bool`
    marks swatch and text pixels, copied opaque; the rest of the box darkens the frame by half."""

    x: int
    y: int
    panel: np.ndarray
    ink: np.ndarray


class Legend:
    """Top-right legend of class colours and names, cached per output (height, width)."""

    def __init__(self, classes: list[str], palette: np.ndarray):
        count = min(len(classes), len(palette))
        self.classes = [str(c) for c in classes[:count]]
        self.palette = np.asarray(palette, np.uint8).reshape(-1, 3)[:count]
        self._cache: dict[tuple[int, int], LegendPanel | None] = {}

    def panel_for(self, size: tuple[int, int]) -> LegendPanel | None:
        """The legend for an image of `size` (height, width); None when it would not fit legibly."""
        key = (int(size[0]), int(size[1]))
        if key not in self._cache:
            self._cache[key] = self._render(*key)
        return self._cache[key]

    def draw(self, image: np.ndarray) -> None:
        """Draw onto `(H, W, 3) uint8 RGB` in place."""
        legend = self.panel_for(image.shape[:2])
        if legend is None:
            return
        h, w = legend.panel.shape[:2]
        roi = image[legend.y : legend.y + h, legend.x : legend.x + w]
        np.right_shift(roi, 1, out=roi)
        np.copyto(roi, legend.panel, where=legend.ink)

    def _render(self, height: int, width: int) -> LegendPanel | None:
        if not self.classes:
            return None
        margin = max(4, height // 60)
        row = int(np.clip(height * 0.5 / len(self.classes), MIN_ROW_PX, MAX_ROW_PX))
        scale = 0.6 * row / _FONT_PX
        thickness = 1
        text_w = max(cv2.getTextSize(name, FONT, scale, thickness)[0][0] for name in self.classes)
        swatch = row - 3
        pad = max(3, row // 4)
        panel_w = pad + swatch + pad + text_w + pad
        panel_h = pad + row * len(self.classes) + pad - 3
        if panel_h + 2 * margin > height or panel_w + 2 * margin > width // 2:
            return None
        panel = np.zeros((panel_h, panel_w, 3), np.uint8)
        for i, (name, colour) in enumerate(zip(self.classes, self.palette)):
            top = pad + i * row
            colour = tuple(int(c) for c in colour)
            cv2.rectangle(panel, (pad, top), (pad + swatch - 1, top + swatch - 1), colour, -1)
            cv2.rectangle(panel, (pad, top), (pad + swatch - 1, top + swatch - 1), (200, 200, 200), 1)
            baseline_y = top + (swatch + int(row * 0.6)) // 2
            cv2.putText(
                panel,
                name,
                (2 * pad + swatch, baseline_y),
                FONT,
                scale,
                (255, 255, 255),
                thickness,
                cv2.LINE_AA,
            )
        ink = np.repeat(panel.any(axis=2, keepdims=True), 3, axis=2)  # full mask: copyto is 10x faster
        # even x and y: the yuv420p renderer draws the same legend at the same place
        return LegendPanel((width - margin - panel_w) & ~1, margin & ~1, panel, ink)


def draw_hud(image: np.ndarray, text: str) -> None:
    """Write one line (e.g. "23.4 fps | 41 ms") at the top left of `(H, W, 3) uint8 RGB`, in place,
    white with a black outline so it reads on any background."""
    height = image.shape[0]
    scale = max(0.35, height / 800)
    thick = max(1, round(scale * 2))
    margin = max(4, height // 60)
    origin = (margin, margin + int(_FONT_PX * scale))
    cv2.putText(image, text, origin, FONT, scale, (0, 0, 0), thick + 2, cv2.LINE_AA)
    cv2.putText(image, text, origin, FONT, scale, (255, 255, 255), thick, cv2.LINE_AA)
