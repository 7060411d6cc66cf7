"""Reading a list file (`@list.txt` of `rtseg batch`, `--video-labels`): a regular file, a pipe
or a process substitution (`@<(find ...)`), read whole but never past MAX_LIST_BYTES, so a
device such as /dev/zero or a video named by mistake is one line, not a MemoryError."""

from __future__ import annotations

from pathlib import Path

from rtseg.errors import InputError

MAX_LIST_BYTES = 64 << 20  # millions of names; more is not a list


def read_list_bytes(path: Path, what: str) -> bytes:
    """The bytes of the list file `path`; InputError naming `what` when it cannot be read or
    holds more than MAX_LIST_BYTES."""
    try:
        with open(path, "rb") as f:
            data = f.read(MAX_LIST_BYTES + 1)
    except OSError as exc:
        raise InputError(f"{what}: cannot read the list ({exc.strerror})") from None
    if len(data) > MAX_LIST_BYTES:
        raise InputError(f"{what}: over {MAX_LIST_BYTES >> 20} MiB, not a list of names")
    return data
