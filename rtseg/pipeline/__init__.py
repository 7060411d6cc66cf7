"""The threaded pipeline, one source or many: lanes (capture -> overlay -> sink) around one
batching infer stage, with stats and a live view.

from rtseg.pipeline import Pipeline, PipelineConfig
stats = Pipeline.single(source, model, sinks, PipelineConfig(max_frames=100)).run()
print(stats.summary())
"""

from rtseg.pipeline.lane import Lane, MultiStats
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
    "Lane",
    "MultiStats",
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
