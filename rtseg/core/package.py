"""The model package: `name.onnx` plus a `name.json` sidecar beside it.

The sidecar (not a header inside the engine) keeps a plain `.onnx`/`.engine` usable by
trtexec, Triton and DeepStream. Loading checks the whole sidecar against its schema
(rtseg.core.sidecar_schema) and against the graph's real input and output
(rtseg.core.graph_check). Schema (format_version 1):

    {"format": "rtseg-model", "format_version": 1, "name": str,
     "onnx": "name.onnx", "onnx_sha256": hex,
     "dataset": str, "classes": [str], "palette": [[r, g, b]],
     "input": {"name": "image", "layout": "NHWC", "dtype": "uint8", "color": "RGB",
               "height": int, "width": int},
     "normalization": {"mean": [3 floats], "std": [3 floats]},   # applied inside the graph
     "output": {"name": "class_ids", "kind": "class_ids" | "logits", "dtype": "uint8" | ...},
     "precision": "fp32" | "fp16" | "int8",
     "model": {"arch": str, "encoder": str},
     "source": {"checkpoint": str, "sha256": hex} | null,
     "rtseg_version": str, "metrics": {...}}          # metrics: measured accuracy, optional
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path

import numpy as np

from rtseg.core.graph_check import GraphMismatch, check_graph
from rtseg.core.paths import atomic_write_text, require_file, staged_folder
from rtseg.core.sidecar_schema import FORMAT, FORMAT_VERSION, SchemaError, check_sidecar
from rtseg.core.sidecar_schema import PRECISIONS as PRECISIONS  # re-exported
from rtseg.errors import ModelError


def sha256_file(path: str | Path, chunk: int = 1 << 20) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        while block := fh.read(chunk):
            digest.update(block)
    return digest.hexdigest()


@dataclass(frozen=True)
class ModelPackage:
    """A validated model package. `onnx_path` is absolute; `meta` is the sidecar as loaded."""

    onnx_path: Path
    sidecar_path: Path
    meta: dict = field(repr=False)

    @property
    def name(self) -> str:
        return self.meta["name"]

    @property
    def classes(self) -> list[str]:
        return list(self.meta["classes"])

    @property
    def num_classes(self) -> int:
        return len(self.meta["classes"])

    @property
    def palette(self) -> np.ndarray:
        """(num_classes, 3) uint8 RGB."""
        return np.asarray(self.meta["palette"], dtype=np.uint8)

    @property
    def input_size(self) -> tuple[int, int]:
        """(height, width) the graph takes."""
        return int(self.meta["input"]["height"]), int(self.meta["input"]["width"])

    @property
    def precision(self) -> str:
        return self.meta["precision"]

    @property
    def output_kind(self) -> str:
        return self.meta["output"]["kind"]


# An absolute POSIX path inside a recorded string: at the start or after whitespace, ':', '(',
# '=', ',' or '[' (so `camvid:/data/camvid:val` and "x (from /a/b.mp4)" are found), not a URL's
# `//host`. It ends at whitespace, ':', ',', ')' or ']'.
_ABSOLUTE = re.compile(r"(?<![^\s:(=,\[])/(?!/)[^\s:,)\]]*")


def portable_source(text: str) -> str:
    """`text` (a source as given: a path, `NAME:DIR:SPLIT`, a glob, a URL) as a sidecar or a
    result records it: every absolute path in it by its name, so a package or result names
    what it came from but not where it was made. Relative paths and URLs stay as given."""
    return _ABSOLUTE.sub(lambda m: Path(m.group(0)).name or m.group(0), text)


def portable(value):
    """`value` (JSON-like: dicts, lists, strings, numbers) with portable_source applied to every
    string; what write_sidecar and the benchmark writers store."""
    if isinstance(value, str):
        return portable_source(value)
    if isinstance(value, dict):
        return {k: portable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [portable(v) for v in value]
    return value


def relative_reference(path: str | Path, folder: str | Path) -> str:
    """How a sidecar in `folder` names the file `path`: relative to `folder` when the two share
    a folder below the root (`best.pth`, `../runs/x/best.pth`), else by its name alone."""
    path, folder = Path(path).resolve(), Path(folder).resolve()
    if os.path.commonpath([path, folder]) == path.anchor:
        return path.name
    return os.path.relpath(path, folder)


def sidecar_for(onnx_path: str | Path) -> Path:
    return Path(onnx_path).with_suffix(".json")


def package_files(path: str | Path) -> list[Path]:
    """Every file a model path makes a command read: the file itself, its package's `.onnx` and
    `.json`, the ONNX and checkpoint its sidecar names, an engine's sidecar. Best effort and
    never an error (for path checks before anything is opened; loading reports problems)."""
    path = Path(path)
    files = [path]
    if path.suffix in (".engine", ".plan"):
        files.append(Path(f"{path}.json"))
        path = path.with_suffix(".onnx")
    if path.suffix in (".onnx", ".json"):
        sidecar = sidecar_for(path)
        files += [path.with_suffix(".onnx"), sidecar]
        try:
            meta = json.loads(sidecar.read_text())
            named = [meta.get("onnx"), (meta.get("source") or {}).get("checkpoint")]
        except (OSError, ValueError, AttributeError):
            named = []
        files += [sidecar.parent / n for n in named if isinstance(n, str) and n]
    return list(dict.fromkeys(files))


def validate_meta(meta: dict, where: Path) -> None:
    """Raise ModelError naming the first problem of a sidecar dict (the whole schema:
    rtseg.core.sidecar_schema)."""
    try:
        check_sidecar(meta)
    except SchemaError as exc:
        raise ModelError(f"{where}: {exc}") from None


def validate_graph(onnx_path: Path, meta: dict, where: Path) -> None:
    """Raise ModelError unless the ONNX's real input and output are what the sidecar says
    (rtseg.core.graph_check: input size and dtype, output kind, rank, class count)."""
    try:
        check_graph(onnx_path, meta)
    except GraphMismatch as exc:
        raise ModelError(f"{where}: {onnx_path.name} disagrees with its sidecar: {exc}") from None


def _package_onnx(path: Path, sidecar: Path, meta: dict) -> Path:
    """The ONNX file the package runs: `path` itself when an `.onnx` was given (never another
    file its sidecar names: a package renamed or replaced by hand must not run a different
    model), the one the sidecar names when its `.json` was. A given `.onnx` whose name differs
    from the sidecar's must be the file the sidecar describes (its sha256): both renamed."""
    named = (sidecar.parent / meta["onnx"]).resolve()
    onnx_path = path.resolve() if path.suffix == ".onnx" else named
    if onnx_path != named and not (meta.get("onnx_sha256") and sha256_file(onnx_path) == meta["onnx_sha256"]):
        raise ModelError(
            f"{path}: its sidecar {sidecar.name} describes {meta['onnx']}, not this file (a package "
            "renamed or replaced by hand: rename the two files together, or export it again)"
        )
    require_file(onnx_path, f"{sidecar}: its ONNX file", ModelError)
    return onnx_path


