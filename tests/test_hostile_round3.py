"""Round 3 of hostile use, one test per class of fault: derived outputs (sidecars) against every
input, hostile values met with one line naming the argument, meaningless results refused."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from band_model import make_band_package
from click.testing import CliRunner
from test_import_model import identity_model

from rtseg.cli import main


@pytest.fixture(scope="module")
def band_package(tmp_path_factory):
    return make_band_package(tmp_path_factory.mktemp("band"), height=64, width=96)


def invoke(*args):
    return CliRunner().invoke(main, [*map(str, args)])


def assert_one_line(result, message: str) -> None:
    assert result.exit_code == 1, result.output
    assert message in result.stderr and result.stderr.count("\n") == 1, result.stderr
    assert "Traceback" not in result.output


# --- class 2: every output a command derives is checked against every input ----------------


def test_import_never_writes_its_sidecar_over_the_classes_file(tmp_path):
    model = identity_model(tmp_path / "model.onnx")
    classes = tmp_path / "pkg.json"
    classes.write_text(json.dumps(["road", "sky", "car"]))
    before = classes.read_bytes()
    result = invoke("import", model, "-o", tmp_path / "pkg.onnx", "--mean", "0", "--std", "1",
                    "--classes", classes)  # fmt: skip
    assert_one_line(result, "is the input --classes")
    assert classes.read_bytes() == before and not (tmp_path / "pkg.onnx").exists()


def test_a_sidecar_derived_from_an_output_is_checked_as_an_output(tmp_path):
    """check_paths adds the sidecar of every .onnx / .engine output, named or not."""
    from rtseg.core.paths import check_paths
    from rtseg.errors import OutputError

    reads = tmp_path / "model.json"
    reads.write_text("{}")
    with pytest.raises(OutputError, match="--output's sidecar .* is the input --labels"):
        check_paths(inputs=[("--labels", reads)], outputs=[("--output", tmp_path / "model.onnx")])
    with pytest.raises(OutputError, match="sidecar .* is the input"):
        engine = tmp_path / "e.engine"
        check_paths(inputs=[("--labels", f"{engine}.json")], outputs=[("-o", engine)])
    np.testing.assert_equal(reads.read_text(), "{}")


# --- class 5: hostile values are one line naming the argument --------------------------------


@pytest.mark.parametrize(
    "kw, message",
    [
        ({"size": (0, 0)}, "size height must be within 1..8192, got 0"),
        ({"size": (12000, 12000)}, "size height must be within 1..8192"),
        ({"size": "48x64"}, "size must be (height, width)"),
        ({"size": (48, 64.5)}, "size width must be an integer"),
        ({"mean": ("0", "0", "0")}, "mean[0] must be a finite number, got '0'"),
        ({"mean": 0.5}, "mean must be 3 numbers"),
        ({"std": (1, float("nan"), 1)}, "std[1] must be a finite number"),
        ({"parity_frames": "3"}, "parity_frames must be an integer"),
    ],
)
def test_the_python_api_answers_rtseg_errors_naming_the_argument(tmp_path, kw, message):
    import rtseg
    from rtseg.errors import InputError

    model = identity_model(tmp_path / "dynamic.onnx", height="H", width="W")
    args = {"size": (48, 64), "mean": (0, 0, 0), "std": (1, 1, 1), **kw}
    with pytest.raises(InputError) as info:
        rtseg.import_onnx(model, tmp_path / "out" / "pkg.onnx", **args)
    assert message in str(info.value)
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize(
    "kw, message",
    [
        ({"max_batch": 3_000_000_000}, "max_batch must be within 1..2147483647"),
        ({"instances": 2**40}, "instances must be within 1..2147483647"),
        ({"max_queue_delay_us": 2**70}, "max_queue_delay_us must be within 0..18446744073709551615"),
        ({"max_batch": "8"}, "max_batch must be an integer"),
    ],
)
def test_triton_numbers_past_their_fields_are_refused(tmp_path, band_package, kw, message):
    import rtseg
    from rtseg.errors import InputError

    with pytest.raises(InputError, match=message.replace(".", r"\.")):
        rtseg.export_triton(band_package.onnx_path, tmp_path / "repo", **kw)
    assert not (tmp_path / "repo").exists()


def test_an_unwritable_triton_repo_is_one_line(tmp_path, band_package, monkeypatch):
    from rtseg.core import paths

    def refuse(folder, what):
        raise paths.OutputError(f"{what}: folder {folder} is not writable (Read-only file system)")

    monkeypatch.setattr(paths, "probe_writable", refuse)
    result = invoke("export-triton", band_package.onnx_path, "--repo", tmp_path / "repo")
    assert_one_line(result, "is not writable")


def test_a_checkpoint_on_a_full_disk_is_one_line_and_leaves_nothing(tmp_path, monkeypatch):
    import errno
    import os

    import torch

    from rtseg.core import checkpoint
    from rtseg.errors import OutputError

    def full_disk(obj, f):
        Path(f).write_bytes(b"half")
        raise RuntimeError("[enforce fail at inline_container.cc:603] . unexpected pos 64 vs 0")

    monkeypatch.setattr(torch, "save", full_disk)
    monkeypatch.setattr(checkpoint, "_free_bytes", lambda folder: 0)
    with pytest.raises(OutputError, match="last.pth: cannot write \\(disk full"):
        checkpoint.save_checkpoint(tmp_path / "last.pth", {})

    def broken_disk(obj, f):
        raise OSError(errno.EIO, os.strerror(errno.EIO))

    monkeypatch.setattr(torch, "save", broken_disk)
    with pytest.raises(OutputError, match="last.pth: cannot write \\(Input/output error\\)"):
        checkpoint.save_checkpoint(tmp_path / "last.pth", {})
    assert list(tmp_path.iterdir()) == []


def test_a_graph_with_a_dynamic_input_batch_but_a_batch_1_output_is_imported_as_batch_1(tmp_path):
    """torch's exporter with dynamic_axes on the input only: a Reshape fixed at batch 1 inside."""
    from onnx import TensorProto, helper
    from test_import_model import SIZE, save_graph

    import rtseg
    from rtseg.core.package import load_package
    from rtseg.runtime.onnxruntime_backend import OnnxRuntimeBackend

    shape = np.array([1, 3, *SIZE], np.int64)
    model = save_graph(
        tmp_path / "reshaped.onnx",
        [helper.make_node("Reshape", ["x", "shape"], ["logits"])],
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 3, *SIZE])],
        [helper.make_tensor_value_info("logits", TensorProto.FLOAT, [1, 3, *SIZE])],
        {"shape": shape},
    )
    result = rtseg.import_onnx(model, tmp_path / "pkg.onnx", mean=(0, 0, 0), std=(1, 1, 1))
    package = load_package(result.package.onnx_path)
    with OnnxRuntimeBackend(package, device="cpu", threads=1) as backend:
        assert backend.max_batch == 1
        frames = np.zeros((1, *SIZE, 3), np.uint8)
        assert backend.infer(frames).shape == (1, *SIZE)


