"""The Python API: load, call on frames and batches, render, stream lazily, run to sinks."""

from __future__ import annotations

import gc
import subprocess
import sys
import threading

import cv2
import numpy as np
import pytest
from band_model import band_ids, make_band_package
from click.testing import CliRunner
from conftest import REPO, structured_frames

import rtseg
from rtseg.core.frames import resize_frame, resize_ids
from rtseg.errors import BackendError, InputError, ModelError, RtsegError

LAVFI = "lavfi:testsrc2=size=160x120:rate=25"


@pytest.fixture(scope="module")
def band_package(tmp_path_factory):
    """A package whose ids follow the frame content: ids = min(red // 24, 10)."""
    return make_band_package(tmp_path_factory.mktemp("band"), height=64, width=96)


@pytest.fixture()
def seg(band_package):
    with rtseg.load(band_package.onnx_path, threads=1) as segmenter:
        yield segmenter


def expected_ids(frame: np.ndarray, size=(64, 96)) -> np.ndarray:
    """What `rtseg run` computes for one frame: resize to the model, band ids, nearest back."""
    return resize_ids(band_ids(resize_frame(frame, size)[None])[0], frame.shape[:2])


def read_masks(folder) -> list[np.ndarray]:
    return [cv2.imread(str(p), cv2.IMREAD_UNCHANGED) for p in sorted(folder.glob("*.png"))]


def new_threads(before: set[threading.Thread]) -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t not in before and t.is_alive()]


