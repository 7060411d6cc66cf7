"""What a run measured: frames, end-to-end fps, per-stage busy time, queue waits, latency, drops.

Two latencies per frame: capture -> sink (every frame written, `latency_ms`) and, with a window,
capture -> display (every frame shown, `display_latency_ms`): what a live viewer experiences.
Every per-frame figure is kept in constant memory (rtseg.core.streaming_stats): a camera can
run for weeks.
"""

from __future__ import annotations

import threading
from collections import deque
from dataclasses import dataclass, field

from rtseg.core.streaming_stats import StreamingStats

STAGE_NAMES = ("capture", "infer", "overlay", "sink")

STOP_REASONS = {
    "source_end": "end of the source",
    "max_frames": "max_frames reached",
    "user": "the user (q / Esc / window closed)",
    "error": "an error",
    "input_error": "an input failure (every frame read before it was written)",
}
LIVE_END = "the live source ended (stream over, camera gone or read failed)"


@dataclass
class StageStats:
    """Busy and wait times of one stage, in seconds, in constant memory (StreamingStats).
    Recorded only by that stage's thread."""

    name: str
    busy_s: StreamingStats = field(default_factory=StreamingStats)
    wait_s: StreamingStats = field(default_factory=StreamingStats)

    def record(self, busy_s: float, wait_s: float = 0.0) -> None:
        self.busy_s.add(busy_s)
        self.wait_s.add(wait_s)

    def to_json(self) -> dict:
        busy, wait = self.busy_s.summary(scale=1000.0), self.wait_s.summary(scale=1000.0)
        return {
            "items": self.busy_s.count,
            "busy_ms_mean": busy["mean"],
            "busy_ms_p95": busy["p95"],
            "wait_ms_mean": wait["mean"],
        }


class RateMeter:
    """Recent write times and latencies, for the HUD and the progress bar (thread-safe)."""

    def __init__(self, window: int = 30):
        self._times: deque[float] = deque(maxlen=window)
        self._latencies: deque[float] = deque(maxlen=window)
        self._lock = threading.Lock()

    def tick(self, t_written: float, latency_s: float) -> None:
        with self._lock:
            self._times.append(t_written)
            self._latencies.append(latency_s)

    def snapshot(self) -> tuple[float, float]:
        """(frames per second over the window, mean latency in ms); zeros before two frames."""
        with self._lock:
            times, lats = list(self._times), list(self._latencies)
        fps = (len(times) - 1) / (times[-1] - times[0]) if len(times) > 1 and times[-1] > times[0] else 0.0
        return fps, (1000.0 * sum(lats) / len(lats) if lats else 0.0)