def load_package(path: str | Path, verify_hash: bool = True) -> ModelPackage:
    """Open a package from its `.onnx` or `.json` path; ModelError if anything is wrong."""
    path = Path(path)
    if path.is_dir():
        raise ModelError(f"model {path} is a folder; give the .onnx or .json of a model package")
    require_file(path, "model", ModelError)
    sidecar = path if path.suffix == ".json" else sidecar_for(path)
    if path.suffix not in (".json", ".onnx"):
        raise ModelError(f"model {path} is not a model package (.onnx + .json sidecar)")
    if not sidecar.is_file():
        raise ModelError(
            f"model {path} has no sidecar {sidecar.name} beside it; "
            "export it with 'rtseg export' to make a model package"
        )
    try:
        meta = json.loads(sidecar.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ModelError(f"{sidecar}: not valid JSON ({exc})") from exc
    validate_meta(meta, sidecar)
    onnx_path = _package_onnx(path, sidecar, meta)
    if verify_hash and meta.get("onnx_sha256") and sha256_file(onnx_path) != meta["onnx_sha256"]:
        raise ModelError(f"{onnx_path}: sha256 does not match its sidecar (file changed or corrupt)")
    validate_graph(onnx_path, meta, sidecar)
    return ModelPackage(onnx_path, sidecar.resolve(), meta)


def write_sidecar(onnx_path: str | Path, meta: dict) -> ModelPackage:
    """Complete `meta` (format, onnx name and hash, version), validate and write it atomically.

    Absolute paths in its strings are recorded by name (portable): a package does not show where
    it was made."""
    from rtseg import __version__

    onnx_path = Path(onnx_path)
    full = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        **portable(meta),
        "onnx": onnx_path.name,
        "onnx_sha256": sha256_file(onnx_path),
        "rtseg_version": __version__,
    }
    full.setdefault("name", onnx_path.stem)
    sidecar = sidecar_for(onnx_path)
    validate_meta(full, sidecar)
    validate_graph(onnx_path, full, sidecar)
    atomic_write_text(sidecar, json.dumps(full, indent=2) + "\n", durable=True)
    return ModelPackage(onnx_path.resolve(), sidecar.resolve(), full)


