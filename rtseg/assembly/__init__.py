"""The assembly of a run: its configuration (`config`: small frozen sub-configs composing
`RunConfig`) and the one function that opens it (`run`: `preflight`, `open_run`, `execute`).
`rtseg run`, the Python API, `rtseg batch`'s worker and `rtseg bench`'s end-to-end row all
open their run here."""

from rtseg.assembly.config import (
    MODE_CHOICES,
    DrawingConfig,
    EngineConfig,
    InputConfig,
    OutputConfig,
    RunConfig,
    option_fields,
    split_options,
)
from rtseg.assembly.run import (
    FRAME_NAMES,
    MASK_NAMES,
    SNAPSHOT_NAMES,
    check_patterns,
    check_run_paths,
    execute,
    expand_pattern,
    lane_names,
    open_engine,
    open_run,
    open_sinks,
    preflight,
    source_name,
    source_paths,
    unique_names,
    write_stats_json,
)

__all__ = [
    "FRAME_NAMES",
    "MASK_NAMES",
    "MODE_CHOICES",
    "SNAPSHOT_NAMES",
    "DrawingConfig",
    "EngineConfig",
    "InputConfig",
    "OutputConfig",
    "RunConfig",
    "check_patterns",
    "check_run_paths",
    "execute",
    "expand_pattern",
    "lane_names",
    "open_engine",
    "open_run",
    "open_sinks",
    "option_fields",
    "preflight",
    "source_name",
    "source_paths",
    "split_options",
    "unique_names",
    "write_stats_json",
]
