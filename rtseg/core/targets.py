"""Where an output's bytes land: a regular file is replaced whole by a rename; anything else the
user names (standard output `-`, a character device such as /dev/null, a FIFO, a terminal, an
open descriptor such as /dev/stdout or /dev/fd/3, a symlink to any of these) is written in place.

The rename that makes outputs atomic (rtseg.core.paths) must only ever replace a regular file:
renamed over /dev/null it would replace the machine's /dev/null by a regular file, over a FIFO
its reader would get nothing, over /dev/stdout the symlink would become a file. So every output
is placed through `place(temp, target)`:

  - `target` is a regular file or does not exist: `temp` (beside it) is renamed over it; through
    a symlink, over the file the link points to (the link stays a link);
  - `target` is written in place (`in_place(target)`): the complete bytes of `temp` are written
    into it, opened for writing as `echo > target` would (a FIFO is waited for a reader at most
    FIFO_WAIT_S seconds), and `temp` is removed;
  - a block device or a socket is refused (`refusal(target)`, in the preflight), since writing a
    JSON file over a disk is never what was meant.

`-` (or /dev/stdout) is standard output. A command that writes an output there keeps standard output for that
data alone: `reserve_stdout()` (called by the preflight) sends every other line the process would
print there (summaries, tables) to standard error, so `rtseg run --stats-json - | jq` works.
"""

from __future__ import annotations

import errno
import os
import re
import shutil
import stat
import sys
import time
from pathlib import Path

from rtseg.errors import OutputError

STDOUT = "-"
STDOUT_NAMES = (STDOUT, "/dev/stdout", "/dev/fd/1", "/proc/self/fd/1")  # all written to descriptor 1
FIFO_WAIT_S = 20.0  # how long a FIFO output waits for a reader before the write is given up
_DESCRIPTOR_FOLDER = re.compile(r"^/proc/[^/]+/fd$")
_REFUSED = {stat.S_IFBLK: "a block device", stat.S_IFSOCK: "a socket"}
_stdout_fd: int | None = None  # the original standard output, once reserved for data


def is_stdout(path) -> bool:
    """`-`, /dev/stdout, /dev/fd/1, /proc/self/fd/1: the process's standard output."""
    return path is not None and os.fspath(path) in STDOUT_NAMES


def _through_descriptor(path: str) -> bool:
    """Whether `path` (or a link on its way) is an open descriptor: /dev/stdout, /dev/fd/N."""
    for _ in range(40):  # the kernel's own limit on links followed
        if _DESCRIPTOR_FOLDER.match(os.path.realpath(os.path.dirname(os.path.abspath(path)))):
            return True
        if not os.path.islink(path):
            return False
        path = os.path.join(os.path.dirname(path), os.readlink(path))
    return False


def in_place(path) -> bool:
    """Whether `path` is written in place, not replaced by a rename (see the module doc)."""
    if is_stdout(path):
        return True
    try:
        mode = os.stat(path).st_mode
    except OSError:
        return False
    if stat.S_ISDIR(mode):
        return False
    return not stat.S_ISREG(mode) or _through_descriptor(os.fspath(path))


def refusal(path) -> str | None:
    """Why an output at `path` cannot be written at all (a block device, a socket), or None."""
    if is_stdout(path):
        return None
    try:
        kind = stat.S_IFMT(os.stat(path).st_mode)
    except OSError:
        return None
    if kind in _REFUSED:
        return f"is {_REFUSED[kind]}; outputs are files, character devices, FIFOs, terminals or -"
    return None


def rename_target(path: Path) -> Path:
    """The file a rename onto `path` must replace: through a symlink, the file it points to."""
    return Path(os.path.realpath(path)) if os.path.islink(path) else Path(path)


