"""The training loop: preloaded data, augmentation, AdamW + poly/cosine schedule, resumable
checkpoints (`last.pth` every epoch, `best.pth` on validation mIoU), progress bar."""

from __future__ import annotations

import json
import math
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
from tqdm import tqdm

from rtseg.core.checkpoint import load_checkpoint, save_checkpoint
from rtseg.core.notices import warn_once
from rtseg.core.package import portable
from rtseg.data.labels import IGNORE_INDEX
from rtseg.data.transforms import AugmentConfig, augment
from rtseg.errors import InputError, ModelError, RtsegError, import_optional
from rtseg.models import create_model
from rtseg.models.registry import encoder_normalization
from rtseg.train.losses import LOSSES, build_loss, class_weight_tensor, parse_class_weights
from rtseg.train.metrics import ConfusionMatrix

torch = import_optional("torch")  # MissingDependencyError naming the extra


@dataclass(frozen=True)
class TrainConfig:
    dataset: str = "camvid"
    data_root: str = "../shared/data/camvid"
    train_split: str = "train"
    val_split: str = "val"
    arch: str = "fpn_lite"
    encoder: str = "efficientnet_lite0"
    pretrained: bool = True
    epochs: int = 40
    batch_size: int = 8
    lr: float = 2e-3
    weight_decay: float = 1e-4
    schedule: str = "poly"  # poly | cosine
    warmup_iters: int = 100
    loss: str = "ce"
    class_weights: str = "enet"  # enet | none
    crop: tuple[int, int] = (288, 384)
    scale: tuple[float, float] = (0.75, 1.75)
    val_every: int = 5
    out_dir: str = "runs/camvid"
    threads: int = 2
    seed: int = 0
    model_kwargs: dict = field(default_factory=dict)
    ema_decay: float = 0.0  # 0: off; else the weights evaluated and saved are an EMA of the trained ones


def lr_factor(cfg: TrainConfig, step: int, total: int) -> float:
    """Linear warm-up, then poly (power 0.9) or cosine decay to zero at `total` steps."""
    if step < cfg.warmup_iters:
        return (step + 1) / cfg.warmup_iters
    progress = min(1.0, (step - cfg.warmup_iters) / max(1, total - cfg.warmup_iters))
    if cfg.schedule == "cosine":
        return 0.5 * (1 + math.cos(math.pi * progress))
    return (1 - progress) ** 0.9


def to_tensor(images: np.ndarray, mean, std) -> torch.Tensor:
    """(N, H, W, 3) uint8 RGB -> (N, 3, H, W) float32 normalised."""
    x = torch.from_numpy(images).permute(0, 3, 1, 2).float().div_(255)
    m = torch.tensor(mean).view(1, 3, 1, 1)
    s = torch.tensor(std).view(1, 3, 1, 1)
    return (x - m) / s


@torch.no_grad()
def evaluate_torch(model, samples, label_set, normalization, batch_size: int = 4) -> dict:
    """mIoU of `model` over preloaded (image, mask) pairs at their own resolution."""
    model.eval()
    cm = ConfusionMatrix(label_set.num_classes)
    for i in range(0, len(samples), batch_size):
        chunk = samples[i : i + batch_size]
        x = to_tensor(np.stack([s[0] for s in chunk]), **normalization)
        pred = model(x).argmax(1).numpy()
        for p, (_, mask) in zip(pred, chunk):
            cm.update(p, mask)
    return cm.summary(label_set.classes, "the validation split")


SCHEDULES = ("poly", "cosine")


def check_config(cfg: TrainConfig) -> None:
    """Raise RtsegError naming the first unusable setting, before any data is read."""
    from rtseg.data.registry import dataset_name
    from rtseg.models.registry import ARCHITECTURES, ENCODERS

    dataset_name(cfg.dataset)
    if cfg.arch not in ARCHITECTURES:
        raise ModelError(f"unknown architecture {cfg.arch!r}; choose from {', '.join(sorted(ARCHITECTURES))}")
    if cfg.encoder not in ENCODERS:
        raise ModelError(f"unknown encoder {cfg.encoder!r}; choose from {', '.join(sorted(ENCODERS))}")
    if cfg.loss not in LOSSES:
        raise RtsegError(f"unknown loss {cfg.loss!r}; choose from {', '.join(LOSSES)}")
    if cfg.schedule not in SCHEDULES:
        raise RtsegError(f"unknown schedule {cfg.schedule!r}; choose from {', '.join(SCHEDULES)}")
    parse_class_weights(cfg.class_weights)
    for name in ("epochs", "batch_size", "val_every", "threads"):
        if int(getattr(cfg, name)) < 1:
            raise RtsegError(f"{name} must be at least 1, got {getattr(cfg, name)}")
    if not cfg.lr > 0 or cfg.weight_decay < 0 or cfg.warmup_iters < 0:
        raise RtsegError("lr must be positive, weight_decay and warmup_iters non-negative")
    if len(cfg.crop) != 2 or min(cfg.crop) < 1:
        raise RtsegError(f"crop must be two positive sizes (height, width), got {cfg.crop}")
    if len(cfg.scale) != 2 or not 0 < cfg.scale[0] <= cfg.scale[1]:
        raise RtsegError(f"scale must be (min, max) with 0 < min <= max, got {cfg.scale}")
    if not 0 <= cfg.ema_decay < 1:
        raise RtsegError(f"ema_decay must be in [0, 1), got {cfg.ema_decay}")
    if {p.strip() for p in cfg.val_split.split("+")} <= {p.strip() for p in cfg.train_split.split("+")}:
        warn_once(
            f"the validation split {cfg.val_split!r} is trained on ({cfg.train_split!r}): its mIoU, "
            "and the best.pth chosen by it, are not a held-out score"
        )


