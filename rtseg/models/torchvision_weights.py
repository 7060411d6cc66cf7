"""Loading user-supplied ImageNet weights saved from torchvision (`model.state_dict()`).

The VGG and ResNet encoders name their parameters exactly as torchvision does (`features.N.*`;
`conv1`, `bn1`, `layer1..4`), so the mapping is: unwrap a `{"state_dict": ...}` container,
strip a DataParallel `module.` prefix, set aside the classifier (`fc.*`, `classifier.*`), and
require every remaining key and shape to match. No weights for these encoders ship with rtseg
and none can be downloaded here.
"""

from __future__ import annotations

import pickle
from pathlib import Path

import torch
from torch import nn

from rtseg.core.paths import require_file
from rtseg.errors import ModelError

_CONTAINER_KEYS = ("state_dict", "model", "model_state_dict")


def no_bundled_weights(name: str) -> ModelError:
    """The error for `pretrained=True` on an encoder whose ImageNet weights do not ship."""
    return ModelError(
        f"no ImageNet weights ship for {name} (and none can be downloaded here); pass the path "
        f"of a torchvision-format .pth (torchvision.models.{name.removesuffix('_dilated')}"
        "(weights=...).state_dict()) as pretrained=PATH / --encoder-weights PATH, or train from "
        "scratch with pretrained=False / --no-pretrained"
    )


def read_state_dict(path: str | Path) -> dict[str, torch.Tensor]:
    """Read a `.pth` state dict with `weights_only=True`; unwrap containers and `module.`."""
    path = require_file(path, "encoder weights file", ModelError)
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except (pickle.UnpicklingError, RuntimeError, EOFError, OSError, ValueError) as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise ModelError(f"{path} is not a loadable state dict: {first}") from exc
    for key in _CONTAINER_KEYS:
        if isinstance(state, dict) and isinstance(state.get(key), dict):
            state = state[key]
            break
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise ModelError(f"{path} does not hold a state dict (name -> tensor)")
    if state and all(k.startswith("module.") for k in state):
        state = {k[len("module.") :]: v for k, v in state.items()}
    return state


def _names(keys, limit: int = 3) -> str:
    keys = sorted(keys)
    more = f", ... {len(keys) - limit} more" if len(keys) > limit else ""
    return ", ".join(keys[:limit]) + more


def load_torchvision_weights(
    module: nn.Module, path: str | Path, name: str, set_aside: tuple[str, ...]
) -> dict[str, torch.Tensor]:
    """Load torchvision-named weights into `module` with strict key and shape checks.

    Keys starting with one of `set_aside` (the classifier) are not loaded; they are returned.
    A state dict without `num_batches_tracked` buffers (older torchvision) is accepted.
    Raises ModelError naming the missing, unexpected or mis-shaped keys.
    """
    state = read_state_dict(path)
    extra = {k: v for k, v in state.items() if k.startswith(set_aside)}
    state = {k: v for k, v in state.items() if not k.startswith(set_aside)}
    own = module.state_dict()
    missing = [k for k in own if k not in state and not k.endswith("num_batches_tracked")]
    unexpected = [k for k in state if k not in own]
    if missing or unexpected:
        parts = []
        if missing:
            parts.append(f"missing {len(missing)} ({_names(missing)})")
        if unexpected:
            parts.append(f"unexpected {len(unexpected)} ({_names(unexpected)})")
        raise ModelError(f"{path}: not torchvision {name} weights: {'; '.join(parts)}")
    for key, value in state.items():
        if tuple(value.shape) != tuple(own[key].shape):
            raise ModelError(
                f"{path}: not torchvision {name} weights: {key} has shape "
                f"{tuple(value.shape)} in the file but {tuple(own[key].shape)} in {name}"
            )
    merged = {**own, **state}
    module.load_state_dict(merged, strict=True)
    return extra
