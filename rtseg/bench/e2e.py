"""End to end: the run `rtseg run` opens (rtseg.assembly.open_run) over a real video: decode +
infer + overlay + encode, at the video's own frame rate."""

from __future__ import annotations

import contextlib
from pathlib import Path


def describe_codec_path(lane) -> tuple[str | None, str | None]:
    """The lane's decoder ("h264" on the CPU, "h264_cuvid" with NVDEC) and MP4 encoder
    ("libx264", "h264_nvenc"; None without an MP4 sink)."""
    from rtseg.video import Mp4Sink

    encoder = next((sink.codec for sink in lane.sinks if isinstance(sink, Mp4Sink)), None)
    return lane.source.decoder, encoder


def run_pipeline(model, video: Path, output: str, mp4_path: str | None, decoder: str | None = None) -> dict:
    """Stream `video` through `model` (an open LoadedModel) with the default overlay into an MP4
    (`output="mp4"`, at `mp4_path`) or nowhere (`"none"`: a NullSink, which still pays for the
    drawing). Returns {"e2e": stats dict}, the stats as `PipelineStats.to_json()` gives them
    (frames, fps, stages, latency_ms, dropped). decoder: the video decoder (None: the run's
    default)."""
    from rtseg.assembly import RunConfig, open_run
    from rtseg.video import NullSink

    mp4 = Path(mp4_path) if output == "mp4" else None
    cfg = RunConfig.of(video, output=mp4, quiet=True, decoder=decoder)  # drawn as `rtseg run` draws
    with contextlib.ExitStack() as stack:
        extra = [] if mp4 is not None else [NullSink()]
        pipeline = open_run(cfg, stack, model=model, extra_sinks=extra)
        stats = pipeline.run()
        codec_path = describe_codec_path(pipeline.lanes[0])
    summary = stats.to_json()
    summary["output"] = output
    summary["decoder"], summary["encoder"] = codec_path
    if mp4 is not None and mp4.is_file():
        summary["output_bytes"] = mp4.stat().st_size
    return {"e2e": summary}
