"""FP16 and INT8 packages, TensorRT's Q/DQ rules, calibration sources, default variant choice."""

from __future__ import annotations

import json
import shutil

import cv2
import numpy as np
import onnx
import pytest
from band_model import band_graph
from conftest import TINY_SIZE, structured_frames
from onnx import TensorProto, helper, numpy_helper

from rtseg.core.frames import evenly_spaced
from rtseg.core.package import load_package, pick_default_variant, record_metrics, write_sidecar
from rtseg.errors import ExportError, InputError
from rtseg.export.calibration import calibration_frames
from rtseg.export.fp16 import convert_fp16
from rtseg.export.int8 import Int8Options, quantize_int8
from rtseg.export.precision import argmax_agreement
from rtseg.onnxtools.qdq_rules import assert_trt_qdq_rules, check_qdq_rules


def _io_types(path):
    graph = onnx.load(str(path)).graph
    return graph.input[0].type.tensor_type.elem_type, graph.output[0].type.tensor_type.elem_type


# --- FP16 ------------------------------------------------------------------------------------


def test_fp16_keeps_uint8_io_and_casts_input_to_float16(fp16_package, tiny_package):
    assert _io_types(fp16_package.onnx_path) == (TensorProto.UINT8, TensorProto.UINT8)
    graph = onnx.load(str(fp16_package.onnx_path)).graph
    input_cast = next(n for n in graph.node if n.op_type == "Cast")
    assert helper.get_attribute_value(input_cast.attribute[0]) == TensorProto.FLOAT16
    conv_weights = {i.name: i.data_type for i in graph.initializer if i.name.endswith("weight")}
    assert conv_weights and set(conv_weights.values()) == {TensorProto.FLOAT16}
    assert fp16_package.onnx_path.stat().st_size < 0.6 * tiny_package.onnx_path.stat().st_size


def test_fp16_runs_on_onnxruntime_and_agrees_with_fp32(fp16_package, tiny_package):
    frames = structured_frames(3, *TINY_SIZE, seed=7)
    assert argmax_agreement(tiny_package.onnx_path, fp16_package.onnx_path, frames, threads=1) >= 0.97


def test_fp16_sidecar_names_precision_and_checkpoint(fp16_package, tiny_package):
    meta = load_package(fp16_package.onnx_path).meta
    assert meta["precision"] == "fp16"
    assert meta["derived_from"]["sha256"] == tiny_package.meta["onnx_sha256"]
    checkpoint = fp16_package.sidecar_path.parent / meta["source"]["checkpoint"]
    original = tiny_package.sidecar_path.parent / tiny_package.meta["source"]["checkpoint"]
    assert checkpoint.resolve() == original.resolve()
    assert meta["source"]["sha256"] == tiny_package.meta["source"]["sha256"]
    assert "parity" not in meta


def test_fp16_refuses_a_non_fp32_package(fp16_package, tmp_path):
    with pytest.raises(ExportError, match="convert from the fp32 package"):
        convert_fp16(fp16_package, tmp_path / "again.onnx")


# --- INT8 ------------------------------------------------------------------------------------


def test_int8_follows_tensorrt_rules_and_keeps_io(int8_package):
    assert check_qdq_rules(int8_package.onnx_path) == []
    assert _io_types(int8_package.onnx_path) == (TensorProto.UINT8, TensorProto.UINT8)
    q = int8_package.meta["calibration"]["qdq_nodes"]
    assert q["QuantizeLinear"] > 10 and q["DequantizeLinear"] > q["QuantizeLinear"]


def test_int8_leaves_preprocessing_in_float(int8_package):
    graph = onnx.load(str(int8_package.onnx_path)).graph
    producers = {o: n for n in graph.node for o in n.output}
    first_conv = next(n for n in graph.node if n.op_type == "Conv")
    dq = producers[first_conv.input[0]]
    assert dq.op_type == "DequantizeLinear"
    quantized = producers[producers[dq.input[0]].input[0]]  # DQ <- Q <- the normalised image
    assert quantized.op_type == "Add"  # x * scale + shift: uint8 -> float stays outside Q/DQ
    cast = next(n for n in graph.node if n.op_type == "Cast")
    assert all(producers.get(i, cast).op_type != "DequantizeLinear" for i in cast.input)


