"""Where one video's outputs go, written under temporary names and renamed when complete.

For the video named `day1/cam` (rtseg.batch.inputs: its path relative to the archive's root,
without the suffix): `DIR/day1/cam.annotated.mp4`, `DIR/day1/cam.masks/000000.png ...` and
`DIR/day1/cam.stats.json`, beside the outputs of the other videos of `day1/`, as `rtseg run`
names its outputs. While a video runs, its outputs are `.cam.annotated.partial.mp4`,
`.cam.masks.partial/` and `.cam.stats.partial.json` in the same folder; they are renamed (same
file system, so a rename is atomic) only once all of them are complete. A worker that dies
leaves partials only, removed when the video is next attempted or given up.
"""

from __future__ import annotations

import contextlib
import glob as globlib
import os
import shutil
from pathlib import Path

from rtseg.core.targets import place
from rtseg.errors import OutputError

OUTPUT_KINDS = ("mp4", "masks", "stats")
FINAL_NAMES = {"mp4": "annotated.mp4", "masks": "masks", "stats": "stats.json"}  # after "<stem>."
PARTIAL_NAMES = {"mp4": "annotated.partial.mp4", "masks": "masks.partial", "stats": "stats.partial.json"}
_OLD_SUFFIX = ".replaced"


def parse_output_kinds(text: str) -> tuple[str, ...]:
    """`"mp4,masks"` -> ("mp4", "masks"); OutputError for an unknown or missing kind."""
    kinds = tuple(dict.fromkeys(k.strip().lower() for k in text.split(",") if k.strip()))
    unknown = [k for k in kinds if k not in OUTPUT_KINDS]
    if unknown or not kinds:
        raise OutputError(f"--output-kind {text!r}: use a comma-separated list of {', '.join(OUTPUT_KINDS)}")
    return kinds


def _remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path)
    elif path.exists() or path.is_symlink():
        path.unlink()


def replace_path(partial: Path, final: Path) -> None:
    """Move the complete `partial` (file or folder) to `final`, replacing what was there.

    A file is replaced atomically (os.replace). A folder cannot be renamed over a non-empty
    one: the old folder is renamed aside first and deleted after, so `final` is at every moment
    either the old complete output or the new one, or (between two renames) absent.
    """
    if partial.is_dir() and final.exists():
        old = final.with_name(final.name + _OLD_SUFFIX)
        _remove(old)
        os.replace(final, old)
        os.replace(partial, final)
        _remove(old)
    else:
        place(partial, final)


class OutputPlan:
    """The outputs of the video `name` under `out_dir` for `kinds` (a subset of OUTPUT_KINDS)."""

    def __init__(self, out_dir: str | os.PathLike, name: str, kinds: tuple[str, ...]):
        self.out_dir = Path(out_dir)
        where = self.out_dir / name
        self.folder, self.stem = where.parent, where.name
        self.kinds = tuple(kinds)

    def final(self, kind: str) -> Path:
        return self.folder / f"{self.stem}.{FINAL_NAMES[kind]}"

    def partial(self, kind: str) -> Path:
        return self.folder / f".{self.stem}.{PARTIAL_NAMES[kind]}"

    def relative_outputs(self) -> list[str]:
        """The final outputs, relative to `out_dir` (POSIX), as the manifest records them."""
        return [self.final(k).relative_to(self.out_dir).as_posix() for k in self.kinds]

    def complete(self) -> bool:
        """Every final output of `kinds` exists."""
        return all(self.final(k).exists() for k in self.kinds)

    def prepare(self) -> None:
        """Create the folder and remove partials a previous (dead) attempt left behind."""
        try:
            self.folder.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise OutputError(f"{self.folder}: cannot create folder ({exc.strerror})") from None
        self.discard()

    def discard(self) -> None:
        """Remove every partial output, the MP4 sink's own crash-safe recordings of the partial
        MP4 (`.cam.annotated.partial.partial.mp4`, `...partial-1.mp4`: what a killed worker
        leaves) included, and replaced finals kept aside."""
        for kind in OUTPUT_KINDS:
            _remove(self.partial(kind))
            _remove(self.final(kind).with_name(self.final(kind).name + _OLD_SUFFIX))
        mp4 = self.partial("mp4")
        for recording in self.folder.glob(f"{globlib.escape(mp4.stem)}.partial*{mp4.suffix}"):
            _remove(recording)

    def clear(self) -> None:
        """Remove partials and final outputs (a failed video has none), and the folder if empty."""
        self.discard()
        for kind in self.kinds:
            _remove(self.final(kind))
        if self.folder != self.out_dir:
            with contextlib.suppress(OSError):
                self.folder.rmdir()

    def commit(self) -> None:
        """Rename every partial to its final name (the video is complete)."""
        try:
            for kind in self.kinds:
                replace_path(self.partial(kind), self.final(kind))
        except OSError as exc:
            raise OutputError(f"{self.folder}: cannot move the outputs in place ({exc.strerror})") from None
