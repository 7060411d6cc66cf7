"""ONNX -> TensorRT plan, one path for TensorRT 10.x and 11.x.

The network is strongly typed (`1 << STRONGLY_TYPED`, accepted by both): precision comes from
the ONNX (fp32, fp16 graph, or int8 Q/DQ), never from builder flags (TensorRT 11 removed them).
Parser errors are printed in full, the timing cache persists between builds, the dynamic batch
axis gets an optimization profile, and the build reports its progress.
"""

from __future__ import annotations

import contextlib
import datetime
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path

from rtseg.core.gpu import require_tensorrt
from rtseg.core.paths import atomic_output, atomic_write_bytes
from rtseg.engine.build_config import BuildConfig
from rtseg.engine.onnx_prep import write_prepared
from rtseg.errors import BackendError, ModelError


def _progress_monitor(trt, log: Callable[[str], None]):
    """An IProgressMonitor that logs top-level phases (None where TensorRT has no such class)."""
    base = getattr(trt, "IProgressMonitor", None)
    if base is None:
        return None

    class PhaseLogger(base):
        def __init__(self):
            base.__init__(self)
            self.lock = threading.Lock()
            self.started: dict[str, tuple[float, int, str | None]] = {}

        def phase_start(self, phase_name, parent_phase, num_steps):
            with self.lock:
                self.started[phase_name] = (time.monotonic(), num_steps, parent_phase)
                if parent_phase is None:
                    log(f"  {phase_name} ({num_steps} steps)")

        def step_complete(self, phase_name, step):
            with self.lock:
                started = self.started.get(phase_name)
                if started and started[2] is None and sys.stderr.isatty():
                    print(f"\r  {phase_name}: {step + 1}/{started[1]}", end="", file=sys.stderr, flush=True)
            return True  # False would cancel the build

        def phase_finish(self, phase_name):
            with self.lock:
                started = self.started.pop(phase_name, None)
                if started and started[2] is None:
                    if sys.stderr.isatty():
                        print(file=sys.stderr)
                    log(f"  {phase_name} done in {time.monotonic() - started[0]:.1f} s")

    return PhaseLogger()


class _Spinner:
    """Elapsed-time lines every `every` seconds while TensorRT builds (no IProgressMonitor)."""

    def __init__(self, log: Callable[[str], None], every: float = 10.0):
        self.log, self.every = log, every
        self.done = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _run(self):
        start = time.monotonic()
        while not self.done.wait(self.every):
            self.log(f"  still building... {time.monotonic() - start:.0f} s")

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.done.set()
        self.thread.join(timeout=1)


def _parse(trt, network, logger, onnx_path: Path, log) -> None:
    parser = trt.OnnxParser(network, logger)
    if parser.parse_from_file(str(onnx_path)):
        return
    errors = [str(parser.get_error(i)) for i in range(parser.num_errors)]
    for error in errors:
        log(f"TensorRT ONNX parser: {error}")
    first = errors[0].splitlines()[0] if errors else "no error reported"
    raise ModelError(f"TensorRT cannot parse {onnx_path.name}: {len(errors)} error(s), first: {first}")


def _check_quantization(onnx_path: Path) -> None:
    """ModelError for Q/DQ that TensorRT rejects (e.g. a package quantized with --int8-target cpu)."""
    from rtseg.onnxtools.qdq_rules import check_qdq_rules

    problems = check_qdq_rules(onnx_path)
    if problems:
        raise ModelError(
            f"{onnx_path.name} has {len(problems)} Q/DQ node(s) TensorRT rejects (first: "
            f"{problems[0]}); was it quantized with --int8-target cpu? Export it with "
            "--int8-target tensorrt"
        )


def prepare_onnx(onnx_path: str | Path, out_path: str | Path) -> Path:
    """Write to `out_path` exactly the graph `build_engine` hands TensorRT's parser for
    `onnx_path` (uint8 only into Casts, see rtseg.engine.onnx_prep), after the same Q/DQ check.
    Needs neither TensorRT nor a GPU: users run trtexec or Polygraphy on the result."""
    onnx_path, out_path = Path(onnx_path), Path(out_path)
    _check_quantization(onnx_path)
    with atomic_output(out_path) as temp:
        write_prepared(onnx_path, temp)
    return out_path


