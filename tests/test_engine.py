"""Engine cache key, engine sidecar, reuse/rebuild, the builder (against a fake TensorRT), and
the error paths without TensorRT or without a GPU."""

from __future__ import annotations

import json
import sys

import fake_tensorrt
import pytest
from click.testing import CliRunner
from conftest import TINY_SIZE

from rtseg.cli import main
from rtseg.cli.engine import parse_bytes
from rtseg.engine import (
    BuildConfig,
    EngineEnvironment,
    default_engine_path,
    engine_cache_key,
    engine_sidecar_path,
    find_or_build_engine,
    read_engine_sidecar,
)
from rtseg.engine.builder import batch_profile, build_engine
from rtseg.engine.environment import engine_environment
from rtseg.engine.onnx_prep import PREP_VERSION
from rtseg.errors import BackendError, DeviceError, InputError, MissingDependencyError, ModelError

H100 = EngineEnvironment("10.7.0", "NVIDIA H100 80GB HBM3", "9.0")
KEY_FIELDS = {
    "tensorrt": "10.7.0",
    "gpu": "NVIDIA H100",
    "compute_capability": "9.0",
    "precision": "fp32",
    "onnx_sha256": "ab" * 32,
    "graph_rewrite": 2,
    "max_batch": 8,
    "opt_batch": 1,
    "profiles": 2,
}


def fake_builder(calls):
    def build(onnx_path, engine_path, config, log):
        calls.append((onnx_path, engine_path, config))
        engine_path.write_bytes(b"plan for " + onnx_path.name.encode())
        return {
            "profile": {"input": "image", "min": [1], "opt": [1], "max": [config.max_batch]},
            "build": {"seconds": 0.1},
        }

    return build


# --- cache key and sidecar -------------------------------------------------------------------


def test_engine_cache_key_is_stable_and_covers_every_field():
    key = engine_cache_key(KEY_FIELDS)
    assert key == engine_cache_key(dict(KEY_FIELDS)) and len(key) == 16 and int(key, 16) >= 0
    for name, value in KEY_FIELDS.items():
        changed = {**KEY_FIELDS, name: value + 1 if isinstance(value, int) else value + "x"}
        assert engine_cache_key(changed) != key, name


def test_find_or_build_engine_builds_then_reuses(tiny_package, tmp_path):
    calls = []
    engine = tmp_path / "tiny.engine"
    first = find_or_build_engine(tiny_package, engine, env=H100, build=fake_builder(calls))
    assert first.built and first.reason == "no engine yet" and len(calls) == 1
    meta = json.loads(engine_sidecar_path(engine).read_text())
    assert meta["key"] == {
        "tensorrt": "10.7.0",
        "gpu": H100.gpu_name,
        "compute_capability": "9.0",
        "precision": "fp32",
        "onnx_sha256": tiny_package.meta["onnx_sha256"],
        "graph_rewrite": PREP_VERSION,
        "max_batch": 8,
        "opt_batch": 1,
        "profiles": 2,
    }
    assert meta["package"]["classes"] == tiny_package.classes and meta["engine"] == "tiny.engine"
    assert calls[0][2].timing_cache is not None  # a persistent timing cache by default
    again = find_or_build_engine(tiny_package, engine, env=H100, build=fake_builder(calls))
    assert not again.built and again.reason == "up to date" and len(calls) == 1


@pytest.mark.parametrize(
    "env, reason",
    [
        (EngineEnvironment("10.8.0", H100.gpu_name, "9.0"), "tensorrt 10.7.0 -> 10.8.0"),
        (EngineEnvironment("10.7.0", "NVIDIA L4", "8.9"), "compute_capability 9.0 -> 8.9"),
    ],
)
def test_find_or_build_engine_rebuilds_a_stale_engine(tiny_package, tmp_path, env, reason):
    calls = []
    engine = tmp_path / "tiny.engine"
    find_or_build_engine(tiny_package, engine, env=H100, build=fake_builder(calls))
    record = find_or_build_engine(tiny_package, engine, env=env, build=fake_builder(calls))
    assert record.built and reason in record.reason and len(calls) == 2
    assert read_engine_sidecar(engine)["key"]["tensorrt"] == env.trt_version


