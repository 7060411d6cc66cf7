"""Termination signals (SIGINT, SIGTERM, SIGHUP) handled the same way for a whole command.

One process-wide record of the first signal received. While a command starts up, exports or
trains, that first signal raises `Interrupted` (a KeyboardInterrupt) in the main thread, so long
work stops at once; inside `defer(stop_event)` (the pipeline running, a command writing its
final outputs) a signal only records itself and sets the event, so no cleanup is cut short.
Every signal after the first is recorded only, never raised: a second Ctrl-C during the final
report cannot lose an output or print a traceback. Exit status: 128 + the signal's number
(SIGINT 130, SIGTERM 143, SIGHUP 129).

`handle_signals()` is entered by the CLI for the whole command (rtseg.cli main); `defer()` also
works without it (the Python API): it installs the handlers for its own duration. Handlers can
only be installed from the main thread; elsewhere both are no-ops (the caller's thread decides).
"""

from __future__ import annotations

import contextlib
import signal
import threading
from collections.abc import Iterator

__all__ = [
    "HANDLED_SIGNALS",
    "Interrupted",
    "closing",
    "defer",
    "exit_status",
    "handle_signals",
    "received",
]

HANDLED_SIGNALS = tuple(
    getattr(signal, name) for name in ("SIGINT", "SIGTERM", "SIGHUP") if hasattr(signal, name)
)


def exit_status(signal_name: str) -> int:
    """The shell's status for a command ended by `signal_name`: 128 + its number."""
    return 128 + int(signal.Signals[signal_name])


class Interrupted(KeyboardInterrupt):
    """A termination signal stopped the command; `exit_status` follows the shell convention."""

    def __init__(self, signal_name: str):
        super().__init__(f"interrupted by {signal_name}")
        self.signal_name = signal_name
        self.exit_status = exit_status(signal_name)


class _Record:
    def __init__(self) -> None:
        self.first: str | None = None  # the first signal since the handlers were installed
        self.deferring: list[_Deferral] = []
        self.installed = False
        self.closing = False  # the command is done: record signals, never raise


_record = _Record()


class _Deferral:
    """What one `defer()` block saw: the first signal received while it was active."""

    def __init__(self, stop: threading.Event | None):
        self.stop = stop
        self.received: str | None = None


def _handler(signum, frame) -> None:
    name = signal.Signals(signum).name
    first = _record.first is None
    _record.first = _record.first or name
    for deferral in list(_record.deferring):
        deferral.received = deferral.received or name
        if deferral.stop is not None:
            deferral.stop.set()
    if first and not _record.deferring and not _record.closing:
        raise Interrupted(name)


def closing() -> None:
    """From now until the handlers are removed, signals are recorded only: the command has
    finished its work and is on its way out."""
    _record.closing = True


def received() -> str | None:
    """The first signal received since the handlers were installed, or None."""
    return _record.first


def _in_main_thread() -> bool:
    return threading.current_thread() is threading.main_thread()


@contextlib.contextmanager
def handle_signals(exiting: bool = False) -> Iterator[None]:
    """Handle SIGINT / SIGTERM / SIGHUP (module doc) until the block ends; then restore the
    previous handlers. With `exiting` (the process ends right after, e.g. the CLI) and a signal
    received, ignore further ones instead: a late Ctrl-C would otherwise print a traceback from
    the interpreter's shutdown."""
    if not _in_main_thread() or _record.installed:
        yield
        return
    previous = {sig: signal.signal(sig, _handler) for sig in HANDLED_SIGNALS}
    _record.first, _record.installed, _record.closing = None, True, False
    try:
        yield
    finally:
        interrupted = _record.first is not None
        for sig, handler in previous.items():
            signal.signal(sig, signal.SIG_IGN if exiting and interrupted else handler)
        _record.installed = _record.closing = False


@contextlib.contextmanager
def defer(stop: threading.Event | None = None, enabled: bool = True) -> Iterator[_Deferral]:
    """While active, a signal sets `stop` and is recorded in the yielded object's `received`;
    nothing is raised. Installs the handlers for its duration when no `handle_signals` block
    has (and only in the main thread). `enabled=False`: a no-op (the caller owns signals)."""
    deferral = _Deferral(stop)
    if not enabled or not _in_main_thread():
        yield deferral
        return
    with contextlib.ExitStack() as stack:
        if not _record.installed:
            stack.enter_context(handle_signals())
        _record.deferring.append(deferral)
        try:
            yield deferral
        finally:
            _record.deferring.remove(deferral)
