"""The public Python API: load a model, segment frames, stream a source, run the pipeline.

    import rtseg

    seg = rtseg.load()                                   # the bundled CamVid model, ONNX Runtime CPU
    ids = seg(frame)                                     # (H, W, 3) uint8 RGB -> (H, W) uint8 ids
    picture = seg.render(frame, ids, mode="overlay")     # (H, W, 3) uint8 RGB
    for result in seg.stream("road.mp4"):                # lazy; capture + infer threads behind it
        print(result.index, result.latency_ms, (result.ids == 3).mean())
    stats = rtseg.run("road.mp4", output="annotated.mp4", masks="masks/")

A thin facade: `rtseg run` parses its options into a `RunConfig` and calls `execute`
(rtseg.assembly), the same path as `run`.
Every error raised on purpose is an `RtsegError` (`InputError`, `ModelError`, `OutputError`,
`BackendError`, ...).
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

from rtseg.assembly import DrawingConfig, EngineConfig, InputConfig, OutputConfig, RunConfig, execute
from rtseg.interop import export_triton, import_module, import_onnx
from rtseg.loading import DEVICES, resolve_model_path

if TYPE_CHECKING:
    from rtseg.segmenter import FrameResult, ResultStream, Segmenter, load

__all__ = [
    "DEVICES",
    "DrawingConfig",
    "EngineConfig",
    "FrameResult",
    "InputConfig",
    "OutputConfig",
    "ResultStream",
    "RunConfig",
    "Segmenter",
    "execute",
    "export_triton",
    "import_module",
    "import_onnx",
    "load",
    "resolve_model_path",
    "run",
]

# Defined in rtseg.segmenter (which imports the pipeline); loaded on first use, so the CLI's
# `rtseg run --help` and `import rtseg.api` stay light.
_LAZY = {"FrameResult", "ResultStream", "Segmenter", "load"}


def __getattr__(name: str):
    if name in _LAZY:
        from rtseg import segmenter

        return getattr(segmenter, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def run(source: str | os.PathLike | int, *, quiet: bool = True, **options):
    """Run the whole pipeline on `source` to the outputs asked for; returns the PipelineStats.

    The same options as `rtseg run`, as keywords (the fields of RunConfig's sub-configs:
    model, backend, device, threads, openvino_precision; max_frames, realtime, fps, strict,
    decoder; output, masks, save_frames, show, snapshot_dir, stats_json, codec, preset, crf;
    mode, alpha, legend, hud), and the same code path (`RunConfig.of`).
    `source`: a video file, frames folder or glob, camera index (0) or device, stream URL or "lavfi:<graph>".
    With no output at all the run only measures. `quiet` (default here): no progress bar and no
    header line. Returns `PipelineStats` (`.frames`, `.fps`, `.latency_ms()`, `.to_json()`,
    `.summary()`). Raises InputError / ModelError / OutputError / BackendError before any
    thread starts, the first stage error after closing every output, SourceFailed (an
    InputError with `.stats`) when the input fails mid-run after every frame read before it was
    written, and PipelineInterrupted (a KeyboardInterrupt with `.stats`) on Ctrl-C / SIGTERM
    when called from the main thread. `strict`: the first input damage is an error.
    """
    return execute(RunConfig.of(source, quiet=quiet, **options))
