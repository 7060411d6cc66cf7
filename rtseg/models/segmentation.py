"""Encoder + decoder + head, with the forward pass written once."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


class SegmentationModel(nn.Module):
    """Input (N, 3, H, W) float32, normalised RGB. Output (N, num_classes, H, W) float32 logits.

    `encoder(x)` returns features at strides 2, 4, 8, 16, 32 and has `out_channels`;
    `decoder(features)` returns one map with `decoder.out_channels` channels at any stride;
    the 1x1 head maps it to classes and a bilinear resize brings it to the input size.
    """

    def __init__(self, encoder: nn.Module, decoder: nn.Module, num_classes: int, dropout: float = 0.1):
        super().__init__()
        self.encoder = encoder
        self.decoder = decoder
        self.dropout = nn.Dropout2d(dropout) if dropout > 0 else nn.Identity()
        self.head = nn.Conv2d(decoder.out_channels, num_classes, 1)
        self.num_classes = num_classes

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        features = self.encoder(x)
        y = self.head(self.dropout(self.decoder(features)))
        if y.shape[-2:] != x.shape[-2:]:
            y = F.interpolate(y, size=x.shape[-2:], mode="bilinear", align_corners=False)
        return y
