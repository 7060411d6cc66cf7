"""The user's cache folder: engines, TensorRT timing caches, exported graphs, bench packages."""

from __future__ import annotations

import os
from pathlib import Path


def cache_dir() -> Path:
    """`$RTSEG_CACHE`, else `$XDG_CACHE_HOME/rtseg`, else `~/.cache/rtseg`."""
    if os.environ.get("RTSEG_CACHE"):
        return Path(os.environ["RTSEG_CACHE"])
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "rtseg"
