"""End to end: the Pipeline over a real video (decode + infer + overlay + encode)."""

from __future__ import annotations

from pathlib import Path


def run_pipeline(model, video: Path, output: str, mp4_path: str | None) -> dict:
    """Stream `video` through `model` (a LoadedModel) with the default overlay into an MP4
    (`output="mp4"`, at `mp4_path`) or nowhere (`"none"`). Returns {"e2e": stats dict}, the
    stats as `PipelineStats.to_json()` gives them (frames, fps, stages, latency_ms, dropped)."""
    from rtseg.pipeline import Pipeline, PipelineConfig
    from rtseg.video import Mp4Sink, NullSink, open_source

    with open_source(str(video)) as source:
        if output == "mp4":
            sink = Mp4Sink(mp4_path, fps=source.fps or 25.0)
        else:
            sink = NullSink()
        with sink:
            stats = Pipeline(source, model, [sink], PipelineConfig()).run()
    summary = stats.to_json()
    summary["output"] = output
    # the codec path: "h264" (CPU) or "h264_cuvid" (NVDEC); "libx264" or "h264_nvenc"
    summary["decoder"], summary["encoder"] = getattr(source, "decoder", None), getattr(sink, "codec", None)
    if output == "mp4" and mp4_path and Path(mp4_path).is_file():
        summary["output_bytes"] = Path(mp4_path).stat().st_size
    return {"e2e": summary}
