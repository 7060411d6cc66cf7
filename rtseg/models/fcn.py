"""FCN-32s / FCN-16s / FCN-8s (Long, Shelhamer, Darrell), classic on VGG and on other encoders.

On VGG the head is the classic convolutionalised classifier: fc6 as a 7x7 convolution and fc7
as a 1x1 convolution (4096 wide by default), each with ReLU and dropout; when torchvision VGG
weights were loaded into the encoder, fc6/fc7 take its `classifier.0/3` weights reshaped to
convolutions, as in the paper. On other encoders the head is a 3x3 ConvBNReLU.

Scores from the stride-32 head are upsampled 2x (a transposed convolution initialised to
bilinear interpolation and learned, or fixed bilinear) and added to 1x1 scores of the stride-16
(`pool4`) and stride-8 (`pool3`) features; the last upsampling to the input size is bilinear
(the paper's fixed bilinear deconvolution), so any input size works, not only multiples of 32.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from rtseg.errors import ModelError
from rtseg.models.blocks import ConvBNReLU, encoder_strides, resize_like
from rtseg.models.vgg import VGGEncoder


def bilinear_kernel(channels: int, kernel: int) -> torch.Tensor:
    """(channels, channels, k, k) weights of a per-channel bilinear upsampling deconvolution."""
    factor = (kernel + 1) // 2
    center = factor - 1 if kernel % 2 == 1 else factor - 0.5
    og = np.ogrid[:kernel, :kernel]
    filt = (1 - abs(og[0] - center) / factor) * (1 - abs(og[1] - center) / factor)
    weight = torch.zeros(channels, channels, kernel, kernel)
    weight[range(channels), range(channels)] = torch.from_numpy(filt).float()
    return weight


class Upsample2x(nn.Module):
    """2x upsampling of (N, C, h, w) scores to the size of a reference map (h' ~ 2h).

    `mode="transposed"`: ConvTranspose2d(k=4, s=2, p=1), bilinear-initialised and learned,
    followed by a bilinear resize only when the reference is odd-sized.
    `mode="bilinear"`: a fixed bilinear resize.
    """

    def __init__(self, channels: int, mode: str = "transposed"):
        super().__init__()
        if mode not in ("transposed", "bilinear"):
            raise ModelError(f"FCN upsample must be 'transposed' or 'bilinear', got {mode!r}")
        self.deconv = None
        if mode == "transposed":
            self.deconv = nn.ConvTranspose2d(channels, channels, 4, stride=2, padding=1, bias=False)
            with torch.no_grad():
                self.deconv.weight.copy_(bilinear_kernel(channels, 4))

    def forward(self, x: torch.Tensor, ref: torch.Tensor) -> torch.Tensor:
        if self.deconv is not None:
            x = self.deconv(x)
        return resize_like(x, ref)


def _zero_conv(cin: int, cout: int) -> nn.Conv2d:
    conv = nn.Conv2d(cin, cout, 1)
    nn.init.zeros_(conv.weight)
    nn.init.zeros_(conv.bias)
    return conv


class FCN(nn.Module):
    """Input (N, 3, H, W) float32 normalised RGB; output (N, num_classes, H, W) float32 logits.

    `output_stride`: 32, 16 or 8 (FCN-32s/16s/8s). `fc_channels`: width of the classic VGG
    fc6/fc7 head (4096 in the paper); `head_channels`: width of the 3x3 head on other encoders.
    """

    def __init__(
        self,
        encoder: nn.Module,
        num_classes: int,
        output_stride: int = 8,
        fc_channels: int = 4096,
        head_channels: int = 512,
        upsample: str = "transposed",
    ):
        super().__init__()
        if output_stride not in (8, 16, 32):
            raise ModelError(f"FCN output stride must be 8, 16 or 32, got {output_stride}")
        strides = encoder_strides(encoder)
        if strides[2:] != (8, 16, 32):
            name = getattr(encoder, "name", type(encoder).__name__)
            raise ModelError(
                f"FCN needs an encoder with stride 8/16/32 features; {name} has "
                f"strides {'/'.join(map(str, strides[2:]))} (a dilated encoder): "
                "use pspnet or deeplabv3plus on it"
            )
        self.encoder = encoder
        self.output_stride = output_stride
        self.num_classes = num_classes
        c8, c16, c32 = encoder.out_channels[2:]
        self.classic = isinstance(encoder, VGGEncoder)
        if self.classic:
            self.head = nn.Sequential(
                nn.Conv2d(c32, fc_channels, 7, padding=3),
                nn.ReLU(inplace=True),
                nn.Dropout(0.5),
                nn.Conv2d(fc_channels, fc_channels, 1),
                nn.ReLU(inplace=True),
                nn.Dropout(0.5),
            )
            width = fc_channels
            self._load_vgg_classifier(encoder.pretrained_classifier)
        else:
            self.head = nn.Sequential(ConvBNReLU(c32, head_channels, 3), nn.Dropout(0.1))
            width = head_channels
        self.score_fr = nn.Conv2d(width, num_classes, 1)
        if output_stride <= 16:
            self.upscore2 = Upsample2x(num_classes, upsample)
            self.score_pool4 = _zero_conv(c16, num_classes)
        if output_stride == 8:
            self.upscore_pool4 = Upsample2x(num_classes, upsample)
            self.score_pool3 = _zero_conv(c8, num_classes)

    def _load_vgg_classifier(self, classifier: dict[str, torch.Tensor]) -> None:
        """fc6/fc7 from torchvision's `classifier.0/3` (Linear) reshaped to convolutions."""
        fc6, fc7 = self.head[0], self.head[3]
        w6, w7 = classifier.get("classifier.0.weight"), classifier.get("classifier.3.weight")
        if w6 is None or w7 is None:
            return
        if w6.numel() != fc6.weight.numel() or w7.numel() != fc7.weight.numel():
            raise ModelError(
                f"VGG classifier weights {tuple(w6.shape)}/{tuple(w7.shape)} do not fit "
                f"fc6/fc7 of width {fc6.out_channels}; use fc_channels={w6.shape[0]}"
            )
        with torch.no_grad():
            fc6.weight.copy_(w6.reshape(fc6.weight.shape))
            fc6.bias.copy_(classifier["classifier.0.bias"])
            fc7.weight.copy_(w7.reshape(fc7.weight.shape))
            fc7.bias.copy_(classifier["classifier.3.bias"])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        features = self.encoder(x)
        scores = self.score_fr(self.head(features[4]))
        if self.output_stride <= 16:
            scores = self.upscore2(scores, features[3]) + self.score_pool4(features[3])
        if self.output_stride == 8:
            scores = self.upscore_pool4(scores, features[2]) + self.score_pool3(features[2])
        return F.interpolate(scores, size=x.shape[-2:], mode="bilinear", align_corners=False)
