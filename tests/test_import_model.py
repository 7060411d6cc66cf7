"""`rtseg import` / import_onnx / import_module: models built here, checked against expectations
computed independently in the tests (not by the wrapper's own preprocessing code)."""

from __future__ import annotations

import json
import sys

import numpy as np
import pytest
from click.testing import CliRunner
from conftest import structured_frames, write_video

import rtseg
from rtseg.errors import ExportError, InputError, MissingDependencyError, OutputError
from rtseg.export.import_model import ImportConfig, compare_with_reference, import_onnx
from rtseg.onnxtools.wrap_onnx import Preprocessing, inspect_graph, wrap_onnx

SIZE = (48, 64)


def save_graph(path, nodes, inputs, outputs, initializers=(), opset=17):
    """A small ONNX written with onnx.helper (weights given as numpy arrays)."""
    import onnx
    from onnx import helper, numpy_helper

    graph = helper.make_graph(
        nodes,
        path.stem,
        inputs,
        outputs,
        initializer=[numpy_helper.from_array(np.asarray(v), k) for k, v in dict(initializers).items()],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    onnx.save(model, str(path))
    return path


def identity_model(path, input_name="image", dtype=None, height=SIZE[0], width=SIZE[1]):
    """logits = the normalised input itself: 3 classes, id = the channel with the largest value."""
    from onnx import TensorProto, helper

    dtype = dtype or TensorProto.FLOAT
    return save_graph(
        path,
        [helper.make_node("Identity", [input_name], ["logits"])],
        [helper.make_tensor_value_info(input_name, dtype, ["N", 3, height, width])],
        [helper.make_tensor_value_info("logits", dtype, ["N", 3, height, width])],
    )


def sign_model(path):
    """Two classes: 0 where the model's first channel is > 0, 1 where it is < 0."""
    from onnx import TensorProto, helper

    return save_graph(
        path,
        [
            helper.make_node("Slice", ["x", "s", "e", "a"], ["first"]),
            helper.make_node("Neg", ["first"], ["negated"]),
            helper.make_node("Concat", ["first", "negated"], ["logits"], axis=1),
        ],
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3, *SIZE])],
        [helper.make_tensor_value_info("logits", TensorProto.FLOAT, [1, 2, *SIZE])],
        {"s": np.array([0]), "e": np.array([1]), "a": np.array([1])},
    )


def red_green_blue_frame(height=SIZE[0], width=SIZE[1]) -> np.ndarray:
    """Three vertical bands: pure red, pure green, pure blue (RGB)."""
    frame = np.zeros((height, width, 3), np.uint8)
    third = width // 3
    frame[:, :third, 0] = 255
    frame[:, third : 2 * third, 1] = 255
    frame[:, 2 * third :, 2] = 255
    return frame


def config(tmp_path, model, **kw):
    pre = kw.pop("preprocessing", Preprocessing((0.0, 0.0, 0.0), (1.0, 1.0, 1.0)))
    return ImportConfig(model=model, output=tmp_path / "out" / "pkg.onnx", preprocessing=pre, **kw)


@pytest.fixture()
def out_dir(tmp_path):
    (tmp_path / "out").mkdir()
    return tmp_path / "out"


@pytest.mark.parametrize("color, expected", [("RGB", [0, 1, 2]), ("BGR", [2, 1, 0])])
def test_colour_order_reaches_the_model(tmp_path, out_dir, color, expected):
    """An identity model returns its input channel with the largest value: for a BGR model a red
    pixel must arrive in channel 2. The input name 'image' collides with the new input's."""
    model = identity_model(tmp_path / "identity.onnx")
    pre = Preprocessing((0.0, 0.0, 0.0), (1.0, 1.0, 1.0), color=color)
    result = import_onnx(config(tmp_path, model, preprocessing=pre))
    assert result.agreement == 1.0 and result.logits_size == SIZE
    with rtseg.load(result.package.onnx_path, threads=1) as seg:
        ids = seg(red_green_blue_frame())
    third = SIZE[1] // 3
    assert [ids[0, 0], ids[0, third], ids[0, -1]] == expected
    assert sorted(p.name for p in out_dir.iterdir()) == ["pkg.json", "pkg.onnx"]  # nothing else left
    meta = json.loads((out_dir / "pkg.json").read_text())
    assert meta["preprocessing"]["color"] == color and meta["input"]["color"] == "RGB"


