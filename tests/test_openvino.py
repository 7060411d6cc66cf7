"""The OpenVINO backend, its probe in a child process, and `--backend auto`'s choice on a CPU."""

from __future__ import annotations

import json
import sys

import numpy as np
import pytest
from click.testing import CliRunner
from conftest import TINY_SIZE, structured_frames

from rtseg.cli import main
from rtseg.errors import BackendError, InputError, MissingDependencyError
from rtseg.loading import choose_backend, open_model
from rtseg.runtime import engine_choice, openvino_probe
from rtseg.runtime.openvino_backend import resolve_precision

pytest.importorskip("openvino")


@pytest.fixture
def fresh_choice(monkeypatch, tmp_path):
    """An empty user cache and no probe failure remembered from an earlier test."""
    monkeypatch.setenv("RTSEG_CACHE", str(tmp_path / "cache"))
    monkeypatch.setattr(engine_choice, "_failed", [])
    monkeypatch.setattr("rtseg.core.notices._said", set())
    return tmp_path / "cache"


def test_openvino_submit_keeps_two_batches_in_flight(tiny_package):
    frames = structured_frames(5, *TINY_SIZE, seed=7)
    with open_model(tiny_package.onnx_path, backend="openvino", threads=1).backend as b:
        alone = np.concatenate([b.infer(frames[i : i + 1]) for i in range(5)])
        first, second = b.submit(frames[:1]), b.submit(frames[1:2])  # both requests busy
        np.testing.assert_array_equal(second.wait(), alone[1:2])  # collected out of order
        np.testing.assert_array_equal(first.wait(), alone[:1])
        frames[:2] = 0  # the caller reuses its buffer: submitted frames were copied
        third = b.submit(frames[2:5])  # a batch of 3 on the dynamic-batch model
        np.testing.assert_array_equal(third.wait(), alone[2:5])
        np.testing.assert_array_equal(b.infer(structured_frames(5, *TINY_SIZE, seed=7)), alone)


def test_openvino_batches_agree_with_single_frames_on_qdq_packages():
    """A regression: a dynamic-batch model gave other ids for batches of ONNX Runtime's Q/DQ
    packages (the bundled `_int8cpu`) than frame by frame (82% on CamVid frames); every batch
    runs on a static shape now (5 frames: padded to 8)."""
    from rtseg.core.package import default_model_path, variant_path

    package = variant_path(default_model_path(), "int8cpu")
    frames = structured_frames(5, 360, 480, seed=11)
    with open_model(package, backend="openvino", threads=2).backend as b:
        alone = np.concatenate([b.infer(frame[None]) for frame in frames])
        np.testing.assert_array_equal(b.infer(frames), alone)
        np.testing.assert_array_equal(b.submit(frames[:3]).wait(), alone[:3])


def test_openvino_forced_f32_matches_onnxruntime(tiny_package, monkeypatch):
    from rtseg.assembly import EngineConfig, open_engine

    frames = structured_frames(3, *TINY_SIZE, seed=8)
    monkeypatch.setenv("RTSEG_OPENVINO_PRECISION", "f32")  # the configuration's default, passed down
    engine = EngineConfig(tiny_package.onnx_path, backend="openvino", threads=1)
    assert engine.openvino_precision == "f32"
    with open_engine(engine).backend as ov:
        assert ov.describe() == "openvino[CPU, f32, 1 threads]"
        ids = ov.infer(frames)
    with open_model(tiny_package.onnx_path, backend="onnxruntime", threads=1).backend as ort:
        assert ort.describe() == "onnxruntime[CPU, fp32, 1 threads]"
        assert (ids == ort.infer(frames)).mean() >= 0.999


def test_openvino_keeps_compiled_models_in_the_user_cache(tiny_package, fresh_choice):
    with open_model(tiny_package.onnx_path, backend="openvino", threads=1).backend:
        pass
    assert list((fresh_choice / "openvino").glob("*.blob"))