def test_find_or_build_engine_rebuilds_a_changed_or_unlabelled_engine(tiny_package, tmp_path):
    calls = []
    engine = tmp_path / "tiny.engine"
    find_or_build_engine(tiny_package, engine, env=H100, build=fake_builder(calls))
    engine.write_bytes(b"tampered")
    assert (
        "engine file changed"
        in find_or_build_engine(tiny_package, engine, env=H100, build=fake_builder(calls)).reason
    )
    engine_sidecar_path(engine).unlink()
    assert (
        "has no sidecar"
        in find_or_build_engine(tiny_package, engine, env=H100, build=fake_builder(calls)).reason
    )
    assert len(calls) == 3


def test_engine_built_for_smaller_batches_is_rebuilt(tiny_package, tmp_path):
    calls = []
    engine = tmp_path / "tiny.engine"
    find_or_build_engine(tiny_package, engine, BuildConfig(max_batch=8), env=H100, build=fake_builder(calls))
    bigger = find_or_build_engine(
        tiny_package, engine, BuildConfig(max_batch=16), env=H100, build=fake_builder(calls)
    )
    assert bigger.built and "max_batch 8 < 16" in bigger.reason
    assert read_engine_sidecar(engine)["key"]["max_batch"] == 16 and calls[-1][2].max_batch == 16
    smaller = find_or_build_engine(
        tiny_package, engine, BuildConfig(max_batch=8), env=H100, build=fake_builder(calls)
    )
    assert not smaller.built and len(calls) == 2  # a batch-16 engine serves batch 8
    one_profile = find_or_build_engine(
        tiny_package, engine, BuildConfig(max_batch=16, profiles=3), env=H100, build=fake_builder(calls)
    )
    assert one_profile.built and "profiles 2 < 3" in one_profile.reason


def test_engine_from_another_graph_rewrite_is_rebuilt(tiny_package, tmp_path):
    calls = []
    engine = tmp_path / "tiny.engine"
    find_or_build_engine(tiny_package, engine, env=H100, build=fake_builder(calls))
    sidecar = engine_sidecar_path(engine)
    meta = json.loads(sidecar.read_text())
    del meta["key"]["graph_rewrite"]  # what a format-1 sidecar (the old rewrite) holds
    sidecar.write_text(json.dumps(meta))
    record = find_or_build_engine(tiny_package, engine, env=H100, build=fake_builder(calls))
    assert record.built and f"graph_rewrite None -> {PREP_VERSION}" in record.reason and len(calls) == 2


def test_engine_is_keyed_by_precision(tiny_package, fp16_package, tmp_path):
    calls = []
    find_or_build_engine(tiny_package, tmp_path / "x.engine", env=H100, build=fake_builder(calls))
    record = find_or_build_engine(fp16_package, tmp_path / "x.engine", env=H100, build=fake_builder(calls))
    assert record.built and "precision fp32 -> fp16" in record.reason


def test_read_engine_sidecar_errors(tmp_path):
    engine = tmp_path / "a.engine"
    with pytest.raises(ModelError, match="has no sidecar"):
        read_engine_sidecar(engine)
    engine_sidecar_path(engine).write_text("{not json")
    with pytest.raises(ModelError, match="not valid JSON"):
        read_engine_sidecar(engine)
    engine_sidecar_path(engine).write_text(json.dumps({"format": "rtseg-model"}))
    with pytest.raises(ModelError, match="not an rtseg engine sidecar"):
        read_engine_sidecar(engine)


def test_default_engine_path_falls_back_to_the_user_cache(tiny_package, tmp_path, monkeypatch):
    import rtseg.engine.cache as cache

    assert default_engine_path(tiny_package, "k") == tiny_package.onnx_path.with_suffix(".engine")
    monkeypatch.setenv("RTSEG_CACHE", str(tmp_path / "cache"))
    monkeypatch.setattr(cache.os, "access", lambda path, mode: False)
    assert default_engine_path(tiny_package, "k") == tmp_path / "cache" / "engines" / "tiny-k.engine"


