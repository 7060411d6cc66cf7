"""A run's configuration is composed of small frozen sub-configs; the decoder and the OpenVINO
precision travel in it (never through the environment, which is only their default); the
library functions of eval, bench and batch check their paths themselves, so a Python caller
gets the promise the CLI gives (outputs never destroy inputs)."""

from __future__ import annotations

import dataclasses
import os
import pickle
from pathlib import Path

import pytest
from click.testing import CliRunner

import rtseg
from rtseg.assembly import DrawingConfig, EngineConfig, InputConfig, OutputConfig, RunConfig
from rtseg.errors import InputError, OutputError


def test_run_config_is_made_of_frozen_sub_configs():
    cfg = RunConfig.of("a.mp4", output="o.mp4", device="cpu", mode="mask", max_frames=3)
    assert cfg.engine == EngineConfig(device="cpu") and cfg.drawing == DrawingConfig(mode="mask")
    assert cfg.input == InputConfig(max_frames=3) and cfg.outputs == OutputConfig(output=Path("o.mp4"))
    with pytest.raises(dataclasses.FrozenInstanceError):
        cfg.engine.device = "cuda"
    with pytest.raises(TypeError, match="unknown run option"):
        RunConfig.of("a.mp4", colour="red")
    with pytest.raises(InputError, match="unknown mode"):
        RunConfig.of("a.mp4", mode="blend")


def test_run_options_leave_the_environment_alone(tiny_video, tiny_package, tmp_path, monkeypatch):
    """--decoder / --openvino-precision are config fields passed down, not environment writes."""
    monkeypatch.delenv("RTSEG_DECODER", raising=False)
    monkeypatch.delenv("RTSEG_OPENVINO_PRECISION", raising=False)
    from rtseg.cli import main

    args = ["run", "--video", tiny_video, "--model", tiny_package.onnx_path, "--backend", "auto"]
    args += ["--decoder", "cpu", "--openvino-precision", "f32", "--max-frames", "2", "-q"]
    result = CliRunner().invoke(main, list(map(str, args)))
    assert result.exit_code == 0, result.output
    assert "RTSEG_DECODER" not in os.environ and "RTSEG_OPENVINO_PRECISION" not in os.environ
    stats = rtseg.run(
        tiny_video, model=tiny_package.onnx_path, backend="onnxruntime", decoder="cpu", max_frames=2
    )
    assert stats.frames == 2


def test_batch_ships_the_decoder_and_precision_in_its_config(tiny_package, tmp_path, monkeypatch):
    from rtseg.batch import archive_options
    from rtseg.batch.outputs import OutputPlan
    from rtseg.batch.worker import run_config

    monkeypatch.setenv("RTSEG_DECODER", "cpu")  # read once, in the driver
    monkeypatch.setenv("RTSEG_OPENVINO_PRECISION", "f32")
    options = archive_options(("masks",), model=tiny_package.onnx_path, backend="openvino", mode="mask")
    monkeypatch.delenv("RTSEG_DECODER")  # a worker elsewhere has no such environment
    monkeypatch.delenv("RTSEG_OPENVINO_PRECISION")
    shipped = pickle.loads(pickle.dumps(options))
    cfg = run_config(Path("a.mp4"), OutputPlan(tmp_path, "a", ("masks",)), shipped)
    assert cfg.input.decoder == "cpu" and cfg.engine.openvino_precision == "f32"
    assert cfg.engine.model == tiny_package.onnx_path.resolve() and cfg.drawing.mode == "mask"
    assert cfg.drawing.hud is False and cfg.outputs.quiet and cfg.outputs.masks is not None


def test_eval_checks_its_paths_from_python(tiny_package, tmp_path):
    from rtseg.evaluation import EvalConfig, VideoEvalConfig, evaluate, evaluate_video

    model = tiny_package.onnx_path
    with pytest.raises(OutputError, match="--json .* is the input --model"):
        evaluate(EvalConfig(model=str(model), data_root=str(tmp_path), json_path=model))
    with pytest.raises(OutputError, match="--json .* is the input --model"):
        evaluate_video(VideoEvalConfig(model=str(model), video=str(model), json_path=model))
    assert model.stat().st_size > 100  # untouched


def test_bench_checks_its_paths_from_python(tiny_package):
    from rtseg.bench import BenchConfig, run_bench

    model = tiny_package.onnx_path
    with pytest.raises(OutputError, match="--csv .* is the input --model"):
        run_bench(BenchConfig(model=model, csv_path=model))


