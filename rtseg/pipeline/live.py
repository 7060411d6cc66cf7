"""The live view, driven from the main thread: keys, what the window shows, HUD, snapshots.

Keys (`apply_key`, a pure function of the view state and a key code):
  q / Esc   quit                      space   pause / resume the view
  m         overlay -> mask -> side-by-side
  + / =     alpha + 0.1               - / _   alpha - 0.1 (clamped to 0..1)
  s         save the displayed frame as `rtseg_snapshot_<index>.png`

The window's picture is rendered here, on the main thread, from each frame and its class ids
with the current view state: a mode or alpha change shows at once, even on a paused frame,
while the recording (rendered by the overlay stage with the run's VizConfig) keeps one mode
and therefore one frame size. Pausing freezes the picture only: live frames keep flowing and
being dropped behind it, so no lag builds up and the newest frame shows on resume (a file
source is held at its capture stage instead, so none of it is skipped).
"""

from __future__ import annotations

import sys
import threading
import time
from dataclasses import dataclass, replace
from pathlib import Path

import cv2
import numpy as np

from rtseg.core.paths import atomic_write_bytes
from rtseg.errors import OutputError
from rtseg.pipeline.queues import FrameItem
from rtseg.pipeline.stats import PipelineStats, RateMeter
from rtseg.viz import MODES, VizConfig

ESCAPE = 27
QUIT_KEYS = frozenset({ord("q"), ord("Q"), ESCAPE})
PAUSE_KEYS = frozenset({ord(" ")})
MODE_KEYS = frozenset({ord("m"), ord("M")})
ALPHA_UP_KEYS = frozenset({ord("+"), ord("=")})  # "=" is "+" without shift on most layouts
ALPHA_DOWN_KEYS = frozenset({ord("-"), ord("_")})
SNAPSHOT_KEYS = frozenset({ord("s"), ord("S")})
ALPHA_STEP = 0.1
SNAPSHOT_PREFIX = "rtseg_snapshot_"


@dataclass(frozen=True)
class ViewState:
    """What the window shows and what the user asked for.

    mode: one of MODES; alpha: overlay opacity 0..1; paused: the picture is frozen;
    snapshot: a snapshot was asked for and is not saved yet; quit: the user asked to stop.
    """

    mode: str = "overlay"
    alpha: float = 0.5
    paused: bool = False
    snapshot: bool = False
    quit: bool = False

    def __post_init__(self):
        if self.mode not in MODES:
            raise ValueError(f"unknown view mode '{self.mode}' (use {', '.join(MODES)})")
        if not 0.0 <= self.alpha <= 1.0:
            raise ValueError(f"alpha must be within 0..1, got {self.alpha}")


def next_mode(mode: str) -> str:
    """overlay -> mask -> side-by-side -> overlay."""
    return MODES[(MODES.index(mode) + 1) % len(MODES)]


def step_alpha(alpha: float, steps: int) -> float:
    """`alpha + steps * ALPHA_STEP`, clamped to 0..1 and rounded to one decimal (no drift)."""
    return round(min(max(alpha + steps * ALPHA_STEP, 0.0), 1.0), 1)


def apply_key(state: ViewState, key: int | None) -> ViewState:
    """The state after `key` (an OpenCV key code; None or < 0: no key). Unknown keys: unchanged."""
    if key is None or key < 0:
        return state
    code = key & 0xFF
    if code in QUIT_KEYS:
        return replace(state, quit=True)
    if code in PAUSE_KEYS:
        return replace(state, paused=not state.paused)
    if code in MODE_KEYS:
        return replace(state, mode=next_mode(state.mode))
    if code in ALPHA_UP_KEYS:
        return replace(state, alpha=step_alpha(state.alpha, +1))
    if code in ALPHA_DOWN_KEYS:
        return replace(state, alpha=step_alpha(state.alpha, -1))
    if code in SNAPSHOT_KEYS:
        return replace(state, snapshot=True)
    return state


def hud_text(fps: float, latency_ms: float, dropped: int, paused: bool) -> str:
    """The window's HUD line, e.g. "29.8 fps | 61 ms | 12 dropped" (+ " | paused")."""
    text = f"{fps:.1f} fps | {latency_ms:.0f} ms | {dropped} dropped"
    return text + " | paused" if paused else text


def snapshot_path(folder: Path, index: int) -> Path:
    return Path(folder) / f"{SNAPSHOT_PREFIX}{index:06d}.png"


