"""A local Ray cluster never outlives the command that started it.

ray.init() starts the cluster's processes (GCS, raylet, dashboard and runtime-env agents,
workers) beside the driver; a driver killed by SIGKILL or the OOM killer leaves some of them
running. `reaped_cluster()` marks them all: the environment variable MARK=<token>, inherited by
every process Ray starts, and a watchdog (`python -m rtseg.batch.reaper TOKEN`, in a session of
its own) that reads a pipe whose write end only the driver holds. However the driver ends, the
pipe closes then; the watchdog kills (SIGKILL) every process whose environment carries the token
and exits. Linux only (it reads /proc); elsewhere the block runs unguarded.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import signal
import subprocess
import sys
import time

MARK = "RTSEG_RAY_SESSION"
SWEEPS = 3  # a process Ray was starting as the driver died appears a moment later


def marked_processes(token: str) -> list[int]:
    """Process ids whose environment (as started) holds MARK=token."""
    wanted = f"{MARK}={token}".encode()
    found = []
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        with contextlib.suppress(OSError):
            with open(f"/proc/{entry.name}/environ", "rb") as fh:
                if wanted in fh.read().split(b"\0"):
                    found.append(int(entry.name))
    return found


@contextlib.contextmanager
def reaped_cluster():
    """Processes started inside the block carry the mark; the watchdog kills what is left of
    them once this process ends (or the block does)."""
    if not os.path.isdir("/proc") or MARK in os.environ:
        yield
        return
    token = secrets.token_hex(8)
    read_end, write_end = os.pipe()  # not inherited by what Ray starts (PEP 446)
    env = {k: v for k, v in os.environ.items() if k != MARK}
    subprocess.Popen(
        [sys.executable, "-m", "rtseg.batch.reaper", token],
        stdin=read_end,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env=env,
        start_new_session=True,
    )
    os.close(read_end)
    os.environ[MARK] = token
    try:
        yield
    finally:
        os.environ.pop(MARK, None)
        os.close(write_end)


def sweep(token: str) -> None:
    """Kill every marked process, a few times over a second (late starters included)."""
    for attempt in range(SWEEPS):
        for pid in marked_processes(token):
            if pid != os.getpid():
                with contextlib.suppress(OSError):
                    os.kill(pid, signal.SIGKILL)
        if attempt + 1 < SWEEPS:
            time.sleep(0.5)


def main(argv: list[str]) -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # a Ctrl-C to the terminal is the driver's
    while os.read(0, 4096):  # returns b"" once every write end is closed: the driver is gone
        pass
    sweep(argv[1])


if __name__ == "__main__":
    main(sys.argv)
