"""Bring your own model: a float NCHW ONNX with logits (or a torch nn.Module) -> a model package.

The wrapped graph (rtseg.onnxtools.wrap_onnx) is checked against the original on real frames
before anything is written: the host applies the declared preprocessing in numpy, runs the
original on ONNX Runtime, resizes its logits to the input size (bilinear, half-pixel) and takes
the argmax; the wrapped graph must agree on `min_agreement` of the pixels and its logits must
match within float tolerance. A refusal is one ExportError and leaves no file behind.
"""

from __future__ import annotations

import tempfile
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from rtseg.core.arguments import integer, number, size_hw
from rtseg.core.onnx_graph import external_data_files
from rtseg.core.package import (
    ModelPackage,
    load_package,
    sha256_file,
    sidecar_for,
    staged_package,
    write_sidecar,
)
from rtseg.core.paths import check_paths, require_file
from rtseg.errors import ExportError, InputError, MissingDependencyError, ModelError, OutputError
from rtseg.export.precision import frames_source_path
from rtseg.onnxtools.wrap_onnx import (
    LOGITS_NAME,
    GraphIO,
    Preprocessing,
    inspect_graph,
    with_logits_output,
    wrap_onnx,
)

__all__ = ["ImportConfig", "ImportResult", "import_module", "import_onnx"]


@dataclass(frozen=True)
class ImportConfig:
    """What `rtseg import` does.

    model: the original `.onnx` (float `(N, 3, H, W)` in, logits `(N, C, h, w)` out).
    output: the package to write, `NAME.onnx` (+ `NAME.json`). preprocessing: what the model
    expects (mean, std, range, colour order). classes: a label set name, a .json / .txt file,
    or None (class_0 ...). size: (H, W) of the package's input (default: the model's fixed
    size). output_name: which graph output holds the logits (default: the first).
    parity_source: real frames (video, frames folder or glob, NAME:DIR:SPLIT); None: generated
    frames, with a warning. min_agreement: fraction of pixels whose ids must agree.
    """

    model: Path
    output: Path
    preprocessing: Preprocessing
    classes: str | None = None
    size: tuple[int, int] | None = None
    output_name: str | None = None
    parity_source: str | None = None
    parity_frames: int = 8
    min_agreement: float = 0.999
    seed: int = 0
    source_label: str | None = None  # how the sidecar names the original (default: file name)

    def __post_init__(self):
        if self.size is not None:
            size_hw("size", self.size)
        integer("parity_frames", self.parity_frames, 1, 10_000)
        number("min_agreement", self.min_agreement, 0.0, 1.0)
        if Path(self.output).suffix != ".onnx":
            raise InputError(f"output {self.output} must end in .onnx (its sidecar .json goes beside it)")
        if not 0.0 <= self.min_agreement <= 1.0:
            raise InputError(f"min_agreement must be within 0..1, got {self.min_agreement}")
        if self.parity_frames < 1:
            raise InputError(f"parity_frames must be positive, got {self.parity_frames}")


@dataclass(frozen=True)
class ImportResult:
    package: ModelPackage
    agreement: float  # fraction of pixels where wrapped and original ids agree
    max_abs_logit_diff: float
    frames: int
    frames_source: str
    logits_size: tuple[int, int]  # (h, w) of the original's logits at the package's input size

    def line(self) -> str:
        return (
            f"parity with the original over {self.frames} frames ({self.frames_source}): "
            f"argmax agreement {100 * self.agreement:.3f}%, max |logit diff| {self.max_abs_logit_diff:.2e}"
        )


def _session(model):
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.log_severity_level = 3
    options.intra_op_num_threads = 2
    data = model if isinstance(model, (str, bytes)) else model.SerializeToString()
    try:
        return ort.InferenceSession(data, options, providers=["CPUExecutionProvider"])
    except Exception as exc:  # onnxruntime raises its own exception types
        raise ModelError(f"onnxruntime cannot load the model: {str(exc).splitlines()[0]}") from exc


