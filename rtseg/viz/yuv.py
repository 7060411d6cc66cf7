"""Drawing straight into yuv420p planes, the H.264 encoder's own input (no RGB round trip).

Blending is linear and RGB -> YUV is affine, so `(1 - a) * frame + a * colour` blended plane by
plane in YUV is the RGB overlay converted to YUV, up to rounding; the class colours' chroma
(U, V at half size) is the mean over each 2x2 block, as when RGB is converted. Colours convert
with OpenCV's BT.601 limited-range RGB -> I420 (what the MP4 sink uses for RGB input, within
1-3 levels of swscale's).
Layout: Y `(H, W)`, U and V `(H/2, W/2)` uint8, H and W even.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from rtseg.core.frames import rgb_to_yuv420p
from rtseg.viz.legend import Legend


def yuv_luts(palette: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """`(C, 3) uint8 RGB` palette -> three `(256,) uint8` tables (Y, U, V) by class id; ids
    without a colour are black, as in the RGB renderer."""
    palette = np.asarray(palette, np.uint8).reshape(-1, 3)[:256]
    colours = np.zeros((256, 3), np.uint8)
    colours[: len(palette)] = palette
    blocks = np.repeat(np.repeat(colours[None], 2, axis=0), 2, axis=1)  # (2, 512, 3): 2x2 per id
    y, u, v = rgb_to_yuv420p(blocks)
    return np.ascontiguousarray(y[0, ::2]), np.ascontiguousarray(u[0]), np.ascontiguousarray(v[0])


@dataclass(frozen=True)
class YuvLegendPanel:
    """The legend in yuv420p at (x, y) (both even): panel planes, and where they are ink."""

    x: int
    y: int
    planes: tuple[np.ndarray, np.ndarray, np.ndarray]
    ink: tuple[np.ndarray, np.ndarray, np.ndarray]


class YuvLegend:
    """The RGB legend converted once per frame size; drawn like it: the box darkened by half,
    swatches and text copied opaque."""

    def __init__(self, legend: Legend):
        self.legend = legend
        self._cache: dict[tuple[int, int], YuvLegendPanel | None] = {}

    def panel_for(self, size: tuple[int, int]) -> YuvLegendPanel | None:
        """The legend for planes of `size` (height, width) of the luma plane."""
        key = (int(size[0]), int(size[1]))
        if key not in self._cache:
            self._cache[key] = self._convert(self.legend.panel_for(key))
        return self._cache[key]

    @staticmethod
    def _convert(panel) -> YuvLegendPanel | None:
        if panel is None:
            return None
        rgb, ink = _even(panel.panel), _even(panel.ink[..., 0])
        ink_half = cv2.resize(ink.astype(np.uint8) * 255, None, fx=0.5, fy=0.5, interpolation=cv2.INTER_AREA)
        chroma_ink = ink_half >= 128
        return YuvLegendPanel(panel.x & ~1, panel.y & ~1, rgb_to_yuv420p(rgb), (ink, chroma_ink, chroma_ink))

    def draw(self, planes: tuple[np.ndarray, np.ndarray, np.ndarray]) -> None:
        """Draw onto (Y, U, V) in place."""
        legend = self.panel_for(planes[0].shape)
        if legend is None:
            return
        for index, (plane, panel, ink) in enumerate(zip(planes, legend.planes, legend.ink)):
            scale = 1 if index == 0 else 2
            x, y = legend.x // scale, legend.y // scale
            roi = plane[y : y + panel.shape[0], x : x + panel.shape[1]]
            np.right_shift(roi, 1, out=roi)  # RGB / 2 is (Y + 16) / 2 and (U + 128) / 2
            roi += 8 if index == 0 else 64
            np.copyto(roi, panel, where=ink)


def _even(image: np.ndarray) -> np.ndarray:
    """Pad the bottom row / right column with zeros (no ink, black) to even height and width."""
    pad_h, pad_w = image.shape[0] % 2, image.shape[1] % 2
    if not (pad_h or pad_w):
        return image
    widths = [(0, pad_h), (0, pad_w)] + [(0, 0)] * (image.ndim - 2)
    return np.pad(image, widths)


def blend_plane(plane: np.ndarray, colours: np.ndarray, alpha: float, out: np.ndarray) -> None:
    """out = (1 - alpha) * plane + alpha * colours, rounded (uint8 planes of one size)."""
    cv2.addWeighted(plane, 1.0 - alpha, colours, alpha, 0.0, dst=out)