def reserve_stdout() -> None:
    """Keep standard output for an output written to `-`: what the process prints there from now
    on goes to standard error. Only where sys.stdout is the process's descriptor 1."""
    global _stdout_fd
    if _stdout_fd is not None:
        return
    try:
        is_fd1 = sys.stdout is not None and sys.stdout.fileno() == 1
    except (AttributeError, OSError, ValueError):
        is_fd1 = False
    if not is_fd1:
        return
    sys.stdout.flush()
    _stdout_fd = os.dup(1)
    os.dup2(2, 1)


def _open_stdout() -> tuple[int, bool]:
    """(descriptor of standard output, whether to close it after)."""
    if _stdout_fd is not None:
        return _stdout_fd, False
    try:
        sys.stdout.flush()
        return sys.stdout.fileno(), False
    except (AttributeError, OSError, ValueError):
        return -1, False  # a replaced sys.stdout (a test runner): written through it


def _open_fifo(path: str) -> int:
    """A FIFO opened for writing once a reader is there, waiting at most FIFO_WAIT_S."""
    deadline = time.monotonic() + FIFO_WAIT_S
    while True:
        try:
            fd = os.open(path, os.O_WRONLY | os.O_NONBLOCK)
        except OSError as exc:
            if exc.errno != errno.ENXIO or time.monotonic() > deadline:
                if exc.errno == errno.ENXIO:
                    raise OutputError(
                        f"{path}: no process opened this FIFO for reading within {FIFO_WAIT_S:g} s"
                    ) from None
                raise
            time.sleep(0.05)
            continue
        os.set_blocking(fd, True)
        return fd


def _open_in_place(path) -> tuple[int, bool]:
    if is_stdout(path):
        return _open_stdout()
    name = os.fspath(path)
    if stat.S_ISFIFO(os.stat(name).st_mode):
        return _open_fifo(name), True
    flags = os.O_WRONLY | (os.O_TRUNC if stat.S_ISREG(os.stat(name).st_mode) else 0)
    return os.open(name, flags), True


def describe_os_error(error: BaseException) -> str:
    """'disk full (No space left on device)', or the system's words for any other error."""
    code = getattr(error, "errno", None)
    text = getattr(error, "strerror", None) or str(error)
    return f"disk full ({text})" if code in (errno.ENOSPC, errno.EDQUOT) else text


def write_all(fd: int, data) -> int:
    """Write every byte of `data` to `fd` (os.write may write less); OSError (ENOSPC, EIO, ...)
    when the file system refuses. The one place outputs' bytes reach the disk."""
    view = memoryview(data).cast("B")
    total = len(view)
    while view:
        view = view[os.write(fd, view) :]
    return total


def write_in_place(path, chunks) -> None:
    """Write `chunks` (bytes-like pieces) into the special file (or `-`) `path`; OutputError (one
    line, 'disk full (...)' for /dev/full) when it refuses them."""
    where = "standard output" if is_stdout(path) else os.fspath(path)
    try:
        fd, close = _open_in_place(path)
        try:
            for chunk in chunks:
                if fd < 0:
                    sys.stdout.buffer.write(bytes(chunk))
                else:
                    write_all(fd, chunk)
            if fd < 0:
                sys.stdout.flush()
        finally:
            if close:
                os.close(fd)
    except OSError as exc:
        raise OutputError(f"{where}: cannot write ({describe_os_error(exc)})") from None


def place(temp: Path, target) -> None:
    """Make the complete file `temp` the output `target` (see the module doc); `temp` is gone
    after. OSError when the rename fails, OutputError when an in-place write does."""
    if in_place(target):
        try:
            with open(temp, "rb") as source:
                write_in_place(target, iter(lambda: source.read(1 << 20), b""))
        finally:
            os.unlink(temp)
        return
    final = rename_target(Path(target))
    try:
        os.replace(temp, final)
    except OSError as exc:
        if exc.errno != errno.EXDEV:  # a symlink to another file system: copy beside it first
            raise
        beside = final.with_name(f".{final.name[:200]}.rtseg-tmp-{os.getpid()}")
        shutil.copyfile(temp, beside)
        os.replace(beside, final)
        os.unlink(temp)
