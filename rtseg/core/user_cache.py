"""The user's cache folder: engines, TensorRT timing caches, exported graphs, bench packages,
OpenVINO's compiled models and its probe verdicts."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from rtseg.core.notices import warn_once


def cache_dir() -> Path:
    """`$RTSEG_CACHE`, else `$XDG_CACHE_HOME/rtseg`, else `~/.cache/rtseg`."""
    if os.environ.get("RTSEG_CACHE"):
        return Path(os.environ["RTSEG_CACHE"])
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "rtseg"


def usable_folder(folder: Path) -> Path | None:
    """`folder`, made if missing, when a file can be created in it; else None after one warning
    line. A cache only saves time: a run never stops because one cannot be used (`$RTSEG_CACHE`
    naming a file or a read-only folder, a full disk); it goes on without it."""
    try:
        folder.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=folder, prefix=".rtseg-probe-"):
            pass
    except OSError as exc:
        warn_once(f"cache folder {folder} cannot be used ({exc.strerror or exc}); going on without it")
        return None
    return folder


def usable_cache(name: str) -> Path | None:
    """`cache_dir() / name` when usable (see usable_folder), else None."""
    return usable_folder(cache_dir() / name)
