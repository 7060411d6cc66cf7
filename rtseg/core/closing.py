"""`Closeable`: the close contract of everything that holds a file, a stream, a window or a
device (sources, backends, the display): a context manager whose `close()` is idempotent and
runs the subclass's `_close_impl()` once."""

from __future__ import annotations


class Closeable:
    """`close()` runs `_close_impl()` the first time only; `with obj:` closes on exit."""

    _closed: bool = False

    def close(self) -> None:
        """Release what the object holds. Idempotent."""
        if not self._closed:
            self._closed = True
            self._close_impl()

    def _close_impl(self) -> None:  # noqa: B027 - objects holding nothing need no cleanup
        pass

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        self.close()
