"""Visualisation of class-id maps: palette lookup, overlay / mask / side-by-side, legend, HUD.
Images are `(H, W, 3) uint8 RGB`; class ids `(H, W) uint8`."""

from rtseg.viz.legend import Legend, draw_hud
from rtseg.viz.palette import colourize, palette_lut
from rtseg.viz.visualizer import MODES, Visualizer, VizConfig

__all__ = [
    "VizConfig",
    "Visualizer",
    "MODES",
    "Legend",
    "draw_hud",
    "colourize",
    "palette_lut",
]
