"""`BuildConfig`: how an engine is built (shared by the builder and the engine cache's key)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

DEFAULT_MAX_BATCH = 8


@dataclass(frozen=True)
class BuildConfig:
    """How to build. `workspace`: bytes for TensorRT's workspace pool (None: TensorRT's default);
    `timing_cache`: file kept between builds (None: the user cache folder); batch profile
    min 1, opt `opt_batch`, max `max_batch` on the dynamic batch axis, repeated `profiles` times
    (one per execution context in concurrent use: the backend's two slots)."""

    workspace: int | None = None
    timing_cache: Path | None = None
    max_batch: int = DEFAULT_MAX_BATCH
    opt_batch: int = 1
    profiles: int = 2
    verbose: bool = False

    def __post_init__(self):
        if self.max_batch < 1 or not 1 <= self.opt_batch <= self.max_batch:
            raise ValueError(f"need 1 <= opt_batch ({self.opt_batch}) <= max_batch ({self.max_batch})")
        if self.profiles < 1:
            raise ValueError(f"need at least one optimization profile, got {self.profiles}")
