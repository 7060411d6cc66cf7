"""What `rtseg batch INPUT...` means: video files, folders (recursive), globs and `@list.txt`.

Every input becomes a `BatchInput(path, name)`: `path` is the absolute file, `name` its path
relative to the common root of all inputs (POSIX separators). Outputs go to `DIR/<name>/`, so
the output tree mirrors the input tree and two inputs can never share an output.
"""

from __future__ import annotations

import glob as globlib
import os
from dataclasses import dataclass
from pathlib import Path

from rtseg.errors import InputError
from rtseg.video import natural_sort_key

VIDEO_SUFFIXES = (".mp4", ".m4v", ".mov", ".mkv", ".avi", ".webm", ".ts", ".mts", ".flv", ".mpg", ".mpeg")
_GLOB_CHARS = "*?["


@dataclass(frozen=True)
class BatchInput:
    """One video of the archive: `path` absolute, `name` relative to the common root (POSIX)."""

    path: Path
    name: str


def is_video(path: Path) -> bool:
    return path.suffix.lower() in VIDEO_SUFFIXES


def _read_list(spec: str) -> list[str]:
    """The lines of `@list.txt` (blank lines and `#` comments skipped), relative to its folder."""
    list_path = Path(spec[1:])
    try:
        lines = list_path.read_text().splitlines()
    except OSError as exc:
        raise InputError(f"{spec}: cannot read the list ({exc.strerror})") from None
    entries = [line.strip() for line in lines if line.strip() and not line.lstrip().startswith("#")]
    return [str(list_path.parent / entry) if not os.path.isabs(entry) else entry for entry in entries]


def _walk_videos(folder: Path, exclude: Path | None) -> list[Path]:
    found = []
    for root, dirs, files in os.walk(folder):
        root_path = Path(root)
        dirs[:] = sorted(d for d in dirs if not d.startswith(".") and root_path / d != exclude)
        found.extend(root_path / f for f in files if not f.startswith(".") and is_video(Path(f)))
    return found


def _expand_one(spec: str, exclude: Path | None) -> tuple[list[Path], Path | None]:
    """(video files of one INPUT, the folder it names or None)."""
    path = Path(spec)
    if path.is_dir():
        folder = path.resolve()
        videos = _walk_videos(folder, exclude)
        if not videos:
            raise InputError(f"{spec}: no videos in this folder (looked for {', '.join(VIDEO_SUFFIXES)})")
        return videos, folder
    if path.is_file():
        return [path], None
    if any(c in spec for c in _GLOB_CHARS):
        matches = [Path(p) for p in globlib.glob(spec, recursive=True)]
        videos = [p for p in matches if p.is_file() and is_video(p)]
        if not videos:
            raise InputError(f"{spec}: no videos match this pattern")
        return videos, None
    raise InputError(f"{spec}: no such file or folder")


def _under(path: Path, folder: Path | None) -> bool:
    return folder is not None and (path == folder or folder in path.parents)


def expand_inputs(specs: list[str], exclude: str | os.PathLike | None = None) -> list[BatchInput]:
    """The videos named by `specs`, de-duplicated, in natural order of their names.

    Files are taken whatever their suffix; folders are searched recursively for VIDEO_SUFFIXES
    (hidden files and folders skipped); globs (`**` recursive) keep the videos they match;
    `@list.txt` holds one such input a line, relative to the list's folder. Anything under
    `exclude` (the output folder) is left out, so a rerun never takes its own outputs as input.
    InputError when an input names nothing or nothing is left.
    """
    exclude_path = Path(exclude).resolve() if exclude is not None else None
    pending = list(specs)
    files: dict[Path, None] = {}
    roots: list[Path] = []
    while pending:
        spec = str(pending.pop(0))
        if spec.startswith("@"):
            pending[:0] = _read_list(spec)
            continue
        videos, folder = _expand_one(spec, exclude_path)
        if folder is not None:
            roots.append(folder)
        for video in videos:
            resolved = video.resolve()
            if not _under(resolved, exclude_path):
                files.setdefault(resolved)
                roots.append(resolved.parent)
    if not files:
        raise InputError("no input videos (all of them are inside the output folder?)")
    common = Path(os.path.commonpath([str(r) for r in roots]))
    batch = [BatchInput(path, path.relative_to(common).as_posix()) for path in files]
    return sorted(batch, key=lambda item: natural_sort_key(item.name))
