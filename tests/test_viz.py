"""Visualisation: palette colours, overlay blend, side-by-side, legend, HUD, upsampling."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import structured_frames

from rtseg.core.frames import resize_ids
from rtseg.data.labels import CAMVID
from rtseg.errors import InputError
from rtseg.viz import Visualizer, VizConfig, colourize, palette_lut

PALETTE = CAMVID.palette_array()  # 11 classes: ids 11..255 have no colour
PLAIN = dict(legend=False, hud=False)


def make_ids(height: int, width: int) -> np.ndarray:
    """Every class id 0..12 plus 255, in vertical bands."""
    values = np.array(list(range(13)) + [255], np.uint8)
    return np.ascontiguousarray(np.tile(values[np.arange(width) * len(values) // width], (height, 1)))


@pytest.fixture
def visualizer() -> Visualizer:
    return Visualizer(VizConfig(), list(CAMVID.classes), PALETTE)


@pytest.fixture
def frame() -> np.ndarray:
    return structured_frames(1, 120, 160, seed=7)[0]


def expected_colours(ids: np.ndarray) -> np.ndarray:
    table = np.zeros((256, 3), np.uint8)
    table[: len(PALETTE)] = PALETTE
    return table[ids]


def test_mask_mode_draws_exact_palette_colours_and_black_out_of_range(visualizer, frame):
    ids = make_ids(120, 160)
    image = visualizer.render(frame, ids, cfg=VizConfig(mode="mask", **PLAIN))
    assert image.shape == (120, 160, 3) and image.dtype == np.uint8
    np.testing.assert_array_equal(image, expected_colours(ids))
    assert (image[ids >= len(PALETTE)] == 0).all()
    assert (image[ids == 3] == CAMVID.palette[3]).all()  # Road


@pytest.mark.parametrize("alpha", [0.3, 0.5, 1.0])
def test_overlay_blends_frame_and_palette(visualizer, frame, alpha):
    ids = make_ids(120, 160)
    image = visualizer.render(frame, ids, cfg=VizConfig(mode="overlay", alpha=alpha, **PLAIN))
    want = frame * (1 - alpha) + expected_colours(ids).astype(np.float64) * alpha
    assert np.abs(image.astype(np.float64) - want).max() <= 1.0


def test_side_by_side_is_frame_then_mask(visualizer, frame):
    ids = make_ids(120, 160)
    image = visualizer.render(frame, ids, cfg=VizConfig(mode="side-by-side", **PLAIN))
    assert image.shape == (120, 320, 3)
    np.testing.assert_array_equal(image[:, :160], frame)
    np.testing.assert_array_equal(image[:, 160:], expected_colours(ids))


def test_render_leaves_its_inputs_alone(visualizer, frame):
    ids = make_ids(120, 160)
    frame_before, ids_before = frame.copy(), ids.copy()
    for mode in ("overlay", "mask", "side-by-side"):
        visualizer.render(frame, ids, hud="12 fps", cfg=VizConfig(mode=mode))
    np.testing.assert_array_equal(frame, frame_before)
    np.testing.assert_array_equal(ids, ids_before)


def test_legend_draws_in_the_top_right_corner_only():
    frame = structured_frames(1, 240, 320, seed=8)[0]
    ids = make_ids(240, 320)
    viz = Visualizer(VizConfig(hud=False), list(CAMVID.classes), PALETTE)
    plain = viz.render(frame, ids, cfg=VizConfig(legend=False, hud=False))
    with_legend = viz.render(frame, ids)
    changed = np.any(plain != with_legend, axis=2)
    assert changed[:120, 160:].mean() > 0.2  # top-right quarter
    assert not changed[:, :160].any() and not changed[200:].any()
    panel = viz.legend.panel_for((240, 320))
    assert panel is viz.legend.panel_for((240, 320))  # rendered once per size
    swatch_colours = {tuple(c) for c in panel.panel.reshape(-1, 3)}
    assert {tuple(int(v) for v in c) for c in CAMVID.palette} <= swatch_colours


def test_legend_is_left_out_when_the_frame_is_too_small(visualizer):
    frame = structured_frames(1, 24, 32)[0]
    ids = make_ids(24, 32)
    assert visualizer.legend.panel_for((24, 32)) is None
    np.testing.assert_array_equal(
        visualizer.render(frame, ids, cfg=VizConfig(hud=False)),
        visualizer.render(frame, ids, cfg=VizConfig(**PLAIN)),
    )


def test_hud_text_is_drawn_top_left_when_given(visualizer, frame):
    ids = make_ids(120, 160)
    cfg = VizConfig(legend=False)
    plain = visualizer.render(frame, ids, cfg=cfg)
    with_hud = visualizer.render(frame, ids, hud="23.4 fps | 41 ms", cfg=cfg)
    changed = np.any(plain != with_hud, axis=2)
    assert changed[:20, :80].any() and not changed[60:].any()
    hud_off = visualizer.render(frame, ids, hud="23.4 fps", cfg=VizConfig(**PLAIN))
    np.testing.assert_array_equal(hud_off, plain)


def test_resize_ids_is_nearest_with_size_as_height_width():
    ids = np.array([[0, 1, 2], [3, 4, 5]], np.uint8)
    big = resize_ids(ids, (4, 6))
    np.testing.assert_array_equal(big, np.repeat(np.repeat(ids, 2, axis=0), 2, axis=1))
    assert resize_ids(ids, (2, 3)) is ids


def test_render_upsamples_model_sized_ids_to_the_frame(visualizer, frame):
    small = np.full((30, 40), 3, np.uint8)
    small[:, 20:] = 8
    image = visualizer.render(frame, small, cfg=VizConfig(mode="mask", **PLAIN))
    assert image.shape == (120, 160, 3)
    assert (image[:, :80] == CAMVID.palette[3]).all() and (image[:, 80:] == CAMVID.palette[8]).all()


def test_render_uses_its_config_unless_overridden(frame):
    viz = Visualizer(VizConfig(mode="mask", **PLAIN), list(CAMVID.classes), PALETTE)
    ids = make_ids(120, 160)
    np.testing.assert_array_equal(viz.render(frame, ids), expected_colours(ids))
    assert viz.render(frame, ids, cfg=VizConfig(mode="side-by-side")).shape == (120, 320, 3)


def test_palette_lut_and_colourize():
    lut = palette_lut(np.array([[1, 2, 3], [4, 5, 6]], np.uint8))
    assert lut.shape == (256, 1, 3)
    out = colourize(np.array([[0, 1, 2, 255]], np.uint8), lut)
    np.testing.assert_array_equal(out[0], [[1, 2, 3], [4, 5, 6], [0, 0, 0], [0, 0, 0]])
    np.testing.assert_array_equal(resize_ids(np.array([[7]], np.uint8), (3, 2)), np.full((3, 2), 7))


def test_invalid_viz_config_is_an_input_error():
    with pytest.raises(InputError, match="unknown visualisation mode 'blend'"):
        VizConfig(mode="blend")
    with pytest.raises(InputError, match="alpha must be within 0..1, got 1.5"):
        VizConfig(alpha=1.5)
