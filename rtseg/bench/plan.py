"""Which combinations of backend x precision x size can run here, and the package each runs.

Precision variants live beside the fp32 package as `<stem>_fp16.onnx` / `<stem>_int8.onnx`, each a
package whose sidecar `precision` says which. Other input sizes are re-exported from the
checkpoint the sidecar names (`source.checkpoint`) into a cache folder keyed by the checkpoint's
hash, and converted to fp16 / int8 with rtseg.export's precision helpers when they exist.
"""

from __future__ import annotations

import contextlib
import importlib.util
import sys
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np

from rtseg.bench.config import BENCH_PRECISIONS
from rtseg.core.checkpoint import source_checkpoint
from rtseg.core.frames import format_size
from rtseg.core.package import VARIANTS, ModelPackage, load_package, sha256_file, variant_path
from rtseg.core.paths import require_file
from rtseg.core.user_cache import cache_dir as user_cache_dir
from rtseg.errors import ModelError, RtsegError
from rtseg.loading import CHECKPOINT_SUFFIXES


class Unavailable(RtsegError):
    """A combination cannot run on this machine; the message is the reason shown as skipped."""


@dataclass(frozen=True)
class Combo:
    """One backend x precision x size; `package` is the ONNX package it runs (for torch: the
    fp32 package, for its classes), `checkpoint` the weights the torch backend loads."""

    backend: str
    precision: str
    size: tuple[int, int]  # (height, width)
    package: Path | None = None
    checkpoint: Path | None = None
    skip: str | None = None
    failure: str | None = None

    @property
    def label(self) -> str:
        return f"{self.backend} {self.precision} {format_size(self.size)}"


def _module_missing(name: str) -> bool:
    try:
        return importlib.util.find_spec(name) is None
    except (ImportError, ValueError):
        return True


def backend_unavailable(backend: str, has_gpu: bool, device: str = "auto") -> str | None:
    """Why `backend` cannot run on this machine (on `device`), or None."""
    if backend == "onnxruntime" and _module_missing("onnxruntime"):
        return "onnxruntime not installed (pip install onnxruntime)"
    if backend == "openvino" and _module_missing("openvino"):
        return "openvino not installed (pip install openvino)"
    if backend == "openvino" and device not in ("auto", "cpu"):
        return f"OpenVINO runs on the CPU, not with --device {device}"
    if backend == "torch" and _module_missing("torch"):
        return "PyTorch not installed"
    if backend == "tensorrt":
        if device == "cpu":
            return "TensorRT runs on a GPU, not with --device cpu"
        reasons = []
        if _module_missing("tensorrt"):
            reasons.append("TensorRT not installed (pip install 'rtseg[trt]')")
        if not has_gpu:
            reasons.append("no CUDA GPU")
        return "; ".join(reasons) or None
    return None


def _base_stem(package: ModelPackage) -> str:
    stem = package.onnx_path.stem
    suffix = f"_{package.precision}"
    return stem[: -len(suffix)] if package.precision != "fp32" and stem.endswith(suffix) else stem


@dataclass
class ModelFamily:
    """The fp32 package given (or found beside the given variant) and its precision variants."""

    base: ModelPackage
    folder: Path
    stem: str
    checkpoint: Path | None
    checkpoint_problem: str | None
    cache_dir: Path
    from_checkpoint: bool = False  # exported into the cache: its variants are made there too
    _sized: dict = field(default_factory=dict)

    def __post_init__(self):
        if self.from_checkpoint:
            self._sized[("fp32", self.size)] = self.base.onnx_path

    @property
    def size(self) -> tuple[int, int]:
        return self.base.input_size

    def variant_path(self, precision: str) -> Path:
        return variant_path(self.folder / f"{self.stem}.onnx", precision)

    def variant(self, precision: str) -> ModelPackage:
        """The package beside the model for `precision`; Unavailable if there is none."""
        path = self.variant_path(precision)
        if not path.is_file():
            how = f"rtseg export CHECKPOINT --precision {precision} -o {path.name}"
            if precision == "int8ov":
                how = "tools/make_default_model.py (rtseg.export.int8_openvino, the int8-openvino extra)"
            raise Unavailable(f"no {precision} package beside the model ({path.name}; make one with {how})")
        package = load_package(path)
        if package.precision != VARIANTS.get(precision, precision):
            raise Unavailable(f"{path.name}: its sidecar says precision {package.precision}")
        if package.input_size != self.size:
            raise Unavailable(
                f"{path.name} takes {format_size(package.input_size)}, "
                f"not {format_size(self.size)} like the fp32 package"
            )
        return package

    def require_checkpoint(self, why: str) -> Path:
        if self.checkpoint is None:
            raise Unavailable(f"{why}: {self.checkpoint_problem}")
        return self.checkpoint


