"""A Triton Inference Server model repository for a model package (and its TensorRT engine).

    REPO/NAME/config.pbtxt          platform "onnxruntime_onnx"
    REPO/NAME/1/model.onnx          the package's graph, unchanged
    REPO/NAME/1/model.json          the package's sidecar (classes, palette, input size...); with
                                    model.onnx beside it the folder is an rtseg package too
    REPO/NAME_trt/config.pbtxt      platform "tensorrt_plan" (only with an engine)
    REPO/NAME_trt/1/model.plan      the engine, unchanged (valid for its TensorRT version and GPU)
    REPO/NAME_trt/1/model.json      the package's sidecar; model.plan.json: the engine's

Inputs and outputs are read from the ONNX itself: `image` uint8 `[H, W, 3]` (NHWC RGB) and
`class_ids` uint8 `[H, W]` for an exported package, or whatever dtype and dims the graph has
(logits `[C, H, W]` float). A dynamic batch axis becomes `max_batch_size` with dynamic
batching; a fixed one gives `max_batch_size: 0` and the full shape. config.pbtxt is written
with protobuf's text format from tritonclient's `model_config_pb2` when it is installed, else
from a template that writes the same text.

Each model folder is assembled under a hidden name inside REPO, then renamed into place; an
existing folder is replaced only with `force` (moved aside, the new one renamed in, the old one
removed), so Triton never sees a half-written model.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import tempfile
from dataclasses import dataclass, replace
from pathlib import Path

from rtseg.core.arguments import INT32_MAX, UINT64_MAX, integer
from rtseg.core.onnx_graph import graph_inputs, tensor_dims
from rtseg.core.package import ModelPackage, sha256_file, write_sidecar
from rtseg.core.paths import check_paths
from rtseg.errors import InputError, ModelError, OutputError

KINDS = {"cpu": "KIND_CPU", "gpu": "KIND_GPU"}
DEFAULT_MAX_BATCH = 8
_NAME_OK = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")
# onnx.TensorProto elem type -> Triton data type
_TRITON_TYPES = {
    1: "TYPE_FP32",
    2: "TYPE_UINT8",
    3: "TYPE_INT8",
    4: "TYPE_UINT16",
    5: "TYPE_INT16",
    6: "TYPE_INT32",
    7: "TYPE_INT64",
    9: "TYPE_BOOL",
    10: "TYPE_FP16",
    11: "TYPE_FP64",
    12: "TYPE_UINT32",
    13: "TYPE_UINT64",
    16: "TYPE_BF16",
}


@dataclass(frozen=True)
class TensorConfig:
    """One input or output as Triton declares it: dims without the batch axis when batched."""

    name: str
    data_type: str  # "TYPE_UINT8", ...
    dims: tuple[int, ...]  # -1 for a dynamic axis


@dataclass(frozen=True)
class TritonModelConfig:
    """The fields of one config.pbtxt."""

    name: str
    platform: str  # "onnxruntime_onnx" | "tensorrt_plan"
    max_batch_size: int  # 0: the model has no batch axis Triton may batch along
    inputs: tuple[TensorConfig, ...]
    outputs: tuple[TensorConfig, ...]
    instance_count: int = 1
    instance_kind: str = "KIND_CPU"
    max_queue_delay_us: int = 0


@dataclass(frozen=True)
class TritonExport:
    """What export_triton wrote: one model folder per platform."""

    repo: Path
    models: dict[str, Path]  # Triton model name -> its folder
    configs: dict[str, TritonModelConfig]
    engine_meta: dict | None = None  # the engine's rtseg sidecar (TensorRT version, GPU)


def _tensor(value_info, batched: bool) -> TensorConfig:
    ttype = value_info.type.tensor_type
    if ttype.elem_type not in _TRITON_TYPES:
        raise ModelError(f"tensor {value_info.name!r} has a dtype Triton does not take ({ttype.elem_type})")
    dims = [d if isinstance(d, int) else -1 for d in tensor_dims(value_info) or ()]
    return TensorConfig(value_info.name, _TRITON_TYPES[ttype.elem_type], tuple(dims[1:] if batched else dims))


def graph_tensors(onnx_path: Path) -> tuple[bool, tuple[TensorConfig, ...], tuple[TensorConfig, ...]]:
    """(batched, inputs, outputs) of the ONNX at `onnx_path`: batched when the first input's
    first axis is dynamic (then every tensor's dims leave it out)."""
    import onnx

    model = onnx.load(str(onnx_path), load_external_data=False)
    inputs = graph_inputs(model.graph)
    if not inputs or not model.graph.output:
        raise ModelError(f"{onnx_path}: the graph has no inputs or no outputs")
    first = inputs[0].type.tensor_type.shape.dim
    batched = bool(first) and not first[0].HasField("dim_value")
    return (
        batched,
        tuple(_tensor(i, batched) for i in inputs),
        tuple(_tensor(o, batched) for o in model.graph.output),
    )


def _quote(text: str) -> str:
    if any(ord(c) < 32 for c in text):
        raise InputError(f"name {text!r} holds control characters")
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _template(config: TritonModelConfig) -> str:
    """config.pbtxt by hand, in the layout protobuf's text format uses."""

    def tensors(kind: str, items) -> list[str]:
        lines = []
        for t in items:
            lines += [f"{kind} {{", f"  name: {_quote(t.name)}", f"  data_type: {t.data_type}"]
            lines += [f"  dims: {d}" for d in t.dims] + ["}"]
        return lines

    lines = [f"name: {_quote(config.name)}", f"platform: {_quote(config.platform)}"]
    if config.max_batch_size:  # proto3 leaves out the default 0 (no batching by Triton)
        lines.append(f"max_batch_size: {config.max_batch_size}")
    lines += tensors("input", config.inputs) + tensors("output", config.outputs)
    lines += ["instance_group {", f"  count: {config.instance_count}", f"  kind: {config.instance_kind}", "}"]
    if config.max_batch_size > 0:
        delay = config.max_queue_delay_us
        lines += ["dynamic_batching {", *([f"  max_queue_delay_microseconds: {delay}"] if delay else []), "}"]
    return "\n".join(lines) + "\n"


def _protobuf(config: TritonModelConfig, model_config_pb2) -> str:
    from google.protobuf import text_format

    message = model_config_pb2.ModelConfig(
        name=config.name, platform=config.platform, max_batch_size=config.max_batch_size
    )
    for target, items in ((message.input, config.inputs), (message.output, config.outputs)):
        for t in items:
            target.add(name=t.name, data_type=model_config_pb2.DataType.Value(t.data_type), dims=list(t.dims))
    kind = model_config_pb2.ModelInstanceGroup.Kind.Value(config.instance_kind)
    message.instance_group.add(count=config.instance_count, kind=kind)
    if config.max_batch_size > 0:
        message.dynamic_batching.SetInParent()
        message.dynamic_batching.max_queue_delay_microseconds = config.max_queue_delay_us
    return text_format.MessageToString(message)


def config_text(config: TritonModelConfig, use_protobuf: bool = True) -> str:
    """The config.pbtxt text: protobuf's text format of Triton's ModelConfig when tritonclient
    is installed (and `use_protobuf`), else the template (the same text)."""
    if use_protobuf:
        try:
            from tritonclient.grpc import model_config_pb2
        except ImportError:
            model_config_pb2 = None
        if model_config_pb2 is not None:
            return _protobuf(config, model_config_pb2)
    return _template(config)


def _check_name(name: str) -> str:
    if not _NAME_OK.match(name):
        raise InputError(f"Triton model name {name!r}: use letters, digits, '_', '.' and '-' only")
    return name


def _inside(path: Path, folder: Path) -> bool:
    path, folder = path.resolve(), folder.resolve()
    return path == folder or folder in path.parents


def _check_targets(repo: Path, targets: dict[str, Path], sources: list[Path], force: bool) -> None:
    """Refuse a repo that is a file, a model folder holding one of the inputs, or an existing
    model folder without `force`; all before anything is written."""
    if repo.exists() and not repo.is_dir():
        raise OutputError(f"--repo {repo} is a file, not a folder")
    for folder in targets.values():
        for source in sources:
            if _inside(source, folder):
                raise OutputError(
                    f"model folder {folder} holds the input {source}; choose another --repo or --name"
                )
        if folder.exists() and not force:
            raise OutputError(f"model folder {folder} already exists (--force replaces it)")
        if folder.exists() and not folder.is_dir():
            raise OutputError(f"{folder} exists and is not a folder")


def _replace_folder(staging: Path, final: Path) -> None:
    """Rename `staging` to `final`, moving an existing `final` aside first (and restoring it
    when the rename fails)."""
    old = None
    if final.exists():
        old = Path(tempfile.mkdtemp(prefix=f".{final.name}.old-", dir=final.parent))
        os.rmdir(old)
        os.rename(final, old)
    try:
        os.rename(staging, final)
    except OSError:
        if old is not None:
            os.rename(old, final)
        raise
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)


