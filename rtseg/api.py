"""The public Python API: load a model, segment frames, stream a source, run the pipeline.

    import rtseg

    seg = rtseg.load()                                   # the bundled CamVid model, ONNX Runtime CPU
    ids = seg(frame)                                     # (H, W, 3) uint8 RGB -> (H, W) uint8 ids
    picture = seg.render(frame, ids, mode="overlay")     # (H, W, 3) uint8 RGB
    for result in seg.stream("road.mp4"):                # lazy; capture + infer threads behind it
        print(result.index, result.latency_ms, (result.ids == 3).mean())
    stats = rtseg.run("road.mp4", output="annotated.mp4", masks="masks/")

`rtseg run` parses its options into a `RunConfig` and calls `execute`, the same path as `run`.
Every error raised on purpose is an `RtsegError` (`InputError`, `ModelError`, `OutputError`,
`BackendError`, ...).
"""

from __future__ import annotations

import contextlib
import glob
import json
import os
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from rtseg.core import signals
from rtseg.core.paths import atomic_write_text, check_paths
from rtseg.errors import InputError, ModelError, OutputError
from rtseg.interop import export_triton, import_module, import_onnx
from rtseg.loading import BACKEND_CHOICES, DEVICES, choose_backend

if TYPE_CHECKING:
    from rtseg.segmenter import FrameResult, ResultStream, Segmenter, load

