"""What `rtseg batch INPUT...` means: video files, folders (recursive), globs and `@list.txt`.

Every input becomes a `BatchInput(path, name)`: `path` is the absolute file, `name` its path
relative to the archive's root without the video suffix (`day1/cam` for `.../day1/cam.mp4`), so
its outputs are `DIR/day1/cam.annotated.mp4`, `cam.masks/`, `cam.stats.json` beside the videos
of the same folder: the output tree mirrors the input tree. The root is the common folder of the
inputs, or the one an earlier run into the same DIR recorded (widened to hold new inputs), and a
name an earlier run gave an input is kept for it: an input is named the same in every run, and
a name is never given to two inputs (the second keeps its suffix: `cam.mkv`, then `cam.mkv-2`).
"""

from __future__ import annotations

import glob as globlib
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from rtseg.core.list_files import read_list_bytes
from rtseg.errors import InputError
from rtseg.video import natural_sort_key

VIDEO_SUFFIXES = (".mp4", ".m4v", ".mov", ".mkv", ".avi", ".webm", ".ts", ".mts", ".flv", ".mpg", ".mpeg")
_GLOB_CHARS = "*?["
MAX_LIST_DEPTH = 32  # @lists naming @lists: deeper than this is a loop


@dataclass(frozen=True)
class BatchInput:
    """One video of the archive: `path` absolute, `name` relative to the root (POSIX, no suffix)."""

    path: Path
    name: str


@dataclass
class Expansion:
    """What INPUT arguments named: `videos` (resolved, in order found), the folders they came
    from (`roots`), the `@list` files read and the INPUT folders (for the path checks)."""

    videos: dict = field(default_factory=dict)
    roots: list = field(default_factory=list)
    lists: list = field(default_factory=list)
    folders: list = field(default_factory=list)


def is_video(path: Path) -> bool:
    return path.suffix.lower() in VIDEO_SUFFIXES


def _read_list(spec: str, reading: tuple) -> list[str]:
    """The lines of `@list.txt` (blank lines and `#` comments skipped), relative to its folder.
    Lines are file names as bytes (any encoding: os.fsdecode), as a shell would pass them."""
    list_path = Path(spec[1:])
    if os.path.realpath(list_path) in reading or len(reading) >= MAX_LIST_DEPTH:
        raise InputError(f"{spec}: the list names itself (through {' -> '.join(reading)}); remove that line")
    lines = [os.fsdecode(line) for line in read_list_bytes(list_path, spec).splitlines()]
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


def _expand_specs(specs, exclude: Path | None, found: Expansion, reading: tuple = ()) -> None:
    for spec in map(str, specs):
        if spec.startswith("@"):
            inner = reading + (os.path.realpath(spec[1:]),)
            lines = _read_list(spec, reading)
            found.lists.append(Path(spec[1:]))
            _expand_specs(lines, exclude, found, inner)
            continue
        videos, folder = _expand_one(spec, exclude)
        if folder is not None:
            found.roots.append(folder)
            found.folders.append(Path(spec))
        for video in videos:
            resolved = video.resolve()
            if not _under(resolved, exclude):
                found.videos.setdefault(resolved)
                found.roots.append(resolved.parent)


def expand(specs, exclude: str | os.PathLike | None = None) -> Expansion:
    """Every video, list and folder the INPUT `specs` name (see expand_inputs)."""
    found = Expansion()
    _expand_specs(list(specs), Path(exclude).resolve() if exclude is not None else None, found)
    if not found.videos:
        raise InputError("no input videos (all of them are inside the output folder?)")
    return found


def archive_root(found: Expansion, recorded: str | os.PathLike | None = None) -> Path:
    """The folder names are relative to: the common folder of the inputs and of `recorded` (the
    root an earlier run into the same DIR used)."""
    roots = [str(r) for r in found.roots] + ([str(recorded)] if recorded else [])
    return Path(os.path.commonpath(roots))


def _unique_name(path: Path, root: Path, taken: set) -> str:
    relative = path.relative_to(root)
    candidates = [relative.with_suffix("").as_posix(), relative.as_posix()]
    for name in candidates:
        if name not in taken:
            return name
    n = 2
    while f"{candidates[1]}-{n}" in taken:
        n += 1
    return f"{candidates[1]}-{n}"


def name_inputs(videos, root: Path, known: Mapping[str, str] | None = None) -> list[BatchInput]:
    """`BatchInput`s of `videos` (absolute) named relative to `root`; `known` maps an input's
    absolute path to the name an earlier run gave it (kept, and never given to another)."""
    known = dict(known or {})
    taken = set(known.values())
    named = {}
    for path in sorted(videos, key=lambda p: natural_sort_key(p.relative_to(root).as_posix())):
        name = known.get(str(path))
        if name is None:
            name = _unique_name(path, root, taken)
            taken.add(name)
        named[path] = name
    return sorted((BatchInput(p, n) for p, n in named.items()), key=lambda item: natural_sort_key(item.name))


def expand_inputs(
    specs: list[str], exclude: str | os.PathLike | None = None, known: Mapping[str, str] | None = None
) -> list[BatchInput]:
    """The videos named by `specs`, de-duplicated, in natural order of their names.

    Files are taken whatever their suffix; folders are searched recursively for VIDEO_SUFFIXES
    (hidden files and folders skipped); globs (`**` recursive) keep the videos they match;
    `@list.txt` holds one such input a line, relative to the list's folder (a list that names
    itself, directly or not, is an error). Anything under `exclude` (the output folder) is left
    out, so a rerun never takes its own outputs as input. InputError when an input names nothing
    or nothing is left. `known`: see name_inputs.
    """
    found = expand(specs, exclude)
    return name_inputs(found.videos, archive_root(found), known)
