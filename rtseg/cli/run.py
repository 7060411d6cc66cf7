"""`rtseg run`: segment a video, frames folder, camera or stream and write / show the result.

Live sources (--camera 0, /dev/video2, a stream URL, lavfi:...): the newest frame always wins
and drops are counted; with --show the window shows fps, capture-to-display latency and drops,
and takes keys (q / Esc quit, space pause, m overlay / mask / side-by-side, + / - alpha, s
snapshot). A live source that ends or disappears mid-run ends the run normally.

Exit status: 0 when the run ends (source end, --max-frames, q in the window); 1 with a one-line
`rtseg: error: ...` for bad input or a failing stage; 130 after Ctrl-C (SIGINT) and 143 after
SIGTERM, the shell convention, once the summary is printed and every output is closed (the MP4
holds every frame processed so far).
"""

from __future__ import annotations

import contextlib
import json
import os
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

import click

from rtseg.errors import InputError, ModelError, OutputError

BACKEND_CHOICES = ("onnxruntime", "torch", "tensorrt")
MODE_CHOICES = ("overlay", "mask", "side-by-side")
DEFAULT_FOLDER_FPS = 25.0  # MP4 rate for a source with no frame rate (frames folders)


@dataclass(frozen=True)
class RunConfig:
    """Everything `rtseg run` was asked to do. `source_uri` is what `open_source` takes."""

    source_uri: str
    model: Path | None = None  # None: the bundled default model
    backend: str = "onnxruntime"
    threads: int | None = None
    output: Path | None = None
    masks: Path | None = None
    save_frames: Path | None = None
    show: bool = False
    mode: str = "overlay"
    alpha: float = 0.5
    legend: bool = True
    hud: bool | None = None  # None: on with --show, off for files
    max_frames: int | None = None
    stats_json: Path | None = None
    realtime: bool = False
    fps: float | None = None
    codec: str = "auto"
    preset: str | None = None  # encoder speed preset (None: the sink's real-time default)
    crf: int | None = None  # encoder quality (None: the sink's default, 23)
    quiet: bool = False
    snapshot_dir: Path = Path(".")


def pick_source(video, frames, camera, source) -> str:
    """The one input given among --video / --frames / --camera / --source (InputError otherwise)."""
    given = {
        name: value
        for name, value in (
            ("--video", video),
            ("--frames", frames),
            ("--camera", camera),
            ("--source", source),
        )
        if value is not None
    }
    if len(given) != 1:
        what = "none was given" if not given else f"got {' and '.join(given)}"
        raise InputError(f"give exactly one input: --video, --frames, --camera or --source ({what})")
    return str(next(iter(given.values())))


def resolve_model_path(model: Path | None, backend: str = "onnxruntime") -> Path:
    """`model`, else the bundled package: on ONNX Runtime the fastest variant whose measured
    mIoU drop is within target (sidecar metrics), on TensorRT the fp16 variant, else fp32."""
    if model is not None:
        return model
    from rtseg.package import default_model_path, default_package_for

    path = default_model_path()
    if not path.is_file():
        raise ModelError(
            f"no default model at {path}; pass --model PATH (a model package .onnx with its .json sidecar)"
        )
    return default_package_for(backend)


def check_writable_folder(path: Path, what: str) -> None:
    """OutputError unless `path` is an existing folder this process can create files in."""
    if not path.is_dir():
        problem = "is a file, not a folder" if path.exists() else "does not exist"
        raise OutputError(f"{what} {path} {problem}")
    if not os.access(path, os.W_OK | os.X_OK):
        raise OutputError(f"{what} {path}: folder is not writable")


def check_writable_file(path: Path, what: str) -> None:
    """OutputError unless `path` can be created or overwritten as a regular file."""
    if path.is_dir():
        raise OutputError(f"{what} {path} is a folder, not a file")
    parent = path.parent if str(path.parent) else Path(".")
    if not parent.is_dir():
        raise OutputError(f"{what} {path}: folder {parent} does not exist")
    if path.exists() and not os.access(path, os.W_OK):
        raise OutputError(f"{what} {path}: not writable")
    try:  # a real probe: permission bits say nothing for root or for /proc
        with tempfile.NamedTemporaryFile(dir=parent, prefix=".rtseg-probe-"):
            pass
    except OSError as exc:
        raise OutputError(f"{what} {path}: folder {parent} is not writable ({exc.strerror})") from None


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


def execute(cfg: RunConfig):
    """Open input, model and outputs (every check before a thread starts), run, report.

    Returns the PipelineStats; raises PipelineInterrupted after Ctrl-C / SIGTERM.
    """
    from rtseg.pipeline import Pipeline, PipelineConfig
    from rtseg.runtime import open_model
    from rtseg.video import open_source
    from rtseg.viz import VizConfig

    if cfg.stats_json is not None:
        check_writable_file(cfg.stats_json, "--stats-json")
    if cfg.show:
        check_writable_folder(cfg.snapshot_dir, "--snapshot-dir")
    model_path = resolve_model_path(cfg.model, cfg.backend)
    with contextlib.ExitStack() as stack:
        source = stack.enter_context(open_source(cfg.source_uri, realtime=cfg.realtime, fps=cfg.fps))
        model = open_model(model_path, backend=cfg.backend, threads=cfg.threads)
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
            click.echo(
                f"rtseg: {source.description or cfg.source_uri} -> {model_path.name} "
                f"on {model.backend.describe()}"
            )
            if display is not None:
                click.echo(
                    "rtseg: window keys: q / Esc quit, space pause, m overlay / mask / "
                    "side-by-side, + / - alpha, s snapshot"
                )
        return Pipeline(source, model, sinks, pipeline_cfg, display=display).run()


