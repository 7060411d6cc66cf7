"""The assembly of a run: one function that opens a RunConfig, for one source or many.

`RunConfig` (rtseg.assembly.config) is what a run was asked to do; `open_run(cfg, sources,
stack)` checks nothing and opens every source, the model (unless the caller hands in its open
one), each source's outputs (with several sources `--output` / `--masks` / `--save-frames` are
patterns with `{index}` or `{name}`) and the window, and returns the Pipeline to run;
`execute(cfg)` checks every path first (`preflight`), opens, runs and writes the stats JSON.
`rtseg run` (one source or many), the Python API, `rtseg batch`'s worker and `rtseg bench`'s
end-to-end row all open their run here. A source that cannot be opened, fails or ends in a
many-source run is reported and dropped; the others go on.
"""

from __future__ import annotations

import contextlib
import glob
import json
import os
import re
import sys
from collections.abc import Callable, Sequence
from dataclasses import replace
from pathlib import Path

import rtseg.loading as loading
from rtseg.assembly.config import EngineConfig, OutputConfig, RunConfig
from rtseg.core import signals
from rtseg.core.paths import atomic_write_text, check_paths
from rtseg.errors import InputError, OutputError
from rtseg.loading import resolve_model_path

MASK_NAMES = "[0-9]*.png"  # what MaskSink writes: 000042.png
FRAME_NAMES = "[0-9]*.jpg"  # what FramesSink writes: 000042.jpg
SNAPSHOT_NAMES = "rtseg_snapshot_*.png"


def source_paths(uri: str) -> list:
    """The files and folders an input URI reads, labelled by the option that gives them: a file
    (--video), a folder or a glob's matches and their folders (--frames); a camera, stream URL
    or lavfi graph reads none."""
    if uri.startswith("lavfi:") or "://" in uri or uri.isdigit() or uri.startswith("/dev/video"):
        return []
    if os.path.exists(uri) or not any(c in uri for c in "*?["):
        return [("--frames" if os.path.isdir(uri) else "--video", uri)]  # a missing one: its opener says
    matches = [Path(p) for p in glob.glob(uri, recursive=True)]
    return [("--frames", p) for p in [*matches, *sorted({p.parent for p in matches})]]


PATTERN_FIELDS = ("{index}", "{name}")


def source_name(uri: str) -> str:
    """A short file-name-safe name of a source: `lavfi:testsrc2=...` -> "testsrc2", `0` ->
    "camera0", `/dev/video2` -> "video2", `rtsp://cam7:554/live` -> "cam7_live", `a/b.mp4` -> "b"."""
    if uri.startswith("lavfi:"):
        name = re.split(r"[=:,;]", uri[len("lavfi:") :], maxsplit=1)[0]
    elif uri.isdigit():
        name = f"camera{uri}"
    elif "://" in uri:
        rest = uri.split("://", 1)[1].split("@")[-1]
        host, _, path = rest.partition("/")
        name = f"{host.split(':')[0]}_{path}" if path else host.split(":")[0]
    else:
        name = Path(uri).stem or uri
    return re.sub(r"[^A-Za-z0-9._-]+", "_", name).strip("._-")[:40] or "source"


def unique_names(uris: Sequence[str]) -> list[str]:
    """`source_name` of each; names given to several sources get `_<index>` appended."""
    names = [source_name(uri) for uri in uris]
    return [f"{n}_{i}" if names.count(n) > 1 else n for i, n in enumerate(names)]


def expand_pattern(pattern: Path | None, index: int, name: str) -> Path | None:
    """`out_{index}.mp4` -> `out_2.mp4`, `masks/{name}` -> `masks/cam7_live` (None stays None)."""
    if pattern is None:
        return None
    return Path(str(pattern).replace("{index}", str(index)).replace("{name}", name))


def check_patterns(cfg: RunConfig, count: int) -> None:
    """InputError when several sources would write to one path (no {index} / {name})."""
    for option, value in (
        ("--output", cfg.outputs.output),
        ("--masks", cfg.outputs.masks),
        ("--save-frames", cfg.outputs.save_frames),
    ):
        if value is not None and count > 1 and not any(f in str(value) for f in PATTERN_FIELDS):
            raise InputError(f"{option} {value}: with {count} sources, put {{index}} or {{name}} in the path")


