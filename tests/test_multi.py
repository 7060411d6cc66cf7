"""Many live sources, one batched model: a Pipeline of many lanes, the mosaic, `rtseg run --source A
--source B`."""

from __future__ import annotations

import json

import numpy as np
import pytest
from band_model import make_band_package
from conftest import structured_frames
from test_cli_run import assert_one_line_error, read_masks, rtseg_run
from test_pipeline import (
    FakeBackend,
    FakeDisplay,
    ListSource,
    RecordingSink,
    expected_ids,
    fake_model,
    run_in_thread,
)

from rtseg.api import RunConfig
from rtseg.assembly import check_patterns, expand_pattern, source_name, unique_names
from rtseg.errors import InputError, ModelError
from rtseg.pipeline import Lane, Pipeline, PipelineConfig
from rtseg.pipeline.mosaic import compose_mosaic, grid_shape
from rtseg.viz import VizConfig

H, W = 48, 64


def solid_frames(red: int, n: int = 6) -> np.ndarray:
    frames = np.zeros((n, H, W, 3), np.uint8)
    frames[..., 0] = red
    return frames


class BatchRecordingBackend(FakeBackend):
    """FakeBackend that takes batches (up to max_batch) and records each call's size."""

    def __init__(self, max_batch=8, **kw):
        super().__init__(**kw)
        self.max_batch, self.sizes = max_batch, []

    def _infer_impl(self, images):
        assert len(images) <= self.max_batch
        self.sizes.append(len(images))
        return super()._infer_impl(images)


class OverlappingBackend(BatchRecordingBackend):
    """Like TensorRT's two slots: submit returns at once, the ids come on wait (logged)."""

    overlaps = True

    def __init__(self, **kw):
        super().__init__(**kw)
        self.log = []

    def _submit_impl(self, images):
        number, ids = len(self.sizes), self._infer_impl(images.copy())
        self.log.append(("submit", number))
        log = self.log

        class Handle:
            def wait(self):
                log.append(("wait", number))
                return ids

        return Handle()


def lanes_of(*sources, sinks=None):
    return [
        Lane(i, f"s{i}", src, [sinks[i]] if sinks else [RecordingSink()]) for i, src in enumerate(sources)
    ]


def multi(lanes, backend, **kw):
    events = []
    config = PipelineConfig(viz=VizConfig(hud=False, legend=False), **kw)
    pipeline = Pipeline(lanes, fake_model(backend), config, on_event=events.append)
    return pipeline, events


# --- names and patterns --------------------------------------------------------------------


@pytest.mark.parametrize(
    "uri, name",
    [
        ("lavfi:testsrc2=size=640x480:rate=30", "testsrc2"),
        ("0", "camera0"),
        ("/dev/video2", "video2"),
        ("rtsp://user:pw@cam7:554/live/main", "cam7_live_main"),
        ("clips/road one.mp4", "road_one"),
    ],
)
def test_source_names(uri, name):
    assert source_name(uri) == name


def test_patterns_and_unique_names(tmp_path):
    assert unique_names(["lavfi:testsrc", "lavfi:testsrc=rate=5", "0"]) == [
        "testsrc_0",
        "testsrc_1",
        "camera0",
    ]
    assert expand_pattern(tmp_path / "o_{index}_{name}.mp4", 2, "cam") == tmp_path / "o_2_cam.mp4"
    check_patterns(RunConfig.of("x", output=tmp_path / "o_{name}.mp4"), 3)
    with pytest.raises(InputError, match=r"with 3 sources, put \{index\} or \{name\}"):
        check_patterns(RunConfig.of("x", masks=tmp_path / "masks"), 3)


def test_mosaic_grid():
    assert [grid_shape(n) for n in (1, 2, 3, 4, 5)] == [(1, 1), (1, 2), (2, 2), (2, 2), (2, 3)]
    red = np.full((H, W, 3), (255, 0, 0), np.uint8)
    mosaic = compose_mosaic([red, None, red], ["a", "b", "c"], tile_size=(20, 30))
    assert mosaic.shape == (40, 60, 3) and mosaic.dtype == np.uint8
    assert mosaic[2, 2, 0] == 255 and mosaic[2, 32].max() == 0 and mosaic[22, 2, 0] == 255


# --- the pipeline ----------------------------------------------------------------------------


def test_every_source_gets_its_own_frames_through_shared_batches():
    backend = BatchRecordingBackend()
    sinks = [RecordingSink() for _ in range(3)]
    sources = [ListSource(solid_frames(24 * k, 20), live=True) for k in (2, 5, 7)]
    pipeline, events = multi(lanes_of(*sources, sinks=sinks), backend)
    stats = run_in_thread(pipeline)["stats"]
    for sink, klass in zip(sinks, (2, 5, 7)):
        assert sink.ids and all((ids == klass).all() for ids in sink.ids)  # no mix-up across sources
        assert sink.indices == sorted(sink.indices) and sink.closed == 1
    assert sum(stats.batch_sizes[k] * k for k in stats.batch_sizes) == sum(backend.sizes)
    assert max(backend.sizes) <= 3 and sum(backend.sizes) >= sum(len(s.ids) for s in sinks)
    assert stats.stopped_by == "source_end" and len(events) == 3
    assert "stopped by: every source ended" in stats.summary()
    data = stats.to_json()
    assert [s["status"] for s in data["sources"]] == ["ended"] * 3
    assert data["frames"] == sum(len(s.ids) for s in sinks)
    for lane_json, sink in zip(data["sources"], sinks):
        assert lane_json["frames"] == len(sink.ids)
        assert lane_json["frames_read"] == 20 and lane_json["dropped"] == 20 - len(sink.ids)


