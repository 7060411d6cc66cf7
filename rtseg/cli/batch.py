"""`rtseg batch INPUT... --out DIR`: segment an archive of videos on Ray (local cluster by default).

INPUT: video files, folders (searched recursively), globs, `@list.txt`. Each video's outputs go
to `DIR/<its path relative to the common root>/` (annotated.mp4, masks/, stats.json), written
under temporary names and renamed when complete. `DIR/rtseg-batch.json` records every input;
running the same command again skips what is done and unchanged and retries what failed.

Exit status: 0 when every input is done or skipped; 1 when any failed (one line each) or for
bad arguments; 130 / 143 / 129 after Ctrl-C / SIGTERM / SIGHUP (the manifest holds every
finished video).
"""

from __future__ import annotations

import sys

import click

from rtseg.cli.options import run_options
from rtseg.cli.path_types import PATH
from rtseg.core import signals


@click.command("batch")
@click.argument("inputs", nargs=-1, required=True)
@click.option("--out", "out_dir", required=True, type=PATH, help="Output folder.")
@click.option(
    "--output-kind",
    default="mp4,stats",
    show_default=True,
    help="Outputs per video, comma-separated: mp4 (annotated video), masks (id PNGs), stats (JSON).",
)
@click.option("--workers", type=click.IntRange(min=1), help="Worker actors [default: as the cluster holds].")
@click.option("--cpus-per-worker", type=click.FloatRange(min=0.01), default=1.0, show_default=True)
@click.option("--gpus-per-worker", type=click.FloatRange(min=0.0), help="[default: 1 with tensorrt, else 0]")
@click.option(
    "--address",
    help="Existing Ray cluster: auto, host:port or ray://host:10001 [default: RAY_ADDRESS, else local].",
)
@run_options("model", "backend", "device", "threads", "openvino_precision", "max_frames", "decoder")
@run_options("mode", "alpha", "legend", "codec")
@click.option(
    "--retries",
    type=click.IntRange(min=0),
    default=2,
    show_default=True,
    help="Tries again of a video whose worker died.",
)
@click.option(
    "--hash", "hash_inputs", is_flag=True, help="Identify inputs by sha256 too (else size and mtime)."
)
@click.option(
    "--report-json",
    type=PATH,
    help="Write this run's summary (counts, frames, archive fps, workers) as JSON.",
)
@click.option("--verbose", "-v", is_flag=True, help="Ray's and the workers' logs on stderr.")
@run_options("quiet")
def batch(
    inputs, out_dir, output_kind, workers, cpus_per_worker, gpus_per_worker, address, retries, hash_inputs,
    report_json, verbose, quiet, **options,
):  # fmt: skip
    """Segment an archive of videos on a Ray cluster (local by default); resumable."""
    from rtseg.batch import BatchConfig, archive_options, parse_output_kinds, run_batch
    from rtseg.batch.config import kill_at_from_env

    config = BatchConfig(
        inputs=tuple(inputs),
        out_dir=out_dir,
        video=archive_options(parse_output_kinds(output_kind), **options),
        workers=workers,
        cpus_per_worker=cpus_per_worker,
        gpus_per_worker=gpus_per_worker,
        address=address,
        retries=retries,
        hash_inputs=hash_inputs,
        progress=not quiet,
        verbose=verbose,
        kill_at=kill_at_from_env(),
        report_json=report_json,
    )
    try:  # SIGINT / SIGTERM / SIGHUP raise here (rtseg.core.signals): Ray is shut down cleanly
        report = run_batch(config)
    except KeyboardInterrupt as stop:
        name = getattr(stop, "signal_name", None) or signals.received() or "SIGINT"
        click.echo(
            f"rtseg: interrupted by {name}; finished videos are in the manifest; "
            "run the same command again to resume",
            err=True,
        )
        sys.exit(signals.exit_status(name))
    if not quiet:
        click.echo(report.summary())
    for line in report.failures():
        click.echo(f"rtseg: failed: {line}", err=True)
    if not report.ok:
        sys.exit(1)
