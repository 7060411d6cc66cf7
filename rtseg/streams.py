"""`rtseg run --source A --source B ...`: many live sources through one model, batched.

`execute_streams(cfg, sources)` opens every source, the model (once, sized for a batch of all
sources) and each source's outputs (`--output` / `--masks` / `--save-frames` as patterns with
`{index}` or `{name}`), then runs a Pipeline with one lane per source and writes the stats JSON. A source that
cannot be opened, fails or ends is reported and dropped; the others go on.
"""

from __future__ import annotations

import contextlib
import re
import sys
from collections.abc import Callable, Sequence
from dataclasses import replace
from pathlib import Path

from rtseg.api import (
    FRAME_NAMES,
    MASK_NAMES,
    SNAPSHOT_NAMES,
    RunConfig,
    open_sinks,
    preflight,
    source_paths,
    write_stats_json,
)
from rtseg.core import signals
from rtseg.core.paths import check_paths
from rtseg.errors import InputError

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
        ("--output", cfg.output),
        ("--masks", cfg.masks),
        ("--save-frames", cfg.save_frames),
    ):
        if value is not None and count > 1 and not any(f in str(value) for f in PATTERN_FIELDS):
            raise InputError(f"{option} {value}: with {count} sources, put {{index}} or {{name}} in the path")


def check_stream_paths(cfg: RunConfig, uris: Sequence[str], model_path: Path) -> None:
    """Every source's input and every source's outputs (patterns expanded), checked together
    before anything is opened (rtseg.core.paths.check_paths)."""
    from rtseg.core.package import package_files

    lanes = list(enumerate(unique_names(uris)))
    check_paths(
        inputs=[
            *(p for uri in uris for p in source_paths(uri)),
            *(("--model", p) for p in package_files(model_path)),
        ],
        outputs=[
            ("--stats-json", cfg.stats_json),
            *(("--output", expand_pattern(cfg.output, i, name)) for i, name in lanes),
        ],
        output_dirs=[
            *(("--masks", expand_pattern(cfg.masks, i, name), MASK_NAMES) for i, name in lanes),
            *(("--save-frames", expand_pattern(cfg.save_frames, i, name), FRAME_NAMES) for i, name in lanes),
            ("--snapshot-dir", cfg.snapshot_dir if cfg.show else None, SNAPSHOT_NAMES),
        ],
    )


def _open_sources(cfg: RunConfig, uris: Sequence[str], stack, say) -> list[tuple[int, str, object]]:
    from rtseg.video import open_source

    opened, first_error = [], None
    for index, (uri, name) in enumerate(zip(uris, unique_names(uris))):
        try:
            source = stack.enter_context(
                open_source(uri, realtime=cfg.realtime, fps=cfg.fps, strict=cfg.strict)
            )
        except InputError as exc:
            say(f"rtseg: source {index} ({name}) cannot be opened, dropped: {exc}")
            first_error = first_error or exc
            continue
        opened.append((index, name, source))
    if not opened:
        raise InputError(f"none of the {len(uris)} sources could be opened (first: {first_error})")
    return opened


def _say(line: str) -> None:
    print(line, file=sys.stderr, flush=True)


def execute_streams(cfg: RunConfig, sources: Sequence[str], say: Callable[[str], None] = _say):
    """Run every source in `sources` through one model, batched (see the module doc).

    cfg: the run's options (`cfg.source_uri` is ignored); output paths are patterns. Returns
    MultiStats; raises PipelineInterrupted (with the MultiStats) on Ctrl-C / SIGTERM.
    """
    from rtseg.pipeline import Lane, Pipeline, PipelineConfig
    from rtseg.segmenter import open_loaded_model
    from rtseg.video.sources import DEFAULT_FOLDER_FPS
    from rtseg.viz import VizConfig

    check_patterns(cfg, len(sources))
    model_path = preflight(cfg, lambda cfg, model_path: check_stream_paths(cfg, sources, model_path))
    with contextlib.ExitStack() as stack:
        opened = _open_sources(cfg, sources, stack, say)
        model = open_loaded_model(model_path, cfg.backend, cfg.device, cfg.threads, batch=len(opened))
        stack.enter_context(model.backend)
        lanes = []
        for index, name, source in opened:
            lane_cfg = replace(
                cfg,
                output=expand_pattern(cfg.output, index, name),
                masks=expand_pattern(cfg.masks, index, name),
                save_frames=expand_pattern(cfg.save_frames, index, name),
            )
            sinks = open_sinks(lane_cfg, cfg.fps or source.fps or DEFAULT_FOLDER_FPS, stack)
            lanes.append(Lane(index, name, source, sinks))
        display = None
        if cfg.show:
            from rtseg.video import WindowDisplay

            display = stack.enter_context(WindowDisplay("rtseg"))
        hud = cfg.show if cfg.hud is None else cfg.hud
        viz = VizConfig(mode=cfg.mode, alpha=cfg.alpha, legend=cfg.legend, hud=hud)
        config = PipelineConfig(max_frames=cfg.max_frames, viz=viz, snapshot_dir=cfg.snapshot_dir)
        pipeline = Pipeline(lanes, model, config, display, on_event=say if not cfg.quiet else None)
        if not cfg.quiet:
            say(f"rtseg: {len(lanes)} sources -> {model_path.name} on {model.backend.describe()}, "
                f"batches of up to {pipeline.max_batch()}")  # fmt: skip
        with signals.defer():  # from here a signal stops the run, never the writing of its outputs
            try:
                stats = pipeline.run()
            except KeyboardInterrupt as stop:  # PipelineInterrupted: the stats JSON all the same
                if getattr(stop, "stats", None) is not None:
                    write_stats_json(cfg, stop.stats)
                raise
            write_stats_json(cfg, stats)
    return stats