# --- environment checks: which dependency is missing -----------------------------------------


def test_no_tensorrt_is_one_clear_error(no_tensorrt):
    with pytest.raises(MissingDependencyError, match=r"tensorrt is required .*rtseg\[trt\]"):
        engine_environment()


def test_no_gpu_is_one_clear_error_before_any_builder(fake_trt, no_gpu, tiny_package, tmp_path):
    with pytest.raises(DeviceError, match="no CUDA GPU found"):
        engine_environment()
    with pytest.raises(DeviceError, match="no CUDA GPU found"):
        build_engine(tiny_package.onnx_path, tmp_path / "x.engine")
    assert fake_trt.calls["created_builder"] == 0  # never touched trt.Builder


# --- the builder, against the fake TensorRT --------------------------------------------------


def test_build_engine_strongly_typed_with_profiles_workspace_and_timing_cache(
    fake_trt, fake_gpu, tiny_package, tmp_path
):
    cache = tmp_path / "timing.cache"
    cache.write_bytes(b"old")
    lines = []
    config = BuildConfig(workspace=1 << 30, timing_cache=cache, max_batch=4, profiles=2)
    result = build_engine(tiny_package.onnx_path, tmp_path / "t.engine", config, log=lines.append)
    calls = fake_trt.calls
    assert calls["network_flags"] == 1 << 5  # 1 << STRONGLY_TYPED
    assert calls["workspace"] == ("workspace", 1 << 30)
    h, w = TINY_SIZE
    assert calls["profiles"] == [("image", (1, h, w, 3), (1, h, w, 3), (4, h, w, 3))] * 2
    assert calls["added_profiles"] == 2
    assert calls["timing_cache_in"] == b"old" and cache.read_bytes() == b"old+timings"
    assert isinstance(calls["monitor"], fake_trt.IProgressMonitor)
    assert (tmp_path / "t.engine").read_bytes() == b"FAKE-PLAN"
    assert result["profile"]["max"] == [4, h, w, 3] and result["profile"]["count"] == 2
    assert any("wrote" in line for line in lines)


def test_build_engine_shows_every_parser_error(monkeypatch, fake_gpu, tiny_package, tmp_path):
    errors = ("In node 3 (Conv): INVALID_NODE: bad weights\nmore detail", "In node 9: UNSUPPORTED")
    monkeypatch.setitem(sys.modules, "tensorrt", fake_tensorrt.make_module(*TINY_SIZE, parse_errors=errors))
    lines = []
    with pytest.raises(ModelError, match="cannot parse tiny.onnx: 2 error"):
        build_engine(tiny_package.onnx_path, tmp_path / "t.engine", log=lines.append)
    assert any("more detail" in line for line in lines) and any("UNSUPPORTED" in line for line in lines)


def test_build_engine_failure_is_reported(monkeypatch, fake_gpu, tiny_package, tmp_path):
    monkeypatch.setitem(sys.modules, "tensorrt", fake_tensorrt.make_module(*TINY_SIZE, build_fails=True))
    with pytest.raises(BackendError, match="TensorRT failed to build"):
        build_engine(tiny_package.onnx_path, tmp_path / "t.engine")
    assert not (tmp_path / "t.engine").exists()


def test_build_engine_refuses_cpu_int8(fake_trt, fake_gpu, int8cpu_package, tmp_path):
    cpu = int8cpu_package
    assert cpu.meta["calibration"]["tensorrt_compatible"] is False
    with pytest.raises(ModelError, match="int8-target cpu"):
        build_engine(cpu.onnx_path, tmp_path / "cpu.engine")


def test_batch_profile():
    assert batch_profile((-1, 64, 96, 3), 1, 8) == ((1, 64, 96, 3), (1, 64, 96, 3), (8, 64, 96, 3))
    assert batch_profile((2, 64, 96, 3), 1, 8) == ((2, 64, 96, 3),) * 3
    with pytest.raises(ModelError, match="only the batch axis"):
        batch_profile((-1, -1, 96, 3), 1, 8)