def test_batch_checks_its_paths_from_python(tiny_package, tiny_video, tmp_path):
    from rtseg.batch import BatchConfig, VideoOptions, run_batch

    video = VideoOptions.of(model=tiny_package.onnx_path)
    config = BatchConfig(
        inputs=(str(tiny_video),), out_dir=tmp_path / "out", video=video, report_json=tiny_video
    )
    with pytest.raises(OutputError, match="--report-json .* is the input INPUT"):
        run_batch(config)
    assert not (tmp_path / "out").exists()


def test_the_bench_opens_a_checkpoint_through_loading(tiny_checkpoint):
    pytest.importorskip("torch")
    from rtseg.bench.worker import open_for_bench

    spec = {"backend": "torch", "checkpoint": str(tiny_checkpoint), "size": [32, 48], "threads": 1}
    model = open_for_bench(spec)
    with model.backend as backend:
        assert tuple(backend.input_size) == (32, 48) and model.source == tiny_checkpoint


def test_train_checks_its_paths_from_python(tmp_path):
    pytest.importorskip("torch")
    from rtseg.train.loop import TrainConfig, train

    (tmp_path / "data").mkdir()
    weights = tmp_path / "out" / "best.pth"
    weights.parent.mkdir()
    weights.write_bytes(b"weights")
    config = TrainConfig(
        data_root=str(tmp_path / "data"), out_dir=str(weights.parent), pretrained=str(weights)
    )
    with pytest.raises(OutputError, match="--out-dir .* holds the input --encoder-weights"):
        train(config)
    assert weights.read_bytes() == b"weights"


def test_every_command_shares_the_engine_options():
    """--backend / --device / --openvino-precision / --decoder: one declaration (one default,
    one choice list, one help) on every command that takes them."""
    from rtseg.cli.batch import batch
    from rtseg.cli.bench import bench
    from rtseg.cli.evaluate import evaluate
    from rtseg.cli.run import run

    takes = {
        "backend": (run, batch, evaluate),
        "device": (run, batch, evaluate, bench),
        "openvino_precision": (run, batch, evaluate, bench),
        "decoder": (run, batch, bench),
    }
    for name, commands in takes.items():
        params = [next(p for p in command.params if p.name == name) for command in commands]
        first = params[0]
        for param in params[1:]:
            assert (param.default, param.help, list(param.type.choices)) == (
                first.default,
                first.help,
                list(first.type.choices),
            ), name


def test_an_openvino_precision_on_another_engine_is_refused_not_ignored(
    tiny_package, tiny_checkpoint, tiny_video, monkeypatch
):
    """--openvino-precision names how OpenVINO computes; given for a model that runs elsewhere
    it is an error (the environment's default is not: it applies where OpenVINO runs)."""
    from rtseg.cli import main

    monkeypatch.delenv("RTSEG_OPENVINO_PRECISION", raising=False)
    with pytest.raises(InputError, match="is for the OpenVINO backend; this model runs on onnxruntime"):
        EngineConfig(tiny_package.onnx_path, backend="onnxruntime", openvino_precision="bf16")
    with pytest.raises(InputError, match="this model runs on torch"):
        EngineConfig(tiny_checkpoint, openvino_precision="f32")
    assert (
        EngineConfig(tiny_package.onnx_path, backend="openvino", openvino_precision="F32").openvino_precision
        == "f32"
    )
    assert EngineConfig(tiny_package.onnx_path, backend="onnxruntime", openvino_precision="auto")
    args = ["run", "--video", tiny_video, "--model", tiny_package.onnx_path, "--backend", "onnxruntime"]
    result = CliRunner().invoke(main, list(map(str, [*args, "--openvino-precision", "bf16", "-q"])))
    assert result.exit_code == 1 and "Traceback" not in result.output
    assert result.stderr.strip().splitlines()[-1].startswith("rtseg: error: --openvino-precision bf16 is for")

    monkeypatch.setenv("RTSEG_OPENVINO_PRECISION", "f32")  # a user-level default, not a request
    engine = EngineConfig(tiny_package.onnx_path, backend="onnxruntime")
    assert engine.openvino_precision == "f32" and not engine.precision_given
    moved = dataclasses.replace(engine, threads=1)  # as the batch driver does
    assert not moved.precision_given
    assert not pickle.loads(pickle.dumps(moved)).precision_given