def test_import_rtseg_is_light_and_names_load_on_use():
    code = (
        "import sys, rtseg\n"
        "heavy = [m for m in ('torch', 'onnxruntime', 'cv2') if m in sys.modules]\n"
        "assert not heavy, heavy\n"
        "assert callable(rtseg.load) and callable(rtseg.run) and 'Segmenter' in dir(rtseg)\n"
        "assert 'torch' not in sys.modules and 'onnxruntime' not in sys.modules\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, cwd=REPO)
    with pytest.raises(AttributeError, match="no attribute 'nothing'"):
        rtseg.nothing  # noqa: B018


def test_frame_batch_and_list_give_ids_at_each_frames_size(seg):
    assert seg.input_size == (64, 96) and len(seg.classes) == 11 and seg.palette.shape == (11, 3)
    frames = structured_frames(3, 120, 160, seed=2)
    ids = seg(frames[0])
    assert ids.shape == (120, 160) and ids.dtype == np.uint8
    np.testing.assert_array_equal(ids, expected_ids(frames[0]))
    batch = seg(frames)
    assert batch.shape == (3, 120, 160) and batch.dtype == np.uint8
    for frame, got in zip(frames, batch):
        np.testing.assert_array_equal(got, expected_ids(frame))
    small, odd = structured_frames(1, 50, 70, seed=3)[0], structured_frames(1, 64, 96, seed=4)[0]
    listed = seg([frames[1], small, odd])
    assert [m.shape for m in listed] == [(120, 160), (50, 70), (64, 96)]
    for frame, got in zip([frames[1], small, odd], listed):
        np.testing.assert_array_equal(got, expected_ids(frame))
    assert seg([]) == [] and seg.predict(odd).shape == (64, 96)


@pytest.mark.parametrize(
    "bad, match",
    [
        (np.zeros((120, 160), np.uint8), r"\(H, W, 3\) or \(N, H, W, 3\)"),
        (np.zeros((120, 160, 3), np.float32), r"uint8 RGB, got \(120, 160, 3\) float32"),
        (np.zeros((120, 160, 4), np.uint8), r"uint8 RGB, got \(120, 160, 4\)"),
        (np.zeros((0, 160, 3), np.uint8), r"got \(0, 160, 3\)"),
        ([np.zeros((8, 8, 3), np.uint8), "frame.png"], r"frame 1: expected a numpy array"),
        ("frame.png", "expected a frame, a batch or a list of frames, got str"),
    ],
)
def test_bad_frames_raise_input_error(seg, bad, match):
    with pytest.raises(InputError, match=match):
        seg(bad)


def test_render_modes_and_bad_ids(seg):
    frame = structured_frames(1, 120, 160, seed=5)[0]
    ids = seg(frame)
    overlay = seg.render(frame, ids, alpha=0.5, legend=False)
    assert overlay.shape == (120, 160, 3) and overlay.dtype == np.uint8
    mask = seg.render(frame, ids, mode="mask", legend=False)
    np.testing.assert_array_equal(mask, seg.palette[ids])
    np.testing.assert_array_equal(seg.render(frame, ids, alpha=1.0, legend=False), mask)
    np.testing.assert_array_equal(seg.render(frame, ids, alpha=0.0, legend=False), frame)
    side = seg.render(frame, ids, mode="side-by-side", legend=False)
    assert side.shape == (120, 320, 3)
    np.testing.assert_array_equal(side[:, :160], frame)
    np.testing.assert_array_equal(side[:, 160:], mask)
    with pytest.raises(InputError, match="ids: expected"):
        seg.render(frame, ids.astype(np.int64))
    with pytest.raises(InputError, match="unknown visualisation mode"):
        seg.render(frame, ids, mode="heatmap")
    with pytest.raises(InputError, match="alpha"):
        seg.render(frame, ids, alpha=2.0)


def test_load_errors_are_rtseg_errors(tmp_path, band_package):
    with pytest.raises(ModelError, match="does not exist"):
        rtseg.load(tmp_path / "missing.onnx")
    (tmp_path / "plain.onnx").write_bytes(b"not a model")
    with pytest.raises(ModelError, match="no sidecar"):
        rtseg.load(tmp_path / "plain.onnx")
    with pytest.raises(InputError, match="unknown backend"):
        rtseg.load(band_package.onnx_path, backend="tvm")
    with pytest.raises(InputError, match="unknown device"):
        rtseg.load(band_package.onnx_path, device="tpu")
    with pytest.raises(InputError, match="torch backend takes cpu, cuda or auto"):
        rtseg.load(band_package.onnx_path, backend="torch", device="tensorrt")
    seg = rtseg.load(band_package.onnx_path, threads=1)
    seg.close()
    seg.close()  # idempotent
    with pytest.raises(BackendError, match="closed"):
        seg(np.zeros((8, 8, 3), np.uint8))


def test_stream_matches_calls_and_rtseg_run_masks(tmp_path, tiny_video, band_package, seg):
    """Frame i of the stream is frame i of the source; its ids equal seg(frame) and the PNG
    `rtseg run --masks` writes, and `rtseg.run(masks=...)` writes the same PNGs."""
    from rtseg.cli import main

    cli_masks, api_masks = tmp_path / "cli", tmp_path / "api"
    args = ["run", "--video", tiny_video, "--model", band_package.onnx_path, "--threads", 1]
    result = CliRunner().invoke(main, [*map(str, args), "--masks", str(cli_masks), "--quiet"])
    assert result.exit_code == 0, result.output
    stats = rtseg.run(tiny_video, model=band_package.onnx_path, threads=1, masks=api_masks)
    assert stats.frames == 24 and stats.stopped_by == "source_end"
    with seg.stream(tiny_video) as stream:
        results = list(stream)
    assert [r.index for r in results] == list(range(24))
    assert stream.closed and stream.stats.frames == 24 and stream.stats.dropped == 0
    cli, api = read_masks(cli_masks), read_masks(api_masks)
    assert len(cli) == len(api) == 24
    for r, from_cli, from_api in zip(results, cli, api):
        assert r.frame.shape == (120, 160, 3) and r.ids.shape == (120, 160) and r.ids.dtype == np.uint8
        np.testing.assert_array_equal(r.ids, from_cli)
        np.testing.assert_array_equal(r.ids, from_api)
        # seg(frame) resizes an RGB array with OpenCV; the stream resizes at the decoder (swscale):
        # the two resizes differ by rounding, so they agree on nearly every pixel, not all.
        assert (seg(r.frame) == r.ids).mean() >= 0.9
        assert r.latency_ms >= 0 and r.timestamp >= 0
    assert results[0].timestamp == 0 and results[-1].timestamp >= results[1].timestamp


def test_stream_stops_early_without_hanging(seg):
    """Breaking out of a live, endless source and closing ends both threads."""
    before = set(threading.enumerate())
    stream = seg.stream(LAVFI)
    assert new_threads(before) == []  # lazy: nothing runs before the first next()
    for result in stream:
        if result.index >= 2:
            break
    assert len(new_threads(before)) == 4  # one lane: capture, infer, overlay (ids upsampled), sink
    stream.close()
    assert new_threads(before) == [] and stream.stats.stopped_by == "user"
    assert list(stream) == []  # a closed stream is exhausted


def test_dropping_the_iterator_stops_its_threads(seg):
    before = set(threading.enumerate())
    iterator = iter(seg.stream(LAVFI))
    assert next(iterator).index == 0
    del iterator
    gc.collect()
    assert new_threads(before) == []


def test_stream_frames_folder_max_frames_and_open_source(tmp_path, seg):
    from rtseg.video import open_source

    folder = tmp_path / "frames"
    folder.mkdir()
    frames = structured_frames(5, 90, 120, seed=6)
    for i, frame in enumerate(frames):
        cv2.imwrite(str(folder / f"f_{i}.png"), cv2.cvtColor(frame, cv2.COLOR_RGB2BGR))
    results = list(seg.stream(folder, max_frames=3))
    assert [r.index for r in results] == [0, 1, 2]
    for r, frame in zip(results, frames):
        np.testing.assert_array_equal(r.frame, frame)
        np.testing.assert_array_equal(r.ids, expected_ids(frame))
    with open_source(str(folder)) as source:  # a source the caller opened stays open
        assert len(list(seg.stream(source, max_frames=2))) == 2
        assert source.read() is not None


def test_stream_errors(tmp_path, seg):
    with pytest.raises(InputError, match="no such file"):
        seg.stream(tmp_path / "missing.mp4")  # opened at once, not at the first next()
    with pytest.raises(InputError, match="max_frames"):
        seg.stream(LAVFI, max_frames=0)
    folder = tmp_path / "frames"
    folder.mkdir()
    cv2.imwrite(str(folder / "a_1.png"), np.zeros((20, 30, 3), np.uint8))
    (folder / "a_2.png").write_bytes(b"not an image")
    before = set(threading.enumerate())
    with pytest.raises(InputError, match="a_2.png"):
        list(seg.stream(folder))  # a stage's error comes out of the loop
    assert new_threads(before) == []


def test_run_checks_its_options_before_anything_runs(tmp_path, band_package):
    with pytest.raises(InputError, match="unknown mode"):
        rtseg.run(LAVFI, model=band_package.onnx_path, mode="heatmap")
    with pytest.raises(InputError, match="max_frames must be a positive integer"):
        rtseg.run(LAVFI, model=band_package.onnx_path, max_frames=0)
    (tmp_path / "a_file").write_text("x")
    with pytest.raises(RtsegError, match="--stats-json"):  # a folder that cannot be made
        rtseg.run(LAVFI, model=band_package.onnx_path, stats_json=tmp_path / "a_file" / "s.json")
    stats = rtseg.run(LAVFI, model=band_package.onnx_path, max_frames=4, stats_json=tmp_path / "s.json")
    assert stats.frames + stats.dropped == stats.frames_read == 4
    assert (tmp_path / "s.json").is_file()


def run_masks(tmp_path, source_option: str, source, model, *extra) -> list[np.ndarray]:
    """The PNGs `rtseg run SOURCE_OPTION SOURCE --masks` writes, in frame order."""
    from rtseg.cli import main

    out = tmp_path / f"masks_{source_option.strip('-')}"
    args = ["run", source_option, source, "--model", model, "--threads", 1, "--masks", out, *extra]
    result = CliRunner().invoke(main, [*map(str, args), "--quiet"])
    assert result.exit_code == 0, result.output
    return read_masks(out)


def write_frames(folder, frames) -> None:
    folder.mkdir()
    for i, frame in enumerate(frames):
        cv2.imwrite(str(folder / f"f_{i:03d}.png"), cv2.cvtColor(frame, cv2.COLOR_RGB2BGR))


def test_seg_of_a_frame_equals_rtseg_run_masks_of_that_frame(tmp_path, seg, band_package):
    """The README's promise, exactly: `seg(frame)` on RGB pixels gives the ids `rtseg run
    --masks` writes for those pixels (a frames folder), one by one and as a batch, at sizes the
    model shrinks, grows and keeps."""
    for size in ((90, 150), (40, 50), (64, 96), (70, 60)):
        frames = structured_frames(4, *size, seed=size[0])
        folder = tmp_path / f"frames_{size[0]}x{size[1]}"
        write_frames(folder, frames)
        masks = run_masks(tmp_path / folder.name, "--frames", folder, band_package.onnx_path)
        assert len(masks) == 4
        for frame, mask in zip(frames, masks):
            np.testing.assert_array_equal(seg(frame), mask)
        np.testing.assert_array_equal(seg(frames), np.stack(masks))


@pytest.mark.data
@pytest.mark.slow
def test_dashcam_ids_equal_rtseg_run_masks(tmp_path, dashcam_video, seg, band_package):
    """On the dashcam clip: `seg.stream(video)` gives exactly the PNGs of `rtseg run --video
    --masks`; `seg(frame)` of its frames exactly those of `rtseg run --frames` on them. A frame
    decoded to RGB and passed to `seg` agrees with the video run on nearly every pixel only (the
    run resizes the decoder's yuv420p picture in one step, as the README says)."""
    video_masks = run_masks(tmp_path, "--video", dashcam_video, band_package.onnx_path, "--max-frames", 20)
    with seg.stream(dashcam_video, max_frames=20) as stream:
        results = list(stream)
    assert len(results) == len(video_masks) == 20
    for result, mask in zip(results, video_masks):
        np.testing.assert_array_equal(result.ids, mask)
    frames = [r.frame for r in results]
    write_frames(tmp_path / "frames", frames)
    frame_masks = run_masks(tmp_path, "--frames", tmp_path / "frames", band_package.onnx_path)
    for frame, frame_mask, video_mask in zip(frames, frame_masks, video_masks):
        ids = seg(frame)
        np.testing.assert_array_equal(ids, frame_mask)
        assert (ids == video_mask).mean() >= 0.9  # the band model is the most sensitive there is
