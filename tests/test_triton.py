"""`rtseg export-triton`: the repository layout, config.pbtxt parsed with Triton's own schema
(tritonclient's model_config_pb2), the plan model, collisions and --force."""

from __future__ import annotations

import json

import pytest
from band_model import make_band_package
from click.testing import CliRunner

from rtseg.core.package import load_package, write_sidecar
from rtseg.errors import InputError, ModelError
from rtseg.onnxtools.triton import TensorConfig, TritonModelConfig, config_text, export_triton

model_config_pb2 = pytest.importorskip(
    "tritonclient.grpc.model_config_pb2", reason="tritonclient[grpc] not installed (dev extra)"
)


def parse(path):
    from google.protobuf import text_format

    return text_format.Parse(path.read_text(), model_config_pb2.ModelConfig())


def dtype(config_enum_value) -> str:
    return model_config_pb2.DataType.Name(config_enum_value)


def cli(*args):
    from rtseg.cli import main

    return CliRunner().invoke(main, ["export-triton", *map(str, args)])


@pytest.fixture()
def band(tmp_path):
    return make_band_package(tmp_path / "pkg", height=64, width=96)


def fake_engine(tmp_path, package, max_batch=4, onnx_sha256=None):
    """An engine file and an rtseg engine sidecar as `rtseg build-engine` writes them."""
    engine = tmp_path / "band.engine"
    engine.write_bytes(b"plan bytes")
    meta = {
        "format": "rtseg-engine",
        "format_version": 1,
        "engine": engine.name,
        "cache_key": "0123456789abcdef",
        "key": {
            "tensorrt": "10.13.0",
            "gpu": "NVIDIA H200",
            "compute_capability": "9.0",
            "precision": "fp32",
            "onnx_sha256": onnx_sha256 or package.meta["onnx_sha256"],
        },
        "profile": {
            "input": "image",
            "min": [1, 64, 96, 3],
            "opt": [1, 64, 96, 3],
            "max": [max_batch, 64, 96, 3],
        },
    }
    (tmp_path / "band.engine.json").write_text(json.dumps(meta))
    return engine


def test_onnx_and_plan_models_with_trtons_schema(tmp_path, band):
    repo = tmp_path / "repo"
    engine = fake_engine(tmp_path, band)
    result = cli(
        band.onnx_path, "--repo", repo, "--engine", engine, "--instances", 2, "--max-queue-delay-us", 100
    )
    assert result.exit_code == 0, result.output
    assert sorted(p.name for p in repo.iterdir()) == ["band", "band_trt"]  # no staging folder left
    assert (repo / "band").stat().st_mode & 0o055 == (
        repo / "band" / "1"
    ).stat().st_mode & 0o055  # not private
    onnx = parse(repo / "band" / "config.pbtxt")
    assert (onnx.name, onnx.platform, onnx.max_batch_size) == ("band", "onnxruntime_onnx", 8)
    [inp], [out] = onnx.input, onnx.output
    assert (inp.name, dtype(inp.data_type), list(inp.dims)) == ("image", "TYPE_UINT8", [64, 96, 3])
    assert (out.name, dtype(out.data_type), list(out.dims)) == ("class_ids", "TYPE_UINT8", [64, 96])
    assert onnx.HasField("dynamic_batching") and onnx.dynamic_batching.max_queue_delay_microseconds == 100
    [group] = onnx.instance_group
    assert group.count == 2 and model_config_pb2.ModelInstanceGroup.Kind.Name(group.kind) == "KIND_CPU"
    assert (repo / "band" / "1" / "model.onnx").read_bytes() == band.onnx_path.read_bytes()
    copy = load_package(repo / "band" / "1" / "model.onnx")  # the version folder is a package
    assert copy.classes == band.classes and copy.input_size == (64, 96)
    plan = parse(repo / "band_trt" / "config.pbtxt")
    assert (plan.name, plan.platform, plan.max_batch_size) == ("band_trt", "tensorrt_plan", 4)
    assert list(plan.input[0].dims) == [64, 96, 3] and dtype(plan.output[0].data_type) == "TYPE_UINT8"
    assert model_config_pb2.ModelInstanceGroup.Kind.Name(plan.instance_group[0].kind) == "KIND_GPU"
    assert (repo / "band_trt" / "1" / "model.plan").read_bytes() == b"plan bytes"
    assert json.loads((repo / "band_trt" / "1" / "model.json").read_text())["classes"] == band.classes
    assert (
        json.loads((repo / "band_trt" / "1" / "model.plan.json").read_text())["key"]["gpu"] == "NVIDIA H200"
    )
    assert "TensorRT is 10.13.0 on a NVIDIA H200" in result.stdout


