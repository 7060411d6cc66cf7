"""`rtseg build-engine NAME.onnx [-o NAME.engine] [--workspace SIZE] [--timing-cache FILE] ...`"""

from __future__ import annotations

from pathlib import Path

import click

from rtseg.cli.path_types import PATH
from rtseg.errors import InputError

UNITS = {
    "": 1,
    "b": 1,
    "k": 1 << 10,
    "kb": 1 << 10,
    "kib": 1 << 10,
    "m": 1 << 20,
    "mb": 1 << 20,
    "mib": 1 << 20,
    "g": 1 << 30,
    "gb": 1 << 30,
    "gib": 1 << 30,
}


def parse_bytes(text: str | None) -> int | None:
    """'2GiB', '512M', '1073741824' -> bytes; InputError for anything else."""
    if text is None:
        return None
    value = text.strip().lower()
    digits = value.rstrip("abcdefghijklmnopqrstuvwxyz")
    unit = value[len(digits) :].strip()
    try:
        number = float(digits)
    except ValueError:
        number = -1
    if number <= 0 or unit not in UNITS:
        raise InputError(f"--workspace must be a size like 2GiB or 512MiB, got {text!r}")
    return int(number * UNITS[unit])


@click.command("build-engine")
@click.argument("model", type=PATH)
@click.option(
    "-o",
    "--output",
    type=PATH,
    help="Engine to write (default: NAME.engine beside the ONNX).",
)
@click.option("--workspace", metavar="SIZE", help="TensorRT workspace pool limit, e.g. 2GiB.")
@click.option(
    "--timing-cache",
    type=PATH,
    help="Timing cache file, read and updated (default: ~/.cache/rtseg/timing/...).",
)
@click.option(
    "--max-batch",
    type=click.IntRange(1, 256),
    default=8,
    show_default=True,
    help="Largest batch the engine accepts (the optimization profile's max).",
)
@click.option("--verbose", is_flag=True, help="TensorRT's verbose log.")
@click.option(
    "--prepare-only",
    "prepare_only",
    type=PATH,
    metavar="OUT.onnx",
    help="Only write the graph TensorRT would parse (no TensorRT or GPU needed), for trtexec or Polygraphy.",
)
def build_engine(model, output, workspace, timing_cache, max_batch, verbose, prepare_only):
    """Build a TensorRT engine (strongly typed: precision comes from the ONNX) for MODEL."""
    from rtseg.engine import BuildConfig
    from rtseg.engine.build_file import build_engine_file

    config = BuildConfig(
        workspace=parse_bytes(workspace), timing_cache=timing_cache, max_batch=max_batch, verbose=verbose
    )
    record = build_engine_file(
        model, output, config, prepare_only, log=lambda line: click.echo(line, err=True)
    )
    if prepare_only is not None:
        click.echo(
            f"wrote {prepare_only}: the graph TensorRT parses for {Path(model).with_suffix('.onnx').name} "
            "(uint8 only into Casts); "
            f"e.g. trtexec --onnx={prepare_only} --stronglyTyped"
        )
        return
    click.echo(f"wrote {record.path} + {record.path.name}.json (cache key {record.meta['cache_key']})")
