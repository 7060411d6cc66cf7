"""`rtseg eval`'s library call: open a model file (any backend) and a dataset split, and score the
model with rtseg.train.evaluate (see there for how frames are scored).

The model is opened as `rtseg run` opens it (rtseg.assembly.open_engine: the same file, backend
"auto" and device "auto" meaning the same), and every path is checked before anything is
opened (rtseg.core.paths.check_paths: the JSON written never destroys an input), so a Python
caller gets what the CLI gets."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from rtseg.assembly import EngineConfig, open_engine
from rtseg.core.checkpoint import seen_in_training
from rtseg.core.frames import resize_frame, resize_ids
from rtseg.core.list_files import read_list_bytes
from rtseg.core.package import package_files
from rtseg.core.paths import atomic_write_text, check_paths
from rtseg.data.registry import open_dataset
from rtseg.errors import InputError, OutputError
from rtseg.loading import training_of
from rtseg.train.evaluate import evaluate_backend, require_logits


@dataclass(frozen=True)
class EvalConfig:
    model: str
    dataset: str = "camvid"
    data_root: str = "../shared/data/camvid"
    split: str = "val"
    backend: str = "auto"  # rtseg.loading.choose_backend: torch for a checkpoint, ...
    device: str = "auto"  # rtseg.loading.DEVICES
    flip_tta: bool = False
    min_blob: int = 0  # remove predicted blobs under this many pixels (model resolution)
    limit: int | None = None  # evaluate the first N images only
    threads: int | None = None
    batch_size: int = 4
    progress: bool = True
    openvino_precision: str | None = None  # None: the run's default (rtseg.assembly.EngineConfig)
    json_path: Path | None = None  # where the result is also written as JSON


def engine_of(cfg) -> EngineConfig:
    """The model `cfg` (EvalConfig / VideoEvalConfig) names, as a run's EngineConfig."""
    return EngineConfig(cfg.model, cfg.backend or "auto", cfg.device, cfg.threads, cfg.openvino_precision)


def write_json(path: Path | None, result: dict) -> None:
    """The result as JSON (when `path` is given); replaces `path` only by a complete file."""
    if path is None:
        return
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise OutputError(f"cannot write {path}: {exc.strerror or exc}") from exc
    atomic_write_text(path, json.dumps(result, indent=2) + "\n")


def evaluate(cfg: EvalConfig) -> dict:
    """Open the model and the dataset split of `cfg` and score them (see module docstring).

    Returns `evaluate_backend`'s dict plus what was evaluated: model, backend, device (where it
    ran: "cpu", "cuda", "tensorrt"), dataset, split, input_size, flip_tta, min_blob, and
    trained_on / seen_in_training (True: the model was trained on this split, so the figures are
    not held out); writes it to `cfg.json_path` too when given.
    """
    if cfg.min_blob < 0:
        raise InputError(f"min_blob must be >= 0, got {cfg.min_blob}")
    if cfg.limit is not None and cfg.limit < 1:
        raise InputError(f"limit must be at least 1, got {cfg.limit}")
    engine = engine_of(cfg)
    check_paths(
        inputs=[*(("--model", p) for p in package_files(cfg.model)), ("--data-root", cfg.data_root)],
        outputs=[("--json", cfg.json_path)],
    )
    dataset = open_dataset(cfg.dataset, cfg.data_root, cfg.split)
    loaded = open_engine(engine)
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
    training = training_of(loaded)
    result = {
        **result,
        "seen_in_training": seen_in_training(training, cfg.dataset, cfg.split, cfg.data_root),
        "trained_on": training,
        "model": str(cfg.model),
        "backend": described,
        "device": runs_on,
        "dataset": cfg.dataset,
        "split": cfg.split,
        "input_size": [h, w],
        "flip_tta": cfg.flip_tta,
        "min_blob": cfg.min_blob,
    }
    write_json(cfg.json_path, result)
    return result


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
    backend: str = "auto"
    device: str = "auto"
    threads: int | None = None
    limit: int | None = None
    openvino_precision: str | None = None
    json_path: Path | None = None


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
    "temporal_filter"}; writes it to `cfg.json_path` too when given."""
    from rtseg.data.datasets import read_label
    from rtseg.postprocess import StableIds
    from rtseg.train.metrics import ConfusionMatrix
    from rtseg.train.temporal import TemporalConsistency
    from rtseg.video.sources import open_source

    if cfg.limit is not None and cfg.limit < 1:
        raise InputError(f"limit must be at least 1, got {cfg.limit}")
    engine = engine_of(cfg)
    check_paths(
        inputs=[
            *(("--model", p) for p in package_files(cfg.model)),
            ("--video", cfg.video),
            *([("--video-labels", cfg.labels)] if cfg.labels else []),
        ],
        outputs=[("--json", cfg.json_path)],
    )
    labels = _video_labels(cfg)
    loaded = open_engine(engine)
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
    result = {
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
    write_json(cfg.json_path, result)
    return result
