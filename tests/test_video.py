"""Video sources and sinks on tiny generated videos, images and folders."""

from __future__ import annotations

import sys
from pathlib import Path

import av
import cv2
import numpy as np
import pytest
from conftest import structured_frames, write_video

from rtseg.errors import InputError, OutputError
from rtseg.video import (
    FramesSink,
    MaskSink,
    Mp4Sink,
    NullSink,
    WindowDisplay,
    display_available,
    encoders,
    natural_sort_key,
    open_source,
)
from rtseg.video.base import Pacer
from rtseg.video.sources import DEFAULT_FOLDER_FPS

LINUX = sys.platform.startswith("linux")


def decode_all(path: Path) -> tuple[list[np.ndarray], list[float], str]:
    """Every frame of a video as RGB arrays, their times in seconds, and the codec name."""
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        frames = list(container.decode(stream))
        codec = stream.codec_context.name
        return [f.to_ndarray(format="rgb24") for f in frames], [f.time for f in frames], codec


def write_png(path: Path, rgb: np.ndarray) -> None:
    assert cv2.imwrite(str(path), cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))


# ----- sources ----------------------------------------------------------------------------------


def test_file_source_reads_every_frame_in_order(tiny_video):
    originals = structured_frames(24, 120, 160, seed=1).astype(np.int16)
    with open_source(str(tiny_video)) as source:
        assert not source.live
        assert source.fps == pytest.approx(12)
        assert source.frame_size == (120, 160)
        assert source.frame_count == 24
        assert "tiny.mp4" in source.description and "160x120" in source.description
        frames = list(source)
        assert source.read() is None
    assert len(frames) == 24
    for i, frame in enumerate(frames):
        assert frame.shape == (120, 160, 3) and frame.dtype == np.uint8
        assert frame.flags["C_CONTIGUOUS"]
        errors = np.abs(originals - frame.astype(np.int16)).mean(axis=(1, 2, 3))
        assert int(np.argmin(errors)) == i  # each decoded frame matches its own original


def test_lossless_odd_size_video_reads_exact_contiguous_frames(tmp_path):
    frames = np.random.default_rng(3).integers(0, 256, (5, 121, 161, 3), dtype=np.uint8)
    path = write_video(tmp_path / "odd.mkv", frames, codec="ffv1", pix_fmt="bgr0")
    with open_source(str(path)) as source:
        assert source.frame_size == (121, 161)
        decoded = list(source)
    assert len(decoded) == 5
    for got, want in zip(decoded, frames):
        assert got.flags["C_CONTIGUOUS"]
        np.testing.assert_array_equal(got, want)


def test_natural_sort_key_orders_numbers_by_value():
    names = [
        "frame_000010.png",
        "frame_000002.png",
        "Frame_1.png",
        "stuttgart_00_000000_000123_leftImg8bit.png",
        "stuttgart_00_000000_000019_leftImg8bit.png",
    ]
    assert sorted(names, key=natural_sort_key) == [
        "Frame_1.png",
        "frame_000002.png",
        "frame_000010.png",
        "stuttgart_00_000000_000019_leftImg8bit.png",
        "stuttgart_00_000000_000123_leftImg8bit.png",
    ]


@pytest.fixture
def numbered_frames(tmp_path) -> Path:
    """frame_1, frame_2, frame_10 PNGs (written out of order); pixel (R, G, B) = (n, 0, 200)."""
    folder = tmp_path / "frames"
    folder.mkdir()
    for n in (10, 2, 1):
        image = np.zeros((24, 32, 3), np.uint8)
        image[..., 0], image[..., 2] = n, 200
        write_png(folder / f"frame_{n}.png", image)
    (folder / "notes.txt").write_text("not an image")
    return folder


@pytest.mark.parametrize("pattern", ["{folder}", "{folder}/*.png", "{folder}/frame_*"])
def test_frames_folder_and_glob_read_in_natural_order_as_rgb(numbered_frames, pattern):
    with open_source(pattern.format(folder=numbered_frames)) as source:
        assert not source.live and source.frame_count == 3 and source.frame_size == (24, 32)
        frames = list(source)
    assert [int(f[0, 0, 0]) for f in frames] == [1, 2, 10]
    assert all(f.shape == (24, 32, 3) and f.dtype == np.uint8 and f[0, 0, 2] == 200 for f in frames)