@pytest.mark.parametrize("input_range, mean, std", [("0-1", 0.5, 0.25), ("0-255", 127.5, 64.0)])
def test_input_range_0_1_and_0_255(tmp_path, out_dir, input_range, mean, std):
    """The same threshold (red 127.5) declared in either range: ids = red < 127.5."""
    pre = Preprocessing((mean, 0.0, 0.0), (std, 1.0, 1.0), input_range=input_range)
    result = import_onnx(config(tmp_path, sign_model(tmp_path / "sign.onnx"), preprocessing=pre))
    frame = np.zeros((SIZE[0], SIZE[1], 3), np.uint8)
    frame[..., 0] = np.linspace(0, 255, SIZE[1]).astype(np.uint8)[None, :]
    with rtseg.load(result.package.onnx_path, threads=1) as seg:
        ids = seg(frame)
    np.testing.assert_array_equal(ids, (frame[..., 0] < 127.5).astype(np.uint8))
    norm = result.package.meta["normalization"]
    assert norm["mean"][0] == pytest.approx(0.5) and norm["std"][0] == pytest.approx(
        64 / 255 if std == 64 else 0.25
    )


def test_torch_module_with_logits_at_a_lower_resolution(tmp_path, out_dir):
    """Logits at a quarter of the input size are resized in the graph like PyTorch's bilinear
    interpolation (align_corners=False), then argmaxed: ids at the full input size."""
    torch = pytest.importorskip("torch")
    from torch import nn

    torch.manual_seed(0)
    net = nn.Sequential(
        nn.Conv2d(3, 8, 3, stride=2, padding=1), nn.ReLU(), nn.Conv2d(8, 4, 3, stride=2, padding=1)
    )
    mean, std = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)
    result = rtseg.import_module(net, out_dir / "net.onnx", size=SIZE, mean=mean, std=std)
    assert result.logits_size == (SIZE[0] // 4, SIZE[1] // 4)
    assert result.package.meta["import"]["logits_resized_in_graph"] is True
    frames = structured_frames(2, *SIZE, seed=3)
    x = (
        torch.from_numpy(frames).permute(0, 3, 1, 2).float() / 255 - torch.tensor(mean).view(1, 3, 1, 1)
    ) / torch.tensor(std).view(1, 3, 1, 1)
    with torch.no_grad():
        logits = nn.functional.interpolate(net(x), size=SIZE, mode="bilinear", align_corners=False)
    expected = logits.argmax(1).numpy().astype(np.uint8)
    with rtseg.load(result.package.onnx_path, backend="onnxruntime", threads=1) as seg:  # fp32 exact
        ids = seg(frames)
        assert seg.classes == ["class_0", "class_1", "class_2", "class_3"]
    assert (ids == expected).mean() > 0.999


def test_float16_model_and_classes_from_a_file(tmp_path, out_dir):
    from onnx import TensorProto

    labels = tmp_path / "labels.txt"
    labels.write_text("# name r g b\nred thing 255 0 0\ngreen thing 0 255 0\nblue thing 0 0 255\n")
    model = identity_model(tmp_path / "half.onnx", input_name="x", dtype=TensorProto.FLOAT16)
    result = rtseg.import_onnx(model, out_dir / "pkg.onnx", mean=(0, 0, 0), std=(1, 1, 1), classes=labels)
    package = result.package
    assert package.precision == "fp16" and package.classes == ["red thing", "green thing", "blue thing"]
    np.testing.assert_array_equal(package.palette, np.eye(3, dtype=np.uint8) * 255)
    with rtseg.load(package.onnx_path, threads=1) as seg:
        assert seg(red_green_blue_frame())[0, 0] == 0


def test_a_random_graph_is_refused_and_nothing_is_written(tmp_path, out_dir):
    """Noise added to the logits: the output cannot be checked, so no package is made."""
    from onnx import TensorProto, helper

    model = save_graph(
        tmp_path / "noisy.onnx",
        [
            helper.make_node("RandomUniformLike", ["x"], ["noise"], high=10.0),
            helper.make_node("Add", ["x", "noise"], ["logits"]),
        ],
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 3, *SIZE])],
        [helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["N", 3, *SIZE])],
    )
    with pytest.raises(ExportError, match="the model is not deterministic at inference"):
        import_onnx(config(tmp_path, model))
    assert list(out_dir.iterdir()) == []


