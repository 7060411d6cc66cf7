"""`rtseg eval`'s library call: open a model file (any backend) and a dataset split, and score the
model with rtseg.train.evaluate (see there for how frames are scored)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from rtseg.data.registry import open_dataset
from rtseg.errors import InputError
from rtseg.loading import CHECKPOINT_SUFFIXES, open_model
from rtseg.train.evaluate import evaluate_backend, require_logits


@dataclass(frozen=True)
class EvalConfig:
    model: str
    dataset: str = "camvid"
    data_root: str = "../shared/data/camvid"
    split: str = "val"
    backend: str | None = None  # None: torch for a checkpoint, auto for a package
    device: str = "auto"  # rtseg.loading.DEVICES
    flip_tta: bool = False
    min_blob: int = 0  # remove predicted blobs under this many pixels (model resolution)
    limit: int | None = None  # evaluate the first N images only
    threads: int | None = None
    batch_size: int = 4
    progress: bool = True


def default_backend(model: str | Path) -> str:
    """torch for a checkpoint, auto (rtseg.loading.choose_backend) for a model package."""
    return "torch" if Path(model).suffix in CHECKPOINT_SUFFIXES else "auto"


def evaluate(cfg: EvalConfig) -> dict:
    """Open the model and the dataset split of `cfg` and score them (see module docstring).

    Returns `evaluate_backend`'s dict plus what was evaluated: model, backend, device (where it
    ran: "cpu", "cuda", "tensorrt"), dataset, split, input_size, flip_tta, min_blob.
    """
    if cfg.min_blob < 0:
        raise InputError(f"min_blob must be >= 0, got {cfg.min_blob}")
    if cfg.limit is not None and cfg.limit < 1:
        raise InputError(f"limit must be at least 1, got {cfg.limit}")
    dataset = open_dataset(cfg.dataset, cfg.data_root, cfg.split)
    backend_name = cfg.backend or default_backend(cfg.model)
    loaded = open_model(cfg.model, backend=backend_name, threads=cfg.threads, device=cfg.device)
    with loaded.backend as backend:
        if len(loaded.classes) != dataset.label_set.num_classes:
            raise InputError(
                f"{Path(cfg.model).name} predicts {len(loaded.classes)} classes but "
                f"{cfg.dataset} has {dataset.label_set.num_classes}"
            )
        if cfg.flip_tta:
            require_logits(backend, cfg.model)
        result = evaluate_backend(
            backend, dataset, cfg.flip_tta, cfg.min_blob, cfg.limit, cfg.batch_size, cfg.progress
        )
        described, runs_on = backend.describe(), backend.runs_on
    h, w = backend.input_size
    return {
        **result,
        "model": str(cfg.model),
        "backend": described,
        "device": runs_on,
        "dataset": cfg.dataset,
        "split": cfg.split,
        "input_size": [h, w],
        "flip_tta": cfg.flip_tta,
        "min_blob": cfg.min_blob,
    }