def test_unreadable_image_raises_naming_the_file_when_reached(numbered_frames):
    (numbered_frames / "frame_5.png").write_bytes(b"\x89PNG but broken")
    with open_source(str(numbered_frames)) as source:
        assert source.read() is not None and source.read() is not None
        with pytest.raises(InputError, match=r"frame_5\.png: cannot read image"):
            source.read()


def test_image_of_another_size_in_a_folder_is_an_input_error(numbered_frames):
    write_png(numbered_frames / "frame_3.png", np.zeros((10, 10, 3), np.uint8))
    with open_source(str(numbered_frames)) as source:
        source.read(), source.read()
        with pytest.raises(InputError, match=r"frame_3\.png: image is 10x10, but the sequence is 32x24"):
            source.read()


def make_audio_only(path: Path) -> Path:
    with av.open(str(path), "w") as container:
        stream = container.add_stream("pcm_s16le", rate=8000)
        frame = av.AudioFrame.from_ndarray(np.zeros((1, 800), np.int16), format="s16", layout="mono")
        frame.sample_rate = 8000
        for packet in stream.encode(frame):
            container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    return path


def test_input_errors_at_open_name_the_input(tmp_path, tiny_video):
    empty = tmp_path / "empty.mp4"
    empty.write_bytes(b"")
    text = tmp_path / "notes.mp4"
    text.write_text("this is a text file renamed to .mp4\n" * 20)
    cut = tmp_path / "cut.mp4"  # moov atom at the end (no faststart): the cut loses the header
    cut.write_bytes(tiny_video.read_bytes()[: int(tiny_video.stat().st_size * 0.6)])
    (tmp_path / "no_images").mkdir()
    cases = {
        str(tmp_path / "missing.mp4"): r"missing\.mp4: no such file or folder",
        str(empty): r"empty\.mp4: empty file \(0 bytes\)",
        str(text): r"notes\.mp4: not a video or corrupt header",
        str(cut): r"cut\.mp4: not a video or corrupt header",
        str(make_audio_only(tmp_path / "audio.wav")): r"audio\.wav: no video stream",
        str(tmp_path / "no_images"): r"no_images: no images in folder",
        str(tmp_path / "nothing_*.png"): r"nothing_\*\.png: no images match",
        "rtsp://127.0.0.1:1/stream": r"rtsp://127\.0\.0\.1:1/stream: cannot open stream",
        "lavfi:no_such_filter=1": r"lavfi:no_such_filter=1: invalid filter graph",
        "": r"empty input",
    }
    for uri, message in cases.items():
        with pytest.raises(InputError, match=message):
            open_source(uri)


@pytest.mark.skipif(not LINUX, reason="device paths are a Linux convention")
def test_missing_camera_is_a_clear_input_error():
    with pytest.raises(InputError, match=r"^/dev/video97: no camera at /dev/video97$"):
        open_source("/dev/video97")
    with pytest.raises(InputError, match=r"^camera 97: no camera at /dev/video97$"):
        open_source("97")


