"""The live path without a camera or a screen: keys, the live view, pause, snapshots, the
newest-frame policy on live stand-ins, and live sources that end or disappear mid-run."""

from __future__ import annotations

import dataclasses
import functools
import http.server
import json
import re
import threading
import time
from pathlib import Path

import cv2
import numpy as np
import pytest
from band_model import make_band_package
from click.testing import CliRunner
from conftest import structured_frames, write_video
from test_pipeline import (
    FakeBackend,
    HudRecordingVisualizer,
    ListSource,
    RecordingSink,
    expected_ids,
    fake_model,
)

from rtseg.cli import main
from rtseg.pipeline import Pipeline, PipelineConfig, PipelineStats, ViewState, apply_key
from rtseg.pipeline.live import hud_text, next_mode, snapshot_path, step_alpha
from rtseg.video import Display
from rtseg.viz import VizConfig

FRAME_H, FRAME_W = 48, 64
SPACE, ESC = ord(" "), 27


# --- the key handler -----------------------------------------------------------------------


def test_keys_quit_pause_snapshot():
    state = ViewState()
    for key in (ord("q"), ord("Q"), ESC):
        assert apply_key(state, key) == ViewState(quit=True)
    paused = apply_key(state, SPACE)
    assert paused.paused and not apply_key(paused, SPACE).paused
    assert apply_key(state, ord("s")).snapshot and apply_key(state, ord("S")).snapshot


def test_key_m_cycles_the_three_modes():
    state, seen = ViewState(), []
    for _ in range(4):
        state = apply_key(state, ord("m"))
        seen.append(state.mode)
    assert seen == ["mask", "side-by-side", "overlay", "mask"]
    assert next_mode("side-by-side") == "overlay"


def test_alpha_steps_by_a_tenth_and_is_clamped():
    state = ViewState(alpha=0.5)
    up = apply_key(state, ord("+"))
    assert up.alpha == 0.6 and apply_key(state, ord("=")).alpha == 0.6
    assert apply_key(state, ord("-")).alpha == 0.4 and apply_key(state, ord("_")).alpha == 0.4
    for _ in range(12):
        up = apply_key(up, ord("+"))
    assert up.alpha == 1.0
    down = state
    for _ in range(12):
        down = apply_key(down, ord("-"))
    assert down.alpha == 0.0
    assert step_alpha(0.3, -1) == 0.2  # no float drift (0.3 - 0.1 = 0.19999...)


def test_unknown_or_no_key_leaves_the_state_alone_and_state_is_frozen():
    state = ViewState(mode="mask", alpha=0.3)
    for key in (-1, None, ord("x"), 0):
        assert apply_key(state, key) is state
    assert apply_key(state, 0x100000 | ord("m")).mode == "side-by-side"  # modifier bits ignored
    with pytest.raises(dataclasses.FrozenInstanceError):
        state.mode = "overlay"
    with pytest.raises(ValueError, match="unknown view mode 'x-ray'"):
        ViewState(mode="x-ray")
    with pytest.raises(ValueError, match="alpha must be within 0..1"):
        ViewState(alpha=1.5)


def test_hud_text():
    assert hud_text(29.84, 61.4, 12, False) == "29.8 fps | 61 ms | 12 dropped"
    assert hud_text(0.0, 0.0, 0, True) == "0.0 fps | 0 ms | 0 dropped | paused"


# --- the live view through the Pipeline, with a scripted fake window ----------------------


def indexed_frames(n: int = 256) -> np.ndarray:
    """Frames whose green channel is their index (read it back from an overlay with alpha 0)."""
    frames = structured_frames(n, FRAME_H, FRAME_W, seed=5)
    frames[..., 1] = (np.arange(n) % 256).astype(np.uint8)[:, None, None]
    return frames


def shown_index(image: np.ndarray) -> int:
    return int(image[0, 0, 1])