def _write_model(repo: Path, config: TritonModelConfig, files: dict[str, Path], jsons: dict[str, dict]):
    """Assemble REPO/.NAME.xxx/{config.pbtxt, 1/...} and rename it to REPO/NAME. `files`: name
    in 1/ -> file to copy; `jsons`: name in 1/ -> dict to write (model.json beside model.onnx
    is written as its sidecar, naming model.onnx and its hash)."""
    name = config.name
    try:
        staging = Path(tempfile.mkdtemp(prefix=f".{name}.", dir=repo))
    except OSError as exc:
        raise OutputError(f"cannot write the Triton model {repo / name}: {exc.strerror or exc}") from None
    try:
        umask = os.umask(0)
        os.umask(umask)
        staging.chmod(0o777 & ~umask)  # mkdtemp makes it private; Triton may run as another user
        (staging / "1").mkdir()
        (staging / "config.pbtxt").write_text(config_text(config))
        for target, source in files.items():
            shutil.copyfile(source, staging / "1" / target)
        for target, meta in jsons.items():
            if target == "model.json" and "model.onnx" in files:  # model.onnx + model.json: a package
                write_sidecar(staging / "1" / "model.onnx", meta)
            else:
                (staging / "1" / target).write_text(json.dumps(meta, indent=2) + "\n")
        _replace_folder(staging, repo / name)
    except OSError as exc:
        raise OutputError(f"cannot write the Triton model {repo / name}: {exc.strerror or exc}") from exc
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def _plan_batch(engine_meta: dict, max_batch: int | None) -> int:
    """Triton's max_batch_size for the plan: the engine profile's largest batch, or less."""
    profile_max = (engine_meta.get("profile") or {}).get("max") or [1]
    largest = int(profile_max[0])
    if max_batch is not None and max_batch > largest:
        raise InputError(
            f"--max-batch {max_batch}: the engine was built for batches up to {largest} "
            f"(rtseg build-engine --max-batch {max_batch})"
        )
    return max_batch or largest


