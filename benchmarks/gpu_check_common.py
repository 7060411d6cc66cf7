"""What the GPU check's sections share (benchmarks/gpu_check.py): the check's settings, the
Skip a section raises, its log line, and the bundled checkpoint and frames to run it on."""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
CLIP = Path("video") / "dashcam_highway_960x540.mp4"


class Skip(Exception):
    """A section that cannot run here; the message says why."""


@dataclass
class Check:
    out: Path
    data: Path
    gpu: bool
    quick: bool
    deadline: float
    device: str = "cuda"

    def n(self, gpu_count: int, dry_count: int) -> int:
        """Iterations: the full count on a GPU, a handful in the dry mode or with --quick."""
        return gpu_count if self.gpu and not self.quick else dry_count

    def need(self, seconds: float) -> None:
        if time.monotonic() + seconds > self.deadline:
            raise Skip(f"time budget: less than {seconds:.0f} s left")


def log(line: str) -> None:
    print(f"gpu_check: {line}", flush=True)


def _bundled():
    """(input size, checkpoint, the fp32 package or None when it is set aside): from the fp32
    sidecar, which stays with the checkpoint when `gpu_check.sh --slim` sets the ONNX aside."""
    from rtseg.core.package import default_model_path, load_package

    fp32 = default_model_path()
    sidecar = fp32.with_suffix(".json")
    if not sidecar.is_file():
        raise Skip(f"no bundled model sidecar at {sidecar}")
    meta = json.loads(sidecar.read_text())
    checkpoint = sidecar.parent / meta["source"]["checkpoint"]
    if not checkpoint.is_file():
        raise Skip(f"no bundled checkpoint at {checkpoint}")
    size = (meta["input"]["height"], meta["input"]["width"])
    return size, checkpoint, load_package(fp32) if fp32.is_file() else None


def _frames(check: Check, size: tuple[int, int], count: int) -> np.ndarray:
    """`count` CamVid val frames at `size` (RGB), or a deterministic gradient without the data."""
    from rtseg.core.frames import resize_frame

    root = check.data / "camvid" / "val"
    images = sorted(root.glob("*.png"))[:count] if root.is_dir() else []
    if len(images) < count:
        yy, xx = np.mgrid[0 : size[0], 0 : size[1]]
        frame = np.stack([xx % 256, yy % 256, (xx + yy) % 256], -1).astype(np.uint8)
        return np.stack([np.roll(frame, 7 * i, axis=1) for i in range(count)])
    import cv2

    return np.stack([resize_frame(cv2.imread(str(p))[..., ::-1].copy(), size) for p in images])