def _find_checkpoint(package: ModelPackage) -> tuple[Path | None, str | None]:
    try:
        return source_checkpoint(package), None
    except ModelError as exc:
        return None, str(exc)


def model_input_size(model: Path) -> tuple[int, int]:
    """The `(height, width)` a package (any precision) or a checkpoint takes."""
    if Path(model).suffix.lower() in CHECKPOINT_SUFFIXES:
        from rtseg.core.checkpoint import load_checkpoint

        return tuple(load_checkpoint(model)["input_size"])
    return load_package(model).input_size


def _checkpoint_package(checkpoint: Path, cache: Path, frames: np.ndarray) -> Path:
    """The fp32 package of `checkpoint`, exported into `cache` (keyed by the checkpoint's
    sha256) on first use; `frames` at its input size check the export's parity."""
    stem = checkpoint.stem
    out = cache / "checkpoints" / f"{stem}-{sha256_file(checkpoint)[:12]}" / f"{stem}.onnx"
    return _cached_or(out, "fp32", lambda: _export(checkpoint, out, frames, None))


def open_family(model: Path, cache_dir: Path | None, frames: np.ndarray | None = None) -> ModelFamily:
    """Load the package `model` (any precision) and locate its fp32 sibling and checkpoint.
    A checkpoint is exported to an fp32 package in the cache first (`frames`: `(N, H, W, 3)
    uint8 RGB` at its input size, for the export's parity check); its other precisions are
    made there too, as for other sizes."""
    cache = Path(cache_dir) if cache_dir else user_cache_dir() / "bench"
    given_checkpoint = None
    if Path(model).suffix.lower() in CHECKPOINT_SUFFIXES:
        if frames is None:
            raise ModelError(f"{model} is a checkpoint: give frames to export it with")
        given_checkpoint = require_file(model, "checkpoint", ModelError).resolve()
        model = _checkpoint_package(given_checkpoint, cache, frames)
    given = load_package(model)
    stem = _base_stem(given)
    folder = given.onnx_path.parent
    base = given
    if given.precision != "fp32":
        fp32 = folder / f"{stem}.onnx"
        if not fp32.is_file():
            raise ModelError(
                f"{given.onnx_path.name} is {given.precision}; benchmarking needs its "
                f"fp32 package {fp32.name} beside it (agreement and re-export use it)"
            )
        base = load_package(fp32)
    checkpoint, problem = (given_checkpoint, None) if given_checkpoint else _find_checkpoint(base)
    return ModelFamily(base, folder, stem, checkpoint, problem, cache, given_checkpoint is not None)


def plan_combos(
    family: ModelFamily, backends, precisions, sizes, has_gpu: bool, device: str = "auto"
) -> list[Combo]:
    """Every requested combination, in run order (size, backend, precision with fp32 first);
    those that cannot run carry `skip` (the reason). Packages at other sizes are resolved
    later, by `resolve_package`, so nothing is exported for a combination that is skipped."""
    ordered = sorted(precisions, key=BENCH_PRECISIONS.index)
    combos = []
    for size in sizes or (family.size,):
        for backend in backends:
            missing = backend_unavailable(backend, has_gpu, device)
            for precision in ordered:
                combo = Combo(backend, precision, tuple(size), checkpoint=family.checkpoint)
                if missing:
                    combo = _with(combo, skip=missing)
                elif backend == "torch" and precision != "fp32":
                    combo = _with(combo, skip="the torch backend runs the fp32 checkpoint only")
                elif backend == "torch" and family.checkpoint is None:
                    combo = _with(combo, skip=f"no checkpoint for eager PyTorch: {family.checkpoint_problem}")
                combos.append(combo)
    return combos


