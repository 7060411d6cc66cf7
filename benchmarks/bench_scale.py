"""Scale-out figures: an archive through `rtseg batch` (1, 2 workers) against a plain loop of
`rtseg run`, and 1, 2, 4 live sources batched through one model.

Archive: `--clips` generated clips (lavfi testsrc2, `--size`, `--frames` each) are segmented
into annotated MP4s three ways, each in a subprocess so PYTHONPATH picks the code measured:
  - a shell-style loop of `rtseg run --video CLIP --output OUT.mp4` (the model loaded per clip);
  - `rtseg batch CLIPS --out DIR --workers W --cpus-per-worker CORES/W` for each W in
    `--workers` (a fresh local Ray cluster each time; the model loaded once per worker).
  Reported: frames/s over the whole command's wall clock (cluster start included) and, for
  batch, over its processing time (workers started to the last video).
Streams: for each N in `--streams`, N lavfi testsrc2 sources (`--stream-size`, `--stream-rate`,
  live and paced like cameras) through `rtseg.api.execute` for `--stream-seconds`:
  per-stream fps, capture->sink latency and drops, and the histogram of batch sizes formed.

    python benchmarks/bench_scale.py                              # the bundled model
    python benchmarks/bench_scale.py --clips 2 --frames 10 --size 160x120 --workers 1,2 \\
        --streams 1,2 --stream-seconds 1 --json /tmp/scale.json  # a quick check that it runs

Results go to benchmarks/results/scale.json (`--json` elsewhere). Timings mean something only
on an otherwise idle machine.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", type=Path, default=None, help="default: what rtseg run picks")
    parser.add_argument("--clips", type=int, default=8)
    parser.add_argument("--frames", type=int, default=100, help="frames per clip")
    parser.add_argument("--size", default="640x360", metavar="WxH")
    parser.add_argument("--workers", default="1,2", help="worker counts for rtseg batch")
    parser.add_argument("--streams", default="1,2,4", help="numbers of live sources")
    parser.add_argument("--stream-size", default="640x360", metavar="WxH")
    parser.add_argument("--stream-rate", type=int, default=25, help="frames/s of each live source")
    parser.add_argument("--stream-seconds", type=float, default=10.0)
    parser.add_argument("--skip-archive", action="store_true")
    parser.add_argument("--skip-streams", action="store_true")
    parser.add_argument("--json", type=Path, default=REPO / "benchmarks" / "results" / "scale.json")
    return parser.parse_args(argv)


def make_clips(folder: Path, count: int, frames: int, size: str) -> list[Path]:
    """`count` H.264 MP4 clips of `frames` frames (lavfi testsrc2, a different start each)."""
    import av

    width, height = (int(v) for v in size.split("x"))
    clips = []
    for i in range(count):
        path = folder / f"day{i % 2}" / f"clip{i:03d}.mp4"
        path.parent.mkdir(parents=True, exist_ok=True)
        graph = f"testsrc2=size={width}x{height}:rate=25,trim=start_frame={i * 7}"
        with av.open(graph, format="lavfi") as src, av.open(str(path), "w") as dst:
            stream = dst.add_stream("libx264", rate=25)
            stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
            for n, frame in enumerate(src.decode(video=0)):
                if n >= frames:
                    break
                frame.pts = None
                for packet in stream.encode(frame.reformat(format="yuv420p")):
                    dst.mux(packet)
            for packet in stream.encode():
                dst.mux(packet)
        clips.append(path)
    return clips


def rtseg_cmd(*args) -> list[str]:
    return [sys.executable, "-m", "rtseg", *map(str, args)]


def timed(cmd: list[str]) -> float:
    start = time.perf_counter()
    subprocess.run(cmd, check=True, env={**os.environ, "PYTHONPATH": os.environ.get("PYTHONPATH", str(REPO))})
    return time.perf_counter() - start


def model_args(args) -> list:
    return ["--model", args.model] if args.model else []


def bench_archive(args, work: Path) -> dict:
    clips = make_clips(work / "clips", args.clips, args.frames, args.size)
    total = args.clips * args.frames
    loop_s = 0.0
    for i, clip in enumerate(clips):
        loop_s += timed(
            rtseg_cmd("run", "--video", clip, "--output", work / f"loop{i}.mp4", "--quiet", *model_args(args))
        )
    results = {
        "clips": args.clips,
        "frames_per_clip": args.frames,
        "size": args.size,
        "run_loop": {"wall_s": round(loop_s, 3), "fps": round(total / loop_s, 2)},
        "batch": [],
    }
    cores = os.cpu_count() or 1
    for workers in (int(w) for w in args.workers.split(",")):
        out, report_file = work / f"batch{workers}", work / f"batch{workers}.json"
        wall = timed(
            rtseg_cmd(
                "batch",
                work / "clips",
                "--out",
                out,
                "--workers",
                workers,
                "--cpus-per-worker",
                max(cores / workers, 0.01),
                "--output-kind",
                "mp4",
                "--report-json",
                report_file,
                "--quiet",
                *model_args(args),
            )
        )
        report = json.loads(report_file.read_text())
        assert report["counts"]["done"] == args.clips, report
        results["batch"].append(
            {
                "workers": workers,
                "wall_s": round(wall, 3),
                "fps_wall": round(total / wall, 2),
                "processing_s": report["processing_s"],
                "fps_processing": report["fps"],
            }
        )
    return results


def bench_streams(args) -> list[dict]:
    from rtseg.api import RunConfig, execute

    results = []
    frames = max(1, round(args.stream_seconds * args.stream_rate))
    for count in (int(n) for n in args.streams.split(",")):
        uri = f"lavfi:testsrc2=size={args.stream_size}:rate={args.stream_rate}"
        cfg = RunConfig.of(uri, model=args.model, max_frames=frames, quiet=True)
        stats = execute(cfg, [uri] * count, say=lambda line: None)
        data = stats.to_json()
        streams = [
            {k: s[k] for k in ("name", "frames", "frames_read", "dropped", "fps", "latency_ms")}
            for s in data["sources"]
        ]
        results.append(
            {"sources": count, "fps_all": data["fps"], "batches": data["batches"], "streams": streams}
        )
    return results


def print_tables(result: dict) -> None:
    archive = result.get("archive")
    if archive:
        print(f"archive: {archive['clips']} clips x {archive['frames_per_clip']} frames, {archive['size']}")
        print(f"  rtseg run loop      {archive['run_loop']['fps']:8.2f} frames/s")
        for b in archive["batch"]:
            print(
                f"  rtseg batch x{b['workers']:<2}     {b['fps_wall']:8.2f} frames/s "
                f"({b['fps_processing']:.2f} over processing)"
            )
    for run in result.get("streams", []):
        hist = ", ".join(f"{k}: {v}" for k, v in run["batches"]["histogram"].items())
        print(f"streams x{run['sources']}: {run['fps_all']:.2f} fps in all; batches {hist}")
        for s in run["streams"]:
            print(
                f"  {s['name']:<14} {s['fps']:7.2f} fps  p50 {s['latency_ms']['p50']:7.1f} ms  "
                f"p95 {s['latency_ms']['p95']:7.1f} ms  dropped {s['dropped']}/{s['frames_read']}"
            )


def main(argv=None) -> int:
    args = parse_args(argv)
    result = {
        "machine": {
            "cpus": os.cpu_count(),
            "platform": platform.platform(),
            "python": platform.python_version(),
        },
        "when": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "model": str(args.model) if args.model else "default",
    }
    with tempfile.TemporaryDirectory(prefix="rtseg-bench-scale-") as tmp:
        if not args.skip_archive:
            result["archive"] = bench_archive(args, Path(tmp))
    if not args.skip_streams:
        result["streams"] = bench_streams(args)
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(result, indent=2) + "\n")
    print_tables(result)
    print(f"results: {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