def test_openvino_precision_words():
    assert resolve_precision("auto", ("FP32", "BF16")) is None  # the plugin's own choice
    assert resolve_precision("f32", ("FP32",)) == "f32"
    assert resolve_precision("f16", ("FP32", "FP16")) == "f16"  # AVX512-FP16 / AMX-FP16 CPUs
    with pytest.raises(BackendError, match="cannot compute in it"):
        resolve_precision("bf16", ("FP32",))
    with pytest.raises(InputError, match="unknown OpenVINO precision"):
        resolve_precision("int4", ("FP32",))


def test_openvino_runs_on_the_cpu_only(tiny_package):
    with pytest.raises(InputError, match="runs on the CPU"):
        open_model(tiny_package.onnx_path, backend="openvino", device="cuda")


def test_a_missing_openvino_is_one_error_line(tiny_package, tiny_video, monkeypatch):
    monkeypatch.setitem(sys.modules, "openvino", None)  # import openvino -> ImportError
    with pytest.raises(MissingDependencyError, match="openvino is required"):
        open_model(tiny_package.onnx_path, backend="openvino")
    args = ["run", "--video", tiny_video, "--model", tiny_package.onnx_path, "--backend", "openvino"]
    result = CliRunner().invoke(main, list(map(str, args)))
    assert result.exit_code == 1 and "Traceback" not in result.output
    assert result.stderr.strip().splitlines() == [
        "rtseg: error: openvino is required for the OpenVINO backend but is not installed "
        "(pip install 'rtseg[openvino]')"
    ]


def test_auto_without_openvino_warns_and_runs_onnxruntime(tiny_package, fresh_choice, monkeypatch, capsys):
    monkeypatch.setattr(engine_choice, "openvino_version", lambda: None)
    monkeypatch.setattr(engine_choice.platform, "machine", lambda: "x86_64")
    assert choose_backend("auto", "cpu", tiny_package.onnx_path) == "onnxruntime"
    assert capsys.readouterr().err.splitlines() == [
        "rtseg: warning: openvino is not installed (pip install openvino): running on ONNX Runtime, slower"
    ]


def test_auto_picks_openvino_after_a_healthy_probe_and_caches_it(tiny_package, fresh_choice, monkeypatch):
    assert choose_backend("auto", None, tiny_package.onnx_path) == "openvino"
    verdicts = list((fresh_choice / "openvino-probe").glob("*.json"))
    assert len(verdicts) == 1 and json.loads(verdicts[0].read_text())["healthy"] is True

    def no_child(*args, **kwargs):
        raise AssertionError("probed again")

    monkeypatch.setattr(openvino_probe.subprocess, "run", no_child)
    assert choose_backend("auto", "cpu", tiny_package.onnx_path) == "openvino"  # the cached verdict


def test_auto_for_checkpoints_engines_and_gpu_devices(tiny_checkpoint, tiny_package):
    assert choose_backend("auto", "cpu", tiny_checkpoint) == "torch"
    assert choose_backend("auto", None, "model.engine") == "tensorrt"
    assert choose_backend("auto", "cuda", tiny_package.onnx_path) == "onnxruntime"
    assert choose_backend("openvino", None, tiny_package.onnx_path) == "openvino"


@pytest.mark.parametrize(
    "fault, reason",
    [("crash", "its probe crashed (SIGFPE)"), ("disagree", "agree with ONNX Runtime's on")],
)
def test_an_unhealthy_probe_falls_back_to_onnxruntime_with_one_warning(
    fault, reason, tiny_package, fresh_choice, monkeypatch, capsys
):
    monkeypatch.setenv(openvino_probe.FAULT_ENV, fault)
    assert choose_backend("auto", "cpu", tiny_package.onnx_path) == "onnxruntime"
    assert choose_backend("auto", "cpu", tiny_package.onnx_path) == "onnxruntime"  # said once
    lines = capsys.readouterr().err.splitlines()
    assert len(lines) == 1 and lines[0].startswith("rtseg: warning: OpenVINO is not used: ")
    assert reason in lines[0] and lines[0].endswith("running on ONNX Runtime")
    verdict = json.loads(next((fresh_choice / "openvino-probe").glob("*.json")).read_text())
    assert verdict["healthy"] is False  # cached: the next process does not crash a child again