def _with(combo: Combo, **changes) -> Combo:
    return replace(combo, **changes)


def resolve_package(family: ModelFamily, combo: Combo, frames: np.ndarray) -> Combo:
    """Fill `combo.package`; Unavailable when no package exists or can be made for it.

    `frames`: `(N, h, w, 3) uint8 RGB` real frames at the combination's size, for the parity
    check of a re-export and the calibration of an int8 conversion."""
    if combo.backend == "torch":
        return _with(combo, package=family.base.onnx_path)
    if combo.size == family.size and not family.from_checkpoint:
        return _with(combo, package=family.variant(combo.precision).onnx_path)
    return _with(combo, package=sized_package(family, combo.precision, combo.size, frames))


def sized_package(family: ModelFamily, precision: str, size: tuple[int, int], frames: np.ndarray) -> Path:
    """The `precision` package at `size` from the cache, exported / converted on first use."""
    key = (precision, size)
    if key in family._sized:
        return family._sized[key]
    checkpoint = family.require_checkpoint(f"cannot re-export at {format_size(size)}")
    sha = (family.base.meta.get("source") or {}).get("sha256") or "nosha"
    folder = family.cache_dir / f"{family.stem}-{sha[:12]}" / format_size(size)
    fp32_path = folder / f"{family.stem}.onnx"
    if precision == "fp32":
        path = _cached_or(fp32_path, "fp32", lambda: _export(checkpoint, fp32_path, frames, size))
    else:
        fp32 = sized_package(family, "fp32", size, frames)
        out = folder / f"{family.stem}_{precision}.onnx"
        path = _cached_or(out, precision, lambda: _convert(fp32, precision, out, frames))
    family._sized[key] = path
    return path


def _cached_or(path: Path, precision: str, make) -> Path:
    if path.is_file():
        try:
            if load_package(path).precision == VARIANTS.get(precision, precision):
                return path
        except ModelError:
            pass  # a stale or broken cache entry: make it again
    make()
    return path


def _export(checkpoint: Path, out: Path, frames: np.ndarray, size: tuple[int, int]) -> None:
    from rtseg.export.package_export import export_checkpoint

    out.parent.mkdir(parents=True, exist_ok=True)
    export_checkpoint(checkpoint, out, frames, input_size=size)


def _convert(fp32: Path, precision: str, out: Path, frames: np.ndarray) -> None:
    """Convert the fp32 package at another size with rtseg.export's precision helpers
    (int8 calibrated on `frames`, the benchmark's own real frames at that size)."""
    try:
        if precision == "fp16":
            from rtseg.export.fp16 import convert_fp16 as convert
        else:
            from rtseg.export.int8 import quantize_int8 as convert
    except ImportError as exc:
        raise Unavailable(
            f"no {precision} package at {out.parent.name}: this rtseg cannot convert one ({exc})"
        ) from exc
    package = load_package(fp32)
    with contextlib.redirect_stdout(sys.stderr):  # the quantizer prints progress to stdout
        if precision == "int8ov":
            from rtseg.export.int8_openvino import quantize_int8_openvino

            quantize_int8_openvino(package, out, frames, calib_source=f"rtseg bench frames ({len(frames)})")
        elif precision == "fp16":
            convert(package, out)
        else:
            from rtseg.export.int8 import Int8Options

            options = Int8Options(target="cpu" if precision == "int8cpu" else "tensorrt")
            convert(package, out, frames, options=options, calib_source=f"rtseg bench frames ({len(frames)})")
