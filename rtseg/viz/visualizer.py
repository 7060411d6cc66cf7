"""Draw segmentation results: overlay, colour mask or side-by-side, with legend and HUD."""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from rtseg.core.frames import resize_ids
from rtseg.errors import InputError
from rtseg.viz.legend import Legend, draw_hud
from rtseg.viz.palette import colourize, palette_lut
from rtseg.viz.yuv import YuvLegend, blend_plane, yuv_luts

MODES = ("overlay", "mask", "side-by-side")


@dataclass(frozen=True)
class VizConfig:
    """mode: "overlay" (frame blended with class colours), "mask" (class colours only) or
    "side-by-side" (frame | colour mask, twice as wide). alpha: weight of the colours in the
    overlay, 0..1. legend / hud: draw the class legend (top right) / the HUD line (top left)."""

    mode: str = "overlay"
    alpha: float = 0.5
    legend: bool = True
    hud: bool = True

    def __post_init__(self):
        if self.mode not in MODES:
            raise InputError(f"unknown visualisation mode '{self.mode}' (use {', '.join(MODES)})")
        if not 0.0 <= self.alpha <= 1.0:
            raise InputError(f"overlay alpha must be within 0..1, got {self.alpha}")


class Visualizer:
    """Turns a frame and its class ids into the picture a user sees.

    classes: names by class id; palette: `(C, 3) uint8 RGB` by class id. Ids without a palette
    entry (e.g. 255, ignore) are drawn black. About 2 ms per 960x540 overlay on one CPU core.
    """

    def __init__(self, cfg: VizConfig, classes: list[str], palette: np.ndarray):
        self.cfg = cfg
        self.classes = list(classes)
        self.palette = np.asarray(palette, np.uint8).reshape(-1, 3)
        self.lut = palette_lut(self.palette)
        self.legend = Legend(self.classes, self.palette)
        self.yuv_luts = yuv_luts(self.palette)
        self.yuv_legend = YuvLegend(self.legend)

    def colourize(self, ids: np.ndarray) -> np.ndarray:
        """`(H, W) uint8` ids -> `(H, W, 3) uint8 RGB` palette colours."""
        return colourize(ids, self.lut)

    def render(
        self, frame: np.ndarray, ids: np.ndarray, hud: str | None = None, cfg: VizConfig | None = None
    ) -> np.ndarray:
        """frame `(H, W, 3) uint8 RGB`, ids `(H, W) uint8` (other sizes are upsampled to the
        frame's) -> a new `(H, W, 3) uint8 RGB` image, `(H, 2W, 3)` for side-by-side. `cfg`
        overrides the configuration for this call. The inputs are not modified."""
        cfg = cfg or self.cfg
        height, width = frame.shape[:2]
        if frame.ndim != 3 or frame.shape[2] != 3 or frame.dtype != np.uint8:
            raise ValueError(f"frame must be (H, W, 3) uint8 RGB, got {frame.shape} {frame.dtype}")
        colours = self.colourize(resize_ids(ids, (height, width)))
        if cfg.mode == "mask":
            image = colours
        elif cfg.mode == "overlay":
            image = cv2.addWeighted(frame, 1.0 - cfg.alpha, colours, cfg.alpha, 0.0)
        else:
            image = np.concatenate([frame, colours], axis=1)
        if cfg.legend:
            self.legend.draw(image)
        if cfg.hud and hud:
            draw_hud(image, hud)
        return image

    def can_render_yuv420p(self, cfg: VizConfig | None = None) -> bool:
        """Whether `render_yuv420p` draws this mode (overlay and mask; side-by-side: no)."""
        return (cfg or self.cfg).mode in ("overlay", "mask")

    def render_yuv420p(
        self,
        planes: tuple[np.ndarray, np.ndarray, np.ndarray],
        ids: np.ndarray,
        out: tuple[np.ndarray, np.ndarray, np.ndarray],
        cfg: VizConfig | None = None,
    ) -> None:
        """`render` for the H.264 encoder, in yuv420p: frame planes `(Y (H, W), U, V (H/2, W/2))`
        uint8 and ids `(H, W) uint8` -> `out`, three planes of the same shapes (written, never
        the inputs). Overlay or mask mode, legend, no HUD line (see rtseg.viz.yuv)."""
        cfg = cfg or self.cfg
        if not self.can_render_yuv420p(cfg):
            raise ValueError(f"render_yuv420p draws overlay and mask modes, not {cfg.mode}")
        ids = resize_ids(ids, planes[0].shape)
        for index, (plane, lut, dst) in enumerate(zip(planes, self.yuv_luts, out)):
            colours = cv2.LUT(ids, lut)
            if index:  # chroma: the mean of each 2x2 block, as an encoder's RGB input gets
                colours = cv2.resize(colours, dst.shape[::-1], interpolation=cv2.INTER_AREA)
            if cfg.mode == "mask":
                np.copyto(dst, colours)
            else:
                blend_plane(plane, colours, cfg.alpha, dst)
        if cfg.legend:
            self.yuv_legend.draw(out)
