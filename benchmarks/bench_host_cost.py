"""Host cost per frame: what each stage costs alone, the machine's limit, and how close `rtseg run` gets.

For one video and one model package, in one run:
  1. every stage run alone over the same frames, one after the other (no overlap), timed in
     process CPU time (all threads: FFmpeg's, x264's and ONNX Runtime's included):
     decode, resize to the model, inference, upsample ids + overlay render, encode (H.264 MP4);
  2. the limit of a perfect pipeline: cores * 1000 / (summed CPU ms per frame);
  3. `rtseg run` on the video into an MP4 (a subprocess: PYTHONPATH is passed on, so pointing it
     at another checkout measures that code): its fps, its share of the limit, its CPU per frame;
  4. inference-only fps (the inference pass of 1, wall clock, batch 1) and e2e / inference;
  5. the host ceiling: the same `rtseg run` with a backend that costs nothing (it replays the
     class ids the model produced in 1, so drawing and encoding see real masks): what a GPU
     doing inference in ~1 ms would leave to the host.

    python benchmarks/bench_host_cost.py                           # the dashcam clip, 960x540
    python benchmarks/bench_host_cost.py --upscale 1920x1080       # the clip upscaled, 1080p
    PYTHONPATH=/path/to/old/checkout python benchmarks/bench_host_cost.py   # the old code

Results go to benchmarks/results/host_cost_<W>x<H>.json (`--json` elsewhere). Run it on an
otherwise idle machine; CPU times are less sensitive to load than fps, but not immune.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from rtseg.runtime.base import Backend

REPO = Path(__file__).resolve().parent.parent
DATA = Path(os.environ.get("RTSEG_DATA", REPO.parent / "shared" / "data"))
DEFAULT_VIDEO = DATA / "video" / "dashcam_highway_960x540.mp4"
FRAME_BUDGET_BYTES = 1_000_000_000  # decoded + rendered full-size frames held at once
STAGES = ("decode", "resize", "infer", "overlay", "encode")
STAGE_LABELS = {
    "decode": "decode (PyAV, threaded)",
    "resize": "resize to the model (+ colour conversion at the decoder)",
    "infer": "inference",
    "overlay": "upsample ids + overlay render",
    "encode": "encode (H.264 MP4, incl. colour conversion)",
}


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--video", type=Path, default=DEFAULT_VIDEO)
    parser.add_argument("--model", type=Path, default=None, help="default: what rtseg run picks")
    parser.add_argument("--threads", type=int, default=None, help="backend CPU threads (run's default)")
    parser.add_argument("--upscale", default=None, metavar="WxH", help="first make a WxH clip of the video")
    parser.add_argument("--frames", type=int, default=None, help="at most N frames (default: all that fit)")
    parser.add_argument("--repeat", type=int, default=1, help="passes per stage; the median is reported")
    parser.add_argument("--skip-runs", action="store_true", help="stage table only (no rtseg run)")
    parser.add_argument(
        "--encoder-sweep",
        default="",
        metavar="P1,P2",
        help="also encode the rendered frames with these x264 presets: CPU ms, bytes, Y PSNR",
    )
    parser.add_argument("--run-arg", action="append", default=[], help="extra rtseg run argument")
    parser.add_argument("--json", type=Path, default=None, help="default: results/host_cost_<W>x<H>.json")
    return parser.parse_args(argv)


def parse_size(text: str) -> tuple[int, int]:
    """ "1920x1080" (WxH, as video sizes are written) -> (1080, 1920) as (height, width)."""
    try:
        width, height = (int(v) for v in text.lower().split("x"))
    except ValueError:
        raise SystemExit(f"bench_host_cost: error: --upscale wants WxH, got {text!r}") from None
    return height, width


def upscale_clip(video: Path, size: tuple[int, int], folder: Path, limit: int) -> Path:
    """The first `limit` frames of `video` scaled to size = (height, width) (bicubic, libx264
    crf 16), same rate."""
    import av

    out = folder / f"{video.stem}_{size[1]}x{size[0]}.mp4"
    with av.open(str(video)) as src, av.open(str(out), "w") as dst:
        stream_in = src.streams.video[0]
        stream_in.thread_type = "AUTO"
        rate = stream_in.average_rate or 25
        stream = dst.add_stream("libx264", rate=rate, options={"crf": "16", "preset": "fast"})
        stream.height, stream.width, stream.pix_fmt = size[0], size[1], "yuv420p"
        for index, frame in enumerate(src.decode(stream_in)):
            if index == limit:
                break
            big = frame.reformat(width=size[1], height=size[0], format="yuv420p", interpolation="BICUBIC")
            big.pts = None
            for packet in stream.encode(big):
                dst.mux(packet)
        for packet in stream.encode():
            dst.mux(packet)
    return out


class Clock:
    """Process CPU seconds (every thread) and wall seconds of one pass."""

    def __enter__(self):
        self.cpu, self.wall = time.process_time(), time.perf_counter()
        return self

    def __exit__(self, *exc):
        self.cpu, self.wall = time.process_time() - self.cpu, time.perf_counter() - self.wall


def decode_pass(video: Path, limit: int) -> tuple[list, Clock]:
    """Decode up to `limit` frames the way the capture stage gets them (`read_frame`: as
    decoded, converted later; older rtseg: `read`, RGB arrays)."""
    from rtseg.video import open_source

    with open_source(str(video)) as source, Clock() as clock:
        read = getattr(source, "read_frame", source.read)
        frames = []
        while len(frames) < limit and (frame := read()) is not None:
            frames.append(frame)
    return frames, clock


def resize_pass(frames: list, size_hw: tuple[int, int]) -> tuple[np.ndarray, Clock]:
    """Make every model input into model-size buffers, as the capture stage does into its ring
    (from the decoder's picture in one swscale step; older rtseg: resize of the RGB array)."""
    from rtseg.pipeline.stages import resize_into

    inputs = np.zeros((len(frames), *size_hw, 3), np.uint8)
    with Clock() as clock:
        for frame, slot in zip(frames, inputs):
            if isinstance(frame, np.ndarray):
                resize_into(frame, slot)
            else:
                frame.model_input(slot)
    return inputs, clock


def infer_pass(backend, inputs: np.ndarray) -> tuple[np.ndarray, Clock]:
    """backend.infer on each model-size frame, batch 1 (after 3 untimed warm-up calls)."""
    for i in range(min(3, len(inputs))):
        backend.infer(inputs[i : i + 1])
    ids = []
    with Clock() as clock:
        for i in range(len(inputs)):
            ids.append(backend.infer(inputs[i : i + 1])[0])
    return np.stack(ids), clock


def overlay_pass(visualizer, frames: list, ids: np.ndarray) -> tuple[list, Clock]:
    """Upsample the ids to the frame's size and draw the overlay for an MP4 sink, as the overlay
    stage does (`render_for_sinks`: yuv420p where it can; older rtseg: RGB)."""
    from rtseg.core.frames import resize_ids
    from rtseg.pipeline import stages

    rendered = []
    with Clock() as clock:
        for frame, frame_ids in zip(frames, ids):
            size = frame.shape[:2] if isinstance(frame, np.ndarray) else frame.size  # (height, width)
            ids_full = resize_ids(frame_ids, size)
            if isinstance(frame, np.ndarray):
                rendered.append(visualizer.render(frame, ids_full))
            else:
                rendered.append(stages.render_for_sinks(visualizer, frame, ids_full, None, True))
    return rendered, clock


def encode_pass(rendered: list, fps: float, path: Path, preset: str | None = None) -> tuple[int, Clock]:
    """Encode the rendered frames with rtseg run's MP4 sink (its default settings, or `preset`),
    flush included."""
    from rtseg.video import Mp4Sink

    settings = {"preset": preset} if preset else {}
    with Clock() as clock:
        with Mp4Sink(path, fps=fps, **settings) as sink:
            for index, image in enumerate(rendered):
                sink.write(index, image, None)
    return path.stat().st_size, clock


def encoder_sweep(rendered: list, fps: float, folder: Path, presets: list[str]) -> list[dict]:
    """Per x264 preset (crf 23): CPU ms per frame, bytes, and Y PSNR of the video against the
    frames it was given (what the speed / size / quality trade-off of `--preset` is)."""
    rows = []
    for preset in presets:
        path = folder / f"sweep_{preset}.mp4"
        size, clock = encode_pass(rendered, fps, path, preset)
        rows.append(
            {
                "preset": preset,
                "cpu_ms_per_frame": round(1000 * clock.cpu / len(rendered), 3),
                "bytes": size,
                "y_psnr_db": round(_y_psnr(path, rendered), 2),
            }
        )
    return rows


def _y_psnr(path: Path, rendered: list) -> float:
    import av
    import cv2

    errors = []
    with av.open(str(path)) as container:
        for frame, given in zip(container.decode(video=0), rendered):
            if isinstance(given, np.ndarray):
                given_y = cv2.cvtColor(given, cv2.COLOR_RGB2YUV_I420)[: given.shape[0]]
            else:
                given_y = given.to_ndarray()[: given.height]
            got = frame.to_ndarray()[: frame.height, : given_y.shape[1]]
            errors.append(np.mean((got.astype(np.float64) - given_y[: got.shape[0]]) ** 2))
    mse = float(np.mean(errors))
    return 99.0 if mse == 0 else 10 * np.log10(255**2 / mse)


def median_pass(repeat: int, run):
    """Run `run()` -> (result, Clock) `repeat` times; the last result and the median CPU/wall."""
    cpus, walls = [], []
    for _ in range(max(1, repeat)):
        result, clock = run()
        cpus.append(clock.cpu)
        walls.append(clock.wall)
    return result, statistics.median(cpus), statistics.median(walls)


def stage_table(model, video: Path, limit: int, repeat: int, folder: Path, presets: list[str]) -> dict:
    """CPU ms per frame of each stage alone, inference-only fps, and the ids (for the replay)."""
    from rtseg.viz import Visualizer, VizConfig

    backend = model.backend
    frames, decode_cpu, _ = median_pass(repeat, lambda: decode_pass(video, limit))
    count = len(frames)
    inputs, resize_cpu, _ = median_pass(repeat, lambda: resize_pass(frames, backend.input_size))
    ids, infer_cpu, infer_wall = median_pass(repeat, lambda: infer_pass(backend, inputs))
    visualizer = Visualizer(VizConfig(hud=False), model.classes, model.palette)
    rendered, overlay_cpu, _ = median_pass(repeat, lambda: overlay_pass(visualizer, frames, ids))
    frames.clear()  # the decoded frames are no longer needed: free them before encoding
    fps = _video_fps(video)
    size, encode_cpu, _ = median_pass(repeat, lambda: encode_pass(rendered, fps, folder / "encode.mp4"))
    cpu = dict(zip(STAGES, (decode_cpu, resize_cpu, infer_cpu, overlay_cpu, encode_cpu)))
    first = rendered[0]
    height, width = first.shape[:2] if isinstance(first, np.ndarray) else (first.height, first.width)
    sweep = encoder_sweep(rendered, fps, folder, presets) if presets else []
    return {
        "encoder_sweep": sweep,
        "frames": count,
        "frame_size": [width, height],
        "model_size": list(backend.input_size[::-1]),
        "cpu_ms_per_frame": {name: round(1000 * s / count, 3) for name, s in cpu.items()},
        "inference_fps": round(count / infer_wall, 2),
        "encoded_bytes": size,
        "ids": ids,
    }


def _video_fps(video: Path) -> float:
    from rtseg.video import open_source

    with open_source(str(video)) as source:
        return source.fps or 25.0


def run_rtseg(video: Path, model: Path, frames: int, folder: Path, args, replay: Path | None) -> dict:
    """`rtseg run` on `video` into an MP4 in a subprocess (this script's --worker mode, which is
    rtseg's own command line run in-process); its stats, CPU per frame and output size."""
    name = "ceiling" if replay is not None else "pipeline"
    stats_path, cpu_path, out = (folder / f"{name}{ext}" for ext in (".json", ".cpu.json", ".mp4"))
    run_args = ["run", "--video", str(video), "--model", str(model), "--output", str(out)]
    run_args += ["--max-frames", str(frames), "--stats-json", str(stats_path), "--quiet"]
    if args.threads and replay is None:
        run_args += ["--threads", str(args.threads)]
    run_args += args.run_arg
    worker = [sys.executable, str(Path(__file__).resolve()), "--worker", str(cpu_path)]
    if replay is not None:
        worker += ["--replay", str(replay)]
    subprocess.run([*worker, "--", *run_args], check=True, env=dict(os.environ))
    stats = json.loads(stats_path.read_text())
    cpu_s = json.loads(cpu_path.read_text())["pipeline_cpu_s"]
    return {
        "fps": stats["fps"],
        "frames": stats["frames"],
        "cpu_ms_per_frame": round(1000 * cpu_s / max(stats["frames"], 1), 3),
        "output_bytes": out.stat().st_size if out.is_file() else None,
        "backend": stats.get("backend"),
        "stages_busy_ms": {n: s["busy_ms_mean"] for n, s in stats["stages"].items()},
    }


# ----- worker: rtseg's command line, with the pipeline's CPU time recorded ------------------
class ReplayBackend(Backend):
    """Costs nothing: returns the class ids a real model gave, frame after frame (cycling)."""

    name = "null"
    max_batch = 1

    def __init__(self, ids: np.ndarray, input_size: tuple[int, int], num_classes: int):
        self.ids, self.input_size, self.num_classes, self.calls = ids, tuple(input_size), num_classes, 0

    def _infer_impl(self, images: np.ndarray) -> np.ndarray:
        ids = self.ids[self.calls % len(self.ids)]
        self.calls += 1
        return ids[None]

    def describe(self) -> str:
        return "null backend (replays recorded ids; zero inference cost)"


def worker(cpu_path: Path, replay: Path | None, run_args: list[str]) -> int:
    import rtseg.pipeline as pipeline_pkg

    pipeline_cls = pipeline_pkg.Pipeline
    original_run, spent = pipeline_cls.run, {"pipeline_cpu_s": 0.0}

    def timed_run(self):
        start = time.process_time()
        try:
            return original_run(self)
        finally:
            spent["pipeline_cpu_s"] += time.process_time() - start

    pipeline_cls.run = timed_run
    if replay is not None:
        _patch_open_model(np.load(replay))
    from rtseg.cli import main

    try:
        main(run_args, prog_name="rtseg", standalone_mode=False)
    finally:
        cpu_path.write_text(json.dumps(spent))
    return 0


def _patch_open_model(ids: np.ndarray) -> None:
    """Make every `open_model` rtseg run may call return the real model's classes and palette
    with a ReplayBackend."""
    import importlib

    modules = []
    for name in ("rtseg.loading", "rtseg.runtime", "rtseg.cli.run", "rtseg.assembly"):
        try:
            modules.append(importlib.import_module(name))
        except ImportError:
            continue
    real = next(m.open_model for m in modules if hasattr(m, "open_model"))

    def open_null(path, *args, **kwargs):
        loaded = real(path, *args, **kwargs)
        backend = loaded.backend
        replay = ReplayBackend(ids, backend.input_size, getattr(backend, "num_classes", 0))
        backend.close()
        return dataclasses.replace(loaded, backend=replay)

    for module in modules:
        if hasattr(module, "open_model"):
            module.open_model = open_null


# ----- report ----------------------------------------------------------------------------------
def machine() -> dict:
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return {
        "python": platform.python_version(),
        "cpu": _cpu_model(),
        "cores": cores,
        "system": platform.platform(),
        "load_avg_1m": os.getloadavg()[0] if hasattr(os, "getloadavg") else None,
    }


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def summarise(result: dict) -> None:
    """Add the sums, the limit and the shares to `result` in place."""
    cpu = result["stages"]["cpu_ms_per_frame"]
    total = sum(cpu.values())
    cores = result["machine"]["cores"]
    result["cpu_ms_sum"] = round(total, 3)
    result["host_cpu_ms"] = round(total - cpu["infer"], 3)
    result["limit_fps"] = round(cores * 1000 / total, 2)
    pipe, ceiling = result.get("pipeline"), result.get("ceiling")
    if pipe:
        result["pipeline_share_of_limit"] = round(pipe["fps"] / result["limit_fps"], 3)
        result["pipeline_over_inference"] = round(pipe["fps"] / result["stages"]["inference_fps"], 3)
    if ceiling:
        host = total - cpu["infer"]
        result["ceiling_limit_fps"] = round(cores * 1000 / host, 2) if host > 0 else None


def print_report(result: dict) -> None:
    st, host = result["stages"], result["machine"]
    width, height = st["frame_size"]
    print(f"video:   {result['video']} ({st['frames']} frames, {width}x{height})")
    model_w, model_h = st["model_size"]
    print(f"model:   {result['model']} ({result['backend']}, input {model_w}x{model_h})")
    print(f"machine: {host['cpu']}, {host['cores']} cores, load average {host['load_avg_1m']:.2f} before")
    print(f"\n| stage | CPU ms / frame, {width}x{height} |\n|---|--:|")
    for name in STAGES:
        print(f"| {STAGE_LABELS[name]} | {st['cpu_ms_per_frame'][name]:.1f} |")
    print(f"| sum | {result['cpu_ms_sum']:.1f} |")
    print(f"\nhost CPU per frame (all but inference): {result['host_cpu_ms']:.1f} ms")
    print(f"limit: {host['cores']} * 1000 / {result['cpu_ms_sum']:.1f} = {result['limit_fps']:.1f} fps")
    print(f"inference only: {st['inference_fps']:.1f} fps (batch 1)")
    if st.get("encoder_sweep"):
        print("\n| x264 preset (crf 23) | CPU ms / frame | MB | Y PSNR dB |\n|---|--:|--:|--:|")
        for row in st["encoder_sweep"]:
            cells = (row["preset"], f"{row['cpu_ms_per_frame']:.1f}", f"{row['bytes'] / 1e6:.2f}")
            print(f"| {' | '.join(cells)} | {row['y_psnr_db']:.1f} |")
    pipe, ceiling = result.get("pipeline"), result.get("ceiling")
    if pipe:
        print(
            f"rtseg run: {pipe['fps']:.1f} fps = {result['pipeline_share_of_limit']:.2f} of the limit, "
            f"{result['pipeline_over_inference']:.2f} of inference only; "
            f"{pipe['cpu_ms_per_frame']:.1f} CPU ms/frame; MP4 {pipe['output_bytes']} bytes"
        )
    if ceiling:
        print(
            f"host ceiling (zero-cost backend): {ceiling['fps']:.1f} fps; "
            f"{ceiling['cpu_ms_per_frame']:.1f} CPU ms/frame (limit of the host stages alone: "
            f"{result['ceiling_limit_fps']} fps)"
        )


def frame_limit(video: Path, requested: int | None, size: tuple[int, int] | None) -> int:
    """`requested`, or as many frames as fit FRAME_BUDGET_BYTES at the frame size, at most all."""
    from rtseg.video import open_source

    with open_source(str(video)) as source:
        height, width = size or source.frame_size or (1080, 1920)
        count = source.frame_count or 10**9
    fit = max(8, FRAME_BUDGET_BYTES // (2 * width * height * 3))
    return min(count, requested or fit)


def run(args: argparse.Namespace) -> dict:
    try:
        from rtseg.core.package import default_package_for
        from rtseg.loading import open_model
    except ImportError:  # an rtseg from before the layer moves (PYTHONPATH at an old checkout)
        from rtseg.package import default_package_for

        from rtseg.runtime import open_model

    model_path = (args.model or default_package_for("onnxruntime")).resolve()
    with tempfile.TemporaryDirectory(prefix="rtseg-host-cost-") as tmp:
        folder, video = Path(tmp), args.video.resolve()
        size = parse_size(args.upscale) if args.upscale else None
        limit = frame_limit(video, args.frames, size)
        if size is not None:
            video = upscale_clip(video, size, folder, limit)
        # names, not paths: a result must not reveal where it was measured
        result = {"video": Path(args.video).name, "upscale": args.upscale, "model": Path(model_path).name}
        result["machine"] = machine()
        model = open_model(model_path, backend="onnxruntime", threads=args.threads)
        with model.backend:
            result["backend"] = model.backend.describe()
            presets = [p for p in args.encoder_sweep.split(",") if p]
            stages = stage_table(model, video, limit, args.repeat, folder, presets)
        ids = stages.pop("ids")
        result["stages"] = stages
        if not args.skip_runs:
            np.save(folder / "ids.npy", ids)
            frames = stages["frames"]
            result["pipeline"] = run_rtseg(video, model_path, frames, folder, args, None)
            result["ceiling"] = run_rtseg(video, model_path, frames, folder, args, folder / "ids.npy")
        result["code"] = "PYTHONPATH checkout" if os.environ.get("PYTHONPATH") else "installed rtseg"
    summarise(result)
    return result


def main(argv=None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["--worker"]:
        split = argv.index("--")
        replay = Path(argv[argv.index("--replay") + 1]) if "--replay" in argv[:split] else None
        return worker(Path(argv[1]), replay, argv[split + 1 :])
    args = parse_args(argv)
    from rtseg.errors import RtsegError

    try:
        result = run(args)
    except (RtsegError, subprocess.CalledProcessError) as exc:
        print(f"bench_host_cost: error: {exc}", file=sys.stderr)
        return 1
    print_report(result)
    width, height = result["stages"]["frame_size"]
    out = args.json or REPO / "benchmarks" / "results" / f"host_cost_{width}x{height}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2) + "\n")
    print(f"\nwritten: {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
