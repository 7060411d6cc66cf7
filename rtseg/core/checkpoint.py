"""Checkpoints: plain dicts of tensors and builtins, so they load with `weights_only=True`.

Layout: {"format": "rtseg-checkpoint", "model": {"arch", "encoder", "num_classes", "kwargs"},
"labels": {"name", "classes", "palette"}, "normalization": {"mean", "std"}, "input_size": [h, w],
"state_dict", and, while training, "optimizer", "epoch", "step", "best_miou", "history", "config"}.
torch is imported when a checkpoint is read or written, not when this module is.
"""

from __future__ import annotations

import errno
import os
import pickle
from pathlib import Path

from rtseg.core.paths import atomic_output, require_file
from rtseg.errors import ModelError, OutputError, import_optional

FORMAT = "rtseg-checkpoint"
MIN_FREE_BYTES = 1 << 20  # below this, a failed write is taken for a full disk


def save_checkpoint(path: str | Path, payload: dict) -> None:
    """Write atomically (temp file + rename): a crash never leaves a half-written checkpoint."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    torch = import_optional("torch")  # MissingDependencyError naming the extra

    with atomic_output(path, durable=True) as temp:
        try:
            torch.save({"format": FORMAT, **payload}, temp)
        except RuntimeError as exc:  # torch's zip writer: "file write failed", errno lost
            if _free_bytes(path.parent) < MIN_FREE_BYTES:
                raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC)) from None
            raise OutputError(f"{path}: cannot write ({str(exc).strip().splitlines()[-1]})") from None


def _free_bytes(folder: Path) -> int:
    try:
        st = os.statvfs(folder)
    except OSError:
        return MIN_FREE_BYTES
    return st.f_bavail * st.f_frsize


def load_checkpoint(path: str | Path) -> dict:
    """Load with `weights_only=True`; ModelError if the file is not an rtseg checkpoint."""
    torch = import_optional("torch")  # MissingDependencyError naming the extra

    path = require_file(path, "checkpoint", ModelError)
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
    except (
        pickle.UnpicklingError,
        RuntimeError,
        EOFError,
        OSError,
        ValueError,
        IndexError,
        KeyError,
        TypeError,
        AttributeError,
    ) as exc:  # garbage bytes raise any of these
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise ModelError(f"{path} is not a loadable checkpoint: {first}") from exc
    if not isinstance(payload, dict) or payload.get("format") != FORMAT:
        raise ModelError(f"{path} is not an rtseg checkpoint (no 'format': '{FORMAT}')")
    return payload


def training_record(payload: dict) -> dict | None:
    """What a checkpoint was trained on, from its `config`: {"dataset": name, "data": the data
    folder's name, "splits": [...]} (a joined split "train+val" gives ["train", "val"]); None
    when the checkpoint does not say."""
    config = payload.get("config")
    split = config.get("train_split") if isinstance(config, dict) else None
    if not isinstance(split, str) or not split:
        return None
    data = config.get("data_root")
    return {
        "dataset": config.get("dataset"),
        "data": Path(data).name if isinstance(data, str) and data else None,
        "splits": split.split("+"),
    }


def seen_in_training(training: dict | None, dataset: str, split: str, data_root=None) -> bool:
    """Whether any part of `split` ("val", "train+val") of `dataset` was among the splits the
    model was trained on (`training`: training_record's dict, or None: not known, False). A
    `folder` dataset is anyone's data: there the data folders' names must match as well."""
    if not training or training.get("dataset") != dataset:
        return False
    if dataset == "folder" and (data_root is None or Path(data_root).name != training.get("data")):
        return False
    return any(part in training.get("splits", []) for part in split.split("+"))


def source_checkpoint(package) -> Path:
    """The checkpoint a model package's sidecar names (`source.checkpoint`, relative to the
    sidecar's folder); ModelError saying what is missing."""
    source = (package.meta.get("source") or {}).get("checkpoint")
    if not source:
        raise ModelError(f"{package.sidecar_path.name}: the sidecar names no source checkpoint")
    path = Path(source)
    if not path.is_absolute():
        path = package.sidecar_path.parent / path
    require_file(path, f"{package.sidecar_path.name}: its checkpoint", ModelError)
    return path
