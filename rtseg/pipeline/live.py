"""The live view of a run, one source or many, driven from the main thread: keys, what the
window shows, HUD, snapshots.

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
import time
from dataclasses import dataclass, replace
from pathlib import Path

import cv2
import numpy as np

from rtseg.core.frames import resize_frame, resize_ids
from rtseg.core.paths import atomic_write_bytes
from rtseg.errors import OutputError
from rtseg.pipeline.mosaic import TILE_SIZE, compose_mosaic
from rtseg.pipeline.queues import FrameItem
from rtseg.pipeline.stats import RateMeter
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
    """Shows the newest processed frame of every lane in `display` and handles its keys (main
    thread only). One lane: its frame at full size; several: a mosaic of tiles
    (rtseg.pipeline.mosaic), one per lane, labelled "index: name". The same keys everywhere.

    display: a Display (`show((H, W, 3) uint8 RGB) -> key`, `poll_key() -> key`, `close()`).
    visualizer: renders the window's picture; viz: the run's VizConfig (initial mode / alpha,
        legend, hud). lanes: the run's lanes; each frame shown is recorded in its lane's stats
        (`record_display`, capture -> shown latency), and pausing holds every file lane's capture.
    snapshot_dir: where `s` writes PNGs; each path is printed on stdout.
    """

    def __init__(self, display, visualizer, viz: VizConfig, lanes, snapshot_dir: Path = Path("."),
                 tile_size=TILE_SIZE):  # fmt: skip
        self.display = display
        self.visualizer = visualizer
        self.viz = viz
        self.lanes = list(lanes)
        self.snapshot_dir = Path(snapshot_dir)
        self.tile_size = tile_size
        self.state = ViewState(mode=viz.mode, alpha=viz.alpha)
        self.meters = [RateMeter() for _ in self.lanes]  # shown frames: what the viewer gets
        self.items: list[FrameItem | None] = [None] * len(self.lanes)  # the frames on screen
        self.current: FrameItem | None = None  # the newest frame on screen (names snapshots)
        self.image: np.ndarray | None = None  # the picture on screen, (H, W', 3) uint8 RGB
        self.snapshots: list[Path] = []

    def step(self, arrived: list) -> bool:
        """Show the newest items that `arrived` ([(position, FrameItem with `ids_full`)]) unless
        paused; handle the key pressed. Returns False once the user asked to quit."""
        if arrived and not self.state.paused:
            for position, item in arrived:
                self.items[position] = item
            self.current = arrived[-1][1]
            self.image = self.render()
            key = self.display.show(self.image)
            t_shown = time.perf_counter()
            for position, item in arrived:
                self.lanes[position].stats.record_display(item.t_captured, t_shown)
                self.meters[position].tick(t_shown, t_shown - item.t_captured)
        else:  # nothing new to show (or paused: newer frames are dropped behind the picture)
            key = self.poll_key()
        return self.handle_keys(key)

    def render(self) -> np.ndarray:
        """The window's picture in the current mode / alpha, with the HUD line(s)."""
        cfg = replace(self.viz, mode=self.state.mode, alpha=self.state.alpha)
        if len(self.lanes) == 1:
            return self.render_tile(0, cfg, None)
        tiles = [self.render_tile(i, cfg, self.tile_size) for i in range(len(self.lanes))]
        names = [f"{lane.index}: {lane.name}" for lane in self.lanes]
        return compose_mosaic(tiles, names, self.tile_size)

    def render_tile(self, position: int, cfg: VizConfig, size: tuple[int, int] | None) -> np.ndarray | None:
        """Lane `position`'s frame drawn at its size, or scaled to `size` (height, width) first
        (a mosaic tile: drawing a small picture costs the main thread little); None before its
        first frame."""
        item = self.items[position]
        if item is None:
            return None
        frame, ids = item.frame, item.ids_full
        if size is not None:
            frame, ids = resize_frame(frame, size), resize_ids(ids, size)
        hud = None
        if cfg.hud:
            fps, latency_ms = self.meters[position].snapshot()
            hud = hud_text(fps, latency_ms, self.lanes[position].stats.dropped, self.state.paused)
        return self.visualizer.render(frame, ids, hud=hud, cfg=cfg)

    def poll_key(self) -> int:
        """Let the window process events without a new frame; the key pressed or -1."""
        return self.display.poll_key()

    def handle_keys(self, key: int) -> bool:
        """Apply `key` (and any key pressed while redrawing for it). False on quit."""
        while True:
            before, self.state = self.state, apply_key(self.state, key)
            if self.state.quit:
                return False
            for lane in self.lanes:
                (lane.ctx.paused.set if self.state.paused else lane.ctx.paused.clear)()
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
            self.image = self.render()
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
