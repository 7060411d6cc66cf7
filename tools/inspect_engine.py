#!/usr/bin/env python3
"""Print a TensorRT engine's I/O tensors and its rtseg sidecar (cache key, package, profile).

    python tools/inspect_engine.py engines/camvid_effl1_fpn.engine

The sidecar part needs nothing; listing the tensors needs TensorRT and a GPU (skipped with a
note otherwise).
"""

from __future__ import annotations

import sys
from pathlib import Path

import click

from rtseg.engine import read_engine_sidecar
from rtseg.errors import BackendError, ModelError, RtsegError


def print_sidecar(engine_path: Path) -> None:
    meta = read_engine_sidecar(engine_path)
    key = meta["key"]
    click.echo(f"cache key    {meta['cache_key']}")
    click.echo(f"tensorrt     {key.get('tensorrt')}")
    click.echo(f"gpu          {key.get('gpu')} (compute {key.get('compute_capability')})")
    click.echo(f"precision    {key.get('precision')}")
    click.echo(
        f"built for    batches up to {key.get('max_batch')} (opt {key.get('opt_batch')}), "
        f"{key.get('profiles')} profile(s), graph rewrite {key.get('graph_rewrite')}"
    )
    click.echo(f"onnx         {meta.get('onnx')} (sha256 {str(key.get('onnx_sha256'))[:16]}...)")
    profile = meta.get("profile") or {}
    if profile:
        click.echo(
            f"profile      {profile.get('input')}: min {profile.get('min')} opt {profile.get('opt')} "
            f"max {profile.get('max')} (x{profile.get('count', 1)})"
        )
    build = meta.get("build") or {}
    click.echo(f"built        {build.get('built_at')} in {build.get('seconds')} s")
    package = meta.get("package") or {}
    classes = package.get("classes") or []
    click.echo(f"model        {package.get('name')}: {package.get('dataset')}, {len(classes)} classes")


def print_tensors(engine_path: Path) -> None:
    from rtseg.engine.environment import engine_environment
    from rtseg.runtime.tensorrt_backend import describe_engine

    env = engine_environment()  # checks TensorRT and a GPU before trt.Runtime
    import tensorrt as trt

    runtime = trt.Runtime(trt.Logger(trt.Logger.WARNING))
    engine = runtime.deserialize_cuda_engine(engine_path.read_bytes())
    if engine is None:
        raise ModelError(f"TensorRT {env.trt_version} cannot load {engine_path}")
    for tensor in describe_engine(engine, trt):
        kind = "input " if tensor.is_input else "output"
        limit = f" (profile max {tensor.max_shape})" if tensor.max_shape else ""
        click.echo(f"{kind}       {tensor.name}: {tensor.dtype} {tensor.shape}{limit}")


@click.command()
@click.argument("engine", type=click.Path(exists=True, dir_okay=False, path_type=Path))
def main(engine: Path) -> None:
    """Print ENGINE's I/O tensors and its sidecar's cache key."""
    try:
        print_sidecar(engine)
        try:
            print_tensors(engine)
        except BackendError as exc:  # no TensorRT or no GPU: the sidecar is still useful
            click.echo(f"tensors      not listed: {exc}")
    except RtsegError as exc:
        click.echo(f"inspect_engine: error: {exc}", err=True)
        sys.exit(1)


if __name__ == "__main__":
    main()