def test_template_writes_what_protobuf_writes():
    batched = TritonModelConfig(
        'odd "name"',
        "onnxruntime_onnx",
        8,
        (TensorConfig("image", "TYPE_UINT8", (360, 480, 3)),),
        (
            TensorConfig("logits", "TYPE_FP32", (11, -1, -1)),
            TensorConfig("class_ids", "TYPE_UINT8", (360, 480)),
        ),
        instance_count=3,
        instance_kind="KIND_GPU",
    )
    fixed = TritonModelConfig("m", "tensorrt_plan", 0, batched.inputs, batched.outputs, max_queue_delay_us=5)
    for config in (batched, fixed):
        assert config_text(config, use_protobuf=False) == config_text(config)
    from google.protobuf import text_format

    parsed = text_format.Parse(config_text(batched, use_protobuf=False), model_config_pb2.ModelConfig())
    assert parsed.name == 'odd "name"' and list(parsed.output[0].dims) == [11, -1, -1]
    assert not text_format.Parse(config_text(fixed), model_config_pb2.ModelConfig()).HasField(
        "dynamic_batching"
    )


def test_fixed_batch_logits_graph(tmp_path):
    """The real graph decides: a batch-1 graph with float logits gets max_batch_size 0 and the
    full shapes, and no dynamic batching."""
    import onnx
    from onnx import TensorProto, helper

    graph = helper.make_graph(
        [
            helper.make_node("Cast", ["image"], ["f"], to=TensorProto.FLOAT),
            helper.make_node("Transpose", ["f"], ["logits"], perm=[0, 3, 1, 2]),
        ],
        "logits",
        [helper.make_tensor_value_info("image", TensorProto.UINT8, [1, 32, 48, 3])],
        [helper.make_tensor_value_info("logits", TensorProto.FLOAT, [1, 3, 32, 48])],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    onnx.save(model, str(tmp_path / "logits.onnx"))
    band = load_package(make_band_package(tmp_path / "b").sidecar_path)
    meta = {**band.meta, "name": "logits", "input": {**band.meta["input"], "height": 32, "width": 48}}
    meta["output"] = {"name": "logits", "kind": "logits", "dtype": "float32"}
    meta["classes"], meta["palette"] = meta["classes"][:3], meta["palette"][:3]
    package = write_sidecar(tmp_path / "logits.onnx", meta)
    export_triton(package, tmp_path / "repo")
    config = parse(tmp_path / "repo" / "logits" / "config.pbtxt")
    assert config.max_batch_size == 0 and not config.HasField("dynamic_batching")
    assert list(config.input[0].dims) == [1, 32, 48, 3]
    assert (dtype(config.output[0].data_type), list(config.output[0].dims)) == ("TYPE_FP32", [1, 3, 32, 48])
    with pytest.raises(InputError, match="fixed batch axis"):
        export_triton(package, tmp_path / "repo2", max_batch=4)


def test_existing_models_are_replaced_only_with_force(tmp_path, band):
    repo = tmp_path / "repo"
    assert cli(band.onnx_path, "--repo", repo).exit_code == 0
    (repo / "band" / "keep.txt").write_text("mine")
    again = cli(band.onnx_path, "--repo", repo, "--instances", 3)
    assert again.exit_code == 1 and again.stderr.startswith("rtseg: error: model folder")
    assert "already exists (--force replaces it)" in again.stderr
    assert (repo / "band" / "keep.txt").exists() and parse(repo / "band" / "config.pbtxt").instance_group[
        0
    ].count == 1
    forced = cli(band.onnx_path, "--repo", repo, "--instances", 3, "--force")
    assert forced.exit_code == 0, forced.output
    assert parse(repo / "band" / "config.pbtxt").instance_group[0].count == 3
    assert not (repo / "band" / "keep.txt").exists() and [p.name for p in repo.iterdir()] == ["band"]
    inside = cli(repo / "band" / "1" / "model.onnx", "--repo", repo, "--name", "band", "--force")
    assert inside.exit_code == 1 and "holds the input" in inside.stderr  # never deletes its input
    assert (repo / "band" / "1" / "model.onnx").is_file()


def test_bad_requests_are_one_line_errors(tmp_path, band):
    (tmp_path / "file").write_text("x")
    result = cli(band.onnx_path, "--repo", tmp_path / "file")
    assert result.exit_code == 1 and "is a file, not a folder" in result.stderr
    result = cli(band.onnx_path, "--repo", tmp_path / "r", "--name", "bad/name")
    assert result.exit_code == 1 and "letters, digits" in result.stderr
    result = cli(band.onnx_path, "--repo", tmp_path / "r", "--engine", tmp_path / "none.engine")
    assert result.exit_code == 1 and "does not exist" in result.stderr
    engine = fake_engine(tmp_path, band, max_batch=4)
    result = cli(band.onnx_path, "--repo", tmp_path / "r", "--engine", engine, "--max-batch", 16)
    assert result.exit_code == 1 and "built for batches up to 4" in result.stderr
    other = fake_engine(tmp_path, band, onnx_sha256="0" * 64)
    with pytest.raises(ModelError, match="built from another ONNX"):
        export_triton(
            band,
            tmp_path / "r",
            engine=other,
            engine_meta=json.loads((tmp_path / "band.engine.json").read_text()),
        )
    assert not (tmp_path / "r").exists()  # refused before anything was written
