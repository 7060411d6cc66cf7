"""The ONNX rewrite TensorRT parses (uint8 only into a Cast) and `rtseg build-engine
--prepare-only`, against the fake TensorRT's own walk of the graph, ONNX Runtime and the bundled
packages; no TensorRT or GPU needed."""

from __future__ import annotations

import fake_tensorrt
import pytest
from click.testing import CliRunner
from conftest import TINY_SIZE

from rtseg.cli import main
from rtseg.engine import BuildConfig
from rtseg.engine.builder import build_engine
from rtseg.errors import ModelError


def _run_ort(model, frames):
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.log_severity_level = 3
    session = ort.InferenceSession(model.SerializeToString(), options, providers=["CPUExecutionProvider"])
    return session.run(None, {"image": frames})[0]


def test_prepare_for_tensorrt_leaves_uint8_only_to_casts_and_keeps_results(tiny_package):
    import numpy as np
    import onnx
    from conftest import structured_frames
    from onnx import TensorProto

    from rtseg.engine.onnx_prep import prepare_for_tensorrt, uint8_violations

    original = onnx.load(str(tiny_package.onnx_path))
    assert any("feeds Shape" in p for p in uint8_violations(original))  # what the export has
    prepared = prepare_for_tensorrt(original)
    assert uint8_violations(prepared) == []
    first = prepared.graph.node[0]
    assert first.op_type == "Cast" and first.input[0] == "image"  # uint8 -> float before any layout op
    assert [n.op_type for n in prepared.graph.node if "image" in n.input] == ["Cast"]
    shapes = [n for n in prepared.graph.node if n.op_type == "Shape"]
    assert shapes and all(
        n.input[0] == first.output[0] for n in shapes if "image" in n.name or n is shapes[0]
    )
    producers = {o: n for n in prepared.graph.node for o in n.output}
    last = producers["class_ids"]
    assert last.op_type == "Cast" and producers[last.input[0]].op_type == "Cast"  # int -> float -> uint8
    assert next(a.i for a in producers[last.input[0]].attribute if a.name == "to") == TensorProto.FLOAT
    assert not fake_tensorrt.uint8_rule_errors_of(prepared)  # the fake parser takes it
    frames = structured_frames(2, *TINY_SIZE, seed=9)
    np.testing.assert_array_equal(_run_ort(original, frames), _run_ort(prepared, frames))


def test_fake_parser_rejects_a_uint8_tensor_feeding_anything_but_a_cast(
    fake_trt, fake_gpu, tiny_package, tmp_path, monkeypatch
):
    import onnx

    import rtseg.engine.builder as builder

    errors = fake_tensorrt.uint8_rule_errors_of(onnx.load(str(tiny_package.onnx_path)))
    assert any("operator: Shape" in e for e in errors) and any("operator: Transpose" in e for e in errors)
    assert any("Cast to uint8 only from float" in e for e in errors)  # ArgMax int64 -> uint8

    def unprepared(onnx_path, out_path):  # the build without the rewrite: the fake parser says no
        out_path.write_bytes(onnx_path.read_bytes())
        return out_path

    monkeypatch.setattr(builder, "write_prepared", unprepared)
    with pytest.raises(ModelError, match="cannot parse tiny.onnx: .*uint8 tensor image"):
        build_engine(tiny_package.onnx_path, tmp_path / "t.engine", BuildConfig(timing_cache=None))


