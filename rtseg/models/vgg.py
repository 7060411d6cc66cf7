"""VGG16 / VGG16-BN / dilated VGG19 encoders with torchvision's parameter names.

`features` is built layer for layer like `torchvision.models.vgg*`, so `features.N.weight`
indices match and torchvision ImageNet weights load without renaming. The classifier
(`classifier.0/3/6`, fc6/fc7/fc8) is not part of the encoder; when weights are loaded, its
tensors are kept in `pretrained_classifier` for FCN's convolutionalised fc6/fc7 head.
"""

from __future__ import annotations

from pathlib import Path

import torch
from torch import nn

from rtseg.models.torchvision_weights import load_torchvision_weights, no_bundled_weights

# Convolution widths, "M" = 2x2 max-pool (torchvision's configurations "D" and "E").
LAYOUTS = {
    16: [64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512, "M", 512, 512, 512, "M"],
    19: [
        64,
        64,
        "M",
        128,
        128,
        "M",
        256,
        256,
        256,
        256,
        "M",
        512,
        512,
        512,
        512,
        "M",
        512,
        512,
        512,
        512,
        "M",
    ],
}


class VGGEncoder(nn.Module):
    """Input (N, 3, H, W) float, ImageNet-normalised RGB.

    Returns the outputs of pool1..pool5: five maps at strides 2, 4, 8, 16, 32 with
    `out_channels` 64, 128, 256, 512, 512. `dilated=True` (DeepLab-v1 / PSPNet-VGG style) turns
    pool4 and pool5 into 3x3 stride-1 pools and dilates conv5 by 2, so the strides are
    2, 4, 8, 8, 8 (`output_strides`); parameter names and shapes are unchanged.
    """

    def __init__(
        self, depth: int = 16, batch_norm: bool = False, dilated: bool = False, name: str | None = None
    ):
        super().__init__()
        self.name = name or f"vgg{depth}{'_bn' if batch_norm else ''}{'_dilated' if dilated else ''}"
        layers: list[nn.Module] = []
        self._taps: list[int] = []
        cin, pools, dilation = 3, 0, 1
        for item in LAYOUTS[depth]:
            if item == "M":
                pools += 1
                if dilated and pools >= 4:
                    layers.append(nn.MaxPool2d(3, stride=1, padding=1))
                    dilation = 2
                else:
                    layers.append(nn.MaxPool2d(2, stride=2))
                self._taps.append(len(layers) - 1)
                continue
            layers.append(nn.Conv2d(cin, item, 3, padding=dilation, dilation=dilation))
            if batch_norm:
                layers.append(nn.BatchNorm2d(item))
            layers.append(nn.ReLU(inplace=True))
            cin = item
        self.features = nn.Sequential(*layers)
        self.out_channels = [64, 128, 256, 512, 512]
        self.output_strides = (2, 4, 8, 8, 8) if dilated else (2, 4, 8, 16, 32)
        self.pretrained_classifier: dict[str, torch.Tensor] = {}
        self._init_weights()

    def _init_weights(self) -> None:
        for m in self.modules():  # torchvision's VGG initialisation
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
                nn.init.zeros_(m.bias)
            elif isinstance(m, nn.BatchNorm2d):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        features = []
        taps = set(self._taps)
        for i, layer in enumerate(self.features):
            x = layer(x)
            if i in taps:
                features.append(x)
        return features

    def load_pretrained(self, path: str | Path | None = None) -> None:
        """Load a torchvision VGG state dict (`features.N.*`); the classifier is set aside.

        `path=None` raises ModelError: no VGG weights ship with rtseg.
        """
        if path is None:
            raise no_bundled_weights(self.name)
        arch = self.name.removesuffix("_dilated")
        self.pretrained_classifier = load_torchvision_weights(self, path, arch, ("classifier.",))