@pytest.mark.slow
def test_run_with_a_crashing_probe_writes_every_frame_on_onnxruntime(
    tiny_package, tiny_video, fresh_choice, monkeypatch, tmp_path
):
    monkeypatch.setenv(openvino_probe.FAULT_ENV, "crash")
    stats = tmp_path / "stats.json"
    args = ["run", "--video", tiny_video, "--model", tiny_package.onnx_path, "--stats-json", stats, "-q"]
    result = CliRunner().invoke(main, list(map(str, args)))
    assert result.exit_code == 0, result.output
    assert "Traceback" not in result.output
    warnings = [line for line in result.stderr.splitlines() if line.startswith("rtseg: warning:")]
    assert len(warnings) == 1 and "probe crashed" in warnings[0]
    summary = json.loads(stats.read_text())
    assert summary["backend"].startswith("onnxruntime[CPU, fp32") and summary["frames"] == 24


@pytest.mark.slow
def test_the_default_run_says_it_ran_openvino(tiny_package, tiny_video, fresh_choice, tmp_path, monkeypatch):
    stats = tmp_path / "stats.json"
    args = ["run", "--video", tiny_video, "--model", tiny_package.onnx_path, "--stats-json", stats]
    args += ["--openvino-precision", "f32"]
    result = CliRunner().invoke(main, list(map(str, args)))
    assert result.exit_code == 0, result.output
    header = next(line for line in result.stdout.splitlines() if line.startswith("rtseg: tiny.mp4"))
    assert "on openvino[CPU, f32, " in header  # the header line says the engine and precision
    summary = json.loads(stats.read_text())
    assert summary["backend"].startswith("openvino[CPU, f32") and summary["frames"] == 24


@pytest.mark.slow
def test_nncf_int8_package_runs_on_openvino_and_onnxruntime(tiny_package, tmp_path):
    pytest.importorskip("nncf")
    from rtseg.core.package import load_package
    from rtseg.export.int8_openvino import quantize_int8_openvino

    calibration = structured_frames(8, *TINY_SIZE, seed=9)
    out = tmp_path / "tiny_int8ov.onnx"
    package = quantize_int8_openvino(tiny_package, out, calibration, calib_source="generated")
    assert load_package(out).precision == "int8" and package.meta["calibration"]["target"] == "openvino"
    frames = structured_frames(3, *TINY_SIZE, seed=10)
    with open_model(out, backend="openvino", threads=1).backend as ov:
        assert ov.describe().startswith("openvino[CPU, int8, ")
        ids = ov.infer(frames)
    with open_model(tiny_package.onnx_path, backend="onnxruntime", threads=1).backend as ort:
        assert (ids == ort.infer(frames)).mean() >= 0.9  # a tiny random model: loose
    with pytest.raises(Exception, match="quantize the fp32 package"):
        quantize_int8_openvino(package, tmp_path / "again.onnx", calibration)


def test_bench_rows_say_engine_precision_and_codec_path():
    from rtseg.bench.report import csv_record, precision_label

    row = {"backend": "openvino", "precision": "fp32", "runtime": "openvino[CPU, bf16, 2 threads]"}
    assert precision_label(row) == "fp32 (bf16)"
    assert precision_label(dict(row, precision="int8", runtime="openvino[CPU, int8, 2 threads]")) == "int8"
    ort = dict(row, backend="onnxruntime", runtime="onnxruntime[CPU, fp32, 2 threads]")
    assert precision_label(ort) == "fp32"
    record = csv_record(dict(row, e2e={"decoder": "h264_cuvid", "encoder": "h264_nvenc"}))
    assert record["codec_path"] == "h264_cuvid -> h264_nvenc" and record["runtime"] == row["runtime"]


def test_a_probe_that_times_out_falls_back_and_is_asked_again_next_time(
    tiny_package, fresh_choice, monkeypatch, capsys
):
    import subprocess

    def too_slow(*args, **kwargs):
        raise subprocess.TimeoutExpired(args[0], openvino_probe.PROBE_TIMEOUT_S)

    monkeypatch.setattr(openvino_probe.subprocess, "run", too_slow)
    assert choose_backend("auto", "cpu", tiny_package.onnx_path) == "onnxruntime"
    assert "its probe did not finish in 300 s" in capsys.readouterr().err
    assert not list((fresh_choice / "openvino-probe").glob("*.json"))  # not cached


