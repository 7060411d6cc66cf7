"""Does memory grow with the number of frames? A long run through the real pipeline.

Streams `--frames` (default 200,000) small frames from an FFmpeg lavfi test source, unpaced and
not live (every frame goes through every stage, none dropped), through the threaded Pipeline
with a backend that costs nothing (constant ids) and a sink that writes nothing but samples the
process's resident memory. RSS is measured after `--warmup` frames (allocators and caches have
settled) and at the end; the LAST line printed is the growth in bytes per frame between them.
Goal: at most 1 byte per frame (a camera at 30 fps for a week is 18 M frames).

    python benchmarks/soak_memory.py                    # 200,000 frames
    python benchmarks/soak_memory.py --frames 30000 --warmup 5000   # a quick check
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

import numpy as np

from rtseg.data.labels import CAMVID
from rtseg.loading import LoadedModel
from rtseg.pipeline import Pipeline, PipelineConfig
from rtseg.runtime import Backend
from rtseg.video import NullSink, open_source
from rtseg.viz import VizConfig

PAGE = os.sysconf("SC_PAGE_SIZE") if hasattr(os, "sysconf") else 4096


def rss_bytes() -> int:
    """Resident set size of this process now (Linux /proc; peak RSS elsewhere)."""
    try:
        with open("/proc/self/statm") as fh:
            return int(fh.read().split()[1]) * PAGE
    except OSError:
        import resource

        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


class ConstantBackend(Backend):
    """Costs nothing: the same `(N, h, w) uint8` ids for every batch."""

    name = "constant"

    def __init__(self, input_size: tuple[int, int]):
        self.input_size = input_size
        self.num_classes = CAMVID.num_classes
        self._ids = np.zeros((1, *input_size), np.uint8)
        self._ids[:, input_size[0] // 2 :] = 3  # a road below the horizon

    def _infer_impl(self, images: np.ndarray) -> np.ndarray:
        return self._ids if len(images) == 1 else np.repeat(self._ids, len(images), axis=0)


class SamplingSink(NullSink):
    """Discards frames; records RSS after frame `warmup` and every `every` frames."""

    def __init__(self, warmup: int, every: int):
        self.warmup, self.every = warmup, every
        self.frames_written = 0
        self.samples: list[tuple[int, int]] = []  # (frames, rss): a few dozen entries

    def _write_impl(self, index, rendered, ids) -> None:
        self.frames_written += 1
        n = self.frames_written
        if n == self.warmup or (n > self.warmup and n % self.every == 0):
            self.samples.append((n, rss_bytes()))


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--frames", type=int, default=200_000)
    parser.add_argument("--warmup", type=int, default=20_000)
    parser.add_argument("--size", default="48x64", help="HxW of the source frames")
    parser.add_argument("--model-size", default="24x32", help="HxW the backend takes")
    args = parser.parse_args(argv)
    if not 0 < args.warmup < args.frames:
        parser.error("need 0 < --warmup < --frames")
    return args


def hw(text: str) -> tuple[int, int]:
    h, w = (int(v) for v in text.lower().split("x"))
    return h, w


def main(argv=None) -> int:
    args = parse_args(argv)
    (height, width), model_size = hw(args.size), hw(args.model_size)
    source = open_source(f"lavfi:testsrc2=size={width}x{height}:rate=1000", live=False)
    source.pace(False)  # as fast as the pipeline takes them, every frame in order
    model = LoadedModel(ConstantBackend(model_size), list(CAMVID.classes), CAMVID.palette, Path("constant"))
    sink = SamplingSink(args.warmup, every=max(1, (args.frames - args.warmup) // 20))
    config = PipelineConfig(max_frames=args.frames, viz=VizConfig(legend=False, hud=False))
    with source:
        stats = Pipeline.single(source, model, [sink], config).run()
    end_frames, end_rss = stats.frames, rss_bytes()
    if not sink.samples or end_frames <= sink.samples[0][0]:
        print(f"only {end_frames} frames ran; nothing to compare", file=sys.stderr)
        return 1
    start_frames, start_rss = sink.samples[0]
    for frames, rss in sink.samples:
        print(f"frame {frames:>9,}: rss {rss / 2**20:8.2f} MiB")
    ran = f"{stats.frames_read} read, {stats.dropped} dropped"
    print(f"frame {end_frames:>9,}: rss {end_rss / 2**20:8.2f} MiB (end; {ran})")
    growth = (end_rss - start_rss) / (end_frames - start_frames)
    print(f"rss growth from frame {start_frames:,} to {end_frames:,}, bytes per frame:")
    print(f"{growth:.3f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