@dataclass(frozen=True)
class _Folder:
    """One model folder to write: its config, the files to copy into 1/, the JSONs to write."""

    config: TritonModelConfig
    files: dict[str, Path]
    jsons: dict[str, dict]


def _plan_folder(package: ModelPackage, engine: Path, engine_meta: dict, onnx: TritonModelConfig, max_batch):
    built_from = (engine_meta.get("key") or {}).get("onnx_sha256")
    if built_from and built_from != (package.meta.get("onnx_sha256") or sha256_file(package.onnx_path)):
        raise ModelError(f"engine {engine} was built from another ONNX than {package.onnx_path.name}")
    batch = _plan_batch(engine_meta, max_batch) if onnx.max_batch_size else 0
    config = replace(
        onnx,
        name=f"{onnx.name}_trt",
        platform="tensorrt_plan",
        max_batch_size=batch,
        instance_kind="KIND_GPU",
    )
    jsons = {"model.json": dict(package.meta), **({"model.plan.json": engine_meta} if engine_meta else {})}
    return _Folder(config, {"model.plan": engine}, jsons)


def export_triton(
    package: ModelPackage,
    repo: str | Path,
    *,
    name: str | None = None,
    engine: str | Path | None = None,
    engine_meta: dict | None = None,
    max_batch: int | None = None,
    instances: int = 1,
    kind: str = "cpu",
    max_queue_delay_us: int = 0,
    force: bool = False,
) -> TritonExport:
    """Write the Triton model repository `repo` for `package` (and `engine`, a TensorRT plan
    built from it, with `engine_meta` its rtseg engine sidecar). max_batch: Triton's
    max_batch_size (default 8 for the ONNX, the engine profile's largest batch for the plan);
    instances / kind ("cpu" | "gpu"): the ONNX model's instance group (the plan is always on
    the GPU). InputError / OutputError / ModelError before anything is written."""
    if kind not in KINDS:
        raise InputError(f"kind must be cpu or gpu, got {kind!r}")
    if max_batch is not None:  # the limits of Triton's config fields (int32, uint64)
        max_batch = integer("max_batch", max_batch, 1, INT32_MAX)
    instances = integer("instances", instances, 1, INT32_MAX)
    max_queue_delay_us = integer("max_queue_delay_us", max_queue_delay_us, 0, UINT64_MAX)
    repo, name = Path(repo), _check_name(name or package.name)
    check_paths(
        inputs=[("PACKAGE", package.onnx_path), ("--engine", engine)],
        output_dirs=[("--repo", repo, "[!.]*")],
    )
    batched, inputs, outputs = graph_tensors(package.onnx_path)
    if not batched and max_batch is not None:
        raise InputError(f"{package.onnx_path.name} has a fixed batch axis: Triton cannot batch it")
    onnx = TritonModelConfig(
        name,
        "onnxruntime_onnx",
        (max_batch or DEFAULT_MAX_BATCH) if batched else 0,
        inputs,
        outputs,
        instance_count=instances,
        instance_kind=KINDS[kind],
        max_queue_delay_us=max_queue_delay_us,
    )
    folders = [_Folder(onnx, {"model.onnx": package.onnx_path}, {"model.json": dict(package.meta)})]
    sources = [package.onnx_path]
    if engine is not None:
        folders.append(_plan_folder(package, Path(engine), engine_meta or {}, onnx, max_batch))
        sources.append(Path(engine))
    targets = {f.config.name: repo / f.config.name for f in folders}
    _check_targets(repo, targets, sources, force)
    repo.mkdir(parents=True, exist_ok=True)
    for folder in folders:
        _write_model(repo, folder.config, folder.files, folder.jsons)
    return TritonExport(repo, targets, {f.config.name: f.config for f in folders}, engine_meta)
