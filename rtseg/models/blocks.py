"""Small building blocks shared by the decoders."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


class ConvBNReLU(nn.Sequential):
    """Conv2d (no bias) + BatchNorm + ReLU; `groups`/`dilation` as in nn.Conv2d."""

    def __init__(
        self, cin: int, cout: int, kernel: int = 3, stride: int = 1, dilation: int = 1, groups: int = 1
    ):
        padding = dilation * (kernel // 2)
        super().__init__(
            nn.Conv2d(cin, cout, kernel, stride, padding, dilation, groups, bias=False),
            nn.BatchNorm2d(cout),
            nn.ReLU(inplace=True),
        )


class SeparableConvBNReLU(nn.Sequential):
    """Depthwise kxk + pointwise 1x1, each followed by BatchNorm; one ReLU at the end."""

    def __init__(self, cin: int, cout: int, kernel: int = 3, dilation: int = 1):
        padding = dilation * (kernel // 2)
        super().__init__(
            nn.Conv2d(cin, cin, kernel, 1, padding, dilation, groups=cin, bias=False),
            nn.BatchNorm2d(cin),
            nn.Conv2d(cin, cout, 1, bias=False),
            nn.BatchNorm2d(cout),
            nn.ReLU(inplace=True),
        )


def upsample_like(x: torch.Tensor, ref: torch.Tensor) -> torch.Tensor:
    """Bilinear resize of `x` (N, C, h, w) to the spatial size of `ref` (align_corners=False)."""
    return F.interpolate(x, size=ref.shape[-2:], mode="bilinear", align_corners=False)


def resize_like(x: torch.Tensor, ref: torch.Tensor) -> torch.Tensor:
    """`upsample_like`, but a no-op (no Resize node in an export) when the sizes already match."""
    if x.shape[-2:] == ref.shape[-2:]:
        return x
    return upsample_like(x, ref)


def encoder_strides(encoder: nn.Module) -> tuple[int, ...]:
    """Strides of an encoder's five features: its `output_strides`, else (2, 4, 8, 16, 32)."""
    return tuple(getattr(encoder, "output_strides", (2, 4, 8, 16, 32)))
