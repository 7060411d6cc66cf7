"""Models in and out of rtseg's package format, for the Python API (`rtseg.import_onnx`,
`rtseg.import_module`, `rtseg.export_triton`; re-exported by rtseg.api): each call builds the
config of the export layer's function and runs it. Imports nothing heavy until called."""

from __future__ import annotations

import os
from pathlib import Path

from rtseg.core.arguments import model_input
from rtseg.core.paths import require_file
from rtseg.errors import ModelError


def import_onnx(
    model: str | os.PathLike,
    output: str | os.PathLike,
    *,
    mean: tuple[float, float, float],
    std: tuple[float, float, float],
    input_range: str = "0-1",
    input_color: str = "RGB",
    classes: str | None = None,
    size: tuple[int, int] | None = None,
    output_name: str | None = None,
    parity_source: str | None = None,
    parity_frames: int = 8,
    min_agreement: float = 0.999,
):
    """`rtseg import`: wrap a float NCHW ONNX with a logits output into the package `output`.

    mean / std: per channel, in the model's channel order (`input_color`, "RGB" or "BGR") and
    pixel range (`input_range` "0-1": pixels / 255; "0-255": raw). classes: "camvid",
    "cityscapes", ... or a .json / .txt file. size: (height, width) of the package's input
    (needed when the model's is dynamic). parity_source: real frames (video, frames folder);
    None: generated ones. Returns an ImportResult (`.package`, `.agreement`, `.line()`);
    raises ExportError (nothing written) when the wrapped graph disagrees with the original.
    """
    from rtseg.export.import_model import ImportConfig
    from rtseg.export.import_model import import_onnx as run_import
    from rtseg.onnxtools.wrap_onnx import Preprocessing

    size, mean, std = model_input(size, mean, std)
    cfg = ImportConfig(
        Path(model),
        Path(output),
        Preprocessing(tuple(mean), tuple(std), input_range=input_range, color=input_color),
        classes=classes,
        size=None if size is None else tuple(size),
        output_name=output_name,
        parity_source=parity_source,
        parity_frames=parity_frames,
        min_agreement=min_agreement,
    )
    return run_import(cfg)


def import_module(
    module,
    output: str | os.PathLike,
    *,
    size: tuple[int, int],
    mean: tuple[float, float, float],
    std: tuple[float, float, float],
    input_range: str = "0-1",
    input_color: str = "RGB",
    classes: str | None = None,
    parity_source: str | None = None,
    parity_frames: int = 8,
    min_agreement: float = 0.999,
):
    """The same for a torch `nn.Module` (float `(N, 3, H, W)` in, `(N, C, h, w)` logits out),
    exported with torch.onnx at `size` (height, width). Needs torch (the train extra):
    MissingDependencyError without it."""
    from rtseg.export.import_model import import_module as run_import
    from rtseg.onnxtools.wrap_onnx import Preprocessing

    size, mean, std = model_input(size, mean, std, size_required=True)
    pre = Preprocessing(tuple(mean), tuple(std), input_range=input_range, color=input_color)
    return run_import(
        module,
        output,
        tuple(size),
        pre,
        classes=classes,
        parity_source=parity_source,
        parity_frames=parity_frames,
        min_agreement=min_agreement,
    )


def export_triton(
    package: str | os.PathLike,
    repo: str | os.PathLike,
    *,
    name: str | None = None,
    engine: str | os.PathLike | None = None,
    max_batch: int | None = None,
    instances: int = 1,
    kind: str = "cpu",
    max_queue_delay_us: int = 0,
    force: bool = False,
):
    """`rtseg export-triton`: write a Triton model repository for the model package `package`
    (and `engine`, built from it by `rtseg build-engine`, as NAME_trt). Returns a TritonExport
    (`.models`: Triton model name -> folder, `.configs`). See rtseg.onnxtools.triton."""
    from rtseg.core.package import load_package
    from rtseg.onnxtools.triton import export_triton as write_repository

    engine_meta = None
    if engine is not None:
        from rtseg.engine.cache import read_engine_sidecar

        require_file(engine, "engine", ModelError)
        engine_meta = read_engine_sidecar(engine)
    return write_repository(
        load_package(package),
        repo,
        name=name,
        engine=engine,
        engine_meta=engine_meta,
        max_batch=max_batch,
        instances=instances,
        kind=kind,
        max_queue_delay_us=max_queue_delay_us,
        force=force,
    )
