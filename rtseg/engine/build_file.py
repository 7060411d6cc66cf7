"""`build_engine_file`: what `rtseg build-engine` does, as a library function: every path checked
first (outputs never destroy inputs, from Python too), then the graph TensorRT would parse
(`prepare_only`) or the engine built for this GPU."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from rtseg.core.paths import check_paths
from rtseg.engine.build_config import BuildConfig
from rtseg.errors import InputError


def build_engine_file(
    model: str | Path,
    output: Path | None = None,
    config: BuildConfig | None = None,
    prepare_only: Path | None = None,
    log: Callable[[str], None] = print,
):
    """Build the TensorRT engine of the package `model` into `output` (None: NAME.engine beside
    it), rebuilt even when one is up to date. With `prepare_only`: only write the rewritten graph
    TensorRT parses (no TensorRT or GPU needed) there and return its path. Returns the
    EngineRecord. Raises OutputError when an output would overwrite an input or another output,
    before anything is read; InputError / BackendError without TensorRT or a GPU."""
    from rtseg.core.package import load_package, package_files
    from rtseg.engine.cache import find_or_build_engine
    from rtseg.engine.environment import engine_environment

    config = config or BuildConfig()
    check_paths(
        inputs=[("MODEL", p) for p in package_files(model)],
        outputs=[
            ("--output", output),
            ("--output's sidecar", None if output is None else Path(f"{output}.json")),
            ("--timing-cache", config.timing_cache),
            ("--prepare-only", prepare_only),
        ],
    )
    package = load_package(model)
    if prepare_only is not None:
        from rtseg.engine.builder import prepare_onnx

        if Path(prepare_only).suffix != ".onnx":
            raise InputError(f"--prepare-only needs an .onnx file name, got {prepare_only}")
        return prepare_onnx(package.onnx_path, prepare_only)
    env = engine_environment()  # TensorRT, then a GPU: one clear line each, before trt.Builder
    log(
        f"TensorRT {env.trt_version} on {env.gpu_name} (compute {env.compute_capability}), "
        f"{package.precision} package {package.onnx_path.name}"
    )
    return find_or_build_engine(package, output, config, env=env, force=True, log=log)