def test_an_overlapping_backend_keeps_a_batch_in_flight_and_every_frame_arrives():
    backend = OverlappingBackend(delay_s=0.002)
    sinks = [RecordingSink(), RecordingSink()]
    frames = [structured_frames(15, H, W, seed=k) for k in (1, 2)]
    pipeline, _ = multi(lanes_of(*(ListSource(f) for f in frames), sinks=sinks), backend)
    stats = run_in_thread(pipeline)["stats"]
    for sink, clip in zip(sinks, frames):  # file sources: every frame, in order, its own ids
        assert sink.indices == list(range(15))
        for ids, frame in zip(sink.ids, clip):
            np.testing.assert_array_equal(ids, expected_ids(frame, backend))
    waits = [n for kind, n in backend.log if kind == "wait"]
    assert waits == sorted(waits) and len(waits) == sum(stats.batch_sizes.values())
    submitted = {n: i for i, (kind, n) in enumerate(backend.log) if kind == "submit"}
    waited = {n: i for i, (kind, n) in enumerate(backend.log) if kind == "wait"}
    assert any(submitted[n + 1] < waited[n] for n in waited if n + 1 in submitted)  # one in flight


def test_batches_never_exceed_the_backend_max_batch_and_no_source_starves():
    backend = BatchRecordingBackend(max_batch=2, delay_s=0.005)
    sinks = [RecordingSink() for _ in range(4)]
    sources = [ListSource(solid_frames(24, 12), live=True, endless=True) for _ in range(4)]
    pipeline, _ = multi(lanes_of(*sources, sinks=sinks), backend, max_frames=12)
    assert pipeline.max_batch() == 2
    stats = run_in_thread(pipeline)["stats"]
    assert set(backend.sizes) <= {1, 2} and stats.batch_sizes[2] > 0
    assert all(len(sink.ids) > 0 for sink in sinks)


def test_a_failing_source_is_dropped_while_the_others_go_on():
    backend = BatchRecordingBackend()
    sinks = [RecordingSink(), RecordingSink()]
    sources = [ListSource(solid_frames(48, 30), fail_at=3), ListSource(solid_frames(72, 30))]
    pipeline, events = multi(lanes_of(*sources, sinks=sinks), backend)
    stats = run_in_thread(pipeline)["stats"]
    bad, good = stats.lanes
    assert bad.status == "failed" and "corrupt or truncated at frame 3" in bad.error
    assert good.status == "ended" and len(sinks[1].ids) == 30  # a file source: every frame
    assert sinks[0].closed == 1 and len(sinks[0].ids) <= 3
    assert any("source 0 (s0) failed" in e for e in events)
    assert "source 0 (s0) failed: list source: corrupt" in stats.summary()


def test_a_backend_error_stops_every_source():
    backend = BatchRecordingBackend(fail_at=2)
    sinks = [RecordingSink(), RecordingSink()]
    sources = [ListSource(solid_frames(24, 10), live=True, endless=True) for _ in range(2)]
    pipeline, _ = multi(lanes_of(*sources, sinks=sinks), backend)
    outcome = run_in_thread(pipeline)
    assert "injected failure" in str(outcome["error"])
    assert all(sink.closed == 1 for sink in sinks)


def test_the_mosaic_shows_every_source_and_q_quits():
    display = FakeDisplay(quit_after=6)
    sources = [ListSource(solid_frames(24 * k, 10), live=True, endless=True, delay_s=0.01) for k in (1, 2)]
    lanes = lanes_of(*sources)
    config = PipelineConfig(viz=VizConfig(hud=False, legend=False))
    pipeline = Pipeline(lanes, fake_model(BatchRecordingBackend()), config, display=display)
    stats = run_in_thread(pipeline)["stats"]
    assert stats.stopped_by == "user" and display.closed == 1 and display.shown == 6
    assert sum(lane.stats.displayed for lane in lanes) >= 6
    assert all(lane.status == "stopped" for lane in lanes)


# --- rtseg run --source A --source B (lavfi) -------------------------------------------------


@pytest.fixture(scope="module")
def band(tmp_path_factory):
    return make_band_package(tmp_path_factory.mktemp("band"), height=64, width=96)


def lavfi(rate: int = 25, extra: str = "") -> str:
    return f"lavfi:testsrc2=size=160x120:rate={rate}{extra}"