def bright_noise_model(path):
    """logits = x + noise where x > 0.5: deterministic on dark frames, random on bright ones."""
    from onnx import TensorProto, helper

    return save_graph(
        path,
        [
            helper.make_node("RandomUniformLike", ["x"], ["noise"], high=10.0),
            helper.make_node("Greater", ["x", "half"], ["bright"]),
            helper.make_node("Cast", ["bright"], ["mask"], to=TensorProto.FLOAT),
            helper.make_node("Mul", ["noise", "mask"], ["masked"]),
            helper.make_node("Add", ["x", "masked"], ["logits"]),
        ],
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 3, *SIZE])],
        [helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["N", 3, *SIZE])],
        {"half": np.array(0.5, np.float32)},
    )


def test_a_model_random_on_later_frames_only_is_called_not_deterministic(tmp_path, out_dir):
    """Random on the second parity frame, not the first: reported as the model's randomness,
    not as a wrapping that disagrees with the original."""
    import cv2

    frames = tmp_path / "frames"
    frames.mkdir()
    cv2.imwrite(str(frames / "a_0.png"), np.zeros((*SIZE, 3), np.uint8))
    cv2.imwrite(str(frames / "a_1.png"), np.full((*SIZE, 3), 255, np.uint8))
    model = bright_noise_model(tmp_path / "bright_noise.onnx")
    says = r"not deterministic at inference: .*\(parity frame 1, the original\)"
    with pytest.raises(ExportError, match=says):
        import_onnx(config(tmp_path, model, parity_source=str(frames), parity_frames=2))
    assert list(out_dir.iterdir()) == []


def test_a_wrapped_graph_that_varies_between_runs_blames_the_model(tmp_path):
    """Randomness the reference's two runs missed shows in the wrapped graph: the wrapping adds
    none, so it is the model's."""
    import onnx

    noisy = onnx.load(str(bright_noise_model(tmp_path / "n.onnx")))
    io = inspect_graph(noisy)
    pre = Preprocessing((0.0,) * 3, (1.0,) * 3)
    frames = np.full((2, *SIZE, 3), 255, np.uint8)
    reference = pre.apply(frames).astype(np.float32)  # the model without its noise
    with pytest.raises(ExportError, match="not deterministic at inference"):
        compare_with_reference(wrap_onnx(noisy, io, pre, SIZE, SIZE), frames, reference, 0.999)


def test_parity_refuses_a_wrapping_that_changes_the_results(tmp_path):
    """The check itself can fail: a graph wrapped for BGR against the RGB reference."""
    import onnx

    from rtseg.export.import_model import reference_logits

    path = identity_model(tmp_path / "identity.onnx")
    original = onnx.load(str(path))
    io = inspect_graph(original)
    frames = structured_frames(2, *SIZE, seed=1)
    rgb, bgr = Preprocessing((0.5,) * 3, (0.25,) * 3), Preprocessing((0.5,) * 3, (0.25,) * 3, color="BGR")
    reference = reference_logits(path, io, rgb, frames)
    assert (
        compare_with_reference(wrap_onnx(original, io, rgb, SIZE, SIZE), frames, reference, 0.999)[0] == 1.0
    )
    with pytest.raises(ExportError, match="disagrees with the original: argmax agreement"):
        compare_with_reference(wrap_onnx(original, io, bgr, SIZE, SIZE), frames, reference, 0.999)


