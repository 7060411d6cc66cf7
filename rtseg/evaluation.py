"""`rtseg eval`'s library call: open a model file (any backend) and a dataset split, and score the
model with rtseg.train.evaluate (see there for how frames are scored)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from rtseg.core.frames import resize_frame, resize_ids
from rtseg.core.list_files import read_list_bytes
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


@dataclass(frozen=True)
class VideoEvalConfig:
    """`rtseg eval --video`: temporal consistency of a model's predictions over a clip, and its
    mIoU where `labels` names a label PNG for each frame, in order (a CamVid clip's frames.txt:
    one file name a line, found in `label_dir`)."""

    model: str
    video: str
    labels: str | None = None
    label_dir: str | None = None
    temporal_filter: bool = False
    backend: str | None = None
    device: str = "auto"
    threads: int | None = None
    limit: int | None = None


def _video_labels(cfg: VideoEvalConfig) -> list[Path] | None:
    """The label file of each frame, from `cfg.labels` (names) and `cfg.label_dir`."""
    if cfg.labels is None:
        return None
    listing = Path(cfg.labels)
    try:
        names = read_list_bytes(listing, f"the label list {listing}").decode("utf-8").split()
    except UnicodeDecodeError as exc:
        raise InputError(f"cannot read the label list {listing}: {exc}") from exc
    folder = Path(cfg.label_dir) if cfg.label_dir else listing.parent
    return [folder / name for name in names]


def evaluate_video(cfg: VideoEvalConfig) -> dict:
    """Run the model on every frame of `cfg.video` (resized to its input size) and score the
    predictions at that size with rtseg.train.temporal (TC, flip share); with labels, the mIoU
    of each labelled frame at the label's size too. Returns {"tc", "flip_share", "pairs",
    "frames", "miou"?, "per_class"?, "model", "backend", "device", "video", "input_size",
    "temporal_filter"}."""
    from rtseg.data.datasets import read_label
    from rtseg.postprocess import StableIds
    from rtseg.train.metrics import ConfusionMatrix
    from rtseg.train.temporal import TemporalConsistency
    from rtseg.video.sources import open_source

    if cfg.limit is not None and cfg.limit < 1:
        raise InputError(f"limit must be at least 1, got {cfg.limit}")
    labels = _video_labels(cfg)
    backend_name = cfg.backend or default_backend(cfg.model)
    loaded = open_model(cfg.model, backend=backend_name, threads=cfg.threads, device=cfg.device)
    num_classes = len(loaded.classes)
    consistency, matrix = TemporalConsistency(num_classes), ConfusionMatrix(num_classes)
    smooth = StableIds() if cfg.temporal_filter else None
    frames = 0
    with loaded.backend as backend, open_source(str(cfg.video), live=False) as source:
        while (cfg.limit is None or frames < cfg.limit) and (frame := source.read_frame()) is not None:
            image = resize_frame(frame.rgb(), backend.input_size)
            ids = backend.infer(image[None])[0]
            if smooth is not None:
                ids = smooth(image, ids)
            consistency.update(image, ids)
            if labels is not None and frames < len(labels):
                label = read_label(labels[frames])
                matrix.update(resize_ids(ids, label.shape), label)
            frames += 1
        described, runs_on = backend.describe(), backend.runs_on
    if frames == 0:
        raise InputError(f"{cfg.video}: no frame could be read")
    scored = matrix.summary(loaded.classes) if labels is not None else {}
    return {
        **consistency.summary(),
        **{k: scored[k] for k in ("miou", "per_class") if k in scored},
        "frames": frames,
        "model": str(cfg.model),
        "backend": described,
        "device": runs_on,
        "video": Path(cfg.video).name,
        "input_size": list(backend.input_size),
        "temporal_filter": cfg.temporal_filter,
    }
