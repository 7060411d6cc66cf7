"""Engine cache: an engine is reused only for the TensorRT version, GPU, precision, ONNX and
graph rewrite it was built from, and only while its build parameters cover what is asked for
(batches up to its profile's max, as many optimization profiles); anything else and it is rebuilt.

Files: `NAME.engine` (a plain TensorRT plan: trtexec, Triton and DeepStream load it as is) and
`NAME.engine.json` beside it:

    {"format": "rtseg-engine", "format_version": 2, "engine": "NAME.engine", "engine_sha256": hex,
     "cache_key": hex16, "key": {"tensorrt", "gpu", "compute_capability", "precision", "onnx_sha256",
     "graph_rewrite", "max_batch", "opt_batch", "profiles"},
     "onnx": "NAME.onnx", "profile": {"input", "min", "opt", "max", "count"},
     "build": {"workspace_bytes", "timing_cache", "seconds", "built_at"}, "package": {model sidecar}}

The workspace size is recorded in "build" but is not part of the key: it bounds TensorRT's scratch
memory while building and changes nothing an engine accepts.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from rtseg.core.package import ModelPackage, sha256_file
from rtseg.core.paths import atomic_write_text
from rtseg.core.user_cache import cache_dir
from rtseg.engine.build_config import BuildConfig
from rtseg.engine.environment import EngineEnvironment
from rtseg.engine.onnx_prep import PREP_VERSION
from rtseg.errors import ModelError

ENGINE_FORMAT = "rtseg-engine"
ENGINE_FORMAT_VERSION = 2  # 2: build parameters and graph rewrite version in the key
IDENTITY_FIELDS = ("tensorrt", "gpu", "compute_capability", "precision", "onnx_sha256", "graph_rewrite")
COVERING_FIELDS = ("max_batch", "profiles")  # an engine with at least these serves the request


def engine_cache_key(fields: dict) -> str:
    """16 hex digits naming one combination of key fields (see `key_fields`)."""
    canonical = {k: str(v).strip() for k, v in fields.items()}
    return hashlib.sha256(json.dumps(canonical, sort_keys=True).encode()).hexdigest()[:16]


def key_fields(env: EngineEnvironment, package: ModelPackage, config: BuildConfig) -> dict:
    """What an engine for (env, package) built with `config` is: TensorRT version, GPU, precision,
    ONNX hash, graph rewrite version, and the build parameters that bound what it accepts."""
    return {
        "tensorrt": env.trt_version,
        "gpu": env.gpu_name,
        "compute_capability": env.compute_capability,
        "precision": package.precision,
        "onnx_sha256": package.meta.get("onnx_sha256") or sha256_file(package.onnx_path),
        "graph_rewrite": PREP_VERSION,
        "max_batch": config.max_batch,
        "opt_batch": config.opt_batch,
        "profiles": config.profiles,
    }


def key_for(env: EngineEnvironment, package: ModelPackage, config: BuildConfig) -> str:
    return engine_cache_key(key_fields(env, package, config))


@dataclass(frozen=True)
class EngineRecord:
    """A usable engine: its path, its sidecar, and whether it was just built (and why)."""

    path: Path
    meta: dict
    built: bool
    reason: str  # why it was built, or "up to date"


def default_timing_cache(env: EngineEnvironment) -> Path:
    return cache_dir() / "timing" / f"{env.slug()}.cache"


def engine_sidecar_path(engine_path: str | Path) -> Path:
    return Path(f"{engine_path}.json")


def default_engine_path(package: ModelPackage, key: str) -> Path:
    """`NAME.engine` beside the ONNX when that folder is writable, else in the user cache."""
    beside = package.onnx_path.with_suffix(".engine")
    if os.access(beside.parent, os.W_OK):
        return beside
    return cache_dir() / "engines" / f"{package.onnx_path.stem}-{key}.engine"


def read_engine_sidecar(engine_path: str | Path) -> dict:
    """The engine's sidecar; ModelError when it is missing or not an rtseg engine sidecar."""
    sidecar = engine_sidecar_path(engine_path)
    if not sidecar.is_file():
        raise ModelError(
            f"engine {engine_path} has no sidecar {sidecar.name}; rebuild it with 'rtseg build-engine'"
        )
    try:
        meta = json.loads(sidecar.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ModelError(f"{sidecar}: not valid JSON ({exc})") from exc
    if not isinstance(meta, dict) or meta.get("format") != ENGINE_FORMAT:
        raise ModelError(f"{sidecar}: not an rtseg engine sidecar (format != {ENGINE_FORMAT!r})")
    if not isinstance(meta.get("key"), dict) or not isinstance(meta.get("cache_key"), str):
        raise ModelError(f"{sidecar}: engine sidecar has no cache key")
    return meta


def write_engine_sidecar(
    engine_path: Path,
    package: ModelPackage,
    env: EngineEnvironment,
    config: BuildConfig,
    profile: dict,
    build: dict,
) -> dict:
    """Write `NAME.engine.json` atomically and return it."""
    engine_path = Path(engine_path)
    try:
        onnx = os.path.relpath(package.onnx_path, engine_path.parent.resolve())
    except ValueError:  # another drive on Windows
        onnx = str(package.onnx_path)
    meta = {
        "format": ENGINE_FORMAT,
        "format_version": ENGINE_FORMAT_VERSION,
        "engine": engine_path.name,
        "engine_sha256": sha256_file(engine_path),
        "cache_key": key_for(env, package, config),
        "key": key_fields(env, package, config),
        "onnx": onnx,
        "profile": profile,
        "build": build,
        "package": package.meta,
    }
    atomic_write_text(engine_sidecar_path(engine_path), json.dumps(meta, indent=2) + "\n", durable=True)
    return meta


def stale_reason(
    engine_path: Path,
    package: ModelPackage,
    env: EngineEnvironment,
    config: BuildConfig | None = None,
    batch: int | None = None,
) -> str | None:
    """None when the engine at `engine_path` fits (env, package) and covers `batch` frames
    (default `config.max_batch`) and `config.profiles` profiles; else why it must be rebuilt."""
    config = config or BuildConfig()
    if not engine_path.is_file():
        return "no engine yet"
    try:
        meta = read_engine_sidecar(engine_path)
    except ModelError as exc:
        return str(exc)
    built, wanted = meta["key"], key_fields(env, package, config)
    changed = [
        f"{k} {built.get(k)!s:.16} -> {wanted[k]!s:.16}" for k in IDENTITY_FIELDS if built.get(k) != wanted[k]
    ]
    if changed:
        return "built for another " + ", ".join(changed)
    needed = {"max_batch": batch or config.max_batch, "profiles": config.profiles}
    short = [
        f"{k} {built.get(k)} < {needed[k]}" for k in COVERING_FIELDS if not _covers(built.get(k), needed[k])
    ]
    if short:
        return "built too small: " + ", ".join(short)
    if meta.get("engine_sha256") and sha256_file(engine_path) != meta["engine_sha256"]:
        return "engine file changed since it was built"
    return None


def _covers(built, needed: int) -> bool:
    return isinstance(built, int) and built >= needed


Builder = Callable[[Path, Path, BuildConfig, Callable[[str], None]], dict]


def find_or_build_engine(
    package: ModelPackage,
    engine_path: str | Path | None = None,
    config: BuildConfig | None = None,
    env: EngineEnvironment | None = None,
    build: Builder | None = None,
    force: bool = False,
    log: Callable[[str], None] = lambda line: None,
    batch: int | None = None,
) -> EngineRecord:
    """Reuse the engine for `package` when it fits (see `stale_reason`; `batch`: the most frames
    the caller will submit at once, default `config.max_batch`), else build it with `config`.

    `env` defaults to this machine's (needs TensorRT and a GPU); `build(onnx, engine, config, log)
    -> {"profile": ..., "build": ...}` defaults to the TensorRT builder (tests pass fakes).
    """
    config = config or BuildConfig()
    if env is None:
        from rtseg.engine.environment import engine_environment

        env = engine_environment()
    if build is None:
        from rtseg.engine.builder import build_engine as build
    if engine_path is None:
        engine_path = default_engine_path(package, key_for(env, package, config))
    engine_path = Path(engine_path)
    reason = "rebuild asked for" if force else stale_reason(engine_path, package, env, config, batch)
    if reason is None:
        return EngineRecord(engine_path, read_engine_sidecar(engine_path), False, "up to date")
    log(f"building TensorRT engine {engine_path.name} ({reason})")
    engine_path.parent.mkdir(parents=True, exist_ok=True)
    if config.timing_cache is None:
        config = dataclasses.replace(config, timing_cache=default_timing_cache(env))
    result = build(package.onnx_path, engine_path, config, log)
    meta = write_engine_sidecar(engine_path, package, env, config, result["profile"], result["build"])
    return EngineRecord(engine_path, meta, True, reason)
