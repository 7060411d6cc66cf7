"""Segmentation losses over logits (N, C, H, W) and targets (N, H, W) int64 with an ignore id."""

from __future__ import annotations

import numpy as np

from rtseg.data.labels import IGNORE_INDEX
from rtseg.errors import RtsegError, import_optional

torch = import_optional("torch")  # MissingDependencyError naming the extra
nn = torch.nn
F = torch.nn.functional


def enet_class_weights(pixel_counts: np.ndarray, c: float = 1.10) -> np.ndarray:
    """ENet's weighting 1 / ln(c + frequency): rare classes weigh more, bounded by 1/ln(c)."""
    freq = pixel_counts / max(1, pixel_counts.sum())
    return (1.0 / np.log(c + freq)).astype(np.float32)


def median_frequency_weights(pixel_counts: np.ndarray) -> np.ndarray:
    """SegNet's median-frequency balancing: median(f) / f_c; 0 for classes never seen."""
    freq = pixel_counts / max(1, pixel_counts.sum())
    seen = freq > 0
    weights = np.zeros(len(freq), np.float32)
    weights[seen] = np.median(freq[seen]) / freq[seen]
    return weights


CLASS_WEIGHT_SCHEMES = ("enet", "median", "none")


def parse_class_weights(spec: str) -> str | list[float]:
    """ "enet", "median", "none", or explicit comma-separated non-negative weights "1,2.5,..."."""
    if spec in CLASS_WEIGHT_SCHEMES:
        return spec
    try:
        weights = [float(v) for v in spec.split(",")]
    except ValueError:
        weights = []
    if not weights or any(not np.isfinite(w) or w < 0 for w in weights):
        raise RtsegError(
            f"class weights must be {', '.join(CLASS_WEIGHT_SCHEMES)} or comma-separated "
            f"non-negative numbers, got {spec!r}"
        )
    return weights


def class_weight_tensor(spec: str, pixel_counts: np.ndarray) -> torch.Tensor | None:
    """The CE/focal class weights for `spec` (see parse_class_weights) from per-class pixel counts."""
    parsed = parse_class_weights(spec)
    if parsed == "none":
        return None
    if parsed == "enet":
        return torch.from_numpy(enet_class_weights(pixel_counts))
    if parsed == "median":
        return torch.from_numpy(median_frequency_weights(pixel_counts))
    if len(parsed) != len(pixel_counts):
        raise RtsegError(f"{len(parsed)} class weights given for {len(pixel_counts)} classes")
    return torch.tensor(parsed, dtype=torch.float32)


LOSSES = ("ce", "ohem", "dice", "focal", "ce+dice")


class DiceLoss(nn.Module):
    """Soft multi-class dice over softmax probabilities, ignoring IGNORE_INDEX pixels."""

    def __init__(self, ignore_index: int = IGNORE_INDEX, eps: float = 1.0):
        super().__init__()
        self.ignore_index, self.eps = ignore_index, eps

    def forward(self, logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        num_classes = logits.shape[1]
        valid = (target != self.ignore_index).unsqueeze(1)
        prob = logits.softmax(1) * valid
        onehot = F.one_hot(target.clamp(0, num_classes - 1), num_classes).permute(0, 3, 1, 2)
        onehot = onehot * valid
        inter = (prob * onehot).sum((0, 2, 3))
        denom = prob.sum((0, 2, 3)) + onehot.sum((0, 2, 3))
        return 1 - ((2 * inter + self.eps) / (denom + self.eps)).mean()


class OhemCrossEntropy(nn.Module):
    """Online hard example mining cross-entropy (as in BiSeNet, PIDNet, PP-LiteSeg): the mean
    per-pixel CE over the pixels whose true-class probability is below `threshold`, and at least
    the `min_kept` share of the valid pixels with the largest loss (so easy batches still train).
    Logits `(N, C, H, W)` float, target `(N, H, W)` int64 with IGNORE_INDEX for unlabelled pixels."""

    def __init__(
        self,
        threshold: float = 0.7,
        min_kept: float = 1 / 16,
        weight: torch.Tensor | None = None,
        ignore_index: int = IGNORE_INDEX,
    ):
        super().__init__()
        self.loss_threshold = -float(np.log(threshold))  # p < threshold  <=>  CE > -ln(threshold)
        self.min_kept, self.ignore_index = min_kept, ignore_index
        self.register_buffer("weight", weight)

    def forward(self, logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        loss = F.cross_entropy(
            logits, target, weight=self.weight, ignore_index=self.ignore_index, reduction="none"
        )
        with torch.no_grad():  # the unweighted CE only selects the hard pixels: no gradient
            plain = F.cross_entropy(logits, target, ignore_index=self.ignore_index, reduction="none")
        valid = target != self.ignore_index
        count = int(valid.sum())
        if count == 0:
            return loss.sum() * 0
        plain, loss = plain[valid], loss[valid]
        keep = max(1, int(count * self.min_kept))
        threshold = min(self.loss_threshold, float(plain.topk(keep).values[-1]))
        return loss[plain >= threshold].mean()


class FocalLoss(nn.Module):
    """Focal loss (Lin et al.) on softmax: CE scaled by (1 - p_t)^gamma; optional class weights."""

    def __init__(
        self, gamma: float = 2.0, weight: torch.Tensor | None = None, ignore_index: int = IGNORE_INDEX
    ):
        super().__init__()
        self.gamma, self.ignore_index = gamma, ignore_index
        self.register_buffer("weight", weight)

    def forward(self, logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        ce = F.cross_entropy(
            logits, target, weight=self.weight, ignore_index=self.ignore_index, reduction="none"
        )
        logp = -F.cross_entropy(logits, target, ignore_index=self.ignore_index, reduction="none")
        loss = (1 - logp.exp()).pow(self.gamma) * ce
        valid = target != self.ignore_index
        return loss[valid].mean() if valid.any() else loss.sum() * 0


def build_loss(name: str, weight: torch.Tensor | None = None) -> nn.Module:
    """ "ce", "ohem", "dice", "focal", or "ce+dice"."""
    if name == "ce":
        return nn.CrossEntropyLoss(weight=weight, ignore_index=IGNORE_INDEX)
    if name == "ohem":
        return OhemCrossEntropy(weight=weight)
    if name == "dice":
        return DiceLoss()
    if name == "focal":
        return FocalLoss(weight=weight)
    if name == "ce+dice":
        ce, dice = build_loss("ce", weight), DiceLoss()
        return _Sum(ce, dice)
    raise RtsegError(f"unknown loss {name!r}; choose from {', '.join(LOSSES)}")


class _Sum(nn.Module):
    def __init__(self, *losses: nn.Module):
        super().__init__()
        self.losses = nn.ModuleList(losses)

    def forward(self, logits, target):
        return sum(loss(logits, target) for loss in self.losses)