def test_refusals_before_any_work(tmp_path, out_dir):
    fixed = sign_model(tmp_path / "fixed.onnx")
    with pytest.raises(InputError, match="fixed at 48x64 .*--size 96x128"):
        import_onnx(config(tmp_path, fixed, size=(96, 128)))
    dynamic = identity_model(tmp_path / "dynamic.onnx", height="H", width="W")
    with pytest.raises(InputError, match="give --size HxW"):
        import_onnx(config(tmp_path, dynamic))
    with pytest.raises(InputError, match="'camvid' has 11 classes but the model outputs 2"):
        import_onnx(config(tmp_path, fixed, classes="camvid"))
    with pytest.raises(InputError, match="neither a known label set"):
        import_onnx(config(tmp_path, fixed, classes="pascal"))
    with pytest.raises(OutputError, match="is the input MODEL .*choose another name"):
        import_onnx(ImportConfig(fixed, fixed, Preprocessing((0,) * 3, (1,) * 3)))
    with pytest.raises(InputError, match="std values must be positive"):
        Preprocessing((0, 0, 0), (1, 0, 1))
    assert list(out_dir.iterdir()) == []


def test_graphs_that_are_not_float_nchw_logits(tmp_path):
    import onnx
    from onnx import TensorProto, helper

    ids_model = save_graph(
        tmp_path / "ids.onnx",
        [helper.make_node("ArgMax", ["x"], ["ids"], axis=1, keepdims=0)],
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3, *SIZE])],
        [helper.make_tensor_value_info("ids", TensorProto.INT64, [1, *SIZE])],
    )
    with pytest.raises(ExportError, match="not float logits"):
        inspect_graph(onnx.load(str(ids_model)))
    nhwc = save_graph(
        tmp_path / "nhwc.onnx",
        [helper.make_node("Identity", ["x"], ["y"])],
        [helper.make_tensor_value_info("x", TensorProto.UINT8, [1, *SIZE, 3])],
        [helper.make_tensor_value_info("y", TensorProto.UINT8, [1, *SIZE, 3])],
    )
    with pytest.raises(ExportError, match="expected float NCHW"):
        inspect_graph(onnx.load(str(nhwc)))
    with pytest.raises(ExportError, match="no output 'aux'"):
        inspect_graph(onnx.load(str(ids_model)), output_name="aux")


def test_import_module_without_torch(monkeypatch, tmp_path):
    import subprocess

    from rtseg.export.import_model import import_module

    code = "import sys; sys.modules['torch'] = None; import rtseg.export.import_model, rtseg.cli.import_model"
    subprocess.run([sys.executable, "-c", code], check=True)  # no torch at import time
    monkeypatch.setitem(sys.modules, "torch", None)
    with pytest.raises(MissingDependencyError, match=r"torch is required .*rtseg\[train\]"):
        import_module(object(), tmp_path / "m.onnx", SIZE, Preprocessing((0,) * 3, (1,) * 3))


def test_cli_import_with_real_frames_then_run(tmp_path, out_dir):
    from rtseg.cli import main

    model = identity_model(tmp_path / "identity.onnx")
    video = write_video(tmp_path / "clip.mp4", structured_frames(6, 96, 128, seed=2))
    args = ["import", model, "-o", out_dir / "mine.onnx", "--mean", "0.5", "--std", "0.25,0.25,0.25"]
    args += ["--input-color", "bgr", "--parity-frames", video, "--parity-count", 3]
    result = CliRunner().invoke(main, [str(a) for a in args])
    assert result.exit_code == 0, result.output
    assert "wrote" in result.stdout and "3 frames (clip.mp4)" in result.stdout
    assert "warning" not in result.stderr
    meta = json.loads((out_dir / "mine.json").read_text())
    assert meta["parity"]["frames_source"] == "clip.mp4" and str(tmp_path) not in json.dumps(meta)
    masks = tmp_path / "masks"
    run = CliRunner().invoke(
        main,
        ["run", "--video", str(video), "--model", str(out_dir / "mine.onnx"), "--masks", str(masks), "-q"],
    )
    assert run.exit_code == 0, run.output
    assert len(list(masks.glob("*.png"))) == 6
    bad = CliRunner().invoke(main, [str(a) for a in [*args[:4], "--mean", "a,b", "--std", "1"]])
    assert bad.exit_code == 1 and bad.stderr.startswith("rtseg: error: --mean must be 1 or 3 numbers")