def check_run_paths(cfg: RunConfig, uris: Sequence[str], model_path: Path) -> None:
    """Every source's input and every source's outputs (patterns expanded when there are several
    sources), checked together before anything is opened (rtseg.core.paths.check_paths): no
    output may destroy an input or another output."""
    from rtseg.core.package import package_files

    lanes, out = lane_names(uris), cfg.outputs
    check_paths(
        inputs=[
            *(p for uri in uris for p in source_paths(uri)),
            *(("--model", p) for p in package_files(model_path)),
        ],
        outputs=[
            ("--stats-json", out.stats_json),
            *(("--output", lane_path(out.output, i, name, len(uris))) for i, name in lanes),
        ],
        output_dirs=[
            *(("--masks", lane_path(out.masks, i, name, len(uris)), MASK_NAMES) for i, name in lanes),
            *(
                ("--save-frames", lane_path(out.save_frames, i, name, len(uris)), FRAME_NAMES)
                for i, name in lanes
            ),  # fmt: skip
            ("--snapshot-dir", out.snapshot_dir if out.show else None, SNAPSHOT_NAMES),
        ],
    )


def lane_names(uris: Sequence[str]) -> list[tuple[int, str]]:
    return list(enumerate(unique_names(uris)))


def lane_path(pattern: Path | None, index: int, name: str, count: int) -> Path | None:
    """A source's output path: the pattern expanded with several sources, as given with one."""
    return expand_pattern(pattern, index, name) if count > 1 else pattern


def preflight(cfg: RunConfig, uris: Sequence[str]) -> Path:
    """What is checked before anything is opened: the output patterns, every path
    (`check_run_paths`), the encoder, the display (a window that cannot open is one line, never
    Qt aborting the process). Returns the model path."""
    from rtseg.video.display import check_display
    from rtseg.video.sinks import check_encoder

    check_patterns(cfg, len(uris))
    model_path = resolve_model_path(cfg.engine.model, cfg.engine.backend, cfg.engine.device)
    check_run_paths(cfg, uris, model_path)
    out = cfg.outputs
    if out.show and not out.snapshot_dir.is_dir():
        raise OutputError(f"--snapshot-dir {out.snapshot_dir} does not exist")
    if out.output is not None:
        check_encoder(out.codec)
    if out.show:
        check_display()
    return model_path


def open_sinks(cfg: OutputConfig, fps: float, stack: contextlib.ExitStack) -> list:
    """Mp4Sink / MaskSink / FramesSink for the outputs `cfg` asks for; each checks its path now."""
    from rtseg.video import FramesSink, MaskSink, Mp4Sink

    sinks = []
    if cfg.output is not None:
        mp4 = Mp4Sink(cfg.output, fps=fps, codec=cfg.codec, preset=cfg.preset, crf=cfg.crf)
        sinks.append(stack.enter_context(mp4))
    if cfg.masks is not None:
        sinks.append(stack.enter_context(MaskSink(cfg.masks)))
    if cfg.save_frames is not None:
        sinks.append(stack.enter_context(FramesSink(cfg.save_frames)))
    return sinks


def write_stats_json(cfg: RunConfig, stats) -> None:
    """Write `stats.to_json()` to `cfg.outputs.stats_json` (when given) through a temporary file
    renamed over it; OutputError if it cannot."""
    if cfg.outputs.stats_json is not None:
        atomic_write_text(cfg.outputs.stats_json, json.dumps(stats.to_json(), indent=2) + "\n", durable=True)


def _say(line: str) -> None:
    """A many-source run's events (a source dropped, ended, failed): stderr."""
    print(line, file=sys.stderr, flush=True)


def _tell(line: str) -> None:
    """A one-source run's header: stdout."""
    print(line, file=sys.stdout, flush=True)


def _open_sources(cfg: RunConfig, uris: Sequence[str], stack, say) -> list[tuple[int, str, object]]:
    """(index, name, FrameSource) of every source that opens; with several, one that cannot is
    reported and dropped (InputError when none opens); with one, its InputError is raised."""
    from rtseg.video import open_source

    opened, first_error, read = [], None, cfg.input
    for index, name in lane_names(uris):
        try:
            source = stack.enter_context(
                open_source(
                    uris[index],
                    realtime=read.realtime,
                    fps=read.fps,
                    strict=read.strict,
                    decoder=read.decoder,
                )
            )
        except InputError as exc:
            if len(uris) == 1:
                raise
            say(f"rtseg: source {index} ({name}) cannot be opened, dropped: {exc}")
            first_error = first_error or exc
            continue
        opened.append((index, name, source))
    if not opened:
        raise InputError(f"none of the {len(uris)} sources could be opened (first: {first_error})")
    return opened


