#!/usr/bin/env python
"""A/B of `rtseg run` end to end: two configurations run in turn (A B A B ...) on one clip into
an MP4, each in a fresh process, and the ratio of their fps taken pair by pair, so a drift in
the machine's speed during the call moves both alike. The fps is the run's own (`--stats-json`:
frames over the wall time from the first frame read to the last frame written).

    python benchmarks/ab_run.py --a "--model engines/camvid_effl1_fpn_int8cpu.onnx --backend onnxruntime" \\
        --b "" [--a-path OTHER_CHECKOUT] [--b-path ...] [--pairs 5] [--json OUT.json]

`--a` / `--b`: extra `rtseg run` options of each side ("" for the defaults); `--a-path` /
`--b-path`: a checkout whose rtseg and bundled models that side runs (PYTHONPATH,
RTSEG_ENGINES), to compare two versions of the code on the same options. Prints one JSON
object: per side the fps of every run and the median, the median of the pair ratios A/B, the
engine each side ran on, and the machine.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shlex
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
DATA = Path(os.environ.get("RTSEG_DATA", REPO.parent / "shared" / "data"))


def run_once(options: str, code: Path | None, video: Path, work: Path) -> dict:
    """One `rtseg run` into `work`; its stats JSON (fps, backend, ...)."""
    stats = work / "stats.json"
    command = [sys.executable, "-m", "rtseg", "run", "--video", str(video), "--output", str(work / "out.mp4")]
    command += ["--stats-json", str(stats), "--quiet", *shlex.split(options)]
    env = dict(os.environ)
    if code is not None:  # that checkout's code and its bundled models (not the installed rtseg's)
        env["PYTHONPATH"] = str(code)
        env["RTSEG_ENGINES"] = str(Path(code) / "engines")
    subprocess.run(command, check=True, env=env, cwd=code or REPO, stdout=subprocess.DEVNULL)
    return json.loads(stats.read_text())


def checkout_name(path: Path) -> str:
    """A checkout as its commit ("10d2014"), not its path (results are committed and must not
    record where a folder was); its folder name when it is no git checkout."""
    found = subprocess.run(
        ["git", "-C", str(path), "rev-parse", "--short", "HEAD"], capture_output=True, text=True
    )
    return found.stdout.strip() if found.returncode == 0 else Path(path).name


def portable_options(options: str) -> str:
    """`options` with each absolute path cut to its file name: a committed result names no
    folder of the machine it was measured on."""

    def cut(word: str) -> str:
        flag, equals, value = word.rpartition("=") if word.startswith("--") else ("", "", word)
        return flag + equals + (Path(value).name if Path(value).is_absolute() else value)

    return shlex.join(cut(w) for w in shlex.split(options))


def describe(side: str, options: str, code: Path | None, engine: str, fps: list[float]) -> dict:
    """One side's report: its options (absolute paths cut to file names), code, engine and fps."""
    code_name = checkout_name(code or REPO)
    return {
        "options": portable_options(options),
        "code": code_name,
        "engine": engine,
        "fps": fps,
        "median_fps": statistics.median(fps),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--a", default="", help="rtseg run options of side A")
    parser.add_argument("--b", default="", help="rtseg run options of side B")
    parser.add_argument("--a-path", type=Path, help="checkout whose rtseg side A runs")
    parser.add_argument("--b-path", type=Path, help="checkout whose rtseg side B runs")
    parser.add_argument("--video", type=Path, default=DATA / "video" / "dashcam_highway_960x540.mp4")
    parser.add_argument("--pairs", type=int, default=5)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    sides = {"A": (args.a, args.a_path), "B": (args.b, args.b_path)}
    fps = {"A": [], "B": []}
    engines = {}
    with tempfile.TemporaryDirectory() as tmp:
        for options, code in sides.values():  # warm-up: caches, probes, page cache
            run_once(options, code, args.video, Path(tmp))
        for _ in range(args.pairs):
            for side, (options, code) in sides.items():
                stats = run_once(options, code, args.video, Path(tmp))
                fps[side].append(stats["fps"])
                engines[side] = stats.get("backend")
    ratios = [a / b for a, b in zip(fps["A"], fps["B"])]
    report = {
        "video": args.video.name,
        "machine": platform.processor() or platform.machine(),
        "cores": os.cpu_count(),
        **{side: describe(side, *sides[side], engines[side], fps[side]) for side in sides},
        "ratio_a_over_b": statistics.median(ratios),
    }
    print(json.dumps(report, indent=2))
    if args.json:
        args.json.write_text(json.dumps(report, indent=2) + "\n")


if __name__ == "__main__":
    main()