def test_auto_keeps_onnxruntime_for_its_gpu_build_on_a_gpu_machine(tiny_package, monkeypatch):
    from importlib import metadata

    real = metadata.version

    def with_gpu_build(name):
        return "1.22.0" if name == "onnxruntime-gpu" else real(name)

    monkeypatch.setattr(metadata, "version", with_gpu_build)
    monkeypatch.setattr("rtseg.core.gpu.nvidia_device_present", lambda: True)
    assert choose_backend("auto", "auto", tiny_package.onnx_path) == "onnxruntime"
    monkeypatch.setattr("rtseg.core.gpu.nvidia_device_present", lambda: False)
    assert engine_choice.gpu_runtime_present() is False


def test_a_cache_that_is_a_file_or_read_only_is_run_without(tiny_package, fresh_choice, monkeypatch, capsys):
    """RTSEG_CACHE naming a file: OpenVINO runs without its compiled-model cache and the probe
    without keeping its verdict, one warning line each, never an error or a traceback."""
    fresh_choice.parent.mkdir(exist_ok=True)
    fresh_choice.write_text("not a folder")
    assert choose_backend("auto", "cpu", tiny_package.onnx_path) == "openvino"
    with open_model(tiny_package.onnx_path, backend="openvino", threads=1).backend as ov:
        assert ov.infer(structured_frames(1, *TINY_SIZE)).shape == (1, *TINY_SIZE)
        assert "CACHE_DIR" not in ov.config
    lines = capsys.readouterr().err.splitlines()
    assert lines and all(line.startswith("rtseg: warning: cache folder ") for line in lines), lines
    assert any("openvino-probe cannot be used (Not a directory)" in line for line in lines)


@pytest.mark.parametrize(
    "agreement, floor, healthy",
    [
        (0.942, 0.792, True),  # bf16 on a model on the fence over much of the frame: sound
        (0.942, 0.999, False),  # the same agreement where the model's ids are steady: not
        (0.975, 0.999, True),
        (0.45, 0.30, False),  # below the lowest bar whatever the model
    ],
)
def test_the_probe_bar_is_how_far_the_models_ids_move_under_a_one_level_nudge(
    agreement, floor, healthy, tiny_package, monkeypatch
):
    import subprocess

    line = json.dumps({"agreement": agreement, "floor": floor, "precision": "bf16"})

    def child(command, **kwargs):
        return subprocess.CompletedProcess(command, 0, stdout=line + "\n", stderr="")

    monkeypatch.setattr(openvino_probe.subprocess, "run", child)
    verdict = openvino_probe._child_verdict(tiny_package.onnx_path, None)
    assert verdict.healthy is healthy and verdict.agreement == agreement
    if not healthy:
        needed = openvino_probe.required_agreement(floor)
        assert verdict.reason.endswith(f"pixels only (needed {needed:.1%})")


def test_the_nudge_moves_each_value_by_at_most_one_level_and_stays_in_range():
    frame = openvino_probe.probe_frame(48, 64)
    frame[0, :4, :4] = [0, 255, 0]
    moved = openvino_probe.nudged(frame)
    assert moved.dtype == np.uint8 and moved.shape == frame.shape
    assert np.abs(moved.astype(int) - frame).max() == 1 and (moved != frame).mean() > 0.5
    assert np.array_equal(moved, openvino_probe.nudged(frame))  # deterministic


@pytest.mark.slow
@pytest.mark.parametrize("package", ["camvid_effl1_fpn.onnx", "camvid_effl1_fpn_int8cpu.onnx"])
def test_the_bundled_packages_pass_the_probe(package, fresh_choice):
    """The bundled FP32 model sits on the fence between Sky and SignSymbol over much of the synthetic
    probe frame: bf16 moved ~6 % of its pixels there, and the old fixed 97 % bar sent it to ONNX
    Runtime at half the speed. Its INT8 package for ONNX Runtime runs on OpenVINO's kernels too."""
    from rtseg.core.package import engines_dir

    verdict = openvino_probe.probe_openvino(engines_dir() / package, fresh_choice)
    assert verdict.healthy, verdict.reason


