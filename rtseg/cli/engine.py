"""`rtseg build-engine NAME.onnx [-o NAME.engine] [--workspace SIZE] [--timing-cache FILE] ...`"""

from __future__ import annotations

from pathlib import Path

import click

from rtseg.core.paths import check_paths
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


def write_parser_input(package, out: Path) -> None:
    """`--prepare-only OUT.onnx`: the rewritten graph (never over the package's own files: the
    command's check_paths refused that already)."""
    from rtseg.engine.builder import prepare_onnx

    if out.suffix != ".onnx":
        raise InputError(f"--prepare-only needs an .onnx file name, got {out}")
    prepare_onnx(package.onnx_path, out)
    click.echo(
        f"wrote {out}: the graph TensorRT parses for {package.onnx_path.name} (uint8 only into Casts); "
        f"e.g. trtexec --onnx={out} --stronglyTyped"
    )


@click.command("build-engine")
@click.argument("model", type=click.Path(path_type=Path))
@click.option(
    "-o",
    "--output",
    type=click.Path(path_type=Path),
    help="Engine to write (default: NAME.engine beside the ONNX).",
)
@click.option("--workspace", metavar="SIZE", help="TensorRT workspace pool limit, e.g. 2GiB.")
@click.option(
    "--timing-cache",
    type=click.Path(path_type=Path),
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
    type=click.Path(path_type=Path),
    metavar="OUT.onnx",
    help="Only write the graph TensorRT would parse (no TensorRT or GPU needed), for trtexec or Polygraphy.",
)
def build_engine(model, output, workspace, timing_cache, max_batch, verbose, prepare_only):
    """Build a TensorRT engine (strongly typed: precision comes from the ONNX) for MODEL."""
    from rtseg.core.package import load_package, package_files
    from rtseg.engine import BuildConfig, find_or_build_engine
    from rtseg.engine.environment import engine_environment

    check_paths(
        inputs=[("MODEL", p) for p in package_files(model)],
        outputs=[
            ("--output", output),
            ("--output's sidecar", None if output is None else Path(f"{output}.json")),
            ("--timing-cache", timing_cache),
            ("--prepare-only", prepare_only),
        ],
    )
    package = load_package(model)
    if prepare_only is not None:
        write_parser_input(package, prepare_only)
        return
    config = BuildConfig(
        workspace=parse_bytes(workspace), timing_cache=timing_cache, max_batch=max_batch, verbose=verbose
    )
    env = engine_environment()  # TensorRT, then a GPU: one clear line each, before trt.Builder
    click.echo(
        f"TensorRT {env.trt_version} on {env.gpu_name} (compute {env.compute_capability}), "
        f"{package.precision} package {package.onnx_path.name}",
        err=True,
    )
    record = find_or_build_engine(
        package, output, config, env=env, force=True, log=lambda line: click.echo(line, err=True)
    )
    click.echo(f"wrote {record.path} + {record.path.name}.json (cache key {record.meta['cache_key']})")