def test_int8_sidecar_records_calibration(int8_package, tiny_package):
    meta = load_package(int8_package.onnx_path).meta
    assert meta["precision"] == "int8"
    assert meta["calibration"]["method"] == "minmax" and meta["calibration"]["frames"] == 6
    assert meta["calibration"]["source"] == "generated"
    assert set(meta["calibration"]["excluded_ops"]) == {"ConvTranspose", "Softmax"}
    assert meta["source"]["sha256"] == tiny_package.meta["source"]["sha256"]


def test_int8_agrees_with_fp32_on_most_pixels(int8_package, tiny_package):
    frames = structured_frames(3, *TINY_SIZE, seed=11)
    assert argmax_agreement(tiny_package.onnx_path, int8_package.onnx_path, frames, threads=1) >= 0.6


@pytest.mark.slow
def test_int8_exclude_depthwise_keeps_grouped_convs_float(tiny_package, tmp_path):
    frames = structured_frames(4, *TINY_SIZE, seed=3)
    options = Int8Options(method="minmax", exclude=("depthwise",))
    package = quantize_int8(tiny_package, tmp_path / "dw.onnx", frames, options)
    graph = onnx.load(str(package.onnx_path)).graph
    producers = {o: n for n in graph.node for o in n.output}
    grouped = [
        n
        for n in graph.node
        if n.op_type == "Conv" and any(a.name == "group" and a.i > 1 for a in n.attribute)
    ]
    assert grouped
    float_weights = {i.name for i in graph.initializer if i.data_type == TensorProto.FLOAT}
    assert all(n.input[1] in float_weights for n in grouped)  # weights never went through Q/DQ
    pointwise = [n for n in graph.node if n.op_type == "Conv" and n not in grouped]
    assert any(producers[n.input[1]].op_type == "DequantizeLinear" for n in pointwise)
    assert check_qdq_rules(package.onnx_path) == []


@pytest.mark.parametrize(
    "frames, match",
    [
        (np.zeros((2, 10, 10, 3), np.uint8), "calibration frames must be"),
        (np.zeros((2, *TINY_SIZE, 3), np.float32), "uint8"),
    ],
)
def test_int8_rejects_bad_calibration_frames(tiny_package, tmp_path, frames, match):
    with pytest.raises(InputError, match=match):
        quantize_int8(tiny_package, tmp_path / "x.onnx", frames)


def test_int8_failing_the_tensorrt_rules_leaves_nothing_behind(tiny_package, tmp_path, monkeypatch):
    import rtseg.export.int8 as int8

    monkeypatch.setattr(int8, "check_qdq_rules", lambda model: ["Conv 'x': a rule broken"])
    monkeypatch.setattr(int8, "_quantize", lambda src, out, *rest: shutil.copy(src, out))  # no calibration
    with pytest.raises(ExportError, match="break TensorRT's rules: Conv 'x'"):
        quantize_int8(tiny_package, tmp_path / "x.onnx", structured_frames(2, *TINY_SIZE))
    assert list(tmp_path.iterdir()) == []  # no orphan x.onnx, no temporary folder


def test_int8_rejects_unknown_exclude_word(tiny_package, tmp_path):
    frames = structured_frames(2, *TINY_SIZE)
    with pytest.raises(InputError, match="'nonsense' is no group"):
        quantize_int8(tiny_package, tmp_path / "x.onnx", frames, Int8Options(exclude=("nonsense",)))


@pytest.mark.slow
def test_int8_conv_outputs_placement_quantizes_conv_outputs_with_activation_range(tiny_package, tmp_path):
    frames = structured_frames(4, *TINY_SIZE, seed=3)
    package = quantize_int8(tiny_package, tmp_path / "co.onnx", frames, Int8Options(placement="conv-outputs"))
    assert check_qdq_rules(package.onnx_path) == []
    graph = onnx.load(str(package.onnx_path)).graph
    users = {}
    for node in graph.node:
        for name in node.input:
            users.setdefault(name, []).append(node)
    consts = {i.name: numpy_helper.to_array(i) for i in graph.initializer}
    stem = next(n for n in graph.node if n.op_type == "Conv")
    (q,) = users[stem.output[0]]
    assert q.op_type == "QuantizeLinear"
    assert consts[q.input[1]] == pytest.approx(6.0 / 127)  # ReLU6's range, not the raw conv output's
    default = onnx.load(str(quantize_int8(tiny_package, tmp_path / "in.onnx", frames).onnx_path)).graph
    stem = next(n for n in default.node if n.op_type == "Conv")
    default_users = [n.op_type for n in default.node if stem.output[0] in n.input]
    assert default_users == ["Clip"]  # placement "inputs": conv output stays float up to ReLU6


