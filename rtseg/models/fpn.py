"""FPN decoder (Panoptic-FPN style semantic head), with a light variant for real time on CPUs."""

from __future__ import annotations

import torch
from torch import nn

from rtseg.models.blocks import ConvBNReLU, SeparableConvBNReLU, upsample_like


class FPNDecoder(nn.Module):
    """Top-down pyramid over the encoder's stride 4/8/16/32 features, merged at stride 4.

    Input: encoder features at strides 2, 4, 8, 16, 32 (the encoder contract).
    Output: (N, segmentation_channels, H/4, W/4) float.
    `light=True` uses depthwise-separable 3x3 convolutions and a global-context branch on the
    stride-32 map: about a tenth of the multiply-adds of the classic head.
    """

    def __init__(
        self,
        encoder_channels: list[int],
        pyramid_channels: int = 128,
        segmentation_channels: int = 64,
        light: bool = False,
    ):
        super().__init__()
        chans = encoder_channels[1:]  # strides 4, 8, 16, 32
        self.laterals = nn.ModuleList(nn.Conv2d(c, pyramid_channels, 1) for c in chans)
        conv = SeparableConvBNReLU if light else ConvBNReLU
        self.smooth = nn.ModuleList(conv(pyramid_channels, segmentation_channels) for _ in chans)
        self.light = light
        if light:
            self.context = nn.Sequential(
                nn.AdaptiveAvgPool2d(1), nn.Conv2d(chans[-1], pyramid_channels, 1), nn.ReLU()
            )
        self.out_channels = segmentation_channels

    def forward(self, features: list[torch.Tensor]) -> torch.Tensor:
        feats = features[1:]
        top = self.laterals[-1](feats[-1])
        if self.light:
            top = top + self.context(feats[-1])
        pyramid = [top]
        for lateral, feat in zip(reversed(self.laterals[:-1]), reversed(feats[:-1])):
            top = lateral(feat) + upsample_like(top, feat)
            pyramid.append(top)
        pyramid.reverse()  # strides 4, 8, 16, 32
        out = self.smooth[0](pyramid[0])
        for smooth, level in zip(self.smooth[1:], pyramid[1:]):
            out = out + upsample_like(smooth(level), out)
        return out