class ScriptedDisplay(Display):
    """A fake window. `script(display, kind)` returns the key for each `show` / `poll_key` call;
    every picture shown is kept, with the number of show calls so far."""

    def __init__(self, script):
        self.script = script
        self.images: list[np.ndarray] = []
        self.polls = 0
        self.closed = 0
        self.threads: set[int] = set()

    def _show_impl(self, rgb: np.ndarray) -> int:
        self.threads.add(threading.get_ident())
        self.images.append(rgb.copy())
        return self.script(self, "show")

    def _poll_key_impl(self) -> int:
        self.polls += 1
        return self.script(self, "poll")

    def _close_impl(self) -> None:
        self.closed += 1


def keys_at(keys: dict[int, int], quit_after: int):
    """A script: key `keys[n]` on the n-th show (1-based), q from show `quit_after` on."""

    def script(display, kind):
        if kind != "show":
            return -1
        count = len(display.images)
        return ord("q") if count >= quit_after else keys.get(count, -1)

    return script


def live_run(display, viz: VizConfig, sinks=(), frames=None, delay_s=0.005, snapshot_dir=Path(".")):
    frames = indexed_frames() if frames is None else frames
    source = ListSource(frames, live=True, delay_s=delay_s, endless=True)
    model = fake_model(FakeBackend())
    config = PipelineConfig(viz=viz, snapshot_dir=snapshot_dir)
    return Pipeline.single(source, model, list(sinks), config, display=display).run(), frames, model


def test_alpha_and_mode_keys_redraw_the_shown_frame_at_once():
    display = ScriptedDisplay(keys_at({3: ord("+"), 4: ord("m"), 5: ord("m")}, quit_after=6))
    stats, frames, model = live_run(display, VizConfig(alpha=0.0, legend=False, hud=False))
    assert stats.stopped_by == "user" and display.closed == 1
    assert display.threads == {threading.get_ident()}  # the window lives on the calling thread
    third = display.images[2]
    frame = frames[shown_index(third)]
    np.testing.assert_array_equal(third, frame)  # overlay at alpha 0: the frame itself
    colours = model_colours(model, frame)
    np.testing.assert_array_equal(display.images[3], cv2.addWeighted(frame, 0.9, colours, 0.1, 0.0))
    np.testing.assert_array_equal(display.images[4], colours)  # mask: exact palette colours
    np.testing.assert_array_equal(display.images[5], np.concatenate([frame, colours], axis=1))


def model_colours(model, frame: np.ndarray) -> np.ndarray:
    ids = expected_ids(frame, model.backend)
    return model.palette[ids]


def test_pause_freezes_the_picture_and_the_newest_frame_shows_on_resume():
    sink, marks = RecordingSink(), {}

    def script(display, kind):
        shows = len(display.images)
        if kind == "show" and shows == 3 and "paused_at" not in marks:
            marks["paused_at"] = display.polls
            return SPACE
        if (  # resume once recording went 20 frames past the pause (or after 2000 polls: a failure)
            kind == "poll"
            and "paused_at" in marks
            and "resumed" not in marks
            and sink.indices
            and (
                sink.indices[-1] > 20 + shown_index(display.images[2])
                or display.polls > 2000 + marks["paused_at"]
            )
        ):
            marks["resumed"], marks["written_at_resume"] = shows, sink.indices[-1]
            return SPACE
        if "resumed" in marks and shows >= marks["resumed"] + 2:
            return ord("q")
        return -1

    display = ScriptedDisplay(script)
    stats, _, _ = live_run(display, VizConfig(alpha=0.0, legend=False, hud=False), sinks=[sink])
    paused_index = shown_index(display.images[2])
    during = display.images[3 : marks["resumed"]]  # the redraw for the pause key: same frame
    assert during and all(shown_index(image) == paused_index for image in during)
    assert display.polls > 10  # the window kept handling events while paused
    assert marks["written_at_resume"] < 256  # indices below 256: readable from the green channel
    assert marks["written_at_resume"] - paused_index > 10  # recording went on behind the pause
    resumed_index = shown_index(display.images[marks["resumed"]])
    assert resumed_index >= marks["written_at_resume"] - 1  # the newest frame, no stale backlog
    assert stats.displayed == len({shown_index(image) for image in display.images})


