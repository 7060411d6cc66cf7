"""What `rtseg batch` was asked to do, in frozen dataclasses (no click objects past the CLI)."""

from __future__ import annotations

import hashlib
import json
import math
import os
from dataclasses import dataclass, field
from pathlib import Path

from rtseg.assembly import DrawingConfig, EngineConfig, InputConfig, OutputConfig, split_options
from rtseg.batch.outputs import OUTPUT_KINDS
from rtseg.errors import InputError

DEFAULT_KINDS = ("mp4", "stats")
KILL_ENV = "RTSEG_TEST_KILL_WORKER"  # "<input name>:<frame>": fault injection for the tests


@dataclass(frozen=True)
class VideoOptions:
    """How each video is segmented: the `rtseg run` sub-configs (rtseg.assembly.config) that make
    sense for an archive, shipped to every worker as they are.

    engine: the model every worker opens (its path absolute), backend, device, threads and
        OpenVINO precision. input: max_frames and the decoder (environment defaults resolved
        here, in the driver). outputs: the MP4 encoder (the paths are each video's).
        drawing: mode, alpha, legend (never a HUD).
    model_identity: what identifies the model's content (its sidecar's onnx_sha256, or size and
        mtime), so a rerun with another model redoes the videos.
    kinds: outputs per video, a subset of OUTPUT_KINDS ("mp4", "masks", "stats").
    """

    engine: EngineConfig
    model_identity: str = ""
    input: InputConfig = field(default_factory=InputConfig)
    outputs: OutputConfig = field(default_factory=OutputConfig)
    drawing: DrawingConfig = field(default_factory=DrawingConfig)
    kinds: tuple[str, ...] = DEFAULT_KINDS

    def __post_init__(self):
        unknown = [k for k in self.kinds if k not in OUTPUT_KINDS]
        if unknown or not self.kinds:
            raise ValueError(f"output kinds must be a non-empty subset of {OUTPUT_KINDS}, got {self.kinds}")

    @classmethod
    def of(cls, model_identity: str = "", kinds: tuple[str, ...] = DEFAULT_KINDS, **options) -> VideoOptions:
        """From flat run options (`rtseg batch`'s, each a sub-config field; `model` required)."""
        return cls(model_identity=model_identity, kinds=tuple(kinds), **split_options(options))

    @property
    def backend(self) -> str:
        return self.engine.backend

    def settings_key(self) -> str:
        """A short hash of everything that changes an output (not threads, not the kinds); the
        keys of earlier versions, so a rerun keeps what they finished."""
        e, d = self.engine, self.drawing
        fields = {"model_identity": self.model_identity, "backend": e.backend, "device": e.device,
                  "mode": d.mode, "alpha": d.alpha, "legend": d.legend, "codec": self.outputs.codec,
                  "max_frames": self.input.max_frames}  # fmt: skip
        if e.openvino_precision != "auto":
            fields["openvino_precision"] = e.openvino_precision
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
    report_json: where run_batch writes its summary (counts, frames, archive fps, workers).
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
    report_json: Path | None = None

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
        return self.video.engine.threads or max(1, math.floor(self.cpus_per_worker))


def kill_at_from_env() -> tuple[str, int] | None:
    """`RTSEG_TEST_KILL_WORKER="day1/clip.mp4:5"` -> ("day1/clip.mp4", 5); unset -> None."""
    value = os.environ.get(KILL_ENV)
    if not value:
        return None
    name, _, frame = value.rpartition(":")
    if not name or not frame.isdigit():
        raise InputError(f"{KILL_ENV}={value!r}: expected <input name>:<frame>")
    return name, int(frame)
