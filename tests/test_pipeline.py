"""The threaded pipeline through its Python API: order, drops, stats, faults, stop paths."""

from __future__ import annotations

import io
import re
import signal
import threading
import time
from pathlib import Path

import cv2
import numpy as np
import pytest
from band_model import make_band_package
from conftest import TINY_SIZE, structured_frames

from rtseg.core.frames import resize_frame
from rtseg.errors import BackendError, InputError, OutputError
from rtseg.loading import LoadedModel, open_model
from rtseg.pipeline import Pipeline, PipelineConfig, PipelineStats
from rtseg.pipeline.queues import END, StageQueue, StopRequested
from rtseg.pipeline.stages import resize_into
from rtseg.runtime.base import Backend
from rtseg.video import Display, FrameSink, FrameSource
from rtseg.viz import Visualizer, VizConfig

FRAME_H, FRAME_W = 48, 64
NUM_CLASSES = 11


class ListSource(FrameSource):
    """FrameSource over a list of frames (or endless), optionally live, slow or failing."""

    def __init__(self, frames=None, live=False, delay_s=0.0, fail_at=None, endless=False):
        super().__init__()
        self.frames = frames if frames is not None else structured_frames(8, FRAME_H, FRAME_W)
        self.live, self.delay_s, self.fail_at, self.endless = live, delay_s, fail_at, endless
        self.fps, self.frame_size = 25.0, (FRAME_H, FRAME_W)
        self.frame_count = None if endless else len(self.frames)
        self.description = "list source"
        self.position = 0

    def _read_impl(self):
        if self.fail_at is not None and self.position == self.fail_at:
            raise InputError(f"list source: corrupt or truncated at frame {self.position}")
        if not self.endless and self.position >= len(self.frames):
            return None
        if self.delay_s:
            time.sleep(self.delay_s)
        frame = self.frames[self.position % len(self.frames)].copy()
        self.position += 1
        return frame, None