def test_build_config_validates():
    with pytest.raises(ValueError, match="opt_batch"):
        BuildConfig(max_batch=2, opt_batch=4)


# --- CLI -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "text, expected", [("2GiB", 2 << 30), ("512M", 512 << 20), ("1024", 1024), ("1.5g", 3 << 29)]
)
def test_parse_bytes(text, expected):
    assert parse_bytes(text) == expected


@pytest.mark.parametrize("text", ["lots", "-1G", "2XB"])
def test_parse_bytes_rejects(text):
    with pytest.raises(InputError, match="--workspace"):
        parse_bytes(text)


def test_cli_build_engine_without_tensorrt_is_one_line(no_tensorrt, tiny_package):
    result = CliRunner().invoke(main, ["build-engine", str(tiny_package.onnx_path)])
    assert result.exit_code == 1
    (line,) = result.stderr.strip().splitlines()
    assert line == (
        "rtseg: error: tensorrt is required for TensorRT engines but is not installed "
        "(pip install 'rtseg[trt]')"
    )


def test_cli_build_engine_without_gpu_is_one_line(fake_trt, no_gpu, tiny_package):
    result = CliRunner().invoke(main, ["build-engine", str(tiny_package.onnx_path)])
    assert result.exit_code == 1 and "Traceback" not in result.output
    (line,) = result.stderr.strip().splitlines()
    assert line.startswith("rtseg: error: no CUDA GPU found")


def test_cli_build_engine_with_fake_tensorrt(fake_trt, fake_gpu, tiny_package, tmp_path, monkeypatch):
    monkeypatch.setenv("RTSEG_CACHE", str(tmp_path / "cache"))
    out = tmp_path / "tiny.engine"
    result = CliRunner().invoke(
        main,
        [
            "build-engine",
            str(tiny_package.onnx_path),
            "-o",
            str(out),
            "--workspace",
            "1GiB",
            "--max-batch",
            "2",
        ],
    )
    assert result.exit_code == 0, result.output
    meta = read_engine_sidecar(out)
    assert meta["key"]["tensorrt"] == "10.99.0" and meta["profile"]["max"][0] == 2
    assert list((tmp_path / "cache" / "timing").glob("trt10.99.0_sm90_*.cache"))


def test_inspect_engine_tool_prints_the_sidecar_key(tiny_package, tmp_path):
    import subprocess
    from pathlib import Path

    engine = tmp_path / "tiny.engine"
    record = find_or_build_engine(tiny_package, engine, env=H100, build=fake_builder([]))
    tool = Path(__file__).resolve().parent.parent / "tools" / "inspect_engine.py"

    def inspect(path):
        command = [sys.executable, str(tool), str(path)]
        return subprocess.run(command, capture_output=True, text=True, timeout=120)

    done = inspect(engine)
    assert done.returncode == 0, done.stderr
    assert f"cache key    {record.meta['cache_key']}" in done.stdout
    assert "NVIDIA H100 80GB HBM3 (compute 9.0)" in done.stdout
    assert "tensors      not listed:" in done.stdout or "input " in done.stdout
    (tmp_path / "bare.engine").write_bytes(b"plan")
    bare = inspect(tmp_path / "bare.engine")
    assert bare.returncode == 1 and "has no sidecar" in bare.stderr and "Traceback" not in bare.stderr


def test_build_engine_file_checks_paths_before_anything_from_python(tmp_path):
    """The preflight lives in the library function: an output over the package's own ONNX is
    refused from Python too, before TensorRT is looked for, and the ONNX is left whole."""
    from band_model import make_band_package

    from rtseg.engine.build_file import build_engine_file
    from rtseg.errors import OutputError

    package = make_band_package(tmp_path / "band", height=64, width=96)
    before = package.onnx_path.read_bytes()
    with pytest.raises(OutputError, match="--output"):
        build_engine_file(package.onnx_path, output=package.onnx_path)
    with pytest.raises(OutputError, match="--prepare-only"):
        build_engine_file(package.onnx_path, prepare_only=package.onnx_path)
    assert package.onnx_path.read_bytes() == before
