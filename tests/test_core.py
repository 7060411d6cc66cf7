"""Model package, export parity and the backend contract."""

import json

import numpy as np
import pytest
from conftest import TINY_SIZE, structured_frames

from rtseg.core.package import load_package
from rtseg.errors import ModelError
from rtseg.loading import open_model


def test_package_sidecar_describes_graph(tiny_package):
    meta = tiny_package.meta
    assert meta["input"] == {
        "name": "image",
        "layout": "NHWC",
        "dtype": "uint8",
        "color": "RGB",
        "height": TINY_SIZE[0],
        "width": TINY_SIZE[1],
    }
    assert meta["output"]["kind"] == "class_ids" and meta["precision"] == "fp32"
    assert len(meta["classes"]) == len(meta["palette"]) == 11
    assert meta["parity"]["argmax_agreement"] >= 0.999
    import onnx

    graph = onnx.load(str(tiny_package.onnx_path)).graph
    assert graph.input[0].type.tensor_type.elem_type == onnx.TensorProto.UINT8
    assert graph.output[0].type.tensor_type.elem_type == onnx.TensorProto.UINT8
    assert not list(tiny_package.onnx_path.parent.glob("*.onnx.data"))


@pytest.mark.parametrize("batch", [1, 3])
def test_backend_contract_onnxruntime_and_torch_agree(tiny_package, batch):
    frames = structured_frames(batch, *TINY_SIZE, seed=5)
    outputs = {}
    for backend in ("onnxruntime", "torch"):
        with open_model(tiny_package.onnx_path, backend=backend, threads=1).backend as b:
            out = b.infer(frames)
            assert out.shape == (batch, *TINY_SIZE) and out.dtype == np.uint8
            assert out.max() < 11
            outputs[backend] = out
    assert (outputs["onnxruntime"] == outputs["torch"]).mean() >= 0.999


def test_backend_rejects_wrong_frame_size(tiny_package):
    backend = open_model(tiny_package.onnx_path, threads=1).backend
    with pytest.raises(Exception, match="expected"):
        backend.infer(np.zeros((1, 10, 10, 3), np.uint8))


def test_not_a_package_errors(tmp_path, tiny_package):
    bogus = tmp_path / "x.onnx"
    bogus.write_bytes(b"not onnx")
    with pytest.raises(ModelError, match="no sidecar"):
        load_package(bogus)
    (tmp_path / "x.json").write_text("{nope")
    with pytest.raises(ModelError, match="not valid JSON"):
        load_package(bogus)
    meta = dict(tiny_package.meta, onnx="x.onnx")
    (tmp_path / "x.json").write_text(json.dumps(meta))
    with pytest.raises(ModelError, match="sha256"):
        load_package(bogus)
    with pytest.raises(ModelError, match="does not exist"):
        load_package(tmp_path / "missing.onnx")
