"""PSPNet (Zhao et al.): pyramid pooling with bins 1, 2, 3, 6 over the deepest feature.

`nn.AdaptiveAvgPool2d` exports to ONNX only when the map is divisible by the bins.
`adaptive_avg_pool` computes the same average with a plain AvgPool when the size divides, and
otherwise as two matrix products with averaging matrices built from the (static) map size, so
the model exports at any fixed input size and matches PyTorch exactly.
"""

from __future__ import annotations

import torch
from torch import nn

from rtseg.models.blocks import ConvBNReLU, upsample_like


def pooling_matrix(size: int, bins: int, like: torch.Tensor) -> torch.Tensor:
    """(bins, size) matrix averaging AdaptiveAvgPool's windows [floor(i*s/b), ceil((i+1)*s/b))."""
    index = torch.arange(size, device=like.device)
    i = torch.arange(bins, device=like.device).unsqueeze(1)
    start = (i * size) // bins
    end = ((i + 1) * size + bins - 1) // bins
    window = ((index >= start) & (index < end)).to(like.dtype)
    return window / window.sum(dim=1, keepdim=True)


def adaptive_avg_pool(x: torch.Tensor, bins: int) -> torch.Tensor:
    """Same values as `F.adaptive_avg_pool2d(x, bins)` for (N, C, h, w) x; exportable at any
    fixed h, w (including maps smaller than `bins`)."""
    h, w = int(x.shape[-2]), int(x.shape[-1])
    if h % bins == 0 and w % bins == 0:
        return nn.functional.avg_pool2d(x, (h // bins, w // bins))
    rows = pooling_matrix(h, bins, x)  # (bins, h)
    cols = pooling_matrix(w, bins, x)  # (bins, w)
    return torch.matmul(torch.matmul(rows, x), cols.transpose(0, 1))


class PyramidPooling(nn.Module):
    """Concatenates x with, per bin, pool -> 1x1 conv + ReLU -> bilinear upsample to x's size.

    The pooled branches have no BatchNorm: a 1x1 map with batch size 1 cannot be normalised.
    """

    def __init__(self, cin: int, bins: tuple[int, ...] = (1, 2, 3, 6)):
        super().__init__()
        self.bins = tuple(bins)
        branch = max(1, cin // len(self.bins))
        self.stages = nn.ModuleList(
            nn.Sequential(nn.Conv2d(cin, branch, 1), nn.ReLU(inplace=True)) for _ in self.bins
        )
        self.out_channels = cin + branch * len(self.bins)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        pooled = [
            upsample_like(stage(adaptive_avg_pool(x, b)), x) for b, stage in zip(self.bins, self.stages)
        ]
        return torch.cat([x, *pooled], dim=1)


class PSPDecoder(nn.Module):
    """Input: encoder features (the deepest is used: stride 32, or 8 on a dilated encoder).
    Output (N, psp_channels, h, w) at the deepest feature's stride."""

    def __init__(
        self, encoder_channels: list[int], bins: tuple[int, ...] = (1, 2, 3, 6), psp_channels: int = 256
    ):
        super().__init__()
        self.pyramid = PyramidPooling(encoder_channels[-1], bins)
        self.bottleneck = ConvBNReLU(self.pyramid.out_channels, psp_channels, 3)
        self.out_channels = psp_channels

    def forward(self, features: list[torch.Tensor]) -> torch.Tensor:
        return self.bottleneck(self.pyramid(features[-1]))