def _input_size(io: GraphIO, size: tuple[int, int] | None) -> tuple[int, int]:
    fixed = io.fixed_size
    if size is not None and fixed is not None and tuple(size) != fixed:
        raise InputError(
            f"the model's input is fixed at {fixed[0]}x{fixed[1]} (HxW); --size {size[0]}x{size[1]} "
            "cannot change it (export the model with that size, or a dynamic one)"
        )
    if size is None and fixed is None:
        raise InputError(f"the model's input size is not fixed ({list(io.input_shape)}): give --size HxW")
    if isinstance(io.input_shape[0], int) and io.input_shape[0] != 1:
        raise InputError(
            f"the model's batch is fixed at {io.input_shape[0]}; export it with batch 1 or a dynamic batch"
        )
    return tuple(size or fixed)


NOT_DETERMINISTIC = (
    "the model is not deterministic at inference: two runs on the same frame ({where}) gave "
    "different logits (a random op, or dropout left in training mode?), so the wrapping cannot be "
    "checked against it: export it in eval mode, without random ops"
)


def reference_logits(path: Path, io: GraphIO, pre: Preprocessing, frames: np.ndarray) -> np.ndarray:
    """The original on the host-preprocessed frames: `(N, C, h, w)` float32 logits, one frame a
    call, every frame run twice. ExportError when the two runs of a frame differ (a random op,
    dropout in training): the model is not deterministic, whatever the wrapping does."""
    from onnx import TensorProto

    session = _session(str(path))
    dtype = np.float16 if io.input_dtype == TensorProto.FLOAT16 else np.float32
    x = pre.apply(frames).astype(dtype)
    try:
        runs = [[session.run([io.output_name], {io.input_name: x[i : i + 1]})[0] for i in range(len(x))]]
        runs.append([session.run([io.output_name], {io.input_name: x[i : i + 1]})[0] for i in range(len(x))])
    except Exception as exc:  # onnxruntime raises its own exception types
        raise ExportError(f"the original model fails on a {x.shape[2]}x{x.shape[3]} input: {exc}") from exc
    first, second = (np.concatenate(r).astype(np.float32) for r in runs)
    if first.ndim != 4:
        raise ExportError(f"output {io.output_name!r} has shape {list(first.shape)}; expected (N, C, h, w)")
    differ = [i for i in range(len(x)) if not np.array_equal(first[i], second[i])]
    if differ:
        raise ExportError(NOT_DETERMINISTIC.format(where=f"parity frame {differ[0]}, the original"))
    return first