@contextlib.contextmanager
def staged_package(onnx_path: str | Path) -> Iterator[Path]:
    """Yield where to write the package `NAME.onnx` (+ its sidecar) for now: a hidden folder
    beside `onnx_path`. When the block succeeds both replace `onnx_path` and its sidecar (the
    ONNX first); otherwise nothing is replaced and an existing package stays as it was."""
    onnx_path = Path(onnx_path)
    with staged_folder(onnx_path, sidecar_for(onnx_path)) as folder:
        yield folder / onnx_path.name


def engines_dir() -> Path:
    """The folder of the bundled model packages: `$RTSEG_ENGINES` when set; else the package data
    `rtseg._bundled` of an installed rtseg (importlib.resources); else, in a source checkout
    run without installing, the repo's top-level `engines/` beside the `rtseg` package."""
    env = os.environ.get("RTSEG_ENGINES")
    if env:
        return Path(env)
    try:
        return Path(str(resources.files("rtseg._bundled")))
    except ModuleNotFoundError:
        return Path(str(resources.files("rtseg"))).parent / "engines"


DEFAULT_MODEL = "camvid_effl1_fpn"


def default_model_path() -> Path:
    """The package `rtseg run` uses when no `--model` is given."""
    return engines_dir() / f"{DEFAULT_MODEL}.onnx"


# Largest mIoU drop (points) against the FP32 package for a variant to be picked by default.
MAX_MIOU_DROP = {"fp32": 0.0, "fp16": 0.1, "int8": 1.0}


# Variant file suffixes beside `NAME.onnx` and the precision their sidecar names. `int8cpu` is
# an INT8 package quantized for ONNX Runtime's CPU provider (uint8, asymmetric), not TensorRT.
# `int8ov`: the INT8 package NNCF quantizes for OpenVINO's CPU plugin (rtseg.export.int8_openvino).
OPENVINO_INT8 = "int8ov"
VARIANTS = {"fp16": "fp16", "int8": "int8", "int8cpu": "int8", OPENVINO_INT8: "int8"}


def variant_path(fp32_onnx: str | Path, precision: str) -> Path:
    """`NAME.onnx` -> `NAME_fp16.onnx` / `NAME_int8.onnx` / `NAME_int8cpu.onnx` (fp32: itself)."""
    fp32_onnx = Path(fp32_onnx)
    return fp32_onnx if precision == "fp32" else fp32_onnx.with_name(f"{fp32_onnx.stem}_{precision}.onnx")


def _miou(meta: dict) -> float | None:
    value = (meta.get("metrics") or {}).get("val_miou")
    if not isinstance(value, (int, float)):
        return None
    return float(value) * (100.0 if value <= 1.0 else 1.0)  # stored as a fraction; points here


def record_metrics(package: ModelPackage, **metrics) -> ModelPackage:
    """Merge measured `metrics` (e.g. val_miou=0.556, cpu_ms_per_frame=97.0, threads=2) into the
    package's sidecar and rewrite it; returns the updated package."""
    meta = dict(package.meta)
    meta["metrics"] = {**(meta.get("metrics") or {}), **metrics}
    return write_sidecar(package.onnx_path, meta)


