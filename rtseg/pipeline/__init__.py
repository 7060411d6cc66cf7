"""The threaded pipeline: capture -> infer -> overlay -> sink, with stats and a live view.

from rtseg.pipeline import Pipeline, PipelineConfig
stats = Pipeline(source, model, sinks, PipelineConfig(max_frames=100)).run()
print(stats.summary())
"""

from rtseg.pipeline.live import LiveView, ViewState, apply_key
from rtseg.pipeline.runner import (
    SIGNAL_EXIT_STATUS,
    Pipeline,
    PipelineConfig,
    PipelineInterrupted,
    SourceFailed,
)
from rtseg.pipeline.stats import PipelineStats, StageStats

__all__ = [
    "SIGNAL_EXIT_STATUS",
    "Pipeline",
    "PipelineConfig",
    "PipelineInterrupted",
    "SourceFailed",
    "PipelineStats",
    "StageStats",
    "LiveView",
    "ViewState",
    "apply_key",
]