def report(cfg: RunConfig, stats) -> None:
    if not cfg.quiet:
        click.echo(stats.summary())
    if cfg.stats_json is not None:
        try:
            cfg.stats_json.write_text(json.dumps(stats.to_json(), indent=2) + "\n")
        except OSError as exc:
            raise OutputError(f"--stats-json {cfg.stats_json}: cannot write ({exc.strerror})") from exc


@click.command("run")
@click.option("--video", type=click.Path(path_type=str), help="Video file (mp4, mkv, avi, ...).")
@click.option("--frames", type=str, help="Folder or glob of images, read in natural order.")
@click.option(
    "--camera", type=str, help="Camera index (0), device (/dev/video0) or stream URL (rtsp://...). Live."
)
@click.option("--source", "source_uri", type=str, help="Any input URI: rtsp://..., lavfi:testsrc2=...")
@click.option("--model", type=click.Path(path_type=Path), help="Model package .onnx (+ .json sidecar).")
@click.option("--backend", type=click.Choice(BACKEND_CHOICES), default="onnxruntime", show_default=True)
@click.option("--threads", type=click.IntRange(min=1), help="CPU threads for the backend.")
@click.option("--output", type=click.Path(path_type=Path), help="Write the annotated video (MP4).")
@click.option("--masks", type=click.Path(path_type=Path), help="Write class-id masks (PNG per frame).")
@click.option("--save-frames", type=click.Path(path_type=Path), help="Write annotated frames (JPEG).")
@click.option(
    "--show",
    is_flag=True,
    help="Show the result in a window. Keys: q / Esc quit, space pause, m overlay / mask / "
    "side-by-side, + / - alpha, s snapshot.",
)
@click.option(
    "--snapshot-dir",
    type=click.Path(path_type=Path),
    default=Path("."),
    show_default=True,
    help="Where the window's s key writes rtseg_snapshot_<index>.png.",
)
@click.option("--mode", type=click.Choice(MODE_CHOICES), default="overlay", show_default=True)
@click.option(
    "--alpha",
    type=click.FloatRange(0.0, 1.0),
    default=0.5,
    show_default=True,
    help="Opacity of the class colours in overlay mode.",
)
@click.option("--no-legend", is_flag=True, help="Do not draw the class legend.")
@click.option("--hud/--no-hud", default=None, help="Draw fps | latency on frames [default: with --show].")
@click.option("--max-frames", type=click.IntRange(min=1), help="Read at most N frames.")
@click.option("--stats-json", type=click.Path(path_type=Path), help="Write the summary as JSON.")
@click.option("--realtime", is_flag=True, help="Pace a file at its frame rate (a live stand-in).")
@click.option("--fps", type=click.FloatRange(min=0.1), help="Frame rate of a frames folder / the MP4.")
@click.option("--codec", default="auto", show_default=True, help="MP4 encoder: auto, libx264, h264_nvenc.")
@click.option(
    "--preset",
    type=str,
    help="MP4 encoder speed: x264 ultrafast (default: real time on few cores) ... veryslow "
    "(smaller files, more CPU per frame), or NVENC p1..p7; each maps to the other encoder.",
)
@click.option(
    "--crf",
    type=click.IntRange(0, 51),
    help="MP4 quality: x264 crf / NVENC cq, lower is better and larger [default: 23].",
)
@click.option("--quiet", "-q", is_flag=True, help="No progress bar and no summary.")
def run(
    video,
    frames,
    camera,
    source_uri,
    model,
    backend,
    threads,
    output,
    masks,
    save_frames,
    show,
    snapshot_dir,
    mode,
    alpha,
    no_legend,
    hud,
    max_frames,
    stats_json,
    realtime,
    fps,
    codec,
    preset,
    crf,
    quiet,
):
    """Segment a video, frames folder, camera or stream; write, show or just time the result."""
    from rtseg.pipeline import PipelineInterrupted

    cfg = RunConfig(
        source_uri=pick_source(video, frames, camera, source_uri),
        model=model,
        backend=backend,
        threads=threads,
        output=output,
        masks=masks,
        save_frames=save_frames,
        show=show,
        mode=mode,
        alpha=alpha,
        legend=not no_legend,
        hud=hud,
        max_frames=max_frames,
        stats_json=stats_json,
        realtime=realtime,
        fps=fps,
        codec=codec,
        preset=preset,
        crf=crf,
        quiet=quiet,
        snapshot_dir=snapshot_dir,
    )
    try:
        stats = execute(cfg)
    except PipelineInterrupted as stop:
        report(cfg, stop.stats)
        click.echo(f"rtseg: interrupted by {stop.signal_name}; {stop.stats.frames} frames written", err=True)
        sys.exit(stop.exit_status)
    report(cfg, stats)