class FakeBackend(Backend):
    """ids = red channel // 24 at model size: a deterministic function of the frame content."""

    name = "fake"

    def __init__(self, input_size=(24, 32), delay_s=0.0, fail_at=None):
        self.input_size, self.delay_s, self.fail_at = input_size, delay_s, fail_at
        self.calls, self.threads = 0, set()
        self.max_batch, self.num_classes = 1, NUM_CLASSES

    def _infer_impl(self, images):
        self.threads.add(threading.get_ident())
        if self.fail_at is not None and self.calls == self.fail_at:
            raise BackendError("fake backend: injected failure")
        self.calls += 1
        if self.delay_s:
            time.sleep(self.delay_s)
        return (images[..., 0] // 24).astype(np.uint8)

    def describe(self):
        return "fake 32x24"


def fake_model(backend=None) -> LoadedModel:
    palette = np.array([[i * 20, 255 - i * 20, (i * 53) % 256] for i in range(NUM_CLASSES)], np.uint8)
    return LoadedModel(backend or FakeBackend(), [f"c{i}" for i in range(NUM_CLASSES)], palette, None)


def expected_ids(frame, backend: FakeBackend) -> np.ndarray:
    h, w = backend.input_size
    small = resize_frame(frame, (h, w))
    ids = (small[..., 0] // 24).astype(np.uint8)
    return cv2.resize(ids, (frame.shape[1], frame.shape[0]), interpolation=cv2.INTER_NEAREST_EXACT)


class RecordingSink(FrameSink):
    def __init__(self, fail_at=None, delay_s=0.0):
        self.indices, self.ids, self.shapes, self.closed = [], [], [], 0
        self.fail_at, self.delay_s = fail_at, delay_s

    def _write_impl(self, index, rendered, ids):
        if self.fail_at is not None and len(self.indices) == self.fail_at:
            raise OutputError("recording sink: injected failure (disk full)")
        if self.delay_s:
            time.sleep(self.delay_s)
        self.indices.append(index)
        self.ids.append(ids.copy())
        self.shapes.append(rendered.shape)

    def close(self):
        self.closed += 1


def quiet_config(**kw) -> PipelineConfig:
    return PipelineConfig(viz=VizConfig(hud=False), **kw)


def run_in_thread(pipeline: Pipeline, timeout_s: float = 10.0):
    """Run in a helper thread so a hang fails the test instead of freezing the suite."""
    outcome = {}

    def target():
        try:
            outcome["stats"] = pipeline.run()
        except BaseException as exc:  # noqa: BLE001 - inspected by the test
            outcome["error"] = exc

    worker = threading.Thread(target=target, daemon=True)
    worker.start()
    worker.join(timeout_s)
    assert not worker.is_alive(), f"pipeline still running after {timeout_s} s"
    return outcome


# --- the parts ---------------------------------------------------------------------------


def test_resize_into_writes_the_preallocated_buffer():
    frame = structured_frames(1, 120, 160)[0]
    out = np.zeros((64, 96, 3), np.uint8)
    address = out.__array_interface__["data"][0]
    resize_into(frame, out)
    assert out.__array_interface__["data"][0] == address
    np.testing.assert_array_equal(out, cv2.resize(frame, (96, 64), interpolation=cv2.INTER_AREA))
    same = np.zeros((120, 160, 3), np.uint8)
    resize_into(frame, same)
    np.testing.assert_array_equal(same, frame)


def outcome_within(call, timeout_s: float = 5.0):
    """Run `call` in a helper thread; the exception it raised, or fail if it is still blocked."""
    box = {}

    def target():
        try:
            call()
        except BaseException as exc:  # noqa: BLE001 - returned to the test
            box["error"] = exc

    worker = threading.Thread(target=target, daemon=True)
    worker.start()
    worker.join(timeout_s)
    assert not worker.is_alive(), f"still blocked after {timeout_s} s"
    return box.get("error")


def test_queue_put_newest_drops_the_oldest_and_stop_wakes_blocked_calls():
    stop = threading.Event()
    q = StageQueue(2, stop, poll_s=0.01)
    assert q.put_newest(1) is None and q.put_newest(2) is None
    assert q.put_newest(3) == 1
    assert [q.get(), q.get()] == [2, 3]
    threading.Timer(0.1, stop.set).start()
    assert isinstance(outcome_within(q.get), StopRequested)  # empty: blocked until the stop
    stop.clear()
    q.put(END)
    q.put(END)
    threading.Timer(0.1, stop.set).start()
    assert isinstance(outcome_within(lambda: q.put(END)), StopRequested)  # full


def test_stats_summary_and_json():
    stats = PipelineStats(
        backend="fake",
        frames=10,
        frames_read=12,
        dropped=2,
        first_capture_t=1.0,
        last_write_t=3.0,
    )
    stats.latency_s.extend(0.01 * i for i in range(1, 11))
    stats.stages["infer"].record(0.004, 0.001)
    assert stats.fps == pytest.approx(5.0)
    data = stats.to_json()
    assert {"frames", "fps", "stages", "latency_ms", "dropped"} <= set(data)
    assert set(data["stages"]) == {"capture", "infer", "overlay", "sink"}
    assert data["stages"]["infer"]["busy_ms_mean"] == pytest.approx(4.0)
    assert data["latency_ms"]["max"] == pytest.approx(100.0)
    assert data["latency_ms"]["p50"] <= data["latency_ms"]["p95"] <= data["latency_ms"]["max"]
    text = stats.summary()
    assert "10 frames" in text and "5.0 fps" in text and "dropped frames: 2 of 12" in text


# --- whole runs with fakes ---------------------------------------------------------------


def test_file_source_every_frame_in_order_with_the_right_content():
    frames = structured_frames(12, FRAME_H, FRAME_W, seed=3)
    backend, sink = FakeBackend(delay_s=0.002), RecordingSink(delay_s=0.003)
    stats = Pipeline.single(ListSource(frames), fake_model(backend), [sink], quiet_config(queue_size=2)).run()
    assert sink.indices == list(range(12))
    for index, ids in zip(sink.indices, sink.ids):
        np.testing.assert_array_equal(ids, expected_ids(frames[index], backend))
    assert sink.shapes == [(FRAME_H, FRAME_W, 3)] * 12 and sink.closed == 1
    assert stats.frames == stats.frames_read == 12 and stats.dropped == 0
    assert len(backend.threads) == 1 and threading.get_ident() not in backend.threads


class SubmittingBackend(FakeBackend):
    """FakeBackend with TensorRT's `submit` / `wait`: results come back only on wait, and the
    log records the order of calls (to see frame n+1 submitted before frame n is waited for)."""

    def __init__(self, **kw):
        super().__init__(**kw)
        self.log = []

    overlaps = True

    def _submit_impl(self, images):
        number = self.calls
        ids = self._infer_impl(images.copy())
        self.log.append(("submit", number))
        backend = self

        class Handle:
            def wait(self):
                backend.log.append(("wait", number))
                return ids

        return Handle()


def test_a_submitting_backend_is_kept_one_frame_ahead_and_keeps_order():
    frames = structured_frames(12, FRAME_H, FRAME_W, seed=4)
    backend, sink = SubmittingBackend(), RecordingSink(delay_s=0.002)
    source = ListSource(frames, delay_s=0.0)
    stats = Pipeline.single(source, fake_model(backend), [sink], quiet_config(queue_size=4)).run()
    assert sink.indices == list(range(12)) and stats.frames == 12
    for index, ids in zip(sink.indices, sink.ids):
        np.testing.assert_array_equal(ids, expected_ids(frames[index], backend))
    waits = [n for op, n in backend.log if op == "wait"]
    assert waits == list(range(12))  # every frame waited for once, in order
    position = backend.log.index
    overlapped = [n for n in range(11) if position(("submit", n + 1)) < position(("wait", n))]
    assert overlapped, "no frame was submitted while the previous one was in flight"


def test_max_frames_and_stats():
    sink = RecordingSink()
    stats = Pipeline.single(ListSource(endless=True), fake_model(), [sink], quiet_config(max_frames=5)).run()
    assert sink.indices == [0, 1, 2, 3, 4]
    data = stats.to_json()
    assert data["frames"] == 5 and data["dropped"] == 0 and data["stopped_by"] == "max_frames"
    assert data["fps"] > 0 and data["wall_s"] > 0
    assert all(data["stages"][s]["items"] == 5 for s in ("capture", "infer", "overlay", "sink"))
    lat = data["latency_ms"]
    assert 0 < lat["mean"] <= lat["max"] and lat["p50"] <= lat["p95"] <= lat["max"]
    assert data["backend"] == "fake 32x24"


def test_live_source_newest_frame_wins_and_drops_are_counted():
    frames = structured_frames(40, FRAME_H, FRAME_W)
    source = ListSource(frames, live=True, delay_s=0.002)
    sink = RecordingSink()
    stats = Pipeline.single(source, fake_model(FakeBackend(delay_s=0.03)), [sink], quiet_config()).run()
    assert stats.dropped > 0
    assert stats.frames + stats.dropped == stats.frames_read == 40
    assert sink.indices == sorted(set(sink.indices))  # increasing, no repeats
    assert sink.indices[-1] == 39  # the newest frame is never the one dropped
    assert len(sink.indices) == stats.frames


def test_file_source_with_slow_inference_drops_nothing():
    source = ListSource(structured_frames(15, FRAME_H, FRAME_W), delay_s=0.002)
    sink = RecordingSink()
    stats = Pipeline.single(source, fake_model(FakeBackend(delay_s=0.02)), [sink], quiet_config()).run()
    assert stats.dropped == 0 and sink.indices == list(range(15))


class FailingVisualizer(Visualizer):
    def render(self, frame, ids, hud=None, cfg=None):
        if frame[0, 0, 0] == 7:  # marked frame
            raise ValueError("overlay: injected failure")
        return super().render(frame, ids, hud=hud, cfg=cfg)


@pytest.mark.parametrize("stage", ["capture", "infer", "overlay", "sink"])
def test_an_exception_in_any_stage_ends_the_run_quickly(stage):
    """Endless source and slow sink: the run could only end through the injected error."""
    frames = structured_frames(6, FRAME_H, FRAME_W)
    frames[:, 0, 0, 0] = 0
    frames[4, 0, 0, 0] = 7  # marks frame 4 (and 10, 16, ...) for the failing visualizer
    source = ListSource(frames, endless=True, fail_at=4 if stage == "capture" else None)
    backend = FakeBackend(fail_at=4 if stage == "infer" else None)
    sink = RecordingSink(fail_at=4 if stage == "sink" else None, delay_s=0.01)
    model = fake_model(backend)
    viz = None
    if stage == "overlay":
        viz = FailingVisualizer(VizConfig(hud=False), model.classes, model.palette)
    pipeline = Pipeline.single(source, model, [sink], quiet_config(queue_size=2), visualizer=viz)
    outcome = run_in_thread(pipeline)
    expected = {
        "capture": (InputError, "corrupt or truncated at frame 4"),
        "infer": (BackendError, "injected"),
        "overlay": (ValueError, "injected"),
        "sink": (OutputError, "disk full"),
    }[stage]
    assert isinstance(outcome.get("error"), expected[0]), outcome
    assert expected[1] in str(outcome["error"])
    assert not [t.name for t in threading.enumerate() if t.name.startswith("rtseg-")]  # none stuck
    assert sink.closed == 1 and sink.indices == list(range(len(sink.indices)))
    if stage == "capture":  # an input failure drains: every frame read before it was written
        assert sink.indices == [0, 1, 2, 3] and outcome["error"].stats.frames == 4


def test_capture_error_mid_run_leaves_a_playable_mp4(tmp_path):
    import av

    from rtseg.video import Mp4Sink

    out, recorder = tmp_path / "partial.mp4", RecordingSink()
    source = ListSource(structured_frames(10, FRAME_H, FRAME_W), fail_at=6, delay_s=0.02)
    with pytest.raises(InputError, match="frame 6"):
        Pipeline.single(source, fake_model(), [Mp4Sink(out, fps=25), recorder], quiet_config()).run()
    with av.open(str(out)) as container:
        decoded = [f.to_ndarray(format="rgb24").shape for f in container.decode(video=0)]
    assert len(decoded) == len(recorder.indices) >= 1
    assert decoded[0] == (FRAME_H, FRAME_W, 3)


class FakeDisplay(Display):
    def __init__(self, quit_after=3):
        self.shown, self.threads, self.closed, self.quit_after = 0, set(), 0, quit_after

    def _show_impl(self, rgb):
        self.shown += 1
        self.threads.add(threading.get_ident())
        return ord("q") if self.shown >= self.quit_after else -1

    def _close_impl(self):
        self.closed += 1


def test_window_runs_on_the_calling_thread_and_q_stops_the_run():
    display, sink = FakeDisplay(quit_after=3), RecordingSink(delay_s=0.005)
    stats = Pipeline.single(
        ListSource(endless=True), fake_model(), [sink], quiet_config(), display=display
    ).run()
    assert display.threads == {threading.get_ident()} and display.closed == 1
    assert stats.stopped_by == "user" and sink.closed == 1 and stats.frames >= 3


SIGNAL_RUN = """
import json, os, signal, sys, threading, time
sys.path.insert(0, sys.argv[2])
from test_pipeline import ListSource, RecordingSink, fake_model, quiet_config
from rtseg.pipeline import Pipeline, PipelineInterrupted

signum, sink = int(sys.argv[1]), RecordingSink()
previous = signal.getsignal(signum)
pipeline = Pipeline.single(ListSource(endless=True, delay_s=0.01), fake_model(), [sink], quiet_config())
finished = threading.Event()


def signal_once_frames_flow():  # the run's handlers are in place once a frame reached the sink
    deadline = time.monotonic() + 60
    while not sink.indices and not finished.is_set() and time.monotonic() < deadline:
        time.sleep(0.01)
    if not finished.is_set():  # never after the run: nothing would catch it then
        os.kill(os.getpid(), signum)


sender = threading.Thread(target=signal_once_frames_flow)
sender.start()
try:
    pipeline.run()
    outcome = {"interrupted": False}
except PipelineInterrupted as stop:
    outcome = {"interrupted": True, "status": stop.exit_status, "name": stop.signal_name,
               "frames": stop.stats.frames}
finally:
    finished.set()
    sender.join()
outcome.update(closed=sink.closed, written=len(sink.indices), restored=signal.getsignal(signum) is previous)
print(json.dumps(outcome))
"""


@pytest.mark.parametrize(
    "signum, status", [(signal.SIGINT, 130), (signal.SIGTERM, 143), (signal.SIGHUP, 129)]
)
def test_signal_mid_run_stops_cleanly(signum, status):
    """In a process of its own, as a signal reaches a whole process: the test runner's worker
    holds other tests' native threads (inference runtimes), which are no part of this."""
    import json
    import subprocess
    import sys

    tests = str(Path(__file__).resolve().parent)
    done = subprocess.run(
        [sys.executable, "-c", SIGNAL_RUN, str(int(signum)), tests],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    outcome = json.loads(done.stdout.strip().splitlines()[-1])
    assert outcome["interrupted"] and outcome["status"] == status
    assert outcome["name"] == signal.Signals(signum).name
    assert outcome["closed"] == 1 and outcome["frames"] == outcome["written"] >= 1
    assert outcome["restored"]  # the handler before the run is back


class FailingDisplay(FakeDisplay):
    """A window whose display goes away at the third frame (what WindowDisplay raises then)."""

    def _show_impl(self, rgb):
        super()._show_impl(rgb)
        if self.shown >= 3:
            raise OutputError("--show: the window failed (display gone)")
        return -1


def test_a_window_that_fails_mid_run_keeps_the_mp4(tmp_path):
    import av

    from rtseg.video import Mp4Sink

    out, recorder, display = tmp_path / "kept.mp4", RecordingSink(), FailingDisplay()
    source = ListSource(endless=True, delay_s=0.01)
    with pytest.raises(OutputError, match="the window failed"):
        Pipeline.single(
            source, fake_model(), [Mp4Sink(out, fps=25), recorder], quiet_config(), display=display
        ).run()
    assert display.closed == 1 and recorder.closed == 1
    with av.open(str(out)) as container:
        assert sum(1 for _ in container.decode(video=0)) == len(recorder.indices) >= 1


class HudRecordingVisualizer(Visualizer):
    def __init__(self, *args):
        super().__init__(*args)
        self.huds = []

    def render(self, frame, ids, hud=None, cfg=None):
        self.huds.append(hud)
        return super().render(frame, ids, hud=hud, cfg=cfg)


@pytest.mark.parametrize("hud", [True, False])
def test_hud_text_carries_fps_and_latency_only_when_enabled(hud):
    model = fake_model(FakeBackend(delay_s=0.005))
    viz = HudRecordingVisualizer(VizConfig(hud=hud), model.classes, model.palette)
    config = PipelineConfig(viz=VizConfig(hud=hud))
    Pipeline.single(
        ListSource(structured_frames(10, FRAME_H, FRAME_W)), model, [], config, visualizer=viz
    ).run()
    if not hud:
        assert viz.huds == [None] * 10
        return
    assert all(re.fullmatch(r"\d+\.\d fps \| \d+ ms", text) for text in viz.huds), viz.huds
    assert viz.huds[0] == "0.0 fps | 0 ms" and viz.huds[-1] != viz.huds[0]  # live values


class FakeTerminal(io.StringIO):
    def isatty(self):
        return True


def test_progress_bar_on_a_terminal_only(monkeypatch):
    terminal = FakeTerminal()
    monkeypatch.setattr("sys.stderr", terminal)
    Pipeline.single(ListSource(), fake_model(), [], quiet_config(progress=True)).run()
    assert "8/8" in terminal.getvalue() and "frame/s" in terminal.getvalue()
    plain = io.StringIO()
    monkeypatch.setattr("sys.stderr", plain)
    Pipeline.single(ListSource(), fake_model(), [], quiet_config(progress=True)).run()
    assert plain.getvalue() == ""


# --- a real model --------------------------------------------------------------------------


def test_onnxruntime_backend_masks_match_inference_on_each_frame(tmp_path):
    package = make_band_package(tmp_path, *TINY_SIZE)
    frames = structured_frames(6, 120, 160, seed=9)
    model = open_model(package.onnx_path, threads=1)
    sink = RecordingSink()
    Pipeline.single(ListSource(frames), model, [sink], quiet_config()).run()
    h, w = TINY_SIZE
    small = np.stack([resize_frame(f, (h, w)) for f in frames])
    expected = model.backend.infer(small)
    assert sink.indices == list(range(6))
    for index, ids in zip(sink.indices, sink.ids):
        agreement = [
            (ids == cv2.resize(e, (160, 120), interpolation=cv2.INTER_NEAREST_EXACT)).mean() for e in expected
        ]
        assert agreement[index] > 0.999 and int(np.argmax(agreement)) == index


def test_a_source_frame_that_is_no_rgb_array_is_an_input_error_at_its_index():
    """FrameSource.read_frame checks what `_read_impl` returns (the contract, not the pipeline)."""
    frames = [np.zeros((FRAME_H, FRAME_W, 3), np.uint8), np.zeros((FRAME_H, FRAME_W), np.uint8)]
    sink = RecordingSink()
    with pytest.raises(InputError, match=r"list source: frame 1: expected \(H, W, 3\) uint8 RGB"):
        Pipeline.single(ListSource(frames), fake_model(), [sink], quiet_config()).run()
    assert sink.indices == [0] and sink.closed == 1


def test_a_sink_checks_its_arguments_before_its_hook_runs():
    sink = RecordingSink()
    with pytest.raises(ValueError, match=r"RecordingSink expects \(H, W\) uint8 ids"):
        sink.write(0, np.zeros((4, 4, 3), np.uint8), np.zeros((4, 4), np.int64))
    with pytest.raises(ValueError, match="needs an index >= 0 and its picture"):
        sink.write(0, None, np.zeros((4, 4), np.uint8))
    assert sink.indices == []
