"""End to end: the run `rtseg run` opens (rtseg.assembly.open_run) over a real video: decode +
infer + overlay + encode, at the video's own frame rate."""

from __future__ import annotations

import contextlib
from pathlib import Path


def run_pipeline(model, video: Path, output: str, mp4_path: str | None) -> dict:
    """Stream `video` through `model` (an open LoadedModel) with the default overlay into an MP4
    (`output="mp4"`, at `mp4_path`) or nowhere (`"none"`: a NullSink, which still pays for the
    drawing). Returns {"e2e": stats dict}, the stats as `PipelineStats.to_json()` gives them
    (frames, fps, stages, latency_ms, dropped)."""
    from rtseg.assembly import RunConfig, open_run
    from rtseg.video import NullSink

    mp4 = Path(mp4_path) if output == "mp4" else None
    cfg = RunConfig(source_uri=str(video), output=mp4, quiet=True)  # drawn as `rtseg run` draws
    with contextlib.ExitStack() as stack:
        extra = [] if mp4 is not None else [NullSink()]
        stats = open_run(cfg, stack, model=model, extra_sinks=extra).run()
    summary = stats.to_json()
    summary["output"] = output
    if mp4 is not None and mp4.is_file():
        summary["output_bytes"] = mp4.stat().st_size
    return {"e2e": summary}