class LiveView:
    """Shows the newest processed frame in `display` and handles its keys (main thread only).

    display: `show((H, W, 3) uint8 RGB) -> key` and optionally `poll_key() -> key`.
    visualizer: renders the window's picture; viz: the run's VizConfig (initial mode / alpha,
        legend, hud). stats: gets `record_display` per frame shown (capture -> shown latency).
    pause_event: set while paused (the pipeline holds a file source's capture on it).
    snapshot_dir: where `s` writes PNGs; each path is printed on stdout.
    """

    def __init__(
        self,
        display,
        visualizer,
        viz: VizConfig,
        stats: PipelineStats,
        pause_event: threading.Event | None = None,
        snapshot_dir: Path = Path("."),
    ):
        self.display = display
        self.visualizer = visualizer
        self.viz = viz
        self.stats = stats
        self.pause_event = pause_event
        self.snapshot_dir = Path(snapshot_dir)
        self.state = ViewState(mode=viz.mode, alpha=viz.alpha)
        self.meter = RateMeter()  # shown frames: the fps and latency the viewer gets
        self.current: FrameItem | None = None  # the frame on screen
        self.image: np.ndarray | None = None  # the picture on screen, (H, W', 3) uint8 RGB
        self.snapshots: list[Path] = []

    def step(self, item: FrameItem | None) -> bool:
        """Show `item` (the newest frame with `ids_full`, or None) unless paused; handle the
        key pressed. Returns False once the user asked to quit."""
        if item is not None and not self.state.paused:
            self.current = item
            self.image = self.render(item)
            key = self.display.show(self.image)
            t_shown = time.perf_counter()
            self.stats.record_display(item.t_captured, t_shown)
            self.meter.tick(t_shown, t_shown - item.t_captured)
        else:  # nothing new to show (or paused: newer frames are dropped behind the picture)
            key = self.poll_key()
        return self.handle_keys(key)

    def render(self, item: FrameItem) -> np.ndarray:
        """The window's picture of `item` in the current mode / alpha, with the HUD line."""
        cfg = replace(self.viz, mode=self.state.mode, alpha=self.state.alpha)
        hud = None
        if cfg.hud:
            fps, latency_ms = self.meter.snapshot()
            hud = hud_text(fps, latency_ms, self.stats.dropped, self.state.paused)
        return self.visualizer.render(item.frame, item.ids_full, hud=hud, cfg=cfg)

    def poll_key(self) -> int:
        """Let the window process events without a new frame; the key pressed or -1."""
        poll = getattr(self.display, "poll_key", None)
        if callable(poll):
            return poll()
        return self.display.show(self.image) if self.image is not None else -1

    def handle_keys(self, key: int) -> bool:
        """Apply `key` (and any key pressed while redrawing for it). False on quit."""
        while True:
            before, self.state = self.state, apply_key(self.state, key)
            if self.state.quit:
                return False
            if self.pause_event is not None:
                (self.pause_event.set if self.state.paused else self.pause_event.clear)()
            if self.state.snapshot:
                self.save_snapshot()
                self.state = replace(self.state, snapshot=False)
            # Redraw for a new mode / alpha, or to mark the picture paused; on resume the next
            # frame (one frame time away) replaces it anyway.
            redraw = (before.mode, before.alpha) != (self.state.mode, self.state.alpha) or (
                self.state.paused and not before.paused
            )
            if not redraw or self.current is None:
                return True
            self.image = self.render(self.current)
            key = self.display.show(self.image)

    def save_snapshot(self) -> Path | None:
        """Write the picture on screen as PNG; print its path. A failure is a warning only:
        a full disk must not end a live view."""
        if self.image is None or self.current is None:
            return None
        path = snapshot_path(self.snapshot_dir, self.current.index)
        try:
            ok, encoded = cv2.imencode(".png", cv2.cvtColor(self.image, cv2.COLOR_RGB2BGR))
            if not ok:
                raise OutputError(f"{path}: cannot encode image")
            atomic_write_bytes(path, encoded)
        except (cv2.error, OutputError) as exc:
            reason = str(exc).strip().splitlines()[-1]
            print(f"rtseg: warning: snapshot {path} could not be written: {reason}", file=sys.stderr)
            return None
        self.snapshots.append(path)
        print(f"rtseg: snapshot saved: {path}", flush=True)
        return path
