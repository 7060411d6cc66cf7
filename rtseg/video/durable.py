"""Outputs that a crash, a kill or a full disk leave valid: recordings and image files.

A video is recorded to `OUT.partial.mp4` beside `OUT.mp4` (`OUT.partial-1.mp4`, ... when an
earlier killed run left one: it is never overwritten) as a fragmented MP4: a fragment of half
a second is written, in one write, as soon as it is complete, and the file is synced to disk
about once a second. Whatever kills the process (SIGKILL, the OOM killer, a power cut), that
file plays, holding every frame up to its last fragment: a kill loses the last half second
and the frames inside the encoder (under a second in all at 25 fps with x264's defaults). A
clean close (the end, an error, Ctrl-C / SIGTERM) finishes it: the fragments are remuxed (no
re-encoding) into a normal MP4 at a temporary name, renamed over `OUT.mp4`, and the partial
file is deleted; an `OUT.mp4` that existed before is only ever replaced by a complete new one.
Should the disk have no room for that copy, the complete fragmented file becomes `OUT.mp4` (it
plays and seeks everywhere; only its index is per fragment). After a failed write (disk full)
the partial file is cut back to its last complete fragment and kept. Matroska (`.mkv`) is
written in clusters of half a second and needs no remux: its clean close finishes it in place,
then it is renamed.

Image files (mask PNGs, saved frames) are encoded in memory, written to a hidden temporary
name in their folder and renamed (rtseg.core.paths.atomic_write_bytes): a file that exists
under its final name is complete.
"""

from __future__ import annotations

import contextlib
import errno
import io
import os
import struct
import sys
import threading
from pathlib import Path

from rtseg.core.paths import StagedFile, describe_os_error, write_all
from rtseg.core.targets import place
from rtseg.errors import OutputError

__all__ = ["Recording", "describe_os_error", "write_all"]

