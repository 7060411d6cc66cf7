"""Frames from a folder or a glob of images, in natural sort order.

`frame_000002.png` comes before `frame_000010.png`, and Cityscapes-style names
(`stuttgart_00_000000_000123_leftImg8bit.png`) sort by their numbers. Every image must have the
size of the first one; an image that cannot be read or decoded raises InputError naming the file
and the frame index when it is reached (the frames before it have been delivered). A JPEG cut
short (no end marker) is refused the same way, before libjpeg sees it (it would print a line of
its own); OpenCV's logger is silenced, so the InputError is the only word about it.
"""

from __future__ import annotations

import glob as globlib
from pathlib import Path

import numpy as np

from rtseg.core.frames import IMAGE_SUFFIXES, read_rgb
from rtseg.errors import InputError
from rtseg.video.base import FrameSource, format_fps, natural_sort_key


def list_folder_images(folder: Path) -> list[Path]:
    """The image files directly inside `folder`, natural-sorted. InputError when there are none."""
    try:
        entries = list(folder.iterdir())
    except OSError as e:
        raise InputError(f"{folder}: cannot list folder ({e.strerror})") from None
    images = [p for p in entries if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file()]
    if not images:
        raise InputError(f"{folder}: no images in folder (looked for {', '.join(IMAGE_SUFFIXES)})")
    return sorted(images, key=lambda p: natural_sort_key(p.name))


def list_glob_images(pattern: str) -> list[Path]:
    """The image files matching a glob pattern (`**` recursive), natural-sorted by path."""
    matches = [Path(p) for p in globlib.glob(pattern, recursive=True)]
    images = [p for p in matches if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file()]
    if not images:
        raise InputError(f"{pattern}: no images match this pattern")
    return sorted(images, key=lambda p: natural_sort_key(str(p)))


class ImageSequenceSource(FrameSource):
    """Image files read one by one with OpenCV. Not live; `fps` is what the caller says (or None).

    The first image is read at open (its size is `frame_size`, and a folder of unreadable images
    fails at once); the others when they are reached.
    """

    def __init__(self, files: list[Path], name: str, fps: float | None = None, strict: bool = False):
        """`strict` is accepted for symmetry with video sources: every damaged image is an error."""
        super().__init__()
        if not files:
            raise InputError(f"{name}: no images")
        self.name = name
        self.live = False
        self.fps = fps
        self.strict = strict
        self.frame_count = len(files)
        self._files = files
        self._first: np.ndarray | None = read_rgb(files[0], 0)
        height, width = self._first.shape[:2]
        self.frame_size = (height, width)
        self._index = 0
        self.description = (
            f"{name} ({len(files)} images {width}x{height}{', ' + format_fps(fps) if fps else ''})"
        )

    @classmethod
    def from_uri(cls, uri: str, fps: float | None = None, strict: bool = False) -> ImageSequenceSource:
        """A folder path, a glob pattern, or a single image file."""
        path = Path(uri)
        if path.is_dir():
            return cls(list_folder_images(path), f"{path}/", fps, strict)
        if path.is_file():
            return cls([path], path.name, fps, strict)
        return cls(list_glob_images(uri), uri, fps, strict)

    def _read_impl(self) -> tuple[np.ndarray, float | None] | None:
        if self._index >= len(self._files):
            return None
        path = self._files[self._index]
        if self._first is not None:
            frame, self._first = self._first, None
        else:
            frame = read_rgb(path, self._index)
        height, width = self.frame_size
        if frame.shape[:2] != (height, width):
            raise InputError(
                f"{path}: image is {frame.shape[1]}x{frame.shape[0]}, but the "
                f"sequence is {width}x{height} (frame {self._index})"
            )
        time_s = self._index / self.fps if self.fps else None
        self._index += 1
        return frame, time_s

    def _close_impl(self) -> None:
        self._first = None
