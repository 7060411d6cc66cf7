"""The frame path from decoder to muxer: model input made at the decoder, lazy RGB, drawing only
what a sink takes (in yuv420p for the MP4 encoder), encoder settings, ONNX Runtime threads."""

from __future__ import annotations

import threading

import av
import cv2
import numpy as np
import pytest
from band_model import make_band_package
from click.testing import CliRunner
from conftest import structured_frames, write_video

from rtseg.cli import main
from rtseg.core.frames import resize_frame, resize_ids
from rtseg.errors import OutputError
from rtseg.loading import LoadedModel, open_model
from rtseg.pipeline import Pipeline, PipelineConfig
from rtseg.pipeline.stages import render_for_sinks
from rtseg.runtime.base import Backend
from rtseg.video import FramesSink, MaskSink, Mp4Sink, open_source
from rtseg.video.decoded import AvFrame, new_yuv420p_frame
from rtseg.viz import Visualizer, VizConfig

NUM_CLASSES = 11
PALETTE = np.array([[i * 20, 255 - i * 20, (i * 53) % 256] for i in range(NUM_CLASSES)], np.uint8)


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    mse = np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2)
    return float("inf") if mse == 0 else 10 * np.log10(255**2 / mse)


class BandBackend(Backend):
    """ids = red channel // 24 at model size (costs nothing)."""

    name, max_batch, num_classes = "band", 1, NUM_CLASSES

    def __init__(self, input_size=(48, 64)):
        self.input_size = input_size

    def _infer_impl(self, images):
        return np.minimum(images[..., 0] // 24, 10).astype(np.uint8)

    def describe(self):
        return "band"


class SpyVisualizer(Visualizer):
    """Counts the RGB and yuv420p renders (thread-safe)."""

    def __init__(self, cfg=None):
        super().__init__(cfg or VizConfig(hud=False), [f"c{i}" for i in range(NUM_CLASSES)], PALETTE)
        self.calls = {"rgb": 0, "yuv420p": 0}
        self._lock = threading.Lock()

    def _count(self, kind):
        with self._lock:
            self.calls[kind] += 1

    def render(self, *args, **kwargs):
        self._count("rgb")
        return super().render(*args, **kwargs)

    def render_yuv420p(self, *args, **kwargs):
        self._count("yuv420p")
        return super().render_yuv420p(*args, **kwargs)


@pytest.fixture(scope="module")
def clip(tmp_path_factory):
    """A 12-frame 160x120 H.264 clip."""
    return write_video(tmp_path_factory.mktemp("clip") / "clip.mp4", structured_frames(12, 120, 160, seed=5))


def run_pipeline(clip, sinks, visualizer, **viz):
    model = LoadedModel(BandBackend(), visualizer.classes, PALETTE, None)
    config = PipelineConfig(viz=VizConfig(hud=False, **viz))
    with open_source(str(clip)) as source:
        return Pipeline.single(source, model, sinks, config, visualizer=visualizer).run()


def count_rgb_conversions(monkeypatch) -> dict:
    calls = {"rgb": 0}
    original = AvFrame.rgb

    def counting(self):
        calls["rgb"] += 1
        return original(self)

    monkeypatch.setattr(AvFrame, "rgb", counting)
    return calls


def test_a_masks_only_run_draws_nothing_and_makes_no_rgb_picture(clip, tmp_path, monkeypatch):
    rgb = count_rgb_conversions(monkeypatch)
    visualizer = SpyVisualizer()
    with MaskSink(tmp_path / "masks") as masks:
        stats = run_pipeline(clip, [masks], visualizer)
    assert stats.frames == 12 and len(list((tmp_path / "masks").glob("*.png"))) == 12
    assert visualizer.calls == {"rgb": 0, "yuv420p": 0} and rgb["rgb"] == 0


def test_an_mp4_run_draws_in_yuv420p_without_an_rgb_picture(clip, tmp_path, monkeypatch):
    rgb = count_rgb_conversions(monkeypatch)
    visualizer = SpyVisualizer()
    with Mp4Sink(tmp_path / "out.mp4", fps=12) as mp4:
        run_pipeline(clip, [mp4], visualizer)
    assert visualizer.calls == {"rgb": 0, "yuv420p": 12} and rgb["rgb"] == 0
    with open_source(str(tmp_path / "out.mp4")) as source:
        assert len(list(source)) == 12


def test_an_image_sink_or_side_by_side_gets_rgb(clip, tmp_path):
    visualizer = SpyVisualizer()
    with Mp4Sink(tmp_path / "a.mp4", fps=12) as mp4, FramesSink(tmp_path / "frames") as frames:
        run_pipeline(clip, [mp4, frames], visualizer)
    assert visualizer.calls == {"rgb": 12, "yuv420p": 0}
    side = SpyVisualizer(VizConfig(hud=False, mode="side-by-side"))
    with Mp4Sink(tmp_path / "b.mp4", fps=12) as mp4:
        run_pipeline(clip, [mp4], side, mode="side-by-side")
    assert side.calls == {"rgb": 12, "yuv420p": 0}
    with open_source(str(tmp_path / "b.mp4")) as source:
        assert source.read().shape == (120, 320, 3)


@pytest.mark.parametrize("mode", ["overlay", "mask"])
def test_yuv420p_drawing_matches_rgb_drawing_converted(clip, mode):
    """What the encoder gets from the yuv420p renderer vs the RGB render converted by swscale
    (the path before): the same picture up to rounding and chroma sampling."""
    visualizer = SpyVisualizer(VizConfig(hud=False, mode=mode))
    with open_source(str(clip)) as source:
        decoded = source.read_frame()
    ids = np.minimum(structured_frames(1, 60, 80, seed=2)[0, ..., 0] // 24, 10).astype(np.uint8)
    ids = resize_ids(ids, (120, 160))
    new = render_for_sinks(visualizer, decoded, ids, None, yuv420p=True)
    assert isinstance(new, av.VideoFrame) and new.format.name == "yuv420p"
    old = visualizer.render(decoded.rgb(), ids)
    old_yuv = av.VideoFrame.from_ndarray(old, format="rgb24").reformat(format="yuv420p")
    assert psnr(new.to_ndarray(), old_yuv.to_ndarray()) > 35
    assert isinstance(render_for_sinks(visualizer, decoded, ids, "9 fps", yuv420p=True), np.ndarray)


def test_the_legend_in_yuv420p_sits_where_the_rgb_legend_does():
    visualizer = SpyVisualizer()
    frame = structured_frames(1, 240, 320, seed=3)[0]
    ids = np.zeros((240, 320), np.uint8)
    planes = new_yuv420p_frame((240, 320))
    source = av.VideoFrame.from_ndarray(frame, format="rgb24").reformat(format="yuv420p")
    src_planes = tuple(np.ascontiguousarray(p) for p in _planes(source))
    visualizer.render_yuv420p(src_planes, ids, planes[1])
    old = av.VideoFrame.from_ndarray(visualizer.render(frame, ids), format="rgb24").reformat(format="yuv420p")
    panel = visualizer.legend.panel_for((240, 320))
    box = (slice(panel.y, panel.y + panel.panel.shape[0]), slice(panel.x, panel.x + panel.panel.shape[1]))
    assert psnr(planes[0].to_ndarray()[:240][box], old.to_ndarray()[:240][box]) > 30


def _planes(frame):
    from rtseg.video.decoded import plane_view

    return tuple(plane_view(frame, i) for i in range(3))


def test_model_input_from_the_decoder_is_the_rgb_resize_within_resize_tolerance(clip):
    with open_source(str(clip)) as source:
        for decoded in iter(source.read_frame, None):
            made = np.zeros((48, 64, 3), np.uint8)
            decoded.model_input(made)
            reference = resize_frame(decoded.rgb(), (48, 64))
            diff = np.abs(made.astype(int) - reference)
            assert diff.mean() < 2.0 and np.percentile(diff, 99) <= 12  # sharp synthetic edges


@pytest.mark.data
def test_the_bundled_model_gives_the_same_ids_through_the_decoder_path(dashcam_video):
    from rtseg.core.package import default_package_for

    with open_model(default_package_for("onnxruntime"), threads=1).backend as backend:
        h, w = backend.input_size
        with open_source(str(dashcam_video)) as source:
            for _ in range(3):
                decoded = source.read_frame()
                made = np.zeros((h, w, 3), np.uint8)
                decoded.model_input(made)
                new = backend.infer(made[None])[0]
                old = backend.infer(resize_frame(decoded.rgb(), (h, w))[None])[0]
                assert (new == old).mean() > 0.97


def x264_settings(path) -> bytes:
    """The settings line libx264 writes into the stream (SEI user data)."""
    data = path.read_bytes()
    start = data.index(b"x264 - core")
    return data[start : data.index(b"\x00", start)]


def write_clip(sink, count=6):
    for index, frame in enumerate(structured_frames(count, 120, 160, seed=6)):
        sink.write(index, frame, None)


def test_encoder_defaults_and_overrides_reach_libx264(tmp_path):
    with Mp4Sink(tmp_path / "default.mp4", fps=12, codec="libx264") as sink:
        write_clip(sink)
    settings = x264_settings(tmp_path / "default.mp4")
    assert b"crf=23.0" in settings and b"subme=0" in settings  # ultrafast: no subpixel refinement
    with Mp4Sink(tmp_path / "small.mp4", fps=12, codec="libx264", preset="veryfast", crf=30) as sink:
        write_clip(sink)
    settings = x264_settings(tmp_path / "small.mp4")
    assert b"crf=30.0" in settings and b"subme=2" in settings and sink.options["preset"] == "veryfast"


def test_run_passes_preset_and_crf_to_the_encoder(tmp_path, clip):
    band = make_band_package(tmp_path / "band", height=48, width=64)
    out = tmp_path / "out.mp4"
    args = ["run", "--video", str(clip), "--model", str(band.onnx_path), "--output", str(out)]
    result = CliRunner().invoke(
        main, [*args, "--codec", "libx264", "--preset", "superfast", "--crf", "28", "-q"]
    )
    assert result.exit_code == 0, result.output
    settings = x264_settings(out)
    assert b"crf=28.0" in settings and b"subme=1" in settings  # superfast
    bad = CliRunner().invoke(main, [*args, "--preset", "fastest", "-q"])
    assert bad.exit_code == 1 and "unknown encoder preset 'fastest'" in bad.output


def test_bad_encoder_settings_are_output_errors(tmp_path):
    with pytest.raises(OutputError, match="crf must be within 0..51"):
        Mp4Sink(tmp_path / "a.mp4", crf=60)
    with pytest.raises(OutputError, match="unknown encoder preset"):
        Mp4Sink(tmp_path / "a.mp4", preset="warp")


def test_mp4_sink_takes_yuv420p_frames_as_they_are(tmp_path):
    frames = structured_frames(4, 120, 160, seed=7)
    with Mp4Sink(tmp_path / "yuv.mp4", fps=12) as sink:
        for index, rgb in enumerate(frames):
            frame = av.VideoFrame.from_ndarray(rgb, format="rgb24").reformat(format="yuv420p")
            sink.write(index, frame, None)
    with open_source(str(tmp_path / "yuv.mp4")) as source:
        decoded = list(source)
    assert len(decoded) == 4 and all(psnr(a, b) > 30 for a, b in zip(decoded, frames))


def test_rgb_frames_convert_like_swscale():
    from rtseg.video.sinks import rgb_to_yuv420p_frame

    rgb = structured_frames(1, 121, 161, seed=8)[0]  # odd: padded to even
    frame = rgb_to_yuv420p_frame(rgb)
    assert (frame.width, frame.height) == (162, 122)
    even = cv2.copyMakeBorder(rgb, 0, 1, 0, 1, cv2.BORDER_REPLICATE)
    reference = av.VideoFrame.from_ndarray(even, format="rgb24").reformat(format="yuv420p")
    diff = np.abs(frame.to_ndarray().astype(int) - reference.to_ndarray())
    assert (
        diff.mean() < 1.0 and psnr(frame.to_ndarray(), reference.to_ndarray()) > 35
    )  # chroma filters differ


def test_onnxruntime_threads_do_not_spin_between_runs(tiny_package):
    from rtseg.runtime.onnxruntime_backend import OnnxRuntimeBackend

    key = "session.intra_op.allow_spinning"
    with OnnxRuntimeBackend(tiny_package, threads=1) as backend:
        assert backend.session.get_session_options().get_session_config_entry(key) == "0"
    with OnnxRuntimeBackend(tiny_package, threads=1, spin=True) as backend:
        assert backend.session.get_session_options().get_session_config_entry(key) == "1"
