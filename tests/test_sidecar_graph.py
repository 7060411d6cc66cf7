"""A sidecar is checked whole (schema) and against its graph's real input and output, at load."""

from __future__ import annotations

import numpy as np
import pytest
from hostile_models import (
    argmax_graph,
    float_input_graph,
    logits_graph,
    rank4_ids_graph,
    sidecar,
    write_package,
)

from rtseg.core.package import load_package
from rtseg.core.sidecar_schema import SchemaError, check_sidecar
from rtseg.errors import ModelError

PALETTE_TAIL = [[0, 0, 0]] * 10

SCHEMA_CASES = {
    "palette entry over 255": (
        {"palette": [[300, 0, 0], *PALETTE_TAIL]},
        r"palette\[0\]\[0\] must be an integer in 0\.\.255, got 300",
    ),
    "palette entry negative": (
        {"palette": [[0, -1, 0], *PALETTE_TAIL]},
        r"palette\[0\]\[1\] must be an integer",
    ),
    "palette entry a string": ({"palette": [["red", 0, 0], *PALETTE_TAIL]}, r"palette\[0\]\[0\].*got 'red'"),
    "palette entry a float": (
        {"palette": [[0.5, 0, 0], *PALETTE_TAIL]},
        r"palette\[0\]\[0\] must be an integer",
    ),
    "palette entry a bool": (
        {"palette": [[True, 0, 0], *PALETTE_TAIL]},
        r"palette\[0\]\[0\] must be an integer",
    ),
    "palette colour of 2": ({"palette": [[0, 0], *PALETTE_TAIL]}, r"palette\[0\] must be a list of 3"),
    "palette not a list": ({"palette": "camvid"}, r"palette must be a list"),
    "palette shorter than classes": ({"palette": PALETTE_TAIL}, r"11 classes but 10 palette colours"),
    "format_version a string": ({"format_version": "1"}, r"format_version must be the integer 1, got '1'"),
    "format_version newer": ({"format_version": 7}, r"newer than this rtseg understands"),
    "format_version missing": ({"format_version": None}, r"format_version must be the integer 1, got None"),
    "no classes": ({"classes": [], "palette": []}, r"classes must be a list of 1\.\.256, got 0 entries"),
    "class name a number": ({"classes": [1, *["x"] * 10]}, r"classes\[0\] must be a non-empty string"),
    "input height a string": ({"input.height": "64"}, r"input\.height must be an integer"),
    "input height zero": ({"input.height": 0}, r"input\.height must be an integer in 1\.\."),
    "input layout NCHW": ({"input.layout": "NCHW"}, r"input\.layout must be one of 'NHWC'"),
    "input dtype float32": ({"input.dtype": "float32"}, r"input\.dtype must be one of 'uint8'"),
    "output kind unknown": ({"output.kind": "probabilities"}, r"output\.kind must be one of"),
    "precision unknown": ({"precision": "fp8"}, r"precision must be one of"),
    "std zero": (
        {"normalization.std": [1.0, 0.0, 1.0]},
        r"normalization\.std\[1\] must be a positive number",
    ),
    "metrics miou a string": ({"metrics": {"val_miou": "high"}}, r"metrics\.val_miou must be a number"),
    "onnx missing": ({"onnx": None}, r"onnx must be a non-empty string, got None"),
    "not a sidecar": ({"format": "something"}, r"not an rtseg model sidecar"),
}


@pytest.mark.parametrize("case", list(SCHEMA_CASES))
def test_sidecar_schema_refuses_with_one_line(case, tmp_path):
    changes, message = SCHEMA_CASES[case]
    meta = sidecar(**changes)
    with pytest.raises(SchemaError, match=message):
        check_sidecar(meta)
    onnx_path = write_package(tmp_path, argmax_graph(11), meta)
    with pytest.raises(ModelError, match=message) as info:
        load_package(onnx_path)
    assert "\n" not in str(info.value)


def test_a_valid_sidecar_and_graph_load():
    check_sidecar(sidecar())  # no error


LOGITS = {"output.name": "logits", "output.kind": "logits"}
GRAPH_CASES = {
    "input size differs": (
        argmax_graph(11, 32, 32),
        {},
        r"input 'image' is \(N, 32, 32, 3\) uint8; the sidecar says \(N, 64, 96, 3\)",
    ),
    "input dtype float": (float_input_graph(), {}, r"input 'image' is \(N, 64, 96, 3\) float32"),
    "input name differs": (
        argmax_graph(11),
        {"input.name": "pixels"},
        r"sidecar's input is 'pixels' but the graph's is 'image'",
    ),
    "output (N, 1, H, W)": (
        rank4_ids_graph(),
        {},
        r"output 'class_ids' is \(N, 1, 64, 96\) uint8; the sidecar says class ids \(N, 64, 96\)",
    ),
    "logits claimed, ids given": (
        argmax_graph(11),
        {"output.kind": "logits"},
        r"is \(N, 64, 96\) uint8; the sidecar says logits \(N, 11, 64, 96\)",
    ),
    "ids claimed, logits given": (
        logits_graph(11),
        {"output.name": "logits", "output.dtype": None},
        r"is \(N, 11, 64, 96\) float32; the sidecar says class ids",
    ),
    "logits channels differ": (
        logits_graph(20),
        {**LOGITS, "output.dtype": "float32"},
        r"\(N, 20, 64, 96\) float32; the sidecar says logits \(N, 11, 64, 96\)",
    ),
    "argmax over other classes": (
        argmax_graph(3),
        {},
        r"argmax over 3 channels but the sidecar names 11 classes",
    ),
    "argmax over more classes": (
        argmax_graph(20),
        {},
        r"argmax over 20 channels but the sidecar names 11 classes",
    ),
    "output name differs": (
        argmax_graph(11),
        {"output.name": "ids"},
        r"sidecar's output is 'ids' but the graph's \(first\) is 'class_ids'",
    ),
    "output dtype differs": (
        argmax_graph(11),
        {"output.dtype": "int64"},
        r"output dtype is int64 but the graph's is uint8",
    ),
}


@pytest.mark.parametrize("case", list(GRAPH_CASES))
def test_a_sidecar_that_disagrees_with_its_graph_is_refused_at_load(case, tmp_path):
    graph, changes, message = GRAPH_CASES[case]
    meta = sidecar(**changes)
    if meta["output"].get("dtype") is None:
        meta["output"].pop("dtype", None)
    onnx_path = write_package(tmp_path, graph, meta)
    with pytest.raises(ModelError, match=message) as info:
        load_package(onnx_path)
    assert "disagrees with its sidecar" in str(info.value) and "\n" not in str(info.value)


def test_a_true_logits_package_loads_and_runs(tmp_path):
    from rtseg.loading import open_model

    meta = sidecar(**LOGITS, **{"output.dtype": "float32"})
    onnx_path = write_package(tmp_path, logits_graph(11), meta)
    with open_model(onnx_path, threads=1).backend as backend:
        ids = backend.infer(np.full((1, 64, 96, 3), 7, np.uint8))
    assert ids.shape == (1, 64, 96) and ids.dtype == np.uint8


def test_not_an_onnx_graph_is_one_line(tmp_path):
    onnx_path = write_package(tmp_path, argmax_graph(11), sidecar())
    onnx_path.write_bytes(b"\x08\x01garbage that is not a protobuf of a model" * 10)
    with pytest.raises(ModelError, match="not a readable ONNX graph"):
        load_package(onnx_path)