# --- class 9: smaller promises ------------------------------------------------------------------


def test_a_model_moved_without_its_weights_file_names_the_weights(tmp_path):
    import onnx

    model = identity_model(tmp_path / "model.onnx")
    loaded = onnx.load(str(model))
    weights = onnx.numpy_helper.from_array(np.zeros(1024, np.float32), "unused")
    loaded.graph.initializer.append(weights)
    onnx.save(loaded, str(model), save_as_external_data=True, location="model.onnx.data", size_threshold=0)
    done = invoke("import", model, "-o", tmp_path / "pkg.onnx", "--mean", "0", "--std", "1")
    assert done.exit_code == 0, done.output
    source = json.loads((tmp_path / "pkg.json").read_text())["source"]
    assert list(source["weights_sha256"]) == ["model.onnx.data"]  # the .onnx alone is not the model
    (tmp_path / "model.onnx.data").unlink()
    result = invoke("import", model, "-o", tmp_path / "pkg2.onnx", "--mean", "0", "--std", "1")
    assert_one_line(result, "model.onnx.data, which is missing")


def test_an_export_failure_names_its_cause_and_keeps_the_module_s_mode(tmp_path):
    import torch

    from rtseg.errors import ExportError
    from rtseg.export.onnx_export import export_cause, torch_to_onnx

    class Broken(torch.nn.Module):
        def forward(self, x):
            raise ValueError("\x1b[31mthe real cause\x1b[0m")

    module = Broken().train()
    with pytest.raises(ExportError) as info:
        torch_to_onnx(module, torch.zeros(2, 3, 8, 8), "input", "logits", tmp_path / "m.onnx")
    assert "the real cause" in str(info.value) and "\x1b" not in str(info.value)
    assert module.training
    try:
        raise RuntimeError("outer") from KeyError("inner")
    except RuntimeError as exc:
        assert export_cause(exc) == "KeyError: 'inner'"


@pytest.mark.parametrize(
    "kw, message",
    [
        ({"alpha": "0.5"}, "alpha must be a finite number, got '0.5'"),
        ({"alpha": 1.5}, "alpha must be within 0..1, got 1.5"),
        ({"fps": "x"}, "fps must be a finite number, got 'x'"),
        ({"fps": 0}, "fps must be positive"),
        ({"max_frames": True}, "max_frames must be a positive integer"),
    ],
)
def test_rtseg_run_values_are_input_errors_naming_the_argument(tmp_path, band_package, kw, message):
    import rtseg
    from rtseg.errors import InputError

    with pytest.raises(InputError) as info:
        rtseg.run(tmp_path / "missing.mp4", model=band_package.onnx_path, **kw)
    assert message in str(info.value)