def test_int8_options_validate():
    with pytest.raises(ExportError, match="unknown calibration method"):
        Int8Options(method="kl")
    with pytest.raises(ExportError, match="unknown Q/DQ placement"):
        Int8Options(placement="everywhere")
    with pytest.raises(ExportError, match="Softmax must stay in float"):
        Int8Options(op_types=("Conv", "Softmax"))


# --- Q/DQ rules on hand-made graphs ------------------------------------------------------------


def _qdq_graph(
    zero_point=0, zp_type=np.int8, weight_scales=4, weight_axis=0, quantized_bias=False, float_only_op=None
):
    """x -> Q -> DQ -> Conv(DQ(weight), bias) [-> Q -> DQ -> float_only_op]."""
    init = [
        numpy_helper.from_array(np.array(0.02, np.float32), "x_scale"),
        numpy_helper.from_array(np.array(zero_point, zp_type), "x_zp"),
        numpy_helper.from_array(np.ones((4, 3, 3, 3), np.int8), "w_q"),
        numpy_helper.from_array(
            np.full(weight_scales, 0.01, np.float32).reshape(-1)
            if weight_scales > 1
            else np.array(0.01, np.float32),
            "w_scale",
        ),
        numpy_helper.from_array(np.zeros(weight_scales if weight_scales > 1 else (), np.int8), "w_zp"),
    ]
    nodes = [
        helper.make_node("QuantizeLinear", ["x", "x_scale", "x_zp"], ["xq"], name="q_x"),
        helper.make_node("DequantizeLinear", ["xq", "x_scale", "x_zp"], ["xf"], name="dq_x"),
        helper.make_node(
            "DequantizeLinear", ["w_q", "w_scale", "w_zp"], ["w"], name="dq_w", axis=weight_axis
        ),
    ]
    if quantized_bias:
        init += [
            numpy_helper.from_array(np.zeros(4, np.int32), "b_q"),
            numpy_helper.from_array(np.full(4, 2e-4, np.float32), "b_scale"),
        ]
        nodes.append(helper.make_node("DequantizeLinear", ["b_q", "b_scale"], ["b"], name="dq_b"))
    else:
        init.append(numpy_helper.from_array(np.zeros(4, np.float32), "b"))
    nodes.append(helper.make_node("Conv", ["xf", "w", "b"], ["y"], name="conv", pads=[1, 1, 1, 1]))
    out = "y"
    if float_only_op:
        nodes += [
            helper.make_node("QuantizeLinear", ["y", "x_scale", "x_zp"], ["yq"], name="q_y"),
            helper.make_node("DequantizeLinear", ["yq", "x_scale", "x_zp"], ["yf"], name="dq_y"),
        ]
        if float_only_op == "Softmax":
            nodes.append(helper.make_node("Softmax", ["yf"], ["z"], name="softmax", axis=1))
        else:
            init.append(numpy_helper.from_array(np.ones((4, 4, 2, 2), np.float32), "wt"))
            nodes.append(
                helper.make_node("ConvTranspose", ["yf", "wt"], ["z"], name="deconv", strides=[2, 2])
            )
        out = "z"
    inputs = [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3, 8, 8])]
    outputs = [helper.make_tensor_value_info(out, TensorProto.FLOAT, None)]
    graph = helper.make_graph(nodes, "g", inputs, outputs, init)
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 19)])


def test_qdq_rules_accept_a_correct_graph():
    assert check_qdq_rules(_qdq_graph()) == []
    assert_trt_qdq_rules(_qdq_graph())  # does not raise


@pytest.mark.parametrize(
    "kwargs, expected",
    [
        ({"zero_point": 3}, "non-zero zero point"),
        ({"zp_type": np.uint8}, "TensorRT needs int8"),
        ({"weight_scales": 1}, "weight quantized per tensor"),
        ({"weight_axis": 1}, "on axis 1"),
        ({"quantized_bias": True}, "quantized bias"),
        ({"float_only_op": "ConvTranspose"}, "feeds ConvTranspose"),
        ({"float_only_op": "Softmax"}, "feeds Softmax"),
    ],
)
def test_qdq_rules_catch_each_violation(kwargs, expected):
    model = _qdq_graph(**kwargs)
    problems = check_qdq_rules(model)
    assert any(expected in p for p in problems), problems
    with pytest.raises(ExportError, match="break TensorRT's rules"):
        assert_trt_qdq_rules(model, "broken.onnx")