@pytest.mark.slow
@pytest.mark.parametrize("count", [1, 2, 4])
def test_rtseg_run_with_1_2_4_lavfi_sources(tmp_path, band, count):
    stats_file = tmp_path / "stats.json"
    sources = [a for _ in range(count) for a in ("--source", lavfi())]
    output = tmp_path / ("out_{index}.mp4" if count > 1 else "out.mp4")
    result = rtseg_run(*sources, "--model", band.onnx_path, "--threads", 1, "--max-frames", 12,
                       "--output", output, "--stats-json", stats_file, "--quiet")  # fmt: skip
    assert result.exit_code == 0, result.output
    data = json.loads(stats_file.read_text())
    if count == 1:  # one source: the single-source pipeline, as before
        assert data["frames"] > 0 and (tmp_path / "out.mp4").stat().st_size > 0
        return
    assert [s["name"] for s in data["sources"]] == [f"testsrc2_{i}" for i in range(count)]
    for i, source in enumerate(data["sources"]):
        assert source["status"] == "ended" and source["frames_read"] == 12
        assert 0 < source["frames"] == 12 - source["dropped"]
        assert source["latency_ms"]["p50"] > 0 and source["fps"] > 0
        assert (tmp_path / f"out_{i}.mp4").stat().st_size > 0
    hist = {int(k): v for k, v in data["batches"]["histogram"].items()}
    assert max(hist) <= count and sum(k * v for k, v in hist.items()) >= data["frames"]


@pytest.mark.slow
def test_a_source_that_ends_early_and_one_that_cannot_open(tmp_path, band):
    result = rtseg_run("--source", lavfi(extra=":duration=0.4"), "--source", lavfi(),
                       "--source", "lavfi:no_such_filter", "--model", band.onnx_path, "--threads", 1,
                       "--max-frames", 25, "--masks", tmp_path / "masks_{index}",
                       "--stats-json", tmp_path / "s.json")  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "source 2 (no_such_filter) cannot be opened, dropped" in result.stderr
    assert "source 0 (testsrc2_0) ended after" in result.stderr
    data = json.loads((tmp_path / "s.json").read_text())
    early, full = data["sources"]
    assert early["frames_read"] == 10 and full["frames_read"] == 25
    names, masks = read_masks(tmp_path / "masks_1")
    assert len(names) == full["frames"] and masks[0].shape == (120, 160)
    assert len(read_masks(tmp_path / "masks_0")[0]) == early["frames"]


def test_several_sources_need_a_pattern_and_no_other_input(tmp_path, band):
    two = ("--source", lavfi(), "--source", lavfi())
    assert_one_line_error(rtseg_run(*two, "--model", band.onnx_path, "--output", tmp_path / "o.mp4"),
                          "put {index} or {name}")  # fmt: skip
    assert_one_line_error(rtseg_run(*two, "--video", tmp_path / "a.mp4"), "cannot be combined")


class ScriptedMosaic(FakeDisplay):
    """Presses `keys[n]` at the n-th show (1-based), q from show `quit_after` on; keeps pictures."""

    def __init__(self, keys, quit_after):
        super().__init__(quit_after)
        self.keys, self.images = keys, []

    def _show_impl(self, rgb):
        self.images.append(rgb.copy())
        key = super()._show_impl(rgb)
        return key if key != -1 else self.keys.get(self.shown, -1)


def test_the_mosaic_takes_the_single_window_keys_mode_and_pause():
    """One view for one source or many: m switches every tile to the mask, space holds file lanes."""
    display = ScriptedMosaic({2: ord("m"), 4: ord(" ")}, quit_after=5)
    sources = [ListSource(solid_frames(24 * k, 400)) for k in (1, 2)]
    lanes = lanes_of(*sources)
    config = PipelineConfig(viz=VizConfig(hud=False, legend=False, alpha=0.5))
    pipeline = Pipeline(lanes, fake_model(BatchRecordingBackend()), config, display=display)
    stats = run_in_thread(pipeline)["stats"]
    assert stats.stopped_by == "user" and display.closed == 1
    overlay, mask = display.images[1], display.images[2]  # before and after m (redrawn at once)
    assert overlay.shape == mask.shape and not np.array_equal(overlay, mask)
    palette = fake_model().palette
    np.testing.assert_array_equal(mask[5, 5], palette[1])  # tile 0: class 1, drawn as the mask
    assert all(lane.ctx.paused.is_set() for lane in lanes)  # space paused every lane
    assert all(lane.stats.frames_read < 400 for lane in lanes)


class WrongShapeBackend(BatchRecordingBackend):
    def _infer_impl(self, images):
        return super()._infer_impl(images)[:, :-1]


def test_a_batched_backend_with_the_wrong_ids_shape_is_one_model_error():
    """The one ids check covers batched calls too (it covered batch 1 only)."""
    sources = [ListSource(solid_frames(24, 5)) for _ in range(2)]
    pipeline, _ = multi(lanes_of(*sources), WrongShapeBackend())
    error = run_in_thread(pipeline)["error"]
    assert isinstance(error, ModelError) and "expected (" in str(error) and "uint8 ids" in str(error)
