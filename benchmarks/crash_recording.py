"""What a SIGKILL at a random moment leaves of a recording: frames kept vs frames written.

Each trial starts a real `python -m rtseg run --realtime` (a file paced like a camera) writing
an MP4 and mask PNGs, kills it with SIGKILL at a random moment, then counts
  written: mask PNGs on disk (each is renamed into place once complete, right after the same
           frame went to the MP4 sink), i.e. frames the sinks had taken;
  kept:    frames a player decodes from the recording the kill left (`OUT.partial.mp4`).
A count, not a timing: it runs on a busy machine as well. The last line is the total.

    python benchmarks/crash_recording.py --trials 20 [--model PKG.onnx] [--video CLIP]
"""

from __future__ import annotations

import argparse
import os
import random
import signal
import subprocess
import sys
import tempfile
import time
from fractions import Fraction
from pathlib import Path

import av
import numpy as np

from rtseg.errors import RtsegError
from rtseg.video import open_source

REPO = Path(__file__).resolve().parent.parent


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--trials", type=int, default=20)
    parser.add_argument("--model", type=Path, help="model package (default: the bundled one)")
    parser.add_argument("--video", type=Path, help="clip to run (default: a generated 30 s one)")
    parser.add_argument("--fps", type=int, default=25, help="frame rate of the generated clip")
    parser.add_argument("--min-s", type=float, default=0.5, help="earliest kill after the first frame")
    parser.add_argument("--max-s", type=float, default=6.0, help="latest kill after the first frame")
    parser.add_argument("--seed", type=int, default=0)
    return parser.parse_args(argv)


def generate_clip(path: Path, fps: int, seconds: int = 30, size=(240, 320)) -> Path:
    """A moving-gradient clip with noise (so fragments have a realistic size), H.264."""
    height, width = size
    yy, xx = np.mgrid[0:height, 0:width].astype(np.float32)
    rng = np.random.default_rng(0)
    with av.open(str(path), "w") as container:
        stream = container.add_stream("libx264", rate=Fraction(fps))
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        for i in range(fps * seconds):
            base = np.stack([(xx + 3 * i) % width / width, yy / height, (xx + yy) / (width + height)], -1)
            frame = (base * 220 + rng.integers(0, 30, (height, width, 1))).astype(np.uint8)
            for packet in stream.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    return path


def decodable_frames(path: Path) -> int:
    """Frames rtseg (as a player) decodes from `path`, reading through damage; 0 if it does not open."""
    try:
        with open_source(str(path)) as source:
            return sum(1 for _ in source)
    except RtsegError:
        return 0


def complete_masks(folder: Path) -> int:
    return sum(1 for name in os.listdir(folder) if name.endswith(".png")) if folder.is_dir() else 0


def trial(clip: Path, model: Path | None, folder: Path, delay_s: float) -> tuple[int, int]:
    """(written, kept) for one run killed `delay_s` after its first mask appeared."""
    out, masks = folder / "out.mp4", folder / "masks"
    cmd = [sys.executable, "-m", "rtseg", "run", "--video", str(clip), "--realtime", "--quiet"]
    cmd += ["--output", str(out), "--masks", str(masks), "--threads", "1"]
    if model is not None:
        cmd += ["--model", str(model)]
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 120
        while complete_masks(masks) == 0 and proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.02)
        if proc.poll() is not None:
            raise SystemExit(f"rtseg run ended before the kill: {proc.stderr.read().decode()}")
        time.sleep(delay_s)
        proc.send_signal(signal.SIGKILL)
        proc.wait(30)
    finally:
        if proc.poll() is None:
            proc.kill()
    return complete_masks(masks), decodable_frames(folder / "out.partial.mp4")


def main(argv=None) -> None:
    args = parse_args(argv)
    rng = random.Random(args.seed)
    with tempfile.TemporaryDirectory(prefix="rtseg-crash-") as tmp:
        clip = args.video or generate_clip(Path(tmp) / "clip.mp4", args.fps)
        results = []
        for n in range(args.trials):
            folder = Path(tmp) / f"trial{n:02d}"
            folder.mkdir()
            delay = rng.uniform(args.min_s, args.max_s)
            written, kept = trial(clip, args.model, folder, delay)
            results.append((written, kept))
            print(f"trial {n:2d}: killed {delay:4.2f} s in: {kept:4d} frames kept of {written:4d} written")
        losses = [written - kept for written, kept in results]
        unplayable = sum(1 for written, kept in results if written and not kept)
        print(
            f"lost per trial: min {min(losses)}, mean {sum(losses) / len(losses):.1f}, max {max(losses)} "
            f"frames; recordings with no frame: {unplayable}"
        )
        kept, written = sum(k for _, k in results), sum(w for w, _ in results)
        print(f"SIGKILL x{args.trials}: {kept} frames kept of {written} written")


if __name__ == "__main__":
    main()