__all__ = [
    "DEVICES",
    "FrameResult",
    "ResultStream",
    "RunConfig",
    "Segmenter",
    "execute",
    "export_triton",
    "import_module",
    "import_onnx",
    "load",
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


MODE_CHOICES = ("overlay", "mask", "side-by-side")


@dataclass(frozen=True)
class RunConfig:
    """Everything one run of the pipeline was asked to do (`rtseg run`'s options).

    source_uri: what `open_source` takes: a video file, a frames folder or glob, a camera index
        or device ("0", "/dev/video0"), a stream URL (rtsp://...) or "lavfi:<graph>".
    model: a model package `.onnx` / `.json`, a checkpoint (torch backend) or an `.engine`;
        None: the bundled default model for `backend`.
    device: where the model runs (rtseg.loading.DEVICES): "auto" (the best this machine has),
        "cpu", "cuda", or "tensorrt" (ONNX Runtime's TensorRT provider).
    output / masks / save_frames: annotated MP4; class-id PNGs (`000000.png`, pixel = id) at
        each frame's size; annotated JPEG frames. show: a window (main thread).
    mode / alpha / legend / hud: how frames are drawn (hud None: on with show, off for files).
    codec / preset / crf: the MP4 encoder ("auto": NVENC where it opens, else libx264), its
        speed preset (None: real-time ultrafast; x264 names or NVENC p1..p7) and quality
        (None: 23; x264 crf / NVENC cq, lower is better and larger).
    quiet: no progress bar and no header line.
    strict: the first input damage (corrupt packet, undecodable frame, file cut short) is an
        InputError; by default it is decoded through, counted and reported in the stats.
    """

    source_uri: str
    model: Path | None = None
    backend: str = "auto"
    device: str = "auto"
    threads: int | None = None
    output: Path | None = None
    masks: Path | None = None
    save_frames: Path | None = None
    show: bool = False
    mode: str = "overlay"
    alpha: float = 0.5
    legend: bool = True
    hud: bool | None = None
    max_frames: int | None = None
    stats_json: Path | None = None
    realtime: bool = False
    fps: float | None = None
    codec: str = "auto"
    preset: str | None = None
    crf: int | None = None
    quiet: bool = False
    snapshot_dir: Path = Path(".")
    strict: bool = False

    def __post_init__(self):
        if self.backend not in BACKEND_CHOICES:
            raise InputError(f"unknown backend {self.backend!r} (use {', '.join(BACKEND_CHOICES)})")
        if self.mode not in MODE_CHOICES:
            raise InputError(f"unknown mode {self.mode!r} (use {', '.join(MODE_CHOICES)})")
        if not 0.0 <= self.alpha <= 1.0:
            raise InputError(f"alpha must be within 0..1, got {self.alpha}")
        for name in ("max_frames", "threads"):
            value = getattr(self, name)
            if value is not None and (not isinstance(value, int) or value < 1):
                raise InputError(f"{name} must be a positive integer, got {value!r}")


def resolve_model_path(model: str | Path | None, backend: str = "auto", device: str | None = None) -> Path:
    """`model`, else the bundled package for the engine (`auto`: the one choose_backend picks):
    on ONNX Runtime the fastest variant whose measured mIoU drop is within target (sidecar
    metrics), on OpenVINO its INT8 variant where measured faster within target, on TensorRT the
    fp16 variant, else fp32."""
    if model is not None:
        return Path(model)
    from rtseg.core.package import default_model_path, default_package_for

    path = default_model_path()
    if not path.is_file():
        raise ModelError(
            f"no default model at {path}; pass --model PATH (a model package .onnx with its .json sidecar)"
        )
    return default_package_for(choose_backend(backend, device))


MASK_NAMES = "[0-9]*.png"  # what MaskSink writes: 000042.png
FRAME_NAMES = "[0-9]*.jpg"  # what FramesSink writes: 000042.jpg
SNAPSHOT_NAMES = "rtseg_snapshot_*.png"


def source_paths(uri: str) -> list:
    """The files and folders an input URI reads, labelled by the option that gives them: a file
    (--video), a folder or a glob's matches and their folders (--frames); a camera, stream URL
    or lavfi graph reads none."""
    if uri.startswith("lavfi:") or "://" in uri or uri.isdigit() or uri.startswith("/dev/video"):
        return []
    if os.path.exists(uri) or not any(c in uri for c in "*?["):
        return [("--frames" if os.path.isdir(uri) else "--video", uri)]  # a missing one: its opener says
    matches = [Path(p) for p in glob.glob(uri, recursive=True)]
    return [("--frames", p) for p in [*matches, *sorted({p.parent for p in matches})]]


def check_run_paths(cfg: RunConfig, model_path: Path) -> None:
    """Every input and output of the run, checked together before anything is opened
    (rtseg.core.paths.check_paths): no output may destroy an input or another output."""
    from rtseg.core.package import package_files

    check_paths(
        inputs=[*source_paths(cfg.source_uri), *(("--model", p) for p in package_files(model_path))],
        outputs=[("--output", cfg.output), ("--stats-json", cfg.stats_json)],
        output_dirs=[
            ("--masks", cfg.masks, MASK_NAMES),
            ("--save-frames", cfg.save_frames, FRAME_NAMES),
            ("--snapshot-dir", cfg.snapshot_dir if cfg.show else None, SNAPSHOT_NAMES),
        ],
    )


def preflight(cfg: RunConfig, check_run_paths=check_run_paths) -> Path:
    """What is checked before anything is opened: every path (`check_run_paths(cfg, model)`),
    the encoder, the display (a window that cannot open is one line, never Qt aborting the
    process). Returns the model path."""
    from rtseg.video.display import check_display
    from rtseg.video.sinks import check_encoder

    model_path = resolve_model_path(cfg.model, cfg.backend, cfg.device)
    check_run_paths(cfg, model_path)
    if cfg.show and not cfg.snapshot_dir.is_dir():
        raise OutputError(f"--snapshot-dir {cfg.snapshot_dir} does not exist")
    if cfg.output is not None:
        check_encoder(cfg.codec)
    if cfg.show:
        check_display()
    return model_path


def open_sinks(cfg: RunConfig, fps: float, stack: contextlib.ExitStack) -> list:
    """Mp4Sink / MaskSink / FramesSink for the outputs asked for; each checks its path now."""
    from rtseg.video import FramesSink, MaskSink, Mp4Sink

    sinks = []
    if cfg.output is not None:
        mp4 = Mp4Sink(cfg.output, fps=fps, codec=cfg.codec, preset=cfg.preset, crf=cfg.crf)
        sinks.append(stack.enter_context(mp4))
    if cfg.masks is not None:
        sinks.append(stack.enter_context(MaskSink(cfg.masks)))
    if cfg.save_frames is not None:
        sinks.append(stack.enter_context(FramesSink(cfg.save_frames)))
    return sinks


def write_stats_json(cfg: RunConfig, stats) -> None:
    """Write `stats.to_json()` to `cfg.stats_json` (when given) through a temporary file renamed
    over it; OutputError if it cannot."""
    if cfg.stats_json is not None:
        atomic_write_text(cfg.stats_json, json.dumps(stats.to_json(), indent=2) + "\n", durable=True)


def execute(cfg: RunConfig):
    """Check every path, open input, model and outputs (every check before a thread starts), run,
    write the stats JSON. Returns the PipelineStats; raises PipelineInterrupted (a
    KeyboardInterrupt carrying the stats, after writing the stats JSON) on Ctrl-C / SIGTERM /
    SIGHUP, and SourceFailed (an InputError carrying the stats, after writing them) when the
    input failed mid-run.

    Until the pipeline starts, a signal stops at once (rtseg.core.signals); from then on it
    stops the run and never cuts the closing of the outputs or the stats JSON short, however
    many come."""
    from rtseg.pipeline import PipelineInterrupted, SourceFailed

    model_path = preflight(cfg)
    with contextlib.ExitStack() as stack:
        pipeline = _prepare(cfg, model_path, stack)
        with signals.defer():
            try:
                stats = pipeline.run()
            except (PipelineInterrupted, SourceFailed) as stop:
                write_stats_json(cfg, stop.stats)
                raise
            write_stats_json(cfg, stats)
    return stats


def _prepare(cfg: RunConfig, model_path: Path, stack: contextlib.ExitStack):
    """Open input, model, outputs and window (closed by `stack`); the Pipeline to run."""
    from rtseg.pipeline import Pipeline, PipelineConfig
    from rtseg.segmenter import open_loaded_model
    from rtseg.video import open_source
    from rtseg.video.sources import DEFAULT_FOLDER_FPS
    from rtseg.viz import VizConfig

    source = stack.enter_context(
        open_source(cfg.source_uri, realtime=cfg.realtime, fps=cfg.fps, strict=cfg.strict)
    )
    model = open_loaded_model(model_path, cfg.backend, cfg.device, cfg.threads)
    stack.enter_context(model.backend)
    fps = cfg.fps or source.fps or DEFAULT_FOLDER_FPS
    sinks = open_sinks(cfg, fps, stack)
    display = None
    if cfg.show:
        from rtseg.video import WindowDisplay

        display = stack.enter_context(WindowDisplay("rtseg"))
    hud = cfg.show if cfg.hud is None else cfg.hud
    viz = VizConfig(mode=cfg.mode, alpha=cfg.alpha, legend=cfg.legend, hud=hud)
    pipeline_cfg = PipelineConfig(
        max_frames=cfg.max_frames, viz=viz, progress=not cfg.quiet, snapshot_dir=cfg.snapshot_dir
    )
    if not cfg.quiet:
        where = source.description or cfg.source_uri
        _say(f"rtseg: {where} -> {model_path.name} on {model.backend.describe()}")
        if display is not None:
            _say(
                "rtseg: window keys: q / Esc quit, space pause, m overlay / mask / "
                "side-by-side, + / - alpha, s snapshot"
            )
    return Pipeline(source, model, sinks, pipeline_cfg, display=display)


def _say(line: str) -> None:
    print(line, file=sys.stdout, flush=True)


def _path_or_none(value: str | os.PathLike | None) -> Path | None:
    return None if value is None else Path(value)


def run(
    source: str | os.PathLike | int,
    *,
    output: str | os.PathLike | None = None,
    masks: str | os.PathLike | None = None,
    save_frames: str | os.PathLike | None = None,
    show: bool = False,
    model: str | os.PathLike | None = None,
    backend: str = "onnxruntime",
    device: str = "auto",
    threads: int | None = None,
    mode: str = "overlay",
    alpha: float = 0.5,
    legend: bool = True,
    hud: bool | None = None,
    max_frames: int | None = None,
    stats_json: str | os.PathLike | None = None,
    realtime: bool = False,
    fps: float | None = None,
    codec: str = "auto",
    preset: str | None = None,
    crf: int | None = None,
    quiet: bool = True,
    snapshot_dir: str | os.PathLike = ".",
    strict: bool = False,
):
    """Run the whole pipeline on `source` to the outputs asked for; returns the PipelineStats.

    The same options as `rtseg run` (see RunConfig), and the same code path. `source`: a video
    file, frames folder or glob, camera index (0) or device, stream URL or "lavfi:<graph>".
    With no output at all the run only measures. `quiet` (default here): no progress bar and no
    header line. Returns `PipelineStats` (`.frames`, `.fps`, `.latency_ms()`, `.to_json()`,
    `.summary()`). Raises InputError / ModelError / OutputError / BackendError before any
    thread starts, the first stage error after closing every output, SourceFailed (an
    InputError with `.stats`) when the input fails mid-run after every frame read before it was
    written, and PipelineInterrupted (a KeyboardInterrupt with `.stats`) on Ctrl-C / SIGTERM
    when called from the main thread. `strict`: the first input damage is an error.
    """
    cfg = RunConfig(
        source_uri=str(source),
        model=_path_or_none(model),
        backend=backend,
        device=device,
        threads=threads,
        output=_path_or_none(output),
        masks=_path_or_none(masks),
        save_frames=_path_or_none(save_frames),
        show=show,
        mode=mode,
        alpha=alpha,
        legend=legend,
        hud=hud,
        max_frames=max_frames,
        stats_json=_path_or_none(stats_json),
        realtime=realtime,
        fps=fps,
        codec=codec,
        preset=preset,
        crf=crf,
        quiet=quiet,
        snapshot_dir=Path(snapshot_dir),
        strict=strict,
    )
    return execute(cfg)