def test_prepare_for_tensorrt_refuses_what_it_cannot_fix(tmp_path):
    import onnx
    from onnx import TensorProto, helper

    from rtseg.engine.onnx_prep import prepare_for_tensorrt

    graph = helper.make_graph(  # uint8 image -> Neg -> uint8: no rule fixes it
        [helper.make_node("Neg", ["image"], ["out"], name="neg")],
        "g",
        [helper.make_tensor_value_info("image", TensorProto.UINT8, [1, 4, 4, 3])],
        [helper.make_tensor_value_info("out", TensorProto.UINT8, [1, 4, 4, 3])],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    with pytest.raises(ModelError, match="uint8 tensor 'image' feeds Neg node neg"):
        prepare_for_tensorrt(model)
    onnx.checker.check_model(model)


def test_build_engine_parses_the_prepared_copy(fake_trt, fake_gpu, tiny_package, tmp_path):
    build_engine(tiny_package.onnx_path, tmp_path / "t.engine", BuildConfig(timing_cache=None))
    assert fake_trt.calls["parsed"] != str(tiny_package.onnx_path)
    assert fake_trt.calls["parsed"].endswith("tiny.onnx")


# --- build-engine --prepare-only: the parser's input, without TensorRT or a GPU ----------------


def _val_frames(size, count=2):
    """`count` CamVid val frames at the model's size (RGB), or structured frames without the data."""
    import cv2
    import numpy as np
    from conftest import DATA, structured_frames

    from rtseg.core.frames import resize_frame

    images = sorted((DATA / "camvid" / "val").glob("*.png"))[:count]
    if len(images) < count:
        return structured_frames(count, *size, seed=3)
    return np.stack([resize_frame(cv2.imread(str(p))[..., ::-1].copy(), size) for p in images])


def test_prepare_only_writes_the_parser_input_without_tensorrt_or_gpu(
    no_tensorrt, no_gpu, tiny_package, tmp_path
):
    import numpy as np
    import onnx

    out = tmp_path / "parse_me.onnx"
    result = CliRunner().invoke(
        main, ["build-engine", str(tiny_package.onnx_path), "--prepare-only", str(out)]
    )
    assert result.exit_code == 0, result.output
    assert f"wrote {out}" in result.stdout and "trtexec --onnx=" in result.stdout
    assert fake_tensorrt.uint8_rule_errors(out) == []  # the fake parser (its own walk) takes it
    frames = _val_frames(TINY_SIZE)
    np.testing.assert_array_equal(
        _run_ort(onnx.load(str(out)), frames), _run_ort(onnx.load(str(tiny_package.onnx_path)), frames)
    )
    assert not list(tmp_path.glob(".*.tmp"))


@pytest.mark.parametrize("precision", ["fp32", "fp16", "int8"])
def test_prepare_only_on_the_bundled_packages(no_tensorrt, precision, tmp_path):
    import numpy as np
    import onnx

    from rtseg.core.package import default_model_path, load_package, variant_path

    fp32 = default_model_path()
    if not fp32.is_file():
        pytest.skip(f"no bundled model at {fp32}")
    package = load_package(variant_path(fp32, precision))
    out = tmp_path / f"{precision}.onnx"
    result = CliRunner().invoke(main, ["build-engine", str(package.onnx_path), "--prepare-only", str(out)])
    assert result.exit_code == 0, result.output
    assert fake_tensorrt.uint8_rule_errors(out) == []  # no uint8 tensor feeds anything but a Cast
    assert fake_tensorrt.uint8_rule_errors(package.onnx_path)  # ... which the package itself breaks
    frames = _val_frames(package.input_size)
    np.testing.assert_array_equal(
        _run_ort(onnx.load(str(out)), frames), _run_ort(onnx.load(str(package.onnx_path)), frames)
    )


def test_prepare_only_refuses_cpu_int8_and_the_packages_own_file(
    no_tensorrt, tiny_package, int8cpu_package, tmp_path
):
    own = CliRunner().invoke(
        main, ["build-engine", str(tiny_package.onnx_path), "--prepare-only", str(tiny_package.onnx_path)]
    )
    assert own.exit_code == 1 and "--prepare-only" in own.stderr and "is the input MODEL" in own.stderr
    cpu = int8cpu_package
    refused = CliRunner().invoke(
        main, ["build-engine", str(cpu.onnx_path), "--prepare-only", str(tmp_path / "p.onnx")]
    )
    assert (
        refused.exit_code == 1 and "int8-target cpu" in refused.stderr and "Traceback" not in refused.output
    )
    assert not (tmp_path / "p.onnx").exists()
