"""`rtseg run`: segment a video, frames folder, camera or stream and write / show the result.

Live sources (--camera 0, /dev/video2, a stream URL, lavfi:...): the newest frame always wins
and drops are counted; with --show the window shows fps, capture-to-display latency and drops,
and takes keys (q / Esc quit, space pause, m overlay / mask / side-by-side, + / - alpha, s
snapshot). A live source that ends or disappears mid-run ends the run normally.

Damaged input (a packet flagged corrupt, a frame that does not decode, a file cut short of what
its header declares) is decoded through as players do, counted in the summary and the stats
JSON, and a cut file gets an `rtseg: warning: ...` line; --strict makes the first damage an
error. An input that fails mid-run (unreadable image, read error) still has every frame read
before it written to every output, then exits 1.

Exit status: 0 when the run ends (source end, --max-frames, q in the window); 1 with a one-line
`rtseg: error: ...` for bad input or a failing stage; 130 after Ctrl-C (SIGINT) and 143 after
SIGTERM, the shell convention, once the summary is printed and every output is closed (the MP4
holds every frame processed so far).
"""

from __future__ import annotations

import sys
from pathlib import Path

import click

from rtseg.api import MODE_CHOICES, RunConfig, execute
from rtseg.cli.options import device_option, engine_options
from rtseg.errors import InputError
from rtseg.loading import BACKEND_CHOICES


def pick_source(video, frames, camera, source) -> str:
    """The one input given among --video / --frames / --camera / --source (InputError otherwise).

    `source` may be a tuple (repeated --source): several are the many-streams run, alone."""
    if isinstance(source, (tuple, list)):
        source = source[0] if len(source) == 1 else (tuple(source) or None)
        if isinstance(source, tuple) and any(v is not None for v in (video, frames, camera)):
            raise InputError("several --source inputs cannot be combined with --video, --frames or --camera")
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
    value = next(iter(given.values()))
    return value[0] if isinstance(value, tuple) else str(value)


def report(cfg: RunConfig, stats) -> None:
    """Summary on stdout (unless quiet) and the input's warnings on stderr (always)."""
    if not cfg.quiet:
        click.echo(stats.summary())
    for warning in stats.warnings:
        click.echo(f"rtseg: warning: {warning}", err=True)


@click.command("run")
@click.option("--video", type=click.Path(path_type=str), help="Video file (mp4, mkv, avi, ...).")
@click.option("--frames", type=str, help="Folder or glob of images, read in natural order.")
@click.option(
    "--camera", type=str, help="Camera index (0), device (/dev/video0) or stream URL (rtsp://...). Live."
)
@click.option(
    "--source",
    "source_uri",
    type=str,
    multiple=True,
    help="Any input URI: rtsp://..., lavfi:testsrc2=... Repeat it for several live sources batched "
    "through one model; --output / --masks / --save-frames then take {index} or {name}.",
)
@click.option("--model", type=click.Path(path_type=Path), help="Model package .onnx (+ .json sidecar).")
@click.option("--backend", type=click.Choice(BACKEND_CHOICES), default="auto", show_default=True)
@device_option
@engine_options
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
@click.option(
    "--strict",
    is_flag=True,
    help="Stop (exit 1) at the first damaged packet, undecodable frame or cut-short file "
    "[default: decode through, count and report].",
)
def run(
    video,
    frames,
    camera,
    source_uri,
    model,
    backend,
    device,
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
    strict,
):
    """Segment a video, frames folder, camera or stream; write, show or just time the result."""
    from rtseg.pipeline import PipelineInterrupted, SourceFailed

    cfg = RunConfig(
        source_uri=pick_source(video, frames, camera, source_uri),
        model=model,
        backend=backend,
        device=device,
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
        strict=strict,
        snapshot_dir=snapshot_dir,
    )
    try:
        if len(source_uri) > 1:
            from rtseg.streams import execute_streams

            stats = execute_streams(cfg, source_uri)
        else:
            stats = execute(cfg)
    except SourceFailed as failure:  # every frame read before it was written: report, then fail
        report(cfg, failure.stats)
        raise
    except PipelineInterrupted as stop:
        report(cfg, stop.stats)
        click.echo(f"rtseg: interrupted by {stop.signal_name}; {stop.stats.frames} frames written", err=True)
        sys.exit(stop.exit_status)
    report(cfg, stats)
