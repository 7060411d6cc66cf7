"""DeepLabV3+ (Chen et al.): ASPP on the deepest feature plus a stride-4 decoder."""

from __future__ import annotations

import torch
from torch import nn

from rtseg.models.blocks import ConvBNReLU, SeparableConvBNReLU, encoder_strides, resize_like

# The paper's rates at output stride 16; scaled to the encoder's deepest stride.
BASE_RATES = (6, 12, 18)


def atrous_rates(deepest_stride: int, base=BASE_RATES) -> tuple[int, ...]:
    """(6, 12, 18) at stride 16 -> (3, 6, 9) at stride 32, (12, 24, 36) at stride 8."""
    return tuple(max(1, round(r * 16 / deepest_stride)) for r in base)


class ASPP(nn.Module):
    """1x1 branch, separable 3x3 branches at `rates`, image pooling branch; 1x1 projection.

    The image-pooling branch is a spatial mean (one ReduceMean in ONNX at any size; an
    AdaptiveAvgPool2d(1) exports as a chain of shape ops) and has no BatchNorm, so training
    works with batch size 1.
    """

    def __init__(self, cin: int, cout: int, rates: tuple[int, ...]):
        super().__init__()
        self.branches = nn.ModuleList(
            [ConvBNReLU(cin, cout, 1)] + [SeparableConvBNReLU(cin, cout, 3, dilation=r) for r in rates]
        )
        self.image_pool = nn.Sequential(nn.Conv2d(cin, cout, 1), nn.ReLU(inplace=True))
        self.project = ConvBNReLU(cout * (len(rates) + 2), cout, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        outs = [branch(x) for branch in self.branches]
        pooled = self.image_pool(x.mean(dim=(2, 3), keepdim=True))
        outs.append(pooled.expand(-1, -1, x.shape[-2], x.shape[-1]))
        return self.project(torch.cat(outs, dim=1))


class DeepLabV3PlusDecoder(nn.Module):
    """Input: encoder features at strides 2..32 (or a dilated encoder's). Output
    (N, channels, H/4, W/4): ASPP(deepest) upsampled to the stride-4 feature, concatenated with
    its 1x1 projection to `low_level_channels`, refined by two separable 3x3 ConvBNReLU."""

    def __init__(
        self,
        encoder_channels: list[int],
        deepest_stride: int = 32,
        channels: int = 256,
        low_level_channels: int = 48,
        rates: tuple[int, ...] | None = None,
    ):
        super().__init__()
        self.aspp = ASPP(encoder_channels[-1], channels, rates or atrous_rates(deepest_stride))
        self.low_level = ConvBNReLU(encoder_channels[1], low_level_channels, 1)
        self.refine = nn.Sequential(
            SeparableConvBNReLU(channels + low_level_channels, channels),
            SeparableConvBNReLU(channels, channels),
        )
        self.out_channels = channels

    def forward(self, features: list[torch.Tensor]) -> torch.Tensor:
        low = self.low_level(features[1])
        context = resize_like(self.aspp(features[-1]), low)
        return self.refine(torch.cat([context, low], dim=1))


def build_deeplabv3plus_decoder(encoder: nn.Module, **kwargs) -> DeepLabV3PlusDecoder:
    return DeepLabV3PlusDecoder(encoder.out_channels, encoder_strides(encoder)[-1], **kwargs)