def test_label_files(tmp_path):
    from rtseg.data.label_files import label_set_from_file, resolve_label_set

    (tmp_path / "a.json").write_text(json.dumps(["road", "car"]))
    (tmp_path / "b.json").write_text(
        json.dumps({"classes": ["road", "car"], "palette": [[1, 2, 3], [4, 5, 6]]})
    )
    (tmp_path / "c.json").write_text(json.dumps([{"name": "road", "color": [7, 8, 9]}]))
    (tmp_path / "d.json").write_text(json.dumps({"classes": ["road"], "palette": [[300, 0, 0]]}))
    assert label_set_from_file(tmp_path / "a.json").classes == ("road", "car")
    assert label_set_from_file(tmp_path / "b.json").palette == ((1, 2, 3), (4, 5, 6))
    assert label_set_from_file(tmp_path / "c.json").palette == ((7, 8, 9),)
    with pytest.raises(InputError, match="in 0..255"):
        label_set_from_file(tmp_path / "d.json")
    assert resolve_label_set("Cityscapes", 19).name == "cityscapes"
    assert resolve_label_set(None, 3).classes == ("class_0", "class_1", "class_2")


@pytest.mark.slow
def test_an_rtseg_network_imported_as_a_module_equals_its_rtseg_export(
    tmp_path, tiny_checkpoint, tiny_package
):
    """The same network through `rtseg export` and through import_module: the same ids."""
    pytest.importorskip("torch")
    from conftest import TINY_SIZE

    from rtseg.core.checkpoint import load_checkpoint
    from rtseg.models import model_from_checkpoint

    payload = load_checkpoint(tiny_checkpoint)
    norm = payload["normalization"]
    result = rtseg.import_module(
        model_from_checkpoint(payload),
        tmp_path / "imported.onnx",
        size=TINY_SIZE,
        mean=norm["mean"],
        std=norm["std"],
        classes="camvid",
    )
    frames = structured_frames(3, 120, 160, seed=8)
    with (
        rtseg.load(result.package.onnx_path, threads=1) as mine,
        rtseg.load(tiny_package.onnx_path, threads=1) as ref,
    ):
        assert mine.classes == ref.classes
        assert (mine(frames) == ref(frames)).mean() > 0.999


def test_an_old_opset_graph_is_converted_and_ties_count_as_agreement(tmp_path, out_dir):
    """Opset 11 is brought to 13; average-pooled logits at half size are resized in the graph;
    pixels where channels tie (grey pixels: equal logits) agree whichever id wins."""
    from onnx import TensorProto, helper

    half = (SIZE[0] // 2, SIZE[1] // 2)
    model = save_graph(
        tmp_path / "old.onnx",
        [helper.make_node("AveragePool", ["x"], ["logits"], kernel_shape=[2, 2], strides=[2, 2])],
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 3, *SIZE])],
        [helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["N", 3, *half])],
        opset=11,
    )
    result = import_onnx(config(tmp_path, model))
    assert result.logits_size == half and result.agreement == 1.0
    import onnx

    assert onnx.load(str(result.package.onnx_path)).opset_import[0].version == 13
    with rtseg.load(result.package.onnx_path, threads=1) as seg:
        ids = seg(red_green_blue_frame())
    third = SIZE[1] // 3
    assert [ids[0, 0], ids[0, third + 2], ids[0, -1]] == [0, 1, 2]