def _resize_logits(logits: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """`(N, C, h, w)` -> `(N, C, H, W)` bilinear with half-pixel centres (OpenCV's INTER_LINEAR)."""
    import cv2

    if logits.shape[2:] == tuple(size):
        return logits
    h, w = size
    out = np.empty((*logits.shape[:2], h, w), np.float32)
    for n, image in enumerate(logits):
        for c0 in range(0, image.shape[0], 256):  # OpenCV takes at most 512 channels
            chunk = np.ascontiguousarray(image[c0 : c0 + 256].transpose(1, 2, 0))
            resized = cv2.resize(chunk, (w, h), interpolation=cv2.INTER_LINEAR)
            out[n, c0 : c0 + 256] = resized.reshape(h, w, -1).transpose(2, 0, 1)
    return out


def compare_with_reference(wrapped, frames: np.ndarray, reference: np.ndarray, min_agreement: float):
    """(agreement, max |logit diff|) of the wrapped graph against the reference logits resized
    to the frames' size; ExportError when they disagree. A pixel agrees when the wrapped id is
    the reference's argmax or ties with it within the float tolerance (equal logits: either id)."""
    session = _session(with_logits_output(wrapped))
    expected = _resize_logits(reference, frames.shape[1:3])
    tolerance = 1e-3 * max(1.0, float(np.abs(expected).max()))
    agree, worst, worst_frame, worst_logits = 0, 0.0, 0, None
    for i, frame in enumerate(frames):
        ids, logits = session.run(["class_ids", LOGITS_NAME], {"image": frame[None]})
        chosen = np.take_along_axis(expected[i], ids.astype(np.int64), axis=0)[0]
        agree += int((chosen >= expected[i].max(0) - tolerance).sum())
        diff = float(np.abs(logits[0] - expected[i]).max())
        if worst_logits is None or diff > worst:
            worst, worst_frame, worst_logits = diff, i, logits
    agreement = agree / (frames.shape[0] * frames.shape[1] * frames.shape[2])
    if agreement < min_agreement or worst > tolerance:
        again = session.run([LOGITS_NAME], {"image": frames[worst_frame][None]})[0]
        if not np.array_equal(again, worst_logits):  # the wrapping adds no randomness: the model does
            raise ExportError(NOT_DETERMINISTIC.format(where=f"parity frame {worst_frame}, wrapped"))
        raise ExportError(
            f"the wrapped graph disagrees with the original: argmax agreement {100 * agreement:.3f}% "
            f"(required {100 * min_agreement:.2f}%), max |logit diff| {worst:.3g} (allowed {tolerance:.3g})"
        )
    return agreement, worst


def _parity_frames(config: ImportConfig, size, log) -> tuple[np.ndarray, str]:
    from rtseg.export.calibration import calibration_frames, synthetic_road_frames

    if config.parity_source:
        frames = calibration_frames(config.parity_source, config.parity_frames, size, seed=config.seed)
        return frames, Path(str(config.parity_source)).name
    log(
        "warning: no --parity-frames given: checking parity on generated road-like frames; "
        "give real frames (a video or a frames folder) for a meaningful check"
    )
    return synthetic_road_frames(config.parity_frames, size, seed=config.seed), "generated frames"


def _sidecar(config, io, labels, size, logits_size, agreement, worst, frames, frames_source) -> dict:
    from onnx import TensorProto

    h, w = size
    pre = config.preprocessing
    return {
        "name": config.output.stem,
        "dataset": labels.name,
        "classes": list(labels.classes),
        "palette": [list(map(int, c)) for c in labels.palette],
        "input": {
            "name": "image",
            "layout": "NHWC",
            "dtype": "uint8",
            "color": "RGB",
            "height": h,
            "width": w,
        },
        "normalization": pre.normalization_0_1(),
        "preprocessing": {**pre.to_json(), "applied": "in the graph"},
        "output": {"name": "class_ids", "kind": "class_ids", "dtype": "uint8"},
        "precision": "fp16" if io.input_dtype == TensorProto.FLOAT16 else "fp32",
        "model": {"arch": "imported", "encoder": "none"},
        "source": _source_record(config),
        "import": {
            "original_input": io.input_name,
            "original_output": io.output_name,
            "logits_size": list(logits_size),
            "logits_resized_in_graph": tuple(logits_size) != tuple(size),
        },
        "parity": {
            "against": "original onnx",
            "argmax_agreement": agreement,
            "max_abs_logit_diff": worst,
            "frames": frames,
            "frames_source": frames_source,
        },
    }


def _source_record(config: ImportConfig) -> dict:
    """The original's name and sha256, and its external weights' sha256 by file name (a model
    over 2 GB keeps them beside it: the .onnx alone does not identify it)."""
    record = {"onnx": config.source_label or config.model.name, "sha256": sha256_file(config.model)}
    weights = {p.name: sha256_file(p) for p in external_data_files(config.model)}
    if weights:
        record["weights_sha256"] = weights
    return record


def _check_paths(config: ImportConfig) -> None:
    """Before any work: the model exists; the package may not overwrite it (by any name: links,
    hard links, `..`), and its folder must be writable (rtseg.core.paths.check_paths)."""
    require_file(config.model, "model", ModelError)
    out = config.output
    try:
        check_paths(
            inputs=[
                ("MODEL", config.model),
                *(("MODEL's weights", p) for p in external_data_files(config.model)),
                ("--classes", config.classes if config.classes and Path(config.classes).exists() else None),
                ("--parity-frames", frames_source_path(config.parity_source)),
            ],
            outputs=[("-o", out), ("-o sidecar", sidecar_for(out))],
        )
    except OutputError as exc:
        raise OutputError(f"{exc}; choose another name") from None


def _write_package(wrapped, meta: dict, output: Path) -> ModelPackage:
    """Write `NAME.onnx` + `NAME.json` in a hidden folder beside `output`, then rename both into
    place (rtseg.core.package.staged_package): an old package is only replaced by a whole one."""
    import onnx

    with staged_package(output) as staged:
        onnx.save(wrapped, str(staged))
        write_sidecar(staged, meta)
    return load_package(output)


def import_onnx(config: ImportConfig, log: Callable[[str], None] = lambda line: None) -> ImportResult:
    """Wrap `config.model` into the package `config.output`, checked against the original."""
    import onnx

    from rtseg.data.label_files import resolve_label_set

    config = replace(config, model=Path(config.model), output=Path(config.output))
    _check_paths(config)
    missing = [p for p in external_data_files(config.model) if not p.is_file()]
    if missing:
        raise ModelError(
            f"{config.model}: its weights are in {missing[0]}, which is missing (an ONNX model over "
            "2 GB keeps its weights beside it: move the two files together)"
        )
    try:
        original = onnx.load(str(config.model))
    except Exception as exc:  # onnx raises DecodeError and others for a file that is not ONNX
        raise ModelError(f"{config.model}: not a readable ONNX model ({type(exc).__name__})") from exc
    io = inspect_graph(original, config.output_name)
    size = _input_size(io, config.size)
    frames, frames_source = _parity_frames(config, size, log)
    reference = reference_logits(config.model, io, config.preprocessing, frames)
    labels = resolve_label_set(config.classes, reference.shape[1])
    logits_size = tuple(int(v) for v in reference.shape[2:])
    if logits_size != size:
        (lh, lw), (h, w) = logits_size, size
        log(f"logits come out at {lh}x{lw}: resized to {h}x{w} in the graph")
    wrapped = wrap_onnx(original, io, config.preprocessing, size, logits_size)
    agreement, worst = compare_with_reference(wrapped, frames, reference, config.min_agreement)
    meta = _sidecar(config, io, labels, size, logits_size, agreement, worst, len(frames), frames_source)
    package = _write_package(wrapped, meta, config.output)
    return ImportResult(package, agreement, worst, len(frames), frames_source, logits_size)


def _export_module(module, path: Path, size: tuple[int, int]) -> None:
    """torch.onnx.export of a float `(N, 3, H, W)` -> logits module, single file, dynamic batch."""
    import torch

    from rtseg.export.onnx_export import torch_to_onnx

    example = torch.zeros((2, 3, *size), dtype=torch.float32)  # batch 2 keeps the axis symbolic
    torch_to_onnx(module, example, "input", "logits", path)


def import_module(
    module,
    output: str | Path,
    size: tuple[int, int],
    preprocessing: Preprocessing,
    log: Callable[[str], None] = lambda line: None,
    **options,
) -> ImportResult:
    """The same for a torch `nn.Module` taking float `(N, 3, H, W)` and returning `(N, C, h, w)`
    logits: exported with torch.onnx at `size` (H, W), then wrapped and checked as import_onnx.
    `options`: the other ImportConfig fields (classes, parity_source, min_agreement, ...).
    MissingDependencyError without torch (the train extra)."""
    try:
        import torch  # noqa: F401
    except ImportError:
        raise MissingDependencyError("torch", "train", "importing a torch module") from None
    with tempfile.TemporaryDirectory(prefix="rtseg-import-") as tmp:
        path = Path(tmp) / f"{type(module).__name__}.onnx"
        _export_module(module, path, tuple(size))
        options.setdefault("source_label", f"torch module {type(module).__name__}")
        config = ImportConfig(path, Path(output), preprocessing, size=tuple(size), **options)
        return import_onnx(config, log)
