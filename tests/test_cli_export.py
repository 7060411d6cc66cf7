"""`rtseg export`: each precision for the tiny checkpoint, parity printed, errors as one line."""

from __future__ import annotations

import json

import cv2
import pytest
from click.testing import CliRunner
from conftest import TINY_SIZE, structured_frames

from rtseg.cli import main
from rtseg.core.frames import parse_size
from rtseg.core.package import load_package
from rtseg.errors import InputError


@pytest.fixture(scope="module")
def frames_dir(tmp_path_factory):
    folder = tmp_path_factory.mktemp("frames")
    for i, frame in enumerate(structured_frames(6, 120, 160, seed=21)):
        cv2.imwrite(str(folder / f"{i:02d}.png"), cv2.cvtColor(frame, cv2.COLOR_RGB2BGR))
    return folder


def _export(*args):
    return CliRunner().invoke(main, ["export", *map(str, args)])


@pytest.mark.slow
@pytest.mark.parametrize("precision", ["fp32", "fp16", "int8"])
def test_export_writes_each_precision(tiny_checkpoint, frames_dir, tmp_path, precision, monkeypatch):
    import rtseg.core.checkpoint as checkpoint_module
    import rtseg.export.precision as precision_module

    out = tmp_path / f"tiny_{precision}.onnx"
    loads, sidecars = [], []
    real_load, real_write = checkpoint_module.load_checkpoint, precision_module.write_sidecar
    monkeypatch.setattr(checkpoint_module, "load_checkpoint", lambda p: loads.append(p) or real_load(p))
    monkeypatch.setattr(
        precision_module, "write_sidecar", lambda p, meta: sidecars.append(p) or real_write(p, meta)
    )
    result = _export(
        tiny_checkpoint,
        "-o",
        out,
        "--precision",
        precision,
        "--calib",
        frames_dir,
        "--calib-frames",
        4,
        "--parity-count",
        3,
    )
    assert result.exit_code == 0, result.output
    package = load_package(out)
    assert package.precision == precision and package.input_size == TINY_SIZE
    checkpoint = (package.sidecar_path.parent / package.meta["source"]["checkpoint"]).resolve()
    assert checkpoint == tiny_checkpoint.resolve()
    parity = package.meta["parity"]
    assert parity["against"] == "pytorch" and parity["frames"] == 3
    assert f"{precision} vs pytorch: parity over 3 frames" in result.stdout
    assert "argmax agreement" in result.stdout and "max |logit diff|" in result.stdout
    if precision == "int8":
        assert package.meta["calibration"]["frames"] == 4
        assert package.meta["calibration"]["source"] == frames_dir.name  # by name, not where
        assert "TensorRT Q/DQ rules ok" in result.stdout
    assert sorted(p.name for p in tmp_path.iterdir()) == [out.with_suffix(".json").name, out.name]
    written = [p.name for p in sidecars]  # in the staging folder, then moved into place with the graph
    assert len(loads) == 1 and written.count(out.name) == 1  # one pass: loaded once, sidecar written once


@pytest.mark.slow
def test_export_without_real_frames_warns_and_uses_generated_ones(tiny_checkpoint, tmp_path):
    result = _export(tiny_checkpoint, "-o", tmp_path / "t.onnx", "--parity-count", 2)
    assert result.exit_code == 0, result.output
    assert "warning: no --parity-frames or --calib given" in result.stderr
    assert "fp32, 64x96 (HxW), 11 classes" in result.stdout  # sizes HxW, as --size takes them
    assert json.loads((tmp_path / "t.json").read_text())["parity"]["frames_source"] == "generated frames"


@pytest.mark.slow
def test_export_failing_parity_stops_and_leaves_the_old_package(
    tiny_checkpoint, frames_dir, tmp_path, monkeypatch
):
    import rtseg.export.onnx_export as onnx_export

    real = onnx_export.check_parity

    def impossible_final_check(*args, **kwargs):  # the int8 check (max_diff=None) asks for > 100%
        if kwargs.get("max_diff", 0) is None:
            kwargs["min_agreement"] = 1.01
        return real(*args, **kwargs)

    monkeypatch.setattr(onnx_export, "check_parity", impossible_final_check)
    out = tmp_path / "strict.onnx"
    out.write_bytes(b"the previous export")
    out.with_suffix(".json").write_text("its sidecar")
    result = _export(
        tiny_checkpoint,
        "-o",
        out,
        "--precision",
        "int8",
        "--calib",
        frames_dir,
        "--calib-frames",
        2,
        "--parity-count",
        2,
    )
    assert result.exit_code == 1
    (line,) = result.stderr.strip().splitlines()[-1:]
    assert line.startswith("rtseg: error: strict.onnx: ONNX disagrees with PyTorch")
    assert out.read_bytes() == b"the previous export"  # replaced only by a complete, checked one
    assert out.with_suffix(".json").read_text() == "its sidecar"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["strict.json", "strict.onnx"]  # no leftovers


@pytest.mark.parametrize(
    "args, message",
    [
        (["--precision", "int8"], "int8 needs real calibration frames"),
        (["--size", "64by96"], "--size must be HxW"),
    ],
)
def test_export_argument_errors_are_one_line(tiny_checkpoint, tmp_path, args, message):
    result = _export(tiny_checkpoint, "-o", tmp_path / "x.onnx", *args)
    assert result.exit_code == 1 and "Traceback" not in result.output
    (line,) = result.stderr.strip().splitlines()
    assert line.startswith("rtseg: error:") and message in line


def test_export_bad_checkpoint_is_one_line(tmp_path):
    bogus = tmp_path / "bogus.pth"
    bogus.write_bytes(b"this is not a checkpoint")
    result = _export(bogus, "-o", tmp_path / "x.onnx")
    assert result.exit_code == 1 and "Traceback" not in result.output
    (line,) = result.stderr.strip().splitlines()
    assert line.startswith("rtseg: error:") and "bogus.pth" in line
    result = _export(tmp_path / "missing.pth", "-o", tmp_path / "x.onnx")
    assert result.exit_code == 1 and "does not exist" in result.stderr


def test_export_output_must_be_onnx(tiny_checkpoint, tmp_path):
    result = _export(tiny_checkpoint, "-o", tmp_path / "x.engine")
    assert result.exit_code == 1 and "must end in .onnx" in result.stderr


def test_parse_size():
    assert parse_size("360x480", "--size") == (360, 480)
    for bad in ("0x10", "360by480", "1x2x3", "x480"):
        with pytest.raises(InputError, match="--size must be HxW"):
            parse_size(bad, "--size")