def test_pause_holds_a_file_source_without_skipping_frames():
    sink, marks = RecordingSink(), {}

    def script(display, kind):
        if kind == "show" and len(display.images) == 2 and "paused" not in marks:
            marks["paused"], marks["seen"] = True, []
            return SPACE
        if kind != "poll" or "paused" not in marks or "resumed" in marks:
            return -1
        marks["seen"].append(len(sink.indices))
        settled = len(marks["seen"]) > 10 and len(set(marks["seen"][-10:])) == 1  # 10 polls, no change
        if settled:  # what was in flight at the pause reached the sink and nothing follows
            marks.setdefault("written_after_drain", len(sink.indices))
        if (
            settled
            and len(set(marks["seen"][-20:])) == 1
            and len(marks["seen"]) > 20
            or len(sink.indices) == 60
        ):
            marks["resumed"], marks["written_at_resume"] = True, len(sink.indices)
            marks.setdefault("written_after_drain", None)
            return SPACE
        return -1

    frames = indexed_frames(60)
    display = ScriptedDisplay(script)
    stats = Pipeline.single(
        ListSource(frames, delay_s=0.005),
        fake_model(),
        [sink],
        PipelineConfig(viz=VizConfig(hud=False)),
        display=display,
    ).run()
    assert marks["written_at_resume"] == marks["written_after_drain"] < 60  # capture was held
    assert sink.indices == list(range(60)) and stats.dropped == 0  # then every frame, in order