@dataclass
class PipelineStats:
    """Everything `Pipeline.run` measured. Times are `time.perf_counter()` seconds.

    frames: frames written to the sinks; frames_read: frames taken from the source;
    dropped: live frames discarded because inference was busy (newest frame wins).
    fps: frames / (last write - first capture), what the viewer gets end to end.
    live: the source was live (camera, stream, lavfi, paced file).
    displayed: frames shown in the window (a newer frame can replace one before it is shown).
    latency_s: capture -> sink of every frame written (recorded by the sink thread);
    display_latency_s: capture -> shown of every frame displayed (recorded by the main thread).
    Both are StreamingStats in seconds: constant memory however long the run.
    """

    backend: str = ""
    device: str = ""  # where the model ran: "cpu", "cuda", "tensorrt" (Backend.runs_on)
    source: str = ""
    frames: int = 0
    frames_read: int = 0
    dropped: int = 0
    first_capture_t: float | None = None
    last_write_t: float | None = None
    latency_s: StreamingStats = field(default_factory=StreamingStats)
    stages: dict[str, StageStats] = field(
        default_factory=lambda: {name: StageStats(name) for name in STAGE_NAMES}
    )
    live: bool = False
    displayed: int = 0
    display_latency_s: StreamingStats = field(default_factory=StreamingStats)
    first_display_t: float | None = None
    last_display_t: float | None = None
    stopped_by: str | None = None  # "source_end", "max_frames", "user", "SIGINT", "SIGTERM", "error"
    input_damage: dict | None = None  # the source's InputDamage.to_json(), when it counts damage
    damage_summary: str = ""  # its one-line summary, when there was damage

    @property
    def warnings(self) -> list[str]:
        """One line each: what the input got wrong that did not stop the run (a file cut short)."""
        return list((self.input_damage or {}).get("warnings", []))

    def record_input(self, source) -> None:
        """Take the source's damage report (`source.damage`, an InputDamage) at the end of a run."""
        damage = source.damage
        self.input_damage = damage.to_json()
        self.damage_summary = damage.summary() if damage else ""

    @property
    def wall_s(self) -> float:
        if self.first_capture_t is None or self.last_write_t is None:
            return 0.0
        return max(self.last_write_t - self.first_capture_t, 0.0)

    @property
    def fps(self) -> float:
        wall = self.wall_s
        return self.frames / wall if wall > 0 else 0.0

    @property
    def display_fps(self) -> float:
        """Frames shown per second in the window (what the viewer sees); 0 without a window."""
        if self.displayed < 2 or self.first_display_t is None or self.last_display_t is None:
            return 0.0
        span = self.last_display_t - self.first_display_t
        return (self.displayed - 1) / span if span > 0 else 0.0

    def latency_ms(self) -> dict[str, float]:
        """Capture -> sink latency of the frames written, in ms: {mean, min, p50, p90, p95, p99,
        max} (zeros before the first frame)."""
        return self.latency_s.summary(scale=1000.0)

    def display_latency_ms(self) -> dict[str, float] | None:
        """Capture -> display latency of the frames shown, in ms (keys as latency_ms); None
        without a window."""
        return self.display_latency_s.summary(scale=1000.0) if self.display_latency_s.count else None

    def record_written(self, t_captured: float, t_written: float) -> None:
        """One frame reached every sink (sink thread only)."""
        self.latency_s.add(t_written - t_captured)
        self.last_write_t = t_written
        self.frames += 1

    def record_display(self, t_captured: float, t_shown: float) -> None:
        """One frame reached the screen (main thread only)."""
        if self.first_display_t is None:
            self.first_display_t = t_shown
        self.last_display_t = t_shown
        self.displayed += 1
        self.display_latency_s.add(t_shown - t_captured)

    def to_json(self) -> dict:
        """A JSON-ready dict: frames, fps, wall_s, stages, latency_ms (capture -> sink), dropped,
        displayed, display_fps, display_latency_ms (capture -> display; null without a window),
        backend (its description, with ONNX Runtime's provider), device (where it ran: "cpu",
        "cuda", "tensorrt"), live, context, and input_damage (damaged packets / frames,
        undecodable frames, warnings such as a file cut short; null for sources that do not
        count damage)."""
        return {
            "frames": self.frames,
            "fps": round(self.fps, 3),
            "wall_s": round(self.wall_s, 4),
            "stages": {name: s.to_json() for name, s in self.stages.items()},
            "latency_ms": self.latency_ms(),
            "dropped": self.dropped,
            "frames_read": self.frames_read,
            "live": self.live,
            "displayed": self.displayed,
            "display_fps": round(self.display_fps, 3),
            "display_latency_ms": self.display_latency_ms(),
            "backend": self.backend,
            "device": self.device,
            "source": self.source,
            "stopped_by": self.stopped_by,
            "input_damage": self.input_damage,
        }

    def summary(self) -> str:
        """A few lines of text for the terminal."""
        head = f"{self.frames} frames in {self.wall_s:.2f} s: {self.fps:.1f} fps end to end"
        if self.backend:
            head += f" ({self.backend})"
        lines = [head]
        if self.source:
            lines.append(f"source: {self.source}")
        lines.append(f"{'stage':<8} {'busy ms/frame':>14} {'p95':>8} {'wait ms':>9}")
        for name, stage in self.stages.items():
            s = stage.to_json()
            lines.append(
                f"{name:<8} {s['busy_ms_mean']:>14.2f} {s['busy_ms_p95']:>8.2f} {s['wait_ms_mean']:>9.2f}"
            )
        lines.extend(self._latency_lines())
        lines.append(f"dropped frames: {self.dropped} of {self.frames_read} read")
        if self.damage_summary:
            lines.append(self.damage_summary)
        if self.stopped_by:
            reason = STOP_REASONS.get(self.stopped_by, self.stopped_by)
            if self.live and self.stopped_by == "source_end":
                reason = LIVE_END
            lines.append(f"stopped by: {reason}")
        return "\n".join(lines)

    def _latency_lines(self) -> list[str]:
        lat = self.latency_ms()
        lines = [
            f"latency capture->sink ms: mean {lat['mean']:.1f}, p50 {lat['p50']:.1f}, "
            f"p95 {lat['p95']:.1f}, max {lat['max']:.1f}"
        ]
        shown = self.display_latency_ms()
        if shown is not None:
            lines.append(
                f"latency capture->display ms: mean {shown['mean']:.1f}, p50 {shown['p50']:.1f}, "
                f"p95 {shown['p95']:.1f}, max {shown['max']:.1f} ({self.displayed} frames "
                f"shown, {self.display_fps:.1f} fps on screen)"
            )
        elif self.live:
            lines.append("live source without a window: capture->sink is the latency figure")
        return lines
