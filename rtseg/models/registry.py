"""`create_model(arch, encoder, num_classes)`: the one way models are built."""

from __future__ import annotations

from collections.abc import Callable

from torch import nn

from rtseg.errors import ModelError
from rtseg.models.efficientnet_lite import VARIANTS as _EFFNET_VARIANTS
from rtseg.models.efficientnet_lite import EfficientNetLiteEncoder
from rtseg.models.fpn import FPNDecoder
from rtseg.models.resnet import ResNetEncoder
from rtseg.models.segmentation import SegmentationModel
from rtseg.models.vgg import VGGEncoder

ENCODERS: dict[str, Callable[..., nn.Module]] = {}
ARCHITECTURES: dict[str, Callable[..., nn.Module]] = {}


def register_arch(name: str):
    def wrap(factory):
        ARCHITECTURES[name] = factory
        return factory

    return wrap


for _variant in _EFFNET_VARIANTS:
    ENCODERS[_variant] = lambda v=_variant, **kw: EfficientNetLiteEncoder(v)

# VGG / ResNet: torchvision parameter names; no weights ship (pretrained needs a path).
ENCODERS["vgg16"] = lambda **kw: VGGEncoder(16)
ENCODERS["vgg16_bn"] = lambda **kw: VGGEncoder(16, batch_norm=True)
ENCODERS["vgg19_dilated"] = lambda **kw: VGGEncoder(19, dilated=True)
for _depth in (18, 34, 50):
    ENCODERS[f"resnet{_depth}"] = lambda d=_depth, **kw: ResNetEncoder(d)


def has_bundled_weights(name: str) -> bool:
    """True when `pretrained=True` finds ImageNet weights for encoder `name` without a path."""
    return name in _EFFNET_VARIANTS


def build_encoder(name: str, pretrained: bool | str = False) -> nn.Module:
    """Encoder by name; `pretrained=True` loads the weights the environment has for it,
    a path loads that file (torchvision key names for VGG/ResNet)."""
    if name not in ENCODERS:
        raise ModelError(f"unknown encoder {name!r}; choose from {', '.join(sorted(ENCODERS))}")
    encoder = ENCODERS[name]()
    if pretrained:
        encoder.load_pretrained(None if pretrained is True else pretrained)
    return encoder


@register_arch("fpn")
def _fpn(encoder: nn.Module, num_classes: int, **kw) -> nn.Module:
    return SegmentationModel(encoder, FPNDecoder(encoder.out_channels, **kw), num_classes)


@register_arch("fpn_lite")
def _fpn_lite(encoder: nn.Module, num_classes: int, **kw) -> nn.Module:
    kw.setdefault("pyramid_channels", 96)
    kw.setdefault("segmentation_channels", 64)
    decoder = FPNDecoder(encoder.out_channels, light=True, **kw)
    return SegmentationModel(encoder, decoder, num_classes)


def _fcn(output_stride: int):
    def build(encoder: nn.Module, num_classes: int, **kw) -> nn.Module:
        from rtseg.models.fcn import FCN

        return FCN(encoder, num_classes, output_stride=output_stride, **kw)

    return build


for _stride in (32, 16, 8):
    ARCHITECTURES[f"fcn{_stride}s"] = _fcn(_stride)


@register_arch("unet")
def _unet(encoder: nn.Module, num_classes: int, **kw) -> nn.Module:
    from rtseg.models.unet import UNetDecoder

    return SegmentationModel(encoder, UNetDecoder(encoder.out_channels, **kw), num_classes)


@register_arch("pspnet")
def _pspnet(encoder: nn.Module, num_classes: int, **kw) -> nn.Module:
    from rtseg.models.pspnet import PSPDecoder

    return SegmentationModel(encoder, PSPDecoder(encoder.out_channels, **kw), num_classes)


@register_arch("deeplabv3plus")
def _deeplabv3plus(encoder: nn.Module, num_classes: int, **kw) -> nn.Module:
    from rtseg.models.deeplabv3plus import build_deeplabv3plus_decoder

    return SegmentationModel(encoder, build_deeplabv3plus_decoder(encoder, **kw), num_classes)


def create_model(
    arch: str, encoder: str, num_classes: int, pretrained: bool | str = False, **kwargs
) -> nn.Module:
    """Build `arch` (e.g. "fpn", "unet", "fcn8s") on `encoder` (e.g. "efficientnet_lite0")."""
    if arch not in ARCHITECTURES:
        raise ModelError(f"unknown architecture {arch!r}; choose from {', '.join(sorted(ARCHITECTURES))}")
    if num_classes < 1:
        raise ModelError(f"num_classes must be positive, got {num_classes}")
    encoder_module = build_encoder(encoder, pretrained)
    try:
        model = ARCHITECTURES[arch](encoder_module, num_classes, **kwargs)
    except TypeError as exc:
        if "unexpected keyword argument" not in str(exc):
            raise
        raise ModelError(
            f"{arch} on {encoder} does not take option {str(exc).split('argument')[-1].strip()} "
            f"(given: {', '.join(sorted(kwargs))})"
        ) from exc
    if getattr(encoder_module, "pretrained_classifier", None):
        encoder_module.pretrained_classifier = {}  # VGG fc6/fc7 weights: used by FCN, then freed
    return model


# Input normalisation each encoder's pretrained weights expect (RGB in [0, 1]).
IMAGENET_NORMALIZATION = {"mean": (0.485, 0.456, 0.406), "std": (0.229, 0.224, 0.225)}
ENCODER_NORMALIZATION = {v: {"mean": (0.5, 0.5, 0.5), "std": (0.5, 0.5, 0.5)} for v in _EFFNET_VARIANTS}


def encoder_normalization(name: str) -> dict:
    """{"mean": (r, g, b), "std": (r, g, b)} for inputs scaled to [0, 1]."""
    return dict(ENCODER_NORMALIZATION.get(name, IMAGENET_NORMALIZATION))


def model_from_checkpoint(payload: dict) -> nn.Module:
    """Rebuild the model a checkpoint describes and load its weights (strict), in eval mode."""
    spec = payload["model"]
    model = create_model(spec["arch"], spec["encoder"], spec["num_classes"], **spec.get("kwargs", {}))
    try:
        model.load_state_dict(payload["state_dict"])
    except RuntimeError as exc:
        raise ModelError(
            f"checkpoint weights do not fit {spec['arch']}/{spec['encoder']}: {str(exc).splitlines()[0]}"
        ) from exc
    return model.eval()
