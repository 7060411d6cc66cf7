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

import click

from rtseg.assembly import RunConfig, execute
from rtseg.cli.options import run_options
from rtseg.cli.path_types import STR_PATH
from rtseg.errors import InputError


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
    if not cfg.outputs.quiet:
        click.echo(stats.summary())
    for warning in stats.warnings:
        click.echo(f"rtseg: warning: {warning}", err=True)


@click.command("run")
@click.option("--video", type=STR_PATH, help="Video file (mp4, mkv, avi, ...).")
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
@run_options()
def run(video, frames, camera, source_uri, **options):
    """Segment a video, frames folder, camera or stream; write, show or just time the result."""
    from rtseg.pipeline import PipelineInterrupted, SourceFailed

    cfg = RunConfig.of(pick_source(video, frames, camera, source_uri), **options)
    try:
        stats = execute(cfg, source_uri if len(source_uri) > 1 else None)
    except SourceFailed as failure:  # every frame read before it was written: report, then fail
        report(cfg, failure.stats)
        raise
    except PipelineInterrupted as stop:
        report(cfg, stop.stats)
        click.echo(f"rtseg: interrupted by {stop.signal_name}; {stop.stats.frames} frames written", err=True)
        sys.exit(stop.exit_status)
    report(cfg, stats)