def test_snapshot_writes_the_shown_picture_and_prints_its_path(tmp_path, capsys):
    display = ScriptedDisplay(keys_at({2: ord("s")}, quit_after=3))
    live_run(display, VizConfig(alpha=0.0, legend=False, hud=True), snapshot_dir=tmp_path)
    index = shown_index(display.images[1][FRAME_H // 2 :])  # below the HUD line
    path = snapshot_path(tmp_path, index)
    assert path.name == f"rtseg_snapshot_{index:06d}.png" and path.is_file()
    saved = cv2.cvtColor(cv2.imread(str(path)), cv2.COLOR_BGR2RGB)
    np.testing.assert_array_equal(saved, display.images[1])  # with its HUD, as shown
    assert str(path) in capsys.readouterr().out


def test_snapshot_to_a_missing_folder_warns_and_the_run_goes_on(tmp_path, capsys):
    display = ScriptedDisplay(keys_at({2: ord("s")}, quit_after=4))
    (tmp_path / "a_file").write_text("x")  # no folder can be made there
    stats, _, _ = live_run(display, VizConfig(hud=False), snapshot_dir=tmp_path / "a_file" / "gone")
    assert stats.stopped_by == "user" and len(display.images) >= 4
    assert "rtseg: warning: snapshot" in capsys.readouterr().err


def test_window_hud_shows_fps_latency_and_drops_and_stats_carry_display_latency():
    model = fake_model(FakeBackend(delay_s=0.02))  # slower than the source: frames are dropped
    viz_cfg = VizConfig(legend=False, hud=True)
    viz = HudRecordingVisualizer(viz_cfg, model.classes, model.palette)
    source = ListSource(indexed_frames(), live=True, delay_s=0.005, endless=True)

    def script(display, kind):  # pause at the 6th show, then quit after 1 s of polling
        if kind == "poll" and len(display.images) > 6:
            return ord("q") if display.polls > 60 else -1
        return SPACE if kind == "show" and len(display.images) == 6 else -1

    display = ScriptedDisplay(script)
    stats = Pipeline.single(
        source, model, [], PipelineConfig(viz=viz_cfg), display=display, visualizer=viz
    ).run()
    pattern = r"\d+\.\d fps \| \d+ ms \| \d+ dropped( \| paused)?"
    assert viz.huds and all(re.fullmatch(pattern, text) for text in viz.huds), viz.huds
    assert viz.huds[-1].endswith("| paused") and not viz.huds[0].endswith("paused")
    assert int(viz.huds[-1].split(" | ")[2].split()[0]) > 0  # drops counted on screen
    data = stats.to_json()
    assert data["displayed"] == 6 and data["live"] is True and data["dropped"] > 0
    shown = data["display_latency_ms"]
    assert 0 < shown["mean"] <= shown["max"] and shown["p50"] <= shown["p95"] <= shown["max"]
    assert "latency capture->display ms" in stats.summary() and "6 frames shown" in stats.summary()


def test_summary_of_a_live_run_without_a_window_names_its_latency_figure():
    stats = PipelineStats(frames=3, frames_read=3, live=True, stopped_by="source_end")
    stats.latency_s.extend([0.01, 0.02, 0.03])
    text = stats.summary()
    assert "capture->sink is the latency figure" in text and "live source ended" in text
    assert stats.to_json()["display_latency_ms"] is None and stats.to_json()["displayed"] == 0
    assert "latency figure" not in PipelineStats(frames=1, live=False).summary()


# --- live stand-ins: newest frame wins, drops counted, no growing lag -----------------------


@pytest.mark.slow  # seconds of real pacing
@pytest.mark.parametrize("stand_in", ["lavfi", "paced file"])
def test_live_stand_in_newest_frame_wins_without_lag(stand_in, tiny_video):
    from rtseg.video import open_source

    if stand_in == "lavfi":  # 2 s at 30 fps = 60 frames
        source = open_source("lavfi:testsrc2=size=160x120:rate=30:duration=2")
    else:  # 24 frames at 12 fps, paced and flagged live
        source = open_source(str(tiny_video), realtime=True)
    sink = RecordingSink()
    with source:
        assert source.live
        stats = Pipeline.single(
            source, fake_model(FakeBackend(delay_s=0.12)), [sink], PipelineConfig(viz=VizConfig(hud=False))
        ).run()
    assert stats.dropped > 0 and stats.frames + stats.dropped == stats.frames_read
    assert stats.frames_read == (60 if stand_in == "lavfi" else 24)
    assert sink.indices == sorted(set(sink.indices))
    assert sink.indices[-1] == stats.frames_read - 1  # the newest frame is never the one dropped
    # A FIFO would build up lag (the last frame waits for every earlier one: seconds); the
    # newest-frame policy keeps every frame's latency near one inference.
    assert stats.latency_s.max < 0.6, stats.latency_ms()
    assert stats.stopped_by == "source_end"


# --- live sources that end or disappear mid-run, through `rtseg run` ----------------------


@pytest.fixture(scope="module")
def band_package(tmp_path_factory):
    return make_band_package(tmp_path_factory.mktemp("band"), height=64, width=96)


def decode_count(path: Path) -> int:
    import av

    with av.open(str(path)) as container:
        return sum(1 for _ in container.decode(video=0))


def rtseg_run(*args, env=None):
    return CliRunner().invoke(main, ["run", *map(str, args)], env=env)


def assert_clean_live_end(result, out: Path, stats_file: Path) -> dict:
    """Exit 0, the summary printed, the recording playable with every frame written."""
    assert result.exit_code == 0, (result.output, result.exception)
    assert "frames in" in result.stdout and "live source ended" in result.stdout
    stats = json.loads(stats_file.read_text())
    assert stats["live"] is True and stats["stopped_by"] == "source_end" and stats["frames"] >= 1
    assert decode_count(out) == stats["frames"]
    return stats


def test_lavfi_with_a_duration_ends_cleanly_and_records_without_a_window(tmp_path, band_package):
    out, stats_file = tmp_path / "live.mp4", tmp_path / "stats.json"
    result = rtseg_run(
        "--source",
        "lavfi:testsrc2=size=160x120:rate=30:duration=1",
        "--model",
        band_package.onnx_path,
        "--threads",
        1,
        "--output",
        out,
        "--stats-json",
        stats_file,
        env={"DISPLAY": None, "WAYLAND_DISPLAY": None},
    )
    stats = assert_clean_live_end(result, out, stats_file)
    assert stats["frames_read"] == 30 and stats["displayed"] == 0
    assert stats["display_latency_ms"] is None
    assert "capture->sink is the latency figure" in result.stdout


class VanishingCamera:
    """cv2.VideoCapture stand-in: `good` frames (BGR, camera-paced), then read fails (unplugged)."""

    good = 15

    def __init__(self, *args):
        self.reads, self.released = 0, False

    def isOpened(self):
        return True

    def set(self, prop, value):
        return True

    def get(self, prop):
        return {cv2.CAP_PROP_FRAME_WIDTH: 160, cv2.CAP_PROP_FRAME_HEIGHT: 120, cv2.CAP_PROP_FPS: 30.0}.get(
            prop, 0.0
        )

    def read(self):
        self.reads += 1
        if self.reads > self.good:
            return False, None
        time.sleep(1 / 30)
        frame = np.full((120, 160, 3), (40, 90, 8 * self.reads), np.uint8)
        return True, frame

    def release(self):
        self.released = True


def test_camera_that_disappears_mid_run_ends_cleanly_with_a_playable_recording(
    tmp_path, band_package, monkeypatch
):
    monkeypatch.setattr(cv2, "VideoCapture", VanishingCamera)
    monkeypatch.setattr("rtseg.video.camera.camera_device_path", lambda camera: None)
    out, stats_file = tmp_path / "camera.mp4", tmp_path / "stats.json"
    result = rtseg_run(
        "--camera",
        0,
        "--model",
        band_package.onnx_path,
        "--threads",
        1,
        "--output",
        out,
        "--stats-json",
        stats_file,
    )
    stats = assert_clean_live_end(result, out, stats_file)
    assert stats["frames_read"] == VanishingCamera.good
    assert stats["frames"] + stats["dropped"] == VanishingCamera.good


def write_ts(path: Path, frames: np.ndarray, fps: int = 25) -> Path:
    """An MPEG-TS file (no frame count in its header: a stream URL serving it counts as live)."""
    return write_video(path, frames, fps, codec="mpeg2video", container_format="mpegts")


@pytest.fixture()
def http_stream(tmp_path):
    """An HTTP URL serving a 20-frame MPEG-TS stream that then ends."""
    write_ts(tmp_path / "clip.ts", structured_frames(20, 120, 160, seed=8))
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(tmp_path))
    handler.log_message = lambda *args: None
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/clip.ts"
    finally:
        server.shutdown()
        server.server_close()


def test_stream_url_that_ends_mid_run_ends_cleanly(tmp_path, band_package, http_stream):
    out, stats_file = tmp_path / "stream.mp4", tmp_path / "stats.json"
    result = rtseg_run(
        "--camera",
        http_stream,
        "--model",
        band_package.onnx_path,
        "--threads",
        1,
        "--output",
        out,
        "--stats-json",
        stats_file,
    )
    stats = assert_clean_live_end(result, out, stats_file)
    assert stats["frames_read"] == 20


def test_show_without_a_display_on_a_live_source_is_one_line(tmp_path, band_package):
    out = tmp_path / "live.mp4"
    result = rtseg_run(
        "--source",
        "lavfi:testsrc2=size=160x120:rate=30",
        "--model",
        band_package.onnx_path,
        "--show",
        "--output",
        out,
        env={"DISPLAY": None, "WAYLAND_DISPLAY": None},
    )
    assert result.exit_code == 1 and "Traceback" not in result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("rtseg: error: --show needs a display"), lines


def test_snapshot_dir_must_exist(tmp_path, band_package):
    result = rtseg_run(
        "--source",
        "lavfi:testsrc2=size=160x120:rate=30",
        "--model",
        band_package.onnx_path,
        "--show",
        "--snapshot-dir",
        tmp_path / "nope",
    )
    assert result.exit_code == 1
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "--snapshot-dir" in lines[0] and "does not exist" in lines[0], lines


def test_a_window_is_the_frame_size_scaled_down_only_to_fit_the_screen():
    from rtseg.video.display import fitted_size

    assert fitted_size((480, 640), (1080, 1920)) == (480, 640)
    assert fitted_size((480, 640), None) == (480, 640)  # screen unknown
    assert fitted_size((2160, 3840), (1080, 1920)) == (972, 1728)  # 90% of the screen, aspect kept
    assert fitted_size((1000, 500), (800, 1280)) == (720, 360)


def test_qt_gets_a_fonts_folder_that_exists(tmp_path, monkeypatch):
    import os

    from rtseg.video.display import qt_font_dir

    monkeypatch.setenv("QT_QPA_FONTDIR", str(tmp_path / "opencv-ships-none"))  # what cv2 sets
    assert os.path.isdir(qt_font_dir())
    monkeypatch.setenv("QT_QPA_FONTDIR", str(tmp_path))
    assert qt_font_dir() == str(tmp_path)  # one that exists is kept
