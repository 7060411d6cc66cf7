"""`run_batch(config) -> BatchReport`: an archive of videos through the model on Ray.

1. expand the inputs; load the manifest; skip what is done and unchanged (status skipped);
2. start the worker actors (a local Ray cluster, or the one at --address / RAY_ADDRESS);
3. hand out the videos; record each result in the manifest as it comes (atomic write);
4. return the report (summary, failures). Corrupt videos fail alone; a dead worker's video is
   tried again; nothing half-written ever carries a final output name.
"""

from __future__ import annotations

import json
import time
from dataclasses import replace
from pathlib import Path

from rtseg.batch.cluster import Dispatcher, ray_session, start_actors, stderr_log, worker_count
from rtseg.batch.config import BatchConfig, VideoOptions
from rtseg.batch.inputs import BatchInput, archive_root, expand, name_inputs
from rtseg.batch.manifest import Manifest, input_identity
from rtseg.batch.outputs import OutputPlan
from rtseg.batch.report import ArchiveProgress, BatchReport
from rtseg.batch.worker import failed_result
from rtseg.core.paths import atomic_write_text, require_file
from rtseg.errors import InputError, ModelError
from rtseg.video.base import natural_sort_key


def model_identity(model: Path) -> str:
    """What identifies the model's content: the package's onnx_sha256 (checked against the
    file), or a checkpoint's or engine's size and mtime. ModelError for something that is no model."""
    from rtseg.core.package import load_package
    from rtseg.loading import CHECKPOINT_SUFFIXES, ENGINE_SUFFIXES

    path = Path(model)
    if path.suffix in CHECKPOINT_SUFFIXES + ENGINE_SUFFIXES:  # used as given: its bytes identify it
        require_file(path, "model", ModelError)
        st = path.stat()
        return f"{path.suffix[1:]}:{st.st_size}:{st.st_mtime_ns}"
    return "onnx:" + load_package(path).meta.get("onnx_sha256", "")


def _entry(item: BatchInput, result: dict, identity: dict, settings: str) -> dict:
    entry = {"name": item.name, "input": str(item.path)}
    for key in ("status", "frames", "fps", "outputs", "error"):
        entry[key] = result.get(key)
    entry.update(identity=identity, settings=settings)
    for key in ("attempts", "worker", "wall_s", "warnings", "traceback"):
        if key in result:
            entry[key] = result[key]
    return entry


def archive_inputs(config: BatchConfig, out_dir: Path, manifest: Manifest) -> list[BatchInput]:
    """The inputs, named as the manifest named them before (rtseg.batch.inputs); the manifest's
    root widened to hold them."""
    found = expand(config.inputs, exclude=out_dir)
    root = archive_root(found, manifest.root)
    manifest.root = str(root)
    return name_inputs(found.videos, root, manifest.names_by_input())


def check_batch_paths(config: BatchConfig, model_files, report_json: Path | None) -> None:
    """Every input the run reads (videos, @lists, INPUT folders, the model's files) against every
    output it writes (--report-json, and anything under --out: the videos' outputs and the
    manifest), before anything runs (rtseg.core.paths.check_paths)."""
    from rtseg.core.paths import check_paths

    found = expand(config.inputs, exclude=Path(config.out_dir).resolve())
    check_paths(
        inputs=[
            *(("INPUT", p) for p in [*found.folders, *found.videos]),
            *(("@list", p) for p in found.lists),
            *(("--model", p) for p in model_files),
        ],
        outputs=[("--report-json", report_json)],
        output_dirs=[("--out", config.out_dir, "**")],
    )


def plan_jobs(config: BatchConfig, out_dir: Path, manifest: Manifest, report: BatchReport):
    """The inputs still to run [(item, identity)]; skipped and unreadable ones go to `report`."""
    settings = config.video.settings_key()
    jobs = []
    for item in archive_inputs(config, out_dir, manifest):
        try:
            identity = input_identity(item.path, config.hash_inputs)
        except InputError as exc:
            entry = _entry(item, failed_result(item.name, str(exc), 0), {}, settings)
            manifest.put(entry)
            report.entries.append(entry)
            continue
        plan = OutputPlan(out_dir, item.name, config.video.kinds)
        if manifest.is_done(item.name, identity, settings, plan.complete()):
            entry = {**manifest.entries[item.name], "status": "skipped", "input": str(item.path)}
            manifest.put(entry)
            report.entries.append(entry)
        else:
            jobs.append((item, identity))
    manifest.save()
    return jobs


def archive_options(kinds: tuple[str, ...], **options) -> VideoOptions:
    """`rtseg batch`'s VideoOptions from its flat run options (rtseg.cli.options): the model
    resolved as `rtseg run` resolves it (rtseg.loading.resolve_model_path), made absolute, and
    identified by its content (model_identity)."""
    from rtseg.loading import resolve_model_path

    options["model"] = resolve_model_path(options.get("model"), options.get("backend", "auto"),
                                          options.get("device", "auto")).resolve()  # fmt: skip
    return VideoOptions.of(model_identity(options["model"]), kinds, **options)


def run_batch(config: BatchConfig, log=stderr_log) -> BatchReport:
    """Run the archive (see the module doc). Every path is checked first (check_batch_paths: no
    output may destroy an input), then `config.report_json` is written at the end when given.
    InputError / ModelError / OutputError / BackendError for what stops the whole run (no
    inputs, no model, a path, no cluster); a video's own failure is in the report."""
    from rtseg.core.package import package_files
    from rtseg.video.sinks import prepare_output_folder

    check_batch_paths(config, package_files(config.video.engine.model), config.report_json)
    start = time.perf_counter()
    out_dir = prepare_output_folder(config.out_dir).resolve()
    config_out = replace(config, out_dir=out_dir)
    manifest = Manifest.load(out_dir)
    report = BatchReport(manifest.path)
    jobs = plan_jobs(config_out, out_dir, manifest, report)
    if jobs:
        _run_jobs(config_out, jobs, manifest, report, log)
    report.entries.sort(key=lambda e: natural_sort_key(e["name"]))
    report.wall_s = time.perf_counter() - start
    if config.report_json is not None:
        atomic_write_text(config.report_json, json.dumps(report.to_json(), indent=2) + "\n")
    return report


def _run_jobs(config: BatchConfig, jobs: list, manifest: Manifest, report: BatchReport, log) -> None:
    settings = config.video.settings_key()
    by_name = {item.name: (item, identity) for item, identity in jobs}
    progress = ArchiveProgress(len(jobs), enabled=config.progress)

    def on_result(result: dict) -> None:
        item, identity = by_name[result["name"]]
        entry = _entry(item, result, identity, settings)
        manifest.record(entry)
        report.entries.append(entry)
        progress.finished(entry)

    try:
        with ray_session(config, min(config.workers or 0, len(jobs))) as ray:
            count = worker_count(ray, config, len(jobs), log)
            started = time.perf_counter()
            actors = start_actors(ray, config, count)
            report.workers = count
            dispatcher = Dispatcher(ray, actors, config, on_result, progress.in_flight, log)
            dispatcher.run([(item.name, str(item.path)) for item, _ in jobs])
            report.processing_s = time.perf_counter() - started
    finally:
        progress.close()
