"""ResNet-18/34/50 encoders with torchvision's parameter names (`conv1`, `bn1`, `layer1..4`).

torchvision ImageNet state dicts load without renaming; their `fc.*` classifier is dropped.
"""

from __future__ import annotations

from pathlib import Path

import torch
from torch import nn

from rtseg.errors import ModelError
from rtseg.models.torchvision_weights import load_torchvision_weights, no_bundled_weights


def _conv3x3(cin: int, cout: int, stride: int = 1) -> nn.Conv2d:
    return nn.Conv2d(cin, cout, 3, stride, padding=1, bias=False)


class BasicBlock(nn.Module):
    expansion = 1

    def __init__(self, cin: int, width: int, stride: int = 1, downsample: nn.Module | None = None):
        super().__init__()
        self.conv1 = _conv3x3(cin, width, stride)
        self.bn1 = nn.BatchNorm2d(width)
        self.conv2 = _conv3x3(width, width)
        self.bn2 = nn.BatchNorm2d(width)
        self.relu = nn.ReLU(inplace=True)
        self.downsample = downsample

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        identity = x if self.downsample is None else self.downsample(x)
        y = self.relu(self.bn1(self.conv1(x)))
        return self.relu(self.bn2(self.conv2(y)) + identity)


class Bottleneck(nn.Module):
    """torchvision's v1.5 bottleneck: the stride sits on the 3x3 convolution."""

    expansion = 4

    def __init__(self, cin: int, width: int, stride: int = 1, downsample: nn.Module | None = None):
        super().__init__()
        self.conv1 = nn.Conv2d(cin, width, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(width)
        self.conv2 = _conv3x3(width, width, stride)
        self.bn2 = nn.BatchNorm2d(width)
        self.conv3 = nn.Conv2d(width, width * 4, 1, bias=False)
        self.bn3 = nn.BatchNorm2d(width * 4)
        self.relu = nn.ReLU(inplace=True)
        self.downsample = downsample

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        identity = x if self.downsample is None else self.downsample(x)
        y = self.relu(self.bn1(self.conv1(x)))
        y = self.relu(self.bn2(self.conv2(y)))
        return self.relu(self.bn3(self.conv3(y)) + identity)


# depth -> (block, blocks per stage)
DEPTHS = {18: (BasicBlock, (2, 2, 2, 2)), 34: (BasicBlock, (3, 4, 6, 3)), 50: (Bottleneck, (3, 4, 6, 3))}


class ResNetEncoder(nn.Module):
    """Input (N, 3, H, W) float, ImageNet-normalised RGB.

    Returns five maps at strides 2, 4, 8, 16, 32: the stem (conv1/bn1/relu) and layer1..4
    (layer1 after the max-pool). `out_channels`: [64, 64, 128, 256, 512] for ResNet-18/34,
    [64, 256, 512, 1024, 2048] for ResNet-50.
    """

    def __init__(self, depth: int = 18):
        super().__init__()
        if depth not in DEPTHS:
            raise ModelError(f"unsupported ResNet depth {depth}; choose from {sorted(DEPTHS)}")
        self.name = f"resnet{depth}"
        block, counts = DEPTHS[depth]
        self.conv1 = nn.Conv2d(3, 64, 7, 2, padding=3, bias=False)
        self.bn1 = nn.BatchNorm2d(64)
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.MaxPool2d(3, 2, padding=1)
        self._cin = 64
        self.layer1 = self._stage(block, 64, counts[0], 1)
        self.layer2 = self._stage(block, 128, counts[1], 2)
        self.layer3 = self._stage(block, 256, counts[2], 2)
        self.layer4 = self._stage(block, 512, counts[3], 2)
        self.out_channels = [64] + [w * block.expansion for w in (64, 128, 256, 512)]
        self.output_strides = (2, 4, 8, 16, 32)
        self._init_weights()

    def _stage(self, block, width: int, count: int, stride: int) -> nn.Sequential:
        downsample = None
        if stride != 1 or self._cin != width * block.expansion:
            downsample = nn.Sequential(
                nn.Conv2d(self._cin, width * block.expansion, 1, stride, bias=False),
                nn.BatchNorm2d(width * block.expansion),
            )
        blocks = [block(self._cin, width, stride, downsample)]
        self._cin = width * block.expansion
        blocks += [block(self._cin, width) for _ in range(1, count)]
        return nn.Sequential(*blocks)

    def _init_weights(self) -> None:
        for m in self.modules():  # torchvision's ResNet initialisation
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
            elif isinstance(m, nn.BatchNorm2d):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        stem = self.relu(self.bn1(self.conv1(x)))
        c2 = self.layer1(self.maxpool(stem))
        c3 = self.layer2(c2)
        c4 = self.layer3(c3)
        c5 = self.layer4(c4)
        return [stem, c2, c3, c4, c5]

    def load_pretrained(self, path: str | Path | None = None) -> None:
        """Load a torchvision ResNet state dict; `fc.*` is dropped.

        `path=None` raises ModelError: no ResNet weights ship with rtseg.
        """
        if path is None:
            raise no_bundled_weights(self.name)
        load_torchvision_weights(self, path, self.name, ("fc.",))
