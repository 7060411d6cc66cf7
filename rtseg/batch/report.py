"""The archive's progress bar (videos and frames, fps) and the summary at the end."""

from __future__ import annotations

import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

STATUSES = ("done", "skipped", "failed")


@dataclass
class BatchReport:
    """What one `rtseg batch` run did. entries: this run's manifest entries, in input order.

    wall_s: the whole run; processing_s: from starting the workers to the last video (what the
    archive fps is measured over: frames segmented in this run / processing_s).
    """

    manifest: Path
    entries: list[dict] = field(default_factory=list)
    workers: int = 0
    wall_s: float = 0.0
    processing_s: float = 0.0

    def count(self, status: str) -> int:
        return sum(1 for e in self.entries if e["status"] == status)

    def frames(self, status: str = "done") -> int:
        return sum(e.get("frames") or 0 for e in self.entries if e["status"] == status)

    @property
    def fps(self) -> float:
        return self.frames() / self.processing_s if self.processing_s > 0 else 0.0

    @property
    def ok(self) -> bool:
        return self.count("failed") == 0

    def failures(self) -> list[str]:
        """One line per failed input: its error, prefixed by its name unless it names the file."""
        lines = []
        for e in self.entries:
            if e["status"] == "failed":
                error = e.get("error") or "failed"
                lines.append(error if e.get("input") and e["input"] in error else f"{e['name']}: {error}")
        return lines

    def summary(self) -> str:
        lines = [f"{'status':<8} {'videos':>7} {'frames':>9}"]
        for status in STATUSES:
            lines.append(f"{status:<8} {self.count(status):>7} {self.frames(status):>9}")
        lines.append(f"{'total':<8} {len(self.entries):>7} {sum(self.frames(s) for s in STATUSES):>9}")
        if not self.workers:
            lines.append(f"archive: nothing to segment ({self.wall_s:.1f} s)")
        else:
            lines.append(
                f"archive: {self.frames()} frames segmented in {self.processing_s:.1f} s, {self.fps:.1f} fps "
                f"with {self.workers} workers ({self.wall_s:.1f} s in all)"
            )
        lines.append(f"manifest: {self.manifest}")
        return "\n".join(lines)

    def to_json(self) -> dict:
        return {
            "manifest": str(self.manifest),
            "workers": self.workers,
            "wall_s": round(self.wall_s, 3),
            "processing_s": round(self.processing_s, 3),
            "fps": round(self.fps, 3),
            "counts": {s: self.count(s) for s in STATUSES},
            "frames": self.frames(),
            "failures": self.failures(),
        }


class ArchiveProgress:
    """One tqdm bar on stderr over the videos to run, with frames and archive fps in its postfix.

    Disabled (every call a no-op) when `enabled` is False or stderr is not a terminal.
    """

    def __init__(self, videos: int, enabled: bool = True, clock=time.perf_counter):
        self.clock = clock
        self.start = clock()
        self.frames_done = 0
        self.bar = None
        if enabled and sys.stderr.isatty() and videos:
            from tqdm import tqdm

            self.bar = tqdm(
                total=videos, unit="video", file=sys.stderr, dynamic_ncols=True, desc="rtseg batch"
            )

    def finished(self, entry: dict) -> None:
        """A video ended (done or failed)."""
        self.frames_done += entry.get("frames") or 0
        if self.bar is not None:
            self.bar.update(1)
        self.in_flight(0)

    def in_flight(self, frames: int) -> None:
        """The busy workers have written `frames` of their current videos."""
        if self.bar is None:
            return
        frames += self.frames_done
        elapsed = self.clock() - self.start
        fps = frames / elapsed if elapsed > 0 else 0.0
        self.bar.set_postfix_str(f"{frames} frames, {fps:.1f} fps", refresh=True)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
            self.bar = None