def test_a_damaged_probe_verdict_is_probed_again(tiny_package, fresh_choice, monkeypatch):
    """A verdict file with the wrong types (`"healthy": "no"` is truthy) is not trusted; a
    folder where the verdict goes is skipped with a warning."""
    monkeypatch.setenv(openvino_probe.FAULT_ENV, "disagree")
    version = openvino_probe.openvino_version()
    path = openvino_probe.verdict_path(fresh_choice, tiny_package.onnx_path, version)
    path.parent.mkdir(parents=True)
    path.write_text('{"healthy": "no", "reason": 3}')
    assert choose_backend("auto", "cpu", tiny_package.onnx_path) == "onnxruntime"  # probed: it disagrees
    assert json.loads(path.read_text())["healthy"] is False
    monkeypatch.setattr(engine_choice, "_failed", [])
    path.unlink()
    path.mkdir()
    verdict = openvino_probe.probe_openvino(tiny_package.onnx_path, fresh_choice)
    assert not verdict.healthy and path.is_dir() and not list(path.parent.glob("*.tmp"))


def test_the_probe_verdict_is_kept_per_precision_asked(tiny_package, fresh_choice, monkeypatch):
    """A verdict probed in bf16 said nothing of f16 (the child computes in the precision asked)."""
    version = openvino_probe.openvino_version()
    monkeypatch.delenv("RTSEG_OPENVINO_PRECISION", raising=False)
    auto = openvino_probe.verdict_path(fresh_choice, tiny_package.onnx_path, version)
    monkeypatch.setenv("RTSEG_OPENVINO_PRECISION", "f16")
    f16 = openvino_probe.verdict_path(fresh_choice, tiny_package.onnx_path, version)
    monkeypatch.setenv("RTSEG_OPENVINO_PRECISION", "F16")
    assert auto != f16 == openvino_probe.verdict_path(fresh_choice, tiny_package.onnx_path, version)


def test_throughput_splits_the_threads_into_streams_with_the_same_masks(tiny_package):
    """throughput=True: REQUESTS_PER_MODEL streams share the threads (two frames in flight
    compute at once); the masks are those of the latency setting, frame for frame."""
    frames = structured_frames(6, *TINY_SIZE, seed=11)
    with open_model(tiny_package.onnx_path, backend="openvino", threads=2, precision="f32").backend as one:
        assert one.streams == 1 and one.describe() == "openvino[CPU, f32, 2 threads]"
        expected = one.infer(frames)
    loaded = open_model(
        tiny_package.onnx_path, backend="openvino", threads=2, precision="f32", throughput=True
    )
    with loaded.backend as split:
        assert split.streams == 2 and split.describe() == "openvino[CPU, f32, 2 threads, 2 streams]"
        assert int(split._compiled_for(1).compiled.get_property("NUM_STREAMS")) == 2  # what OpenVINO made
        pending = [split.submit(frames[i : i + 3]) for i in (0, 3)]  # both in flight at once
        np.testing.assert_array_equal(np.concatenate([p.wait() for p in pending]), expected)
        np.testing.assert_array_equal(split.infer(frames), expected)
    with open_model(tiny_package.onnx_path, backend="openvino", threads=1, throughput=True).backend as lone:
        assert lone.streams == 1  # one thread cannot be split


def test_a_recorded_run_asks_for_throughput_and_a_live_one_for_latency(tiny_package, tiny_video, tmp_path):
    import rtseg

    common = dict(model=tiny_package.onnx_path, backend="openvino", threads=2, openvino_precision="f32")
    recorded = rtseg.run(tiny_video, output=tmp_path / "a.mp4", max_frames=6, **common)
    assert recorded.backend == "openvino[CPU, f32, 2 threads, 2 streams]"
    live = rtseg.run("lavfi:testsrc=size=96x64:rate=12", output=tmp_path / "b.mp4", max_frames=6, **common)
    assert live.backend == "openvino[CPU, f32, 2 threads]"
