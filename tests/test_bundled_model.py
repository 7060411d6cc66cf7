"""The bundled CamVid model in engines/: its packages, the default choice, and its accuracy on
real data (CamVid val and the labelled val clip through the whole `rtseg run` pipeline)."""

from __future__ import annotations

import cv2
import numpy as np
import pytest
from click.testing import CliRunner

from rtseg.cli import main
from rtseg.core.checkpoint import load_checkpoint
from rtseg.core.package import default_model_path, default_package_for, load_package, variant_path
from rtseg.data.labels import CAMVID, IGNORE_INDEX
from rtseg.train.metrics import ConfusionMatrix

FP32 = default_model_path()
pytestmark = pytest.mark.skipif(not FP32.is_file(), reason=f"no bundled model at {FP32}")


@pytest.mark.parametrize(
    "variant,precision",
    [("fp32", "fp32"), ("fp16", "fp16"), ("int8", "int8"), ("int8cpu", "int8"), ("int8ov", "int8")],
)
def test_each_package_verifies_and_names_its_precision_and_checkpoint(variant, precision):
    package = load_package(variant_path(FP32, variant))  # sha256 checked against the sidecar
    assert package.precision == precision
    assert package.input_size == (360, 480) and package.classes == list(CAMVID.classes)
    checkpoint = package.sidecar_path.parent / package.meta["source"]["checkpoint"]
    payload = load_checkpoint(checkpoint)  # weights_only=True
    assert payload["model"] == {
        "arch": "fpn_lite",
        "encoder": "efficientnet_lite1",
        "num_classes": 11,
        "kwargs": {},
    }


def test_default_on_the_cpu_is_the_fastest_package_within_the_accuracy_targets():
    chosen = load_package(default_package_for("onnxruntime"))
    fp32 = load_package(FP32).meta["metrics"]
    metrics = chosen.meta["metrics"]
    allowed = {"fp32": 0.0, "fp16": 0.001, "int8": 0.01}[chosen.precision]
    assert fp32["val_miou"] - metrics["val_miou"] <= allowed
    assert metrics["cpu_ms_per_frame"] <= fp32["cpu_ms_per_frame"]
    assert default_package_for("torch") == FP32


@pytest.mark.data
@pytest.mark.slow
def test_fp32_and_int8_on_camvid_val(data_dir):
    from rtseg.evaluation import EvalConfig, evaluate

    scores = {
        v: evaluate(
            EvalConfig(
                model=str(variant_path(FP32, v)),
                data_root=str(data_dir / "camvid"),
                split="val",
                threads=2,
                progress=False,
            )
        )["miou"]
        for v in ("fp32", "int8cpu", "int8ov")
    }
    assert scores["fp32"] >= 0.69
    for v in ("int8cpu", "int8ov"):  # issue 20's INT8 target: <= 0.5 point
        assert scores["fp32"] - scores[v] <= 0.005, (v, scores)


@pytest.mark.data
@pytest.mark.slow
def test_labelled_clip_through_the_pipeline(data_dir, tmp_path):
    """`rtseg run --masks` on the CamVid val clip (MPEG-4), scored against its labels."""
    clip = data_dir / "video" / "camvid_0016E5_val_15fps.mp4"
    names = (data_dir / "video" / "camvid_0016E5_val_15fps.frames.txt").read_text().split()
    result = CliRunner().invoke(main, ["run", "--video", str(clip), "--masks", str(tmp_path), "-q"])
    assert result.exit_code == 0, result.output
    assert len(list(tmp_path.glob("*.png"))) == len(names) == 101
    matrix = ConfusionMatrix(CAMVID.num_classes)
    for index, name in enumerate(names):
        pred = cv2.imread(str(tmp_path / f"{index:06d}.png"), cv2.IMREAD_UNCHANGED)
        label = cv2.imread(str(data_dir / "camvid" / "valannot" / name), cv2.IMREAD_UNCHANGED)
        matrix.update(pred, np.where(label >= CAMVID.num_classes, IGNORE_INDEX, label))
    assert matrix.miou() >= 0.60