def batch_profile(shape: tuple[int, ...], opt_batch: int, max_batch: int):
    """(min, opt, max) shapes for an input whose only dynamic axis is the batch (axis 0)."""
    if any(d < 0 for d in shape[1:]):
        raise ModelError(f"input shape {shape}: only the batch axis may be dynamic")
    rest = tuple(int(d) for d in shape[1:])
    if shape[0] >= 0:
        fixed = (int(shape[0]), *rest)
        return fixed, fixed, fixed
    return (1, *rest), (opt_batch, *rest), (max_batch, *rest)


def _add_profiles(builder, network, trt_config, config: BuildConfig) -> dict:
    """`config.profiles` identical profiles (a dynamic-shape context in concurrent use needs its own)."""
    shapes = {}
    for _ in range(config.profiles):
        profile = builder.create_optimization_profile()
        for i in range(network.num_inputs):
            tensor = network.get_input(i)
            low, opt, high = batch_profile(tuple(tensor.shape), config.opt_batch, config.max_batch)
            profile.set_shape(tensor.name, low, opt, high)
            shapes = {
                "input": tensor.name,
                "min": list(low),
                "opt": list(opt),
                "max": list(high),
                "count": config.profiles,
            }
        trt_config.add_optimization_profile(profile)
    return shapes


def _load_timing_cache(trt_config, path: Path | None, log):
    data = b""
    if path is not None and path.is_file():
        data = path.read_bytes()
    try:
        cache = trt_config.create_timing_cache(data)
        if trt_config.set_timing_cache(cache, ignore_mismatch=False):
            if data:
                log(f"  timing cache {path} ({len(data)} bytes)")
            return cache
    except (RuntimeError, TypeError) as exc:  # a cache from another TensorRT version or a torn file
        log(f"  timing cache {path} unusable ({exc}); starting a new one")
    else:
        log(f"  timing cache {path} is for another TensorRT or GPU; starting a new one")
    cache = trt_config.create_timing_cache(b"")
    trt_config.set_timing_cache(cache, ignore_mismatch=False)
    return cache


def _write_atomic(path: Path, data) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_bytes(path, data, durable=True)


def build_engine(
    onnx_path: str | Path,
    engine_path: str | Path,
    config: BuildConfig | None = None,
    log: Callable[[str], None] = lambda line: None,
) -> dict:
    """Build `engine_path` from `onnx_path`; returns {"profile": ..., "build": ...} for the sidecar.

    Checks for TensorRT, then for a GPU, before touching trt.Builder. ModelError when the ONNX
    cannot be parsed, BackendError when TensorRT cannot build it.
    """
    from rtseg.core.gpu import cuda_device_info

    config = config or BuildConfig()
    trt = require_tensorrt()
    cuda_device_info()  # DeviceError without a GPU: trt.Builder could abort the process
    onnx_path, engine_path = Path(onnx_path), Path(engine_path)
    logger = trt.Logger(trt.Logger.VERBOSE if config.verbose else trt.Logger.WARNING)
    builder = trt.Builder(logger)
    network = builder.create_network(1 << int(trt.NetworkDefinitionCreationFlag.STRONGLY_TYPED))
    with tempfile.TemporaryDirectory(prefix="rtseg-trt-") as tmp:
        prepared = prepare_onnx(onnx_path, Path(tmp) / onnx_path.name)  # uint8 casts TensorRT takes
        _parse(trt, network, logger, prepared, log)
    trt_config = builder.create_builder_config()
    if config.workspace:
        trt_config.set_memory_pool_limit(trt.MemoryPoolType.WORKSPACE, int(config.workspace))
    profile = _add_profiles(builder, network, trt_config, config)
    _load_timing_cache(trt_config, config.timing_cache, log)
    monitor = _progress_monitor(trt, log)
    if monitor is not None:
        trt_config.progress_monitor = monitor
    start = time.monotonic()
    log(f"building {engine_path.name} with TensorRT {trt.__version__} (strongly typed)")
    with _Spinner(log) if monitor is None else contextlib.nullcontext():
        plan = builder.build_serialized_network(network, trt_config)
    if plan is None:
        raise BackendError(f"TensorRT failed to build {onnx_path.name} (its messages are above)")
    _write_atomic(engine_path, plan)
    if config.timing_cache is not None:
        _write_atomic(config.timing_cache, trt_config.get_timing_cache().serialize())
    seconds = time.monotonic() - start
    log(f"wrote {engine_path} ({engine_path.stat().st_size / 1e6:.1f} MB) in {seconds:.0f} s")
    return {
        "profile": profile,
        "build": {
            "workspace_bytes": config.workspace,
            "seconds": round(seconds, 1),
            "timing_cache": str(config.timing_cache) if config.timing_cache else None,
            "built_at": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        },
    }
