"""Model package, export parity and the backend contract."""

import json

import numpy as np
import pytest
from conftest import TINY_SIZE, structured_frames

from rtseg.core.package import load_package
from rtseg.errors import BackendError, InputError, ModelError
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
def test_backend_contract_onnxruntime_openvino_and_torch_agree(tiny_package, batch):
    frames = structured_frames(batch, *TINY_SIZE, seed=5)
    outputs = {}
    for backend in ("onnxruntime", "openvino", "torch"):
        with open_model(tiny_package.onnx_path, backend=backend, threads=1).backend as b:
            out = b.infer(frames)
            assert out.shape == (batch, *TINY_SIZE) and out.dtype == np.uint8
            assert out.max() < 11
            outputs[backend] = out
    assert (outputs["onnxruntime"] == outputs["torch"]).mean() >= 0.999
    assert (outputs["onnxruntime"] == outputs["openvino"]).mean() >= 0.97  # bf16 where the CPU has it


def test_backend_rejects_wrong_frame_size(tiny_package):
    backend = open_model(tiny_package.onnx_path, threads=1).backend
    with pytest.raises(InputError, match="expected"):
        backend.infer(np.zeros((1, 10, 10, 3), np.uint8))
    with pytest.raises(InputError, match="expected"):
        backend.submit(np.zeros((1, *TINY_SIZE, 3), np.float32))


@pytest.mark.parametrize("name", ["onnxruntime", "openvino", "torch"])
def test_backend_contract_submit_logits_and_close(tiny_package, name):
    frames = structured_frames(2, *TINY_SIZE, seed=6)
    backend = open_model(tiny_package.onnx_path, backend=name, threads=1).backend
    with backend:
        ids = backend.infer(frames)
        one = frames[: backend.max_batch]
        np.testing.assert_array_equal(backend.submit(one).wait(), ids[: len(one)])
        # OpenVINO's submit starts an infer request and returns; the others do the work in it
        assert backend.overlaps is (name == "openvino")
        with pytest.raises(InputError, match="at most"):
            backend.submit(np.zeros((backend.max_batch + 1, *TINY_SIZE, 3), np.uint8))
        if name == "torch":  # the torch graph gives logits; this package gives class ids only
            logits = backend.logits(frames)
            assert logits.shape == (2, 11, *TINY_SIZE) and logits.dtype == np.float32
            np.testing.assert_array_equal(logits.argmax(1), ids)
        else:
            with pytest.raises(BackendError, match="class ids only"):
                backend.logits(frames)
    backend.close()  # idempotent
    with pytest.raises(BackendError, match="closed"):
        backend.infer(frames)


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


def test_the_onnx_given_is_the_onnx_that_runs(tmp_path, tiny_package):
    """`--model copy.onnx` beside a copied sidecar that still names the original ran the
    original, whatever copy.onnx held; a package renamed whole runs from its new name."""
    import shutil

    original = tmp_path / "tiny.onnx"
    shutil.copy(tiny_package.onnx_path, original)
    shutil.copy(tiny_package.sidecar_path, original.with_suffix(".json"))
    meta = json.loads(original.with_suffix(".json").read_text())
    replaced = tmp_path / "replaced.onnx"
    replaced.write_bytes(original.read_bytes()[:500])  # a different (cut) file
    (tmp_path / "replaced.json").write_text(json.dumps(meta))  # still names the original
    with pytest.raises(ModelError, match="describes .*, not this file"):
        load_package(replaced)
    renamed = tmp_path / "renamed.onnx"
    original.rename(renamed)
    (tmp_path / "renamed.json").write_text(json.dumps(meta))
    assert load_package(renamed).onnx_path == renamed.resolve()
