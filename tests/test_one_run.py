"""Every way into a run opens the same one (rtseg.assembly.open_run over one Pipeline engine):
`rtseg run`, a many-source run, the Python API, a stream and the batch worker give the same
masks, frame for frame, on a tiny model."""

from __future__ import annotations

import click
import numpy as np
import pytest
from band_model import make_band_package
from test_cli_run import read_masks, rtseg_run

import rtseg
from rtseg.assembly import option_fields
from rtseg.cli.options import RUN_OPTIONS


@pytest.fixture(scope="module")
def band(tmp_path_factory):
    return make_band_package(tmp_path_factory.mktemp("band"), height=64, width=96)


def test_run_multi_api_stream_and_batch_give_the_same_masks(tmp_path, tiny_video, band):
    from rtseg.batch import VideoOptions
    from rtseg.batch.outputs import OutputPlan
    from rtseg.batch.worker import segment_video
    from rtseg.loading import open_model

    model = ["--model", band.onnx_path, "--threads", 1, "--quiet"]
    assert rtseg_run("--video", tiny_video, "--masks", tmp_path / "cli", *model).exit_code == 0
    many = rtseg_run(
        "--source", tiny_video, "--source", tiny_video, "--masks", tmp_path / "multi_{index}", *model
    )
    assert many.exit_code == 0, many.output
    rtseg.run(tiny_video, masks=tmp_path / "api", model=band.onnx_path, threads=1)
    with rtseg.load(band.onnx_path, threads=1) as seg:
        streamed = [result.ids for result in seg.stream(tiny_video)]
    opened = open_model(band.onnx_path, threads=1)
    with opened.backend:
        options = VideoOptions.of(model=band.onnx_path, threads=1, kinds=("masks",))
        segment_video(opened, tiny_video, OutputPlan(tmp_path / "batch", "tiny", ("masks",)), options)
    names, reference = read_masks(tmp_path / "cli")
    assert len(reference) == 24 and len({ids.tobytes() for ids in reference}) > 1  # not all alike
    batch_folder = next(p for p in (tmp_path / "batch").rglob("*") if p.is_dir() and any(p.glob("*.png")))
    for folder in (tmp_path / "multi_0", tmp_path / "multi_1", tmp_path / "api", batch_folder):
        other_names, masks = read_masks(folder)
        assert other_names == names
        for a, b in zip(reference, masks):
            np.testing.assert_array_equal(a, b)
    assert len(streamed) == 24
    for a, b in zip(reference, streamed):
        np.testing.assert_array_equal(a, b)


def test_every_run_option_is_a_runconfig_field_with_its_default():
    """Declared once: each click option is named after a field of RunConfig's sub-configs and
    defaults to it; every field is an option."""
    defaults = {name: field.default for name, field in option_fields().items()}
    assert set(RUN_OPTIONS) == set(defaults)

    @click.command()
    def probe(**kw):
        pass

    for name, option in RUN_OPTIONS.items():
        param = option(probe).params[-1]
        assert param.name == name
        assert param.default == defaults[name], name


def test_run_and_batch_share_the_device_option():
    from rtseg.cli.batch import batch
    from rtseg.cli.run import run

    run_device = next(p for p in run.params if p.name == "device")
    batch_device = next(p for p in batch.params if p.name == "device")
    assert run_device.default == batch_device.default == "auto"
    assert list(run_device.type.choices) == list(batch_device.type.choices)