class LazySamples:
    """(image, mask) pairs read from disk on access; indexable by int or slice, like a list."""

    def __init__(self, dataset):
        self.dataset = dataset

    def __len__(self) -> int:
        return len(self.dataset)

    def __getitem__(self, index):
        if isinstance(index, slice):
            return [self.dataset[i] for i in range(*index.indices(len(self.dataset)))]
        return self.dataset[int(index)]


# Splits whose decoded images and masks (4 bytes a pixel) exceed this are read lazily each
# epoch instead of preloaded (Cityscapes' 2975 train images would need 25 GB).
PRELOAD_BUDGET_BYTES = 4 << 30


def load_split(cfg: TrainConfig, split: str):
    from rtseg.data.registry import open_dataset

    dataset = open_dataset(cfg.dataset, cfg.data_root, split)
    first, _ = dataset[0]
    if first.shape[0] * first.shape[1] * 4 * len(dataset) > PRELOAD_BUDGET_BYTES:
        print(f"{split}: {len(dataset)} images are too large to preload; reading them from disk")
        return dataset, LazySamples(dataset)
    return dataset, [dataset[i] for i in tqdm(range(len(dataset)), desc=f"load {split}", leave=False)]


def _class_counts(samples: list, num_classes: int) -> np.ndarray:
    """(num_classes,) int64 pixel count of each class over the masks of `samples` (ignored left out)."""
    counts = np.zeros(num_classes, np.int64)
    for _, mask in samples:
        counts += np.bincount(mask[mask != IGNORE_INDEX].ravel(), minlength=num_classes)[:num_classes]
    return counts


def _resume(last: Path, cfg: TrainConfig, model, ema, optimizer, state: dict):
    """(state, rng) after loading `last.pth` into `model`, `ema` and `optimizer`; RtsegError when
    it was trained with another configuration."""
    ckpt = load_checkpoint(last)
    if _schedule_free(ckpt.get("config", {})) != _schedule_free(_config_json(cfg)):
        raise RtsegError(f"{last} was trained with another configuration; use a new --out-dir")
    model.load_state_dict(ckpt.get("train_state_dict", ckpt["state_dict"]))
    if ema is not None:
        ema.load_state_dict(ckpt["ema_state_dict"])
    optimizer.load_state_dict(ckpt["optimizer"])
    state = {k: ckpt[k] for k in state}
    print(f"resumed from {last} at epoch {state['epoch']}")
    return state, np.random.default_rng([cfg.seed, state["epoch"]])


def _payload(cfg: TrainConfig, model, labels, normalization: dict, input_size, extra: dict) -> dict:
    """A checkpoint's contents (rtseg.core.checkpoint): the model, labels, normalization, input
    size `(height, width)`, weights and configuration, plus `extra`."""
    return {
        "model": {
            "arch": cfg.arch,
            "encoder": cfg.encoder,
            "num_classes": labels.num_classes,
            "kwargs": dict(cfg.model_kwargs),
        },
        "labels": {
            "name": labels.name,
            "classes": list(labels.classes),
            "palette": [list(c) for c in labels.palette],
        },
        "normalization": {k: list(v) for k, v in normalization.items()},
        "input_size": list(input_size),
        "state_dict": model.state_dict(),
        "config": _config_json(cfg),
        **extra,
    }


def make_ema(cfg: TrainConfig, model):
    """torch's AveragedModel holding an exponential moving average of `model`'s weights and
    buffers (decay `cfg.ema_decay` per step), or None when EMA is off."""
    if not cfg.ema_decay:
        return None
    from torch.optim.swa_utils import AveragedModel, get_ema_multi_avg_fn

    return AveragedModel(model, multi_avg_fn=get_ema_multi_avg_fn(cfg.ema_decay), use_buffers=True)