class FakeClock:
    """time.monotonic / time.sleep stand-ins: sleeping moves the clock, nothing waits."""

    def __init__(self):
        self.now, self.sleeps = 100.0, []

    def clock(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(round(seconds, 6))
        self.now += seconds


@pytest.fixture
def fake_clock(monkeypatch):
    import rtseg.video.base as base

    fake = FakeClock()
    real = base.Pacer.__init__
    monkeypatch.setattr(
        base.Pacer, "__init__", lambda self, max_lag=0.5: real(self, max_lag, fake.clock, fake.sleep)
    )
    return fake


def test_pacer_sleeps_until_each_frame_time_and_reanchors_when_behind():
    fake = FakeClock()
    pacer = Pacer(max_lag=0.5, clock=fake.clock, sleep=fake.sleep)
    for t in (0.0, 0.1, 0.2):
        pacer.wait(t)
    assert fake.sleeps == [0.1, 0.1]
    fake.now += 2.0  # the consumer stalled for 2 s: no burst of frames to catch up
    pacer.wait(0.3)
    pacer.wait(0.4)
    assert fake.sleeps == [0.1, 0.1, 0.1]


def test_lavfi_source_is_live_paced_and_yields_frames(fake_clock):
    with open_source("lavfi:testsrc2=size=96x64:rate=25") as source:
        assert source.live and source.paced
        assert source.fps == pytest.approx(25) and source.frame_size == (64, 96)
        frames = [source.read() for _ in range(6)]
    assert all(f.shape == (64, 96, 3) and f.dtype == np.uint8 for f in frames)
    assert not np.array_equal(frames[0], frames[5])  # testsrc2 moves
    assert fake_clock.sleeps == pytest.approx([0.04] * 5, abs=1e-3)  # paced at its rate, like a camera


def test_realtime_paces_a_file_and_makes_it_live(tiny_video, fake_clock):
    with open_source(str(tiny_video), realtime=True) as source:
        assert source.live and source.paced
        for _ in range(4):
            assert source.read() is not None
    assert fake_clock.sleeps == pytest.approx([1 / 12] * 3, abs=1e-3)
    with open_source(str(tiny_video), realtime=True, live=False) as source:
        assert not source.live and source.paced


def test_source_close_is_idempotent_and_read_after_close_ends(tiny_video):
    source = open_source(str(tiny_video))
    assert source.read() is not None
    source.close()
    source.close()
    assert source.read() is None


# ----- sinks ------------------------------------------------------------------------------------


def test_mp4_sink_writes_a_decodable_video(tmp_path):
    frames = structured_frames(10, 120, 160, seed=4)
    ids = np.zeros((120, 160), np.uint8)
    with Mp4Sink(tmp_path / "out" / "result.mp4", fps=10) as sink:
        for i, frame in enumerate(frames):
            sink.write(i, frame, ids)
        assert sink.codec in ("libx264", "h264_nvenc")
    decoded, times, codec = decode_all(tmp_path / "out" / "result.mp4")
    assert codec == "h264" and len(decoded) == 10
    assert decoded[0].shape == (120, 160, 3)
    assert times == pytest.approx([i / 10 for i in range(10)])
    assert np.abs(decoded[3].astype(int) - frames[3]).mean() < 8


def test_mp4_sink_pads_odd_sizes_to_even(tmp_path):
    frames = structured_frames(4, 121, 161, seed=5)
    with Mp4Sink(tmp_path / "odd.mp4", fps=25) as sink:
        for i, frame in enumerate(frames):
            sink.write(i, frame, np.zeros((121, 161), np.uint8))
    decoded, _, _ = decode_all(tmp_path / "odd.mp4")
    assert len(decoded) == 4 and decoded[0].shape == (122, 162, 3)
    assert np.abs(decoded[1][:121, :161].astype(int) - frames[1]).mean() < 8


def test_mp4_sink_is_playable_after_an_exception_and_close_is_idempotent(tmp_path):
    path = tmp_path / "interrupted.mp4"
    frames = structured_frames(5, 64, 96)
    with pytest.raises(RuntimeError, match="stage failed"):
        with Mp4Sink(path, fps=12) as sink:
            for i, frame in enumerate(frames):
                sink.write(i, frame, np.zeros((64, 96), np.uint8))
            raise RuntimeError("stage failed")
    sink.close()
    decoded, _, _ = decode_all(path)
    assert len(decoded) == 5
    with pytest.raises(OutputError, match="write after close"):
        sink.write(5, frames[0], np.zeros((64, 96), np.uint8))


def test_mp4_sink_keeps_real_time_when_a_live_source_dropped_frames(tmp_path):
    path = tmp_path / "dropped.mp4"
    with Mp4Sink(path, fps=10) as sink:
        for index in (3, 4, 5, 8, 9):
            sink.write(index, np.full((64, 96, 3), index * 20, np.uint8), np.zeros((64, 96), np.uint8))
    _, times, _ = decode_all(path)
    assert times == pytest.approx([0.0, 0.1, 0.2, 0.5, 0.6])


def test_mp4_sink_scales_frames_of_another_size_to_the_first(tmp_path):
    with Mp4Sink(tmp_path / "a.mp4", fps=10) as sink:
        sink.write(0, np.zeros((64, 96, 3), np.uint8), np.zeros((64, 96), np.uint8))
        sink.write(1, np.full((32, 90, 3), 200, np.uint8), np.zeros((32, 90), np.uint8))
        assert sink.frames_scaled == 1
    frames, _, _ = decode_all(tmp_path / "a.mp4")
    assert [f.shape for f in frames] == [(64, 96, 3)] * 2 and abs(int(frames[1].mean()) - 200) < 8


def test_output_path_problems_are_output_errors_at_construction(tmp_path):
    a_file = tmp_path / "a_file.txt"
    a_file.write_text("x")
    with pytest.raises(OutputError, match="is a folder, not a file"):
        Mp4Sink(tmp_path, fps=25)
    with pytest.raises(OutputError, match="cannot create folder"):
        Mp4Sink(a_file / "sub" / "out.mp4", fps=25)
    with pytest.raises(OutputError, match=r"must end in \.mp4"):
        Mp4Sink(tmp_path / "out.gif", fps=25)
    with pytest.raises(OutputError, match="'no_such_codec' is not an encoder FFmpeg has here"):
        Mp4Sink(tmp_path / "out.mp4", fps=25, codec="no_such_codec")
    with pytest.raises(OutputError, match="'aac' is an encoder of audio, not video"):
        Mp4Sink(tmp_path / "out.mp4", fps=25, codec="aac")
    with pytest.raises(OutputError, match="frame rate must be positive"):
        Mp4Sink(tmp_path / "out.mp4", fps=0)
    with pytest.raises(OutputError, match="exists and is not a folder"):
        MaskSink(a_file)
    with pytest.raises(OutputError, match="file name too long"):
        Mp4Sink(tmp_path / ("x" * 300 + ".mp4"), fps=25)
    with pytest.raises(OutputError, match="cannot create folder"):
        FramesSink(a_file / "frames")
    with pytest.raises(OutputError, match="unsupported image format 'gif'"):
        FramesSink(tmp_path / "frames", ext="gif")


@pytest.mark.skipif(not Path("/proc/self").is_dir(), reason="needs /proc (read-only to everyone)")
def test_unwritable_output_folder_is_an_output_error():
    with pytest.raises(OutputError, match="folder /proc is not writable"):
        Mp4Sink("/proc/rtseg_out.mp4", fps=25)
    with pytest.raises(OutputError, match="cannot create folder"):
        MaskSink("/proc/rtseg_masks")


def test_auto_codec_prefers_nvenc_only_when_it_opens(monkeypatch):
    monkeypatch.setattr(encoders, "encoder_opens", lambda codec, w, h: False)
    assert encoders.choose_encoder("auto", 160, 120)[0] == "libx264"
    monkeypatch.setattr(encoders, "encoder_opens", lambda codec, w, h: True)
    expected = "h264_nvenc" if "h264_nvenc" in av.codecs_available else "libx264"
    assert encoders.choose_encoder("auto", 160, 120)[0] == expected
    assert encoders.choose_encoder("libx264", 160, 120) == ("libx264", encoders.X264_OPTIONS)


@pytest.mark.skipif(encoders.encoder_opens("h264_nvenc", 160, 120), reason="this machine has NVENC")
def test_explicit_encoder_that_cannot_open_is_an_output_error(tmp_path):
    if "h264_nvenc" not in av.codecs_available:
        pytest.skip("PyAV's FFmpeg has no h264_nvenc")
    with Mp4Sink(tmp_path / "nv.mp4", fps=25, codec="h264_nvenc") as sink:
        with pytest.raises(OutputError, match="cannot open encoder h264_nvenc"):
            sink.write(0, np.zeros((120, 160, 3), np.uint8), np.zeros((120, 160), np.uint8))


def test_mask_sink_writes_lossless_8bit_pngs_named_by_index(tmp_path):
    rng = np.random.default_rng(6)
    masks = {i: rng.integers(0, 256, (37, 53), dtype=np.uint8) for i in (0, 1, 12)}
    with MaskSink(tmp_path / "masks") as sink:
        for index, ids in masks.items():
            sink.write(index, np.zeros((37, 53, 3), np.uint8), ids)
    names = sorted(p.name for p in (tmp_path / "masks").iterdir())
    assert names == ["000000.png", "000001.png", "000012.png"]
    for index, ids in masks.items():
        back = cv2.imread(str(tmp_path / "masks" / f"{index:06d}.png"), cv2.IMREAD_UNCHANGED)
        assert back.dtype == np.uint8 and back.shape == (37, 53)
        np.testing.assert_array_equal(back, ids)


def test_frames_sink_writes_rgb_images_named_by_index(tmp_path):
    image = np.zeros((24, 32, 3), np.uint8)
    image[..., 0] = 250  # red in RGB
    with FramesSink(tmp_path / "jpg") as jpg, FramesSink(tmp_path / "png", ext=".PNG") as png:
        jpg.write(7, image, np.zeros((24, 32), np.uint8))
        png.write(7, image, np.zeros((24, 32), np.uint8))
    back_png = cv2.cvtColor(cv2.imread(str(tmp_path / "png" / "000007.png")), cv2.COLOR_BGR2RGB)
    np.testing.assert_array_equal(back_png, image)
    back_jpg = cv2.cvtColor(cv2.imread(str(tmp_path / "jpg" / "000007.jpg")), cv2.COLOR_BGR2RGB)
    assert np.abs(back_jpg.astype(int) - image).max() <= 4


def test_null_sink_counts_and_closes():
    with NullSink() as sink:
        sink.write(0, np.zeros((4, 4, 3), np.uint8), np.zeros((4, 4), np.uint8))
    assert sink.frames_written == 1
    sink.close()


@pytest.mark.skipif(not LINUX, reason="DISPLAY / WAYLAND_DISPLAY decide only on Linux")
def test_window_display_needs_a_display(monkeypatch):
    monkeypatch.delenv("DISPLAY", raising=False)
    monkeypatch.delenv("WAYLAND_DISPLAY", raising=False)
    assert not display_available()
    with pytest.raises(OutputError, match="--show needs a display, but no DISPLAY or WAYLAND_DISPLAY"):
        WindowDisplay("rtseg")


def test_realtime_frames_folder_is_paced_at_the_default_rate(numbered_frames):
    with open_source(str(numbered_frames), realtime=True) as source:
        assert source.live and source.paced and source.fps == DEFAULT_FOLDER_FPS
        assert len(list(source)) == 3


@pytest.fixture
def http_server(tmp_path):
    """Serves tmp_path/www over HTTP on a free local port; yields the base URL."""
    import functools
    import threading
    from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer

    class QuietHandler(SimpleHTTPRequestHandler):
        def log_message(self, *args):
            pass

    (tmp_path / "www").mkdir()
    handler = functools.partial(QuietHandler, directory=str(tmp_path / "www"))
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}", tmp_path / "www"
    server.shutdown()
    server.server_close()


def test_video_file_over_http_reads_every_frame_and_is_not_live(http_server):
    base_url, folder = http_server
    frames = structured_frames(6, 64, 96, seed=9)
    write_video(folder / "clip.mp4", frames, container_options={"movflags": "faststart"})
    with open_source(f"{base_url}/clip.mp4") as source:
        assert not source.live and source.frame_count == 6 and source.frame_size == (64, 96)
        assert sum(1 for _ in source) == 6
    with pytest.raises(InputError, match=r"missing\.mp4: cannot open stream"):
        open_source(f"{base_url}/missing.mp4")
