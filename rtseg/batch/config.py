"""What `rtseg batch` was asked to do, in frozen dataclasses (no click objects past the CLI)."""

from __future__ import annotations

import hashlib
import json
import math
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path

from rtseg.batch.outputs import OUTPUT_KINDS
from rtseg.errors import InputError

DEFAULT_KINDS = ("mp4", "stats")
KILL_ENV = "RTSEG_TEST_KILL_WORKER"  # "<input name>:<frame>": fault injection for the tests


@dataclass(frozen=True)
class VideoOptions:
    """How each video is segmented: the `rtseg run` options that make sense for an archive.

    model: the model package `.onnx` (or checkpoint / engine) every worker opens; absolute.
    model_identity: what identifies the model's content (its sidecar's onnx_sha256, or size and
        mtime), so a rerun with another model redoes the videos.
    device: where the model runs (rtseg.loading.DEVICES; default auto), as `rtseg run`.
    kinds: outputs per video, a subset of OUTPUT_KINDS ("mp4", "masks", "stats").
    """

    model: Path
    model_identity: str = ""
    backend: str = "onnxruntime"
    device: str = "auto"
    threads: int | None = None
    mode: str = "overlay"
    alpha: float = 0.5
    legend: bool = True
    codec: str = "auto"
    max_frames: int | None = None
    kinds: tuple[str, ...] = DEFAULT_KINDS

    def __post_init__(self):
        unknown = [k for k in self.kinds if k not in OUTPUT_KINDS]
        if unknown or not self.kinds:
            raise ValueError(f"output kinds must be a non-empty subset of {OUTPUT_KINDS}, got {self.kinds}")

    def settings_key(self) -> str:
        """A short hash of everything that changes an output (not threads, not the kinds)."""
        fields = asdict(self)
        for name in ("threads", "kinds", "model"):
            fields.pop(name)
        text = json.dumps(fields, sort_keys=True, default=str)
        return hashlib.sha256(text.encode()).hexdigest()[:16]


@dataclass(frozen=True)
class BatchConfig:
    """The archive run.

    inputs: the INPUT arguments (files, folders, globs, @lists); out_dir: DIR.
    workers: actors to start (None: as many as the cluster's CPUs / GPUs allow, at most one per
        video). cpus_per_worker / gpus_per_worker: Ray resources each actor reserves
        (gpus None: 1 with --backend tensorrt, else 0).
    address: an existing Ray cluster ("auto", "ray://host:10001", host:port); None: RAY_ADDRESS
        if set, else a local cluster on this machine.
    retries: how often a video whose worker died is tried again (on another or the restarted
        worker) before it is recorded as failed.
    hash_inputs: add the sha256 of every input to its identity (else size + mtime).
    kill_at: test hook ("name", frame): the worker exits while writing that frame of that video
        on its first attempt (see KILL_ENV).
    """

    inputs: tuple[str, ...]
    out_dir: Path
    video: VideoOptions
    workers: int | None = None
    cpus_per_worker: float = 1.0
    gpus_per_worker: float | None = None
    address: str | None = None
    retries: int = 2
    hash_inputs: bool = False
    progress: bool = True
    verbose: bool = False
    kill_at: tuple[str, int] | None = field(default=None)

    def __post_init__(self):
        if self.cpus_per_worker <= 0:
            raise InputError(f"--cpus-per-worker must be > 0, got {self.cpus_per_worker}")
        if self.workers is not None and self.workers < 1:
            raise InputError(f"--workers must be >= 1, got {self.workers}")
        if self.retries < 0:
            raise InputError(f"--retries must be >= 0, got {self.retries}")

    @property
    def worker_gpus(self) -> float:
        if self.gpus_per_worker is not None:
            return self.gpus_per_worker
        return 1.0 if self.video.backend == "tensorrt" else 0.0

    @property
    def worker_threads(self) -> int:
        """Backend threads per worker: --threads, else the CPUs the worker reserves (>= 1)."""
        return self.video.threads or max(1, math.floor(self.cpus_per_worker))


def kill_at_from_env() -> tuple[str, int] | None:
    """`RTSEG_TEST_KILL_WORKER="day1/clip.mp4:5"` -> ("day1/clip.mp4", 5); unset -> None."""
    value = os.environ.get(KILL_ENV)
    if not value:
        return None
    name, _, frame = value.rpartition(":")
    if not name or not frame.isdigit():
        raise InputError(f"{KILL_ENV}={value!r}: expected <input name>:<frame>")
    return name, int(frame)