def test_qdq_rules_flag_a_missing_zero_point(tmp_path):
    model = _qdq_graph()
    for node in model.graph.node:
        if node.name in ("q_x", "dq_x"):
            del node.input[2]
    path = tmp_path / "nozp.onnx"
    onnx.save(model, str(path))
    assert any("no zero point" in p for p in check_qdq_rules(path))


def test_qdq_rules_unreadable_file(tmp_path):
    bad = tmp_path / "bad.onnx"
    bad.write_bytes(b"\x08garbage")
    with pytest.raises(ExportError, match="cannot read ONNX"):
        check_qdq_rules(bad)


# --- calibration sources ---------------------------------------------------------------------


def test_evenly_spaced_picks_spread_distinct_indices():
    assert evenly_spaced(10, 5) == [1, 3, 5, 7, 9]
    assert evenly_spaced(3, 8) == [0, 1, 2]
    assert evenly_spaced(100, 4, seed=1) != evenly_spaced(100, 4, seed=2)
    assert evenly_spaced(0, 4) == []


def _write_images(folder, n, size=(40, 50)):
    folder.mkdir(parents=True, exist_ok=True)
    for i, frame in enumerate(structured_frames(n, *size, seed=n)):
        cv2.imwrite(str(folder / f"{i:03d}.png"), cv2.cvtColor(frame, cv2.COLOR_RGB2BGR))


def test_calibration_frames_from_a_folder_and_a_glob(tmp_path):
    _write_images(tmp_path / "frames", 6)
    frames = calibration_frames(tmp_path / "frames", 3, (32, 48))
    assert frames.shape == (3, 32, 48, 3) and frames.dtype == np.uint8
    assert calibration_frames(str(tmp_path / "frames" / "00[0-1].png"), 5, (32, 48)).shape[0] == 2


def test_calibration_frames_from_a_video(tiny_video):
    frames = calibration_frames(tiny_video, 5, TINY_SIZE)
    assert frames.shape == (5, *TINY_SIZE, 3)
    assert len({f.tobytes() for f in frames}) == 5  # different frames, not one repeated


def test_calibration_frames_from_a_dataset_split(tmp_path):
    root = tmp_path / "camvid"
    _write_images(root / "train", 4)
    _write_images(root / "trainannot", 4)
    assert calibration_frames(f"camvid:{root}:train", 2, TINY_SIZE).shape == (2, *TINY_SIZE, 3)
    with pytest.raises(InputError, match="must be camvid:DIR:SPLIT"):
        calibration_frames(f"camvid:{root}", 2, TINY_SIZE)


@pytest.mark.parametrize(
    "source, match",
    [
        ("does/not/exist.mp4", "is not a video, an image folder"),
        ("*.nothing-matches", "no images match this pattern"),
    ],
)
def test_calibration_frames_errors(source, match):
    with pytest.raises(InputError, match=match):
        calibration_frames(source, 4, TINY_SIZE)


def test_calibration_frames_empty_folder_and_bad_count(tmp_path):
    with pytest.raises(InputError, match="no images in folder"):
        calibration_frames(tmp_path, 4, TINY_SIZE)
    with pytest.raises(InputError, match="must be positive"):
        calibration_frames(tmp_path, 0, TINY_SIZE)


def test_calibration_frames_not_a_video(tmp_path):
    bogus = tmp_path / "clip.mp4"
    bogus.write_bytes(b"not a video at all")
    with pytest.raises(InputError, match="cannot read calibration video"):
        calibration_frames(bogus, 4, TINY_SIZE)


# --- default variant choice ------------------------------------------------------------------


def _fake_package(folder, name, precision, miou=None, ms=None, threads=2, checkpoint_sha="abc"):
    onnx_path = folder / f"{name}.onnx"
    onnx.save(band_graph(8, 8), str(onnx_path))
    meta = {
        "classes": ["a", "b"],
        "palette": [[0, 0, 0], [1, 1, 1]],
        "dataset": "x",
        "input": {
            "name": "image",
            "layout": "NHWC",
            "dtype": "uint8",
            "color": "RGB",
            "height": 8,
            "width": 8,
        },
        "output": {"name": "class_ids", "kind": "class_ids", "dtype": "uint8"},
        "precision": precision,
        "source": {"checkpoint": "m.pth", "sha256": checkpoint_sha},
    }
    if miou is not None:
        meta["metrics"] = {"val_miou": miou, "cpu_ms_per_frame": ms, "threads": threads}
    return write_sidecar(onnx_path, meta)