def _same_origin(fp32: dict, variant: dict) -> bool:
    """Same checkpoint (source sha256) when both name one, else derived from this FP32 ONNX."""
    ours, theirs = (fp32.get("source") or {}).get("sha256"), (variant.get("source") or {}).get("sha256")
    if ours and theirs:
        return ours == theirs
    origin = (variant.get("derived_from") or {}).get("sha256")
    return origin is None or origin == fp32.get("onnx_sha256")


def pick_default_variant(fp32_package: ModelPackage, max_drop: dict | None = None) -> ModelPackage:
    """The fastest of the FP32 package and its `_fp16` / `_int8` / `_int8cpu` variants beside it
    whose measured mIoU drop against FP32 is within `max_drop` (points; default MAX_MIOU_DROP),
    else FP32.

    Uses the sidecars' `metrics`: `val_miou` (fraction) and `cpu_ms_per_frame`, compared only at
    the same `threads`. A variant of another checkpoint (`source.sha256`, else
    `derived_from.sha256`), or without both metrics, is not picked; one that cannot be loaded
    is skipped.
    """
    limits = {**MAX_MIOU_DROP, **(max_drop or {})}
    base = fp32_package.meta.get("metrics") or {}
    base_miou = _miou(fp32_package.meta)
    best, best_ms = fp32_package, base.get("cpu_ms_per_frame")
    if base_miou is None or not isinstance(best_ms, (int, float)):
        return fp32_package  # nothing to compare against
    for suffix, precision in VARIANTS.items():
        path = variant_path(fp32_package.onnx_path, suffix)
        if not path.is_file():
            continue
        try:
            variant = load_package(path, verify_hash=False)
        except ModelError:
            continue
        metrics = variant.meta.get("metrics") or {}
        if not _same_origin(fp32_package.meta, variant.meta):
            continue
        miou, ms = _miou(variant.meta), metrics.get("cpu_ms_per_frame")
        if miou is None or not isinstance(ms, (int, float)) or variant.precision != precision:
            continue
        if metrics.get("threads") != base.get("threads"):
            continue
        if base_miou - miou <= limits[precision] + 1e-9 and ms < best_ms:
            best, best_ms = variant, ms
    return best


def pick_openvino_variant(fp32_package: ModelPackage, max_drop: float = MAX_MIOU_DROP["int8"]):
    """The `_int8ov` variant (NNCF-quantized for OpenVINO) when its sidecar shows an mIoU drop
    within `max_drop` points and a lower `openvino_ms_per_frame` than the FP32 package's (same
    `threads`, same checkpoint), else the FP32 package (OpenVINO computes it in bf16 where the
    CPU has it)."""
    path = variant_path(fp32_package.onnx_path, OPENVINO_INT8)
    if not path.is_file():
        return fp32_package
    try:
        variant = load_package(path, verify_hash=False)
    except ModelError:
        return fp32_package
    ours, theirs = fp32_package.meta.get("metrics") or {}, variant.meta.get("metrics") or {}
    base_miou, miou = _miou(fp32_package.meta), _miou(variant.meta)
    base_ms, ms = ours.get("openvino_ms_per_frame"), theirs.get("openvino_ms_per_frame")
    comparable = (
        None not in (base_miou, miou)
        and all(isinstance(v, (int, float)) for v in (base_ms, ms))
        and ours.get("threads") == theirs.get("threads")
        and _same_origin(fp32_package.meta, variant.meta)
    )
    if comparable and base_miou - miou <= max_drop + 1e-9 and ms < base_ms:
        return variant
    return fp32_package


def default_package_for(backend: str = "onnxruntime") -> Path:
    """The bundled package `rtseg run` uses without `--model`: on ONNX Runtime the fastest variant
    within the accuracy targets (pick_default_variant), on OpenVINO its INT8 variant where it is
    measured faster within target (pick_openvino_variant), on TensorRT the fp16 variant, else fp32."""
    path = default_model_path()
    if backend == "onnxruntime":
        return pick_default_variant(load_package(path)).onnx_path
    if backend == "openvino":
        return pick_openvino_variant(load_package(path)).onnx_path
    if backend == "tensorrt" and variant_path(path, "fp16").is_file():
        return variant_path(path, "fp16")
    return path