def _train_epoch(
    cfg: TrainConfig, model, ema, criterion, optimizer, samples: list, state: dict, rng, epoch: int
):
    """One pass over `samples` in a random order; updates `state["step"]`; returns the smoothed loss."""
    normalization = encoder_normalization(cfg.encoder)
    aug = AugmentConfig(crop=tuple(cfg.crop), scale=tuple(cfg.scale))
    iters_per_epoch = len(samples) // cfg.batch_size
    total = iters_per_epoch * cfg.epochs
    model.train()
    order = rng.permutation(len(samples))
    bar = tqdm(range(iters_per_epoch), desc=f"epoch {epoch + 1}/{cfg.epochs}", leave=False)
    running = 0.0
    for it in bar:
        batch = [
            augment(*samples[j], aug, rng) for j in order[it * cfg.batch_size : (it + 1) * cfg.batch_size]
        ]
        x = to_tensor(np.stack([b[0] for b in batch]), **normalization)
        y = torch.from_numpy(np.stack([b[1] for b in batch])).long()
        for group in optimizer.param_groups:
            group["lr"] = cfg.lr * lr_factor(cfg, state["step"], total)
        loss = criterion(model(x), y)
        if not torch.isfinite(loss):
            if not bool((y != IGNORE_INDEX).any()):
                continue  # no labelled pixel in this batch: nothing to learn from it
            raise InputError(
                f"epoch {epoch + 1}, step {it + 1}: the loss is {loss.item()}; training stopped "
                "before it could spoil the weights (try a lower --lr)"
            )
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        if ema is not None:
            ema.update_parameters(model)
        state["step"] += 1
        running = 0.9 * running + 0.1 * loss.item() if it else loss.item()
        bar.set_postfix(loss=f"{running:.3f}")
    return running


def check_train_paths(cfg: TrainConfig) -> None:
    """The data folder and the encoder weights file (a `pretrained` path) against the
    checkpoints written into `out_dir` (rtseg.core.paths.check_paths: never overwritten)."""
    from rtseg.core.paths import check_paths

    weights = cfg.pretrained if isinstance(cfg.pretrained, str) else None
    check_paths(
        inputs=[("--data-root", cfg.data_root), ("--encoder-weights", weights)],
        output_dirs=[("--out-dir", cfg.out_dir, "*.pth")],
    )


def train(cfg: TrainConfig, resume: bool = True) -> Path:
    """Train, checkpointing into `cfg.out_dir`; returns the path of `best.pth`. Every path is
    checked first (check_train_paths), from Python as from `rtseg train`."""
    check_config(cfg)
    check_train_paths(cfg)
    torch.manual_seed(cfg.seed)
    torch.set_num_threads(cfg.threads)
    out = Path(cfg.out_dir)
    out.mkdir(parents=True, exist_ok=True)
    train_set, train_samples = load_split(cfg, cfg.train_split)
    _, val_samples = load_split(cfg, cfg.val_split)
    labels = train_set.label_set
    normalization = encoder_normalization(cfg.encoder)
    model = create_model(
        cfg.arch, cfg.encoder, labels.num_classes, pretrained=cfg.pretrained, **cfg.model_kwargs
    )
    counts = _class_counts(train_samples, labels.num_classes)
    if not counts.sum():
        raise InputError(
            f"the {cfg.train_split} split has no labelled pixel (every label value is ignored or "
            f"outside 0..{labels.num_classes - 1}): nothing to train on"
        )
    criterion = build_loss(cfg.loss, class_weight_tensor(cfg.class_weights, counts))
    optimizer = torch.optim.AdamW(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    ema = make_ema(cfg, model)
    deployed = model if ema is None else ema.module  # the weights evaluated and saved
    if len(train_samples) // cfg.batch_size == 0:
        raise InputError(
            f"the {cfg.train_split} split has {len(train_samples)} images, fewer than "
            f"the batch size {cfg.batch_size}"
        )
    state = {"epoch": 0, "step": 0, "best_miou": -1.0, "history": []}
    rng = np.random.default_rng(cfg.seed)
    last = out / "last.pth"
    if resume and last.exists():
        state, rng = _resume(last, cfg, model, ema, optimizer, state)
    input_size = val_samples[0][0].shape[:2]
    started = time.time()
    for epoch in range(state["epoch"], cfg.epochs):
        running = _train_epoch(cfg, model, ema, criterion, optimizer, train_samples, state, rng, epoch)
        state["epoch"] = epoch + 1
        record = {"epoch": epoch + 1, "loss": running, "minutes": (time.time() - started) / 60}
        if (epoch + 1) % cfg.val_every == 0 or epoch + 1 == cfg.epochs:
            metrics = evaluate_torch(deployed, val_samples, labels, normalization)
            record["val_miou"] = metrics["miou"]
            if metrics["miou"] > state["best_miou"]:
                state["best_miou"] = metrics["miou"]
                best = {"epoch": epoch + 1, "val": metrics}
                save_checkpoint(
                    out / "best.pth", _payload(cfg, deployed, labels, normalization, input_size, best)
                )
        state["history"].append(record)
        print(json.dumps(record), flush=True)
        extra = {"optimizer": optimizer.state_dict(), **state}
        if ema is not None:  # `state_dict` is what deploys (the average); these resume training
            extra.update(train_state_dict=model.state_dict(), ema_state_dict=ema.state_dict())
        save_checkpoint(last, _payload(cfg, deployed, labels, normalization, input_size, extra))
    return out / "best.pth"


def _config_json(cfg: TrainConfig) -> dict:
    return portable(json.loads(json.dumps(asdict(cfg))))  # paths by name: see rtseg.core.package.portable


def _schedule_free(config: dict) -> dict:
    """The parts of a configuration that must match to resume (epochs may be extended)."""
    return {k: v for k, v in config.items() if k not in ("epochs", "val_every", "threads")}
