"""U-Net decoder (Ronneberger et al.) over any encoder's five features."""

from __future__ import annotations

import torch
from torch import nn

from rtseg.models.blocks import ConvBNReLU, resize_like


class UNetBlock(nn.Sequential):
    """Two 3x3 ConvBNReLU over the concatenation of the upsampled map and the skip."""

    def __init__(self, cin: int, cout: int):
        super().__init__(ConvBNReLU(cin, cout), ConvBNReLU(cout, cout))


class UNetDecoder(nn.Module):
    """Input: encoder features at strides 2, 4, 8, 16, 32 (any strides work: each step
    resizes the deeper map to its skip's size). Output (N, decoder_channels[-1], H/2, W/2).

    From the deepest map, four steps: bilinear upsample to the next skip, concatenate, two
    3x3 ConvBNReLU with `decoder_channels` (256, 128, 64, 32) widths.
    """

    def __init__(self, encoder_channels: list[int], decoder_channels: tuple[int, ...] = (256, 128, 64, 32)):
        super().__init__()
        skips = list(reversed(encoder_channels[:-1]))  # strides 16, 8, 4, 2
        if len(decoder_channels) != len(skips):
            raise ValueError(f"decoder_channels needs {len(skips)} widths, got {len(decoder_channels)}")
        blocks, cin = [], encoder_channels[-1]
        for skip, cout in zip(skips, decoder_channels):
            blocks.append(UNetBlock(cin + skip, cout))
            cin = cout
        self.blocks = nn.ModuleList(blocks)
        self.out_channels = decoder_channels[-1]

    def forward(self, features: list[torch.Tensor]) -> torch.Tensor:
        x = features[-1]
        for block, skip in zip(self.blocks, reversed(features[:-1])):
            x = block(torch.cat([resize_like(x, skip), skip], dim=1))
        return x