SYNC_INTERVAL_S = 1.0  # how often a recording is synced to disk (what a power cut can lose)
FRAGMENT_US = 500_000  # fragment / cluster length: with the encoder delay, what a kill loses
FRAGMENTED_MP4 = {
    "movflags": "frag_keyframe+empty_moov+delay_moov+default_base_moof",  # delay_moov: edit list
    "frag_duration": str(FRAGMENT_US),
    "flush_packets": "1",
}
MATROSKA_LIVE = {"cluster_time_limit": str(FRAGMENT_US // 1000), "flush_packets": "1"}
MUXERS = {".mp4": "mp4", ".m4v": "mp4", ".mov": "mov", ".mkv": "matroska"}


def partial_path_for(path: Path) -> Path:
    """Where a recording of `path` is written until it is finished: `out.partial.mp4`, or
    `out.partial-1.mp4`, ... when an earlier (killed) run left that name."""
    candidate, n = path.with_name(f"{path.stem}.partial{path.suffix}"), 0
    while candidate.exists():
        n += 1
        candidate = path.with_name(f"{path.stem}.partial-{n}{path.suffix}")
    return candidate


class DiskWriter(io.RawIOBase):
    """The file a muxer writes through PyAV: unbuffered (each muxer flush is one write(2)),
    synced to disk every SYNC_INTERVAL_S by a helper thread while bytes are pending. After
    `refuse()` every write fails at once (nothing more lands after a failure)."""

    def __init__(self, path: Path):
        super().__init__()
        self.path = path
        self.fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_EXCL, 0o666)
        self._refused = False
        self._dirty = threading.Event()
        self._stop = threading.Event()
        self._sync_error: OSError | None = None
        self._syncer = threading.Thread(target=self._sync_loop, name="rtseg-sync", daemon=True)
        self._syncer.start()

    def writable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def write(self, data) -> int:
        if self._refused or self._sync_error is not None:
            raise self._sync_error or OSError(errno.EIO, "output already failed")
        written = write_all(self.fd, data)
        self._dirty.set()
        return written

    def seek(self, offset: int, whence: int = 0) -> int:
        return os.lseek(self.fd, offset, whence)

    def tell(self) -> int:
        return os.lseek(self.fd, 0, os.SEEK_CUR)

    def refuse(self) -> None:
        self._refused = True

    def _sync_loop(self) -> None:
        named = False  # the folder's entry for the file, synced once (a power cut keeps the name)
        while not self._stop.wait(SYNC_INTERVAL_S):
            if self._dirty.is_set():
                self._dirty.clear()
                try:
                    os.fdatasync(self.fd)
                except OSError as e:  # EIO / ENOSPC at writeback: the next write reports it
                    self._sync_error = e
                if not named:
                    named = True
                    _sync_folder(self.path.parent)

    def close(self) -> None:
        """Stop the syncer, sync what is left (unless refused) and close. Idempotent."""
        if self.closed:
            return
        self._stop.set()
        self._syncer.join()
        try:
            if not self._refused:
                os.fdatasync(self.fd)
        finally:
            os.close(self.fd)
            super().close()


class Recording:
    """The files behind one recorded video (see the module docstring): `open_container()`
    gives the muxer writing `partial`; `finish(container)` after a clean end makes `path`;
    `abandon(container)` after a failed write keeps `partial`, cut to its last fragment."""

    def __init__(self, path: Path):
        self.path = path
        self.muxer = MUXERS.get(path.suffix.lower(), "mp4")
        self.partial: Path | None = None
        self._writer: DiskWriter | None = None

    def open_container(self):
        """The PyAV output container writing `partial` (OSError when it cannot be created)."""
        import av

        self.partial = partial_path_for(self.path)
        self._writer = DiskWriter(self.partial)
        options = MATROSKA_LIVE if self.muxer == "matroska" else FRAGMENTED_MP4
        try:
            return av.open(self._writer, "w", format=self.muxer, container_options=dict(options))
        except BaseException:
            self._writer.refuse()
            self._writer.close()
            os.unlink(self.partial)
            raise

    def finish(self, container) -> None:
        """Close the muxer (its trailer), then make `path` (OSError / FFmpegError when the
        partial file itself could not be completed; `abandon` then)."""
        container.close()
        self._writer.close()
        if self.muxer == "matroska":
            place(self.partial, self.path)
        else:
            self._remux_into_place()
        _sync_folder(self.path.parent)

    def abandon(self, container) -> bool:
        """After a failed write: no more bytes, release the muxer, cut the file back to its last
        complete fragment and keep it at `partial`; True when it holds anything (an empty one is
        removed)."""
        import av

        if self._writer is None:
            return False
        self._writer.refuse()
        with contextlib.suppress(av.error.FFmpegError, OSError):
            container.close()  # no trailer can land: the fragments before it are the recording
        self._writer.close()
        if self.muxer == "matroska":
            size = self.partial.stat().st_size
        else:
            size = trim_to_last_fragment(self.partial)
        if size == 0:
            self.partial.unlink()
        return size > 0

    def discard(self, container) -> None:
        """Nothing worth keeping was written (the encoder did not open): remove `partial`."""
        if self.abandon(container):
            self.partial.unlink()

    def _remux_into_place(self) -> None:
        import av

        staged = StagedFile(self.path, keep_suffix=True)  # made by the muxer: mode as the umask says
        try:
            remux(self.partial, staged.temp, self.muxer)
            staged.commit()
        except (av.error.FFmpegError, OSError, OutputError) as e:
            staged.discard()
            place(self.partial, self.path)  # complete, fragmented: still the recording
            print(
                f"rtseg: warning: {self.path}: kept as a fragmented MP4 (finishing it as a normal "
                f"one failed: {describe_os_error(e)})",
                file=sys.stderr,
            )
            return
        os.unlink(self.partial)


def remux(source: Path, target: Path, muxer: str) -> None:
    """Copy the video packets of `source` into a normal (index at the end, seekable) `target`
    without re-encoding; the target is synced to disk before this returns."""
    import av

    with av.open(str(source)) as reader, av.open(str(target), "w", format=muxer) as writer:
        stream_in = reader.streams.video[0]
        stream_out = writer.add_stream_from_template(stream_in)
        for packet in reader.demux(stream_in):
            if packet.dts is None:  # the demuxer's end-of-stream marker
                continue
            packet.stream = stream_out
            writer.mux(packet)
    with open(target, "rb+") as f:
        os.fsync(f.fileno())


def trim_to_last_fragment(path: Path) -> int:
    """Cut a fragmented MP4 after its last complete top-level box that ends a fragment (an
    `mdat`, or the header boxes), dropping a `moof` whose data did not fit. Returns the size."""
    with open(path, "rb+") as f:
        size = os.fstat(f.fileno()).st_size
        offset = good = 0
        while offset + 8 <= size:
            f.seek(offset)
            header = f.read(16)
            box_size, kind = struct.unpack(">I4s", header[:8])
            if box_size == 1 and len(header) == 16:
                box_size = struct.unpack(">Q", header[8:])[0]
            if box_size < 8 or offset + box_size > size:
                break
            offset += box_size
            if kind != b"moof":
                good = offset
        f.truncate(good)
    return good


def _sync_folder(folder: Path) -> None:
    """Make a rename durable (the folder's entry), where the platform allows it."""
    with contextlib.suppress(OSError):
        fd = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