@pytest.mark.parametrize(
    "fp16, int8, expected",
    [
        ((0.5555, 180), (0.552, 150), "int8"),  # int8 within 1.0 point and fastest
        ((0.5555, 180), (0.540, 150), "fp16"),  # int8 drops 1.6 points: fp16 is next fastest
        ((0.5500, 180), (0.552, 250), "fp32"),  # fp16 drops 0.6 > 0.1; int8 slower than fp32
        ((0.5560, 210), None, "fp32"),  # fp16 slower than fp32
    ],
)
def test_pick_default_variant(tmp_path, fp16, int8, expected):
    fp32 = _fake_package(tmp_path, "m", "fp32", 0.556, 200)
    if fp16:
        _fake_package(tmp_path, "m_fp16", "fp16", *fp16)
    if int8:
        _fake_package(tmp_path, "m_int8", "int8", *int8)
    assert pick_default_variant(fp32).precision == expected


def test_pick_default_variant_ignores_unmeasured_or_foreign_variants(tmp_path):
    fp32 = _fake_package(tmp_path, "m", "fp32", 0.556, 200)
    _fake_package(tmp_path, "m_int8", "int8", 0.556, 100, threads=4)  # other thread count
    _fake_package(tmp_path, "m_fp16", "fp16", 0.556, 100, checkpoint_sha="other")  # other checkpoint
    assert pick_default_variant(fp32).precision == "fp32"
    (tmp_path / "m_int8.json").write_text(json.dumps({"format": "nonsense"}))  # unloadable: skipped
    assert pick_default_variant(fp32).precision == "fp32"
    (tmp_path / "bare").mkdir()
    bare = _fake_package(tmp_path / "bare", "n", "fp32")  # no metrics at all
    assert pick_default_variant(bare) == bare


def test_record_metrics_feeds_the_default_choice(tmp_path):
    fp32 = _fake_package(tmp_path, "m", "fp32")
    fp32 = record_metrics(fp32, val_miou=0.556, cpu_ms_per_frame=200, threads=2)
    int8 = _fake_package(tmp_path, "m_int8cpu", "int8")
    int8 = record_metrics(int8, val_miou=0.550, cpu_ms_per_frame=60, threads=2)
    assert load_package(int8.onnx_path).meta["metrics"]["cpu_ms_per_frame"] == 60
    assert pick_default_variant(fp32).onnx_path == int8.onnx_path


def test_int8_cpu_target_folds_relu6_and_is_marked_not_for_tensorrt(tiny_package, int8cpu_package):
    package = int8cpu_package
    calibration = package.meta["calibration"]
    assert calibration["target"] == "cpu" and calibration["tensorrt_compatible"] is False
    assert any("TensorRT needs int8" in p for p in check_qdq_rules(package.onnx_path))
    ops = [n.op_type for n in onnx.load(str(package.onnx_path)).graph.node]
    fp32_ops = [n.op_type for n in onnx.load(str(tiny_package.onnx_path)).graph.node]
    assert "Clip" in fp32_ops and "Clip" not in ops  # ReLU6 folded into the uint8 range
    assert _io_types(package.onnx_path) == (TensorProto.UINT8, TensorProto.UINT8)


@pytest.mark.parametrize(
    "int8ov, expected",
    [
        ((0.550, 9.0), "int8"),  # within 1 point and faster on OpenVINO: the NNCF package
        ((0.540, 9.0), "fp32"),  # 1.6 points below fp32: not taken
        ((0.556, 14.0), "fp32"),  # slower on OpenVINO than fp32 (computed in bf16)
        (None, "fp32"),  # none beside it
    ],
)
def test_pick_openvino_variant(tmp_path, int8ov, expected):
    from rtseg.core.package import DEFAULT_MODEL, default_package_for, pick_openvino_variant

    fp32 = record_metrics(_fake_package(tmp_path, "m", "fp32", 0.556, 20), openvino_ms_per_frame=12.0)
    if int8ov:
        variant = _fake_package(tmp_path, "m_int8ov", "int8", int8ov[0], 30)  # ONNX Runtime ms: not used
        record_metrics(variant, openvino_ms_per_frame=int8ov[1])
    assert pick_openvino_variant(fp32).precision == expected
    assert pick_default_variant(fp32).precision == "fp32"  # ONNX Runtime's choice: its own ms
    assert default_package_for("openvino").name.startswith(DEFAULT_MODEL)
