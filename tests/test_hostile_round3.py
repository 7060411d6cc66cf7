"""Round 3 of hostile use, one test per class of fault: derived outputs (sidecars) against every
input, hostile values met with one line naming the argument, meaningless results refused."""

from __future__ import annotations

import json

import numpy as np
import pytest
from click.testing import CliRunner
from test_import_model import identity_model

from rtseg.cli import main


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
