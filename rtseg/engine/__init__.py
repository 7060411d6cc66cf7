"""ONNX model package -> TensorRT engine: builder, engine cache key, engine sidecar.

Nothing here imports tensorrt at import time; `engine_environment()` / `build_engine()` do, and
check for a GPU before touching trt.Builder.
"""

from rtseg.engine.cache import (
    BuildConfig,
    EngineRecord,
    default_engine_path,
    engine_cache_key,
    engine_sidecar_path,
    find_or_build_engine,
    read_engine_sidecar,
    stale_reason,
    write_engine_sidecar,
)
from rtseg.engine.environment import EngineEnvironment, engine_environment

__all__ = [
    "BuildConfig",
    "EngineEnvironment",
    "EngineRecord",
    "default_engine_path",
    "engine_cache_key",
    "engine_environment",
    "engine_sidecar_path",
    "find_or_build_engine",
    "read_engine_sidecar",
    "stale_reason",
    "write_engine_sidecar",
]
