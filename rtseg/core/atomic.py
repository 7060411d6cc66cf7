"""Outputs that replace a file only by a complete new one (re-exported by rtseg.core.paths).

`atomic_output(path)` yields a temporary path in the same folder and renames it onto `path` once
the block ends without an exception (else removes it): a reader, a crash or a full disk never
leaves half a file under the final name, and a hard link to the old file keeps the old content.
`StagedFile` is the same for outputs whose writer opens and closes at different times (a sink);
`staged_folder` for outputs made of several files (a package). Every rename goes through
rtseg.core.targets.place: only regular files are ever replaced; `-`, devices, FIFOs and
terminals are written in place.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

from rtseg.core.targets import describe_os_error, in_place, place, rename_target, write_all, write_in_place
from rtseg.errors import OutputError

TEMP_MARK = ".rtseg-tmp-"  # in the name of every staged output, so leftovers are recognisable
NAME_MAX = 255  # bytes per path component on Linux, macOS and Windows file systems


class StagedFile:
    """A temporary file beside `path` that becomes `path` on `commit()` (an atomic rename) or
    disappears on `discard()`. `temp` is hidden and named `.<name>.rtseg-tmp-<random>`; with
    `keep_suffix` it ends in `path`'s suffix too (for writers that pick a format by the suffix).
    `durable`: fsync the file before the rename (metadata files: sidecars, stats, engines).
    A `path` written in place (`-`, a device, a FIFO: rtseg.core.targets) gets its temporary
    file in the system's temporary folder, copied into `path` on commit; through a symlink to a
    file, the temporary file lies beside that file, which the commit replaces."""

    def __init__(self, path: str | os.PathLike, keep_suffix: bool = False, durable: bool = False):
        self.path = Path(path)
        self.durable = durable
        suffix = self.path.suffix if keep_suffix else ""
        tail = f"{TEMP_MARK}{secrets.token_hex(4)}{suffix}"
        room = NAME_MAX - len(os.fsencode(tail)) - 2
        name = os.fsencode(self.path.name)[:room].decode(errors="ignore")
        folder = Path(tempfile.gettempdir()) if in_place(path) else rename_target(self.path).parent
        self.temp = folder / f".{name}.{tail}"
        self.done = False

    def commit(self) -> Path:
        """Rename the finished temporary file onto `path`. OutputError when that fails."""
        if self.done:
            return self.path
        self.done = True
        try:
            if self.durable:
                with open(self.temp, "rb+") as fh:
                    os.fsync(fh.fileno())
            place(self.temp, self.path)
        except OSError as exc:
            self._remove()
            raise OutputError(f"{self.path}: cannot write ({describe_os_error(exc)})") from None
        return self.path

    def discard(self) -> None:
        """Remove the temporary file (the old `path`, if any, is untouched). Idempotent."""
        self.done = True
        self._remove()

    def _remove(self) -> None:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(self.temp)


@contextlib.contextmanager
def atomic_output(
    path: str | os.PathLike, keep_suffix: bool = False, durable: bool = False
) -> Iterator[Path]:
    """Yield a temporary path beside `path` (its folder created if needed); rename it onto `path`
    when the block succeeds, remove it on any exception (Ctrl-C included); an OSError of the
    writer becomes OutputError ('disk full (...)'). See StagedFile."""
    staged = StagedFile(path, keep_suffix=keep_suffix, durable=durable)
    try:
        staged.temp.parent.mkdir(parents=True, exist_ok=True)  # check_paths: it can be made
    except OSError as exc:
        raise OutputError(f"{path}: cannot create folder {staged.temp.parent} ({exc.strerror})") from None
    try:
        yield staged.temp
    except OSError as exc:  # the writer's failure (a full disk): one line naming the output
        staged.discard()
        raise OutputError(f"{path}: cannot write ({describe_os_error(exc)})") from None
    except BaseException:
        staged.discard()
        raise
    staged.commit()


@contextlib.contextmanager
def staged_folder(*targets: str | os.PathLike) -> Iterator[Path]:
    """Yield a hidden temporary folder beside `targets` (files of one folder); files written
    there under the targets' names replace the targets, one rename each in the order given,
    when the block succeeds; on any exception the folder goes and the targets are untouched.
    For outputs made of several files (a model package: `.onnx`, then its `.json`)."""
    paths = [Path(t) for t in targets]
    if len({os.path.abspath(p.parent) for p in paths}) != 1:
        raise ValueError(f"staged_folder targets must share one folder, got {paths}")
    paths[0].parent.mkdir(parents=True, exist_ok=True)
    try:
        folder = Path(tempfile.mkdtemp(prefix=f".{paths[0].stem[:64]}{TEMP_MARK}", dir=paths[0].parent))
    except OSError as exc:
        raise OutputError(f"{paths[0]}: folder {paths[0].parent} is not writable ({exc.strerror})") from None
    try:
        yield folder
        missing = [p.name for p in paths if not (folder / p.name).is_file()]
        if missing:
            raise OutputError(f"{paths[0]}: {', '.join(missing)} was not written; nothing replaced")
        for path in paths:
            try:
                place(folder / path.name, path)
            except OSError as exc:
                raise OutputError(f"{path}: cannot write ({exc.strerror})") from None
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def atomic_write_bytes(path: str | os.PathLike, data, durable: bool = False) -> Path:
    """Write `data` (bytes-like) to `path` through a temporary file renamed over it; OutputError
    (one line, e.g. 'disk full (No space left on device)') when it cannot be written, and then
    no temporary file is left and an old `path` is untouched. `-`, devices, FIFOs: in place."""
    if in_place(path):
        write_in_place(path, [data])
        return Path(path)
    with atomic_output(path, durable=durable) as temp:
        try:
            fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
            try:
                write_all(fd, data)
            finally:
                os.close(fd)
        except OSError as exc:
            raise OutputError(f"{path}: cannot write ({describe_os_error(exc)})") from None
    return Path(path)


def atomic_write_text(path: str | os.PathLike, text: str, durable: bool = False) -> Path:
    """`atomic_write_bytes` of UTF-8 text."""
    return atomic_write_bytes(path, text.encode("utf-8"), durable=durable)