def open_run(
    cfg: RunConfig,
    stack: contextlib.ExitStack,
    sources: Sequence[str] | None = None,
    model=None,
    extra_sinks: Sequence = (),
    handle_signals: bool = True,
    say: Callable[[str], None] = _say,
):
    """Open the run `cfg` describes (sources, model, outputs, window; each closed by `stack`) and
    return the Pipeline to run: one lane per source of `sources` (default: `cfg.source_uri`).

    model: an open LoadedModel to use (the batch worker's, kept open between videos; the
    caller owns it); None: opened here from cfg's model, backend, device and threads, sized
    for a batch of every source. extra_sinks: FrameSinks added to the one-source lane (a
    progress counter, a NullSink). Nothing is checked here: `preflight` does that first."""
    from rtseg.pipeline import Lane, Pipeline, PipelineConfig
    from rtseg.video.sources import DEFAULT_FOLDER_FPS

    uris, out = list(sources or [cfg.source_uri]), cfg.outputs
    opened = _open_sources(cfg, uris, stack, say)
    if model is None:
        recorded = not any(source.live for _, _, source in opened)  # a live frame is wanted soonest
        model = open_engine(cfg.engine, batch=len(opened), throughput=recorded)
        stack.enter_context(model.backend)
    lanes = []
    for index, name, source in opened:
        paths = {key: lane_path(getattr(out, key), index, name, len(uris)) for key in LANE_OUTPUTS}
        sinks = open_sinks(replace(out, **paths), cfg.input.fps or source.fps or DEFAULT_FOLDER_FPS, stack)
        lanes.append(Lane(index, name if len(uris) > 1 else None, source, [*sinks, *extra_sinks]))
    display = None
    if out.show:
        from rtseg.video import WindowDisplay

        display = stack.enter_context(WindowDisplay("rtseg"))
    config = PipelineConfig(max_frames=cfg.input.max_frames, viz=cfg.drawing.viz(out.show),
                            progress=not out.quiet and len(uris) == 1, handle_signals=handle_signals,
                            snapshot_dir=out.snapshot_dir)  # fmt: skip
    events = say if not out.quiet and len(uris) > 1 else None  # a source dropped while others go on
    pipeline = Pipeline(lanes, model, config, display, on_event=events)
    if not out.quiet:
        _say_header(pipeline, uris, model, display is not None, say)
    return pipeline


LANE_OUTPUTS = ("output", "masks", "save_frames")


def open_engine(engine: EngineConfig, batch: int = 1, throughput: bool = False):
    """The LoadedModel `engine` names (rtseg.loading.open_model), sized for `batch`, tuned for
    `throughput` (recorded inputs, several frames in flight) or latency (live sources, one call
    at a time): what run, eval, the batch worker and the API open a model with. The caller
    closes its backend."""
    e = engine  # loading.open_model looked up at the call: a tool replacing it (a null backend) is seen
    precision = e.openvino_precision
    return loading.open_model(
        e.model, e.backend, e.threads, e.device, batch=batch, precision=precision, throughput=throughput
    )


def _say_header(pipeline, uris: Sequence[str], model, window: bool, say) -> None:
    where = model.backend.describe()
    if len(uris) > 1:
        say(f"rtseg: {len(pipeline.lanes)} sources -> {model.source.name} on {where}, "
            f"batches of up to {pipeline.max_batch()}")  # fmt: skip
    else:
        lane = pipeline.lanes[0]
        _tell(f"rtseg: {lane.source.description or uris[0]} -> {model.source.name} on {where}")
    if window:
        _tell("rtseg: window keys: q / Esc quit, space pause, m overlay / mask / side-by-side, "
            "+ / - alpha, s snapshot")  # fmt: skip


def execute(cfg: RunConfig, sources: Sequence[str] | None = None, say: Callable[[str], None] = _say):
    """Check every path, open sources, model and outputs (every check before a thread starts),
    run, write the stats JSON. sources: several URIs for a many-source run (default: one,
    `cfg.source_uri`). Returns the stats (one source: PipelineStats; several: MultiStats);
    raises PipelineInterrupted (a KeyboardInterrupt carrying the stats, after writing the stats
    JSON) on Ctrl-C / SIGTERM / SIGHUP, and SourceFailed (an InputError carrying the stats,
    after writing them) when the input failed mid-run.

    Until the pipeline starts, a signal stops at once (rtseg.core.signals); from then on it
    stops the run and never cuts the closing of the outputs or the stats JSON short, however
    many come."""
    from rtseg.pipeline import PipelineInterrupted, SourceFailed

    uris = list(sources or [cfg.source_uri])
    preflight(cfg, uris)
    with contextlib.ExitStack() as stack:
        pipeline = open_run(cfg, stack, uris, say=say)
        with signals.defer():
            try:
                stats = pipeline.run()
            except (PipelineInterrupted, SourceFailed) as stop:
                write_stats_json(cfg, stop.stats)
                raise
            write_stats_json(cfg, stats)
    return stats
