"""The batch worker: loads the model once, runs the threaded `rtseg run` pipeline per video.

`VideoWorker` is a plain class; rtseg/batch/cluster.py makes it a Ray actor (so it also runs,
and is tested, without Ray). `segment_video` is one video through the same `RunConfig` and
`open_run` as `rtseg run`, with the model kept open between videos: frame order and stage
overlap are those of a single run, and its outputs equal `rtseg run --output ... --masks ...`
on the same clip.
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
import threading
import time
import traceback
from dataclasses import replace
from pathlib import Path

from rtseg.batch.config import VideoOptions
from rtseg.batch.outputs import OutputPlan
from rtseg.errors import RtsegError
from rtseg.video.sinks import FrameSink

KILLED_EXIT_STATUS = 70  # the test hook's exit status (EX_SOFTWARE)


class ProgressSink(FrameSink):
    """A sink that counts the frames written (read by the driver's progress bar).

    kill_at_frame: test hook, `os._exit` while frame number `kill_at_frame` (1-based count) is
    being written: a worker dying mid-video, with outputs half-written.
    """

    wants_rendered = False  # counts only: the pipeline draws for the other sinks as it would

    def __init__(self, on_frame, kill_at_frame: int | None = None):
        self.on_frame = on_frame
        self.kill_at_frame = kill_at_frame
        self.frames_written = 0

    def _write_impl(self, index: int, rendered, ids) -> None:
        self.frames_written += 1
        self.on_frame(self.frames_written)
        if self.kill_at_frame is not None and self.frames_written >= self.kill_at_frame:
            os._exit(KILLED_EXIT_STATUS)


def run_config(path: Path, plan: OutputPlan, options: VideoOptions):
    """The `rtseg run` configuration of one video: its outputs at the plan's partial paths."""
    from rtseg.assembly import RunConfig

    outputs = replace(
        options.outputs,
        output=plan.partial("mp4") if "mp4" in plan.kinds else None,
        masks=plan.partial("masks") if "masks" in plan.kinds else None,
        quiet=True,
    )
    drawing = replace(options.drawing, hud=False)
    return RunConfig(str(path), engine=options.engine, input=options.input, outputs=outputs, drawing=drawing)


def segment_video(model, path: Path, plan: OutputPlan, options: VideoOptions, extra_sinks=()):
    """Segment every frame of the video `path` with the open `model` into `plan`'s outputs: the
    run `rtseg run` opens (rtseg.assembly.open_run), handed the worker's open model.

    Outputs are written under their partial names and renamed once all are complete. Returns
    the PipelineStats. Raises RtsegError for a corrupt or unreadable video; its outputs (partial
    and any earlier final ones) are removed then.
    """
    from rtseg.assembly import open_run

    plan.prepare()
    try:
        with contextlib.ExitStack() as stack:
            pipeline = open_run(run_config(path, plan, options), stack, model=model, extra_sinks=extra_sinks,
                                handle_signals=False)  # fmt: skip
            stats = pipeline.run()
        if "stats" in plan.kinds:
            plan.partial("stats").write_text(json.dumps(stats.to_json(), indent=2) + "\n")
        plan.commit()
    except BaseException:
        plan.clear()
        raise
    return stats


class VideoWorker:
    """One worker of the archive (a Ray actor in a batch run): the model, opened once.

    Calls: `ready()` opens the model (if not yet) and says where it runs; `process(name, path,
    attempt, kill_at_frame)` segments one video and returns its result dict (never raises for
    a bad video: the error is in the result); `progress()` -> (name, frames written so far).
    """

    def __init__(self, options: VideoOptions, out_dir: str):
        self.options = options
        self.out_dir = Path(out_dir)
        self._model = None
        self._lock = threading.Lock()  # one video at a time; progress() reads without it
        self._current: tuple[str | None, int] = (None, 0)

    def _open_model(self):
        if self._model is None:
            from rtseg.assembly import open_engine

            model = open_engine(self.options.engine, throughput=True)  # recorded files only
            model.backend.__enter__()
            self._model = model
        return self._model

    def describe(self) -> str:
        backend = self._model.backend.describe() if self._model is not None else "no model"
        return f"{backend} on {socket.gethostname()} pid {os.getpid()}"

    def ready(self) -> dict:
        """{"worker": description} once the model is open, or {"error": one line}."""
        try:
            with self._lock:
                self._open_model()
        except RtsegError as exc:
            return {"error": str(exc), "worker": self.describe()}
        return {"worker": self.describe()}

    def ping(self) -> bool:
        """Answers once the actor runs (placed on a node): the driver's bound on placement."""
        return True

    def progress(self) -> tuple[str | None, int]:
        return self._current

    def process(self, name: str, path: str, attempt: int = 1, kill_at_frame: int | None = None) -> dict:
        """Segment `path` into `out_dir/name/`; the result dict the manifest records."""
        with self._lock:
            start = time.perf_counter()
            self._current = (name, 0)
            plan = OutputPlan(self.out_dir, name, self.options.kinds)
            hook = kill_at_frame if attempt == 1 else None
            counter = ProgressSink(lambda n: setattr(self, "_current", (name, n)), hook)
            try:
                stats = segment_video(self._open_model(), Path(path), plan, self.options, [counter])
            except RtsegError as exc:
                result = failed_result(name, str(exc), attempt)
            except Exception as exc:  # noqa: BLE001 - fault isolation: a bug on one video ends only it
                result = failed_result(name, _one_line(exc), attempt)
                result["traceback"] = traceback.format_exc()
            else:
                result = failed_result(name, None, attempt)
                result.update(status="done", frames=stats.frames, fps=round(stats.fps, 3))
                result["outputs"] = plan.relative_outputs()
                if stats.warnings:  # e.g. a file cut short: done, with what it held
                    result["warnings"] = stats.warnings
            result["worker"] = self.describe()
            result["wall_s"] = round(time.perf_counter() - start, 3)
            self._current = (None, 0)
            return result

    def close(self) -> None:
        if self._model is not None:
            self._model.backend.close()
            self._model = None


def failed_result(name: str, error: str | None, attempts: int) -> dict:
    """The result dict of a video that failed with `error` (a one-line message)."""
    return {
        "name": name,
        "status": "failed",
        "frames": 0,
        "fps": 0.0,
        "outputs": [],
        "error": error,
        "attempts": attempts,
        "worker": "",
    }


def _one_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0] if text else ''}".rstrip(": ")
