"""`rtseg run` on the real dashcam video (221 frames, 960x540): MP4 and masks, every frame."""

from __future__ import annotations

import json

import cv2
import numpy as np
import pytest
from click.testing import CliRunner

from rtseg.cli import main

pytestmark = [pytest.mark.data, pytest.mark.slow]


def test_dashcam_to_mp4_and_masks(tmp_path, dashcam_video, tiny_package):
    """The tiny 96x64 model keeps this quick; the frame size and count are the video's."""
    import av

    out, masks, stats_file = tmp_path / "dashcam.mp4", tmp_path / "masks", tmp_path / "stats.json"
    result = CliRunner().invoke(
        main,
        [
            "run",
            "--video",
            str(dashcam_video),
            "--model",
            str(tiny_package.onnx_path),
            "--threads",
            "1",
            "--output",
            str(out),
            "--masks",
            str(masks),
            "--stats-json",
            str(stats_file),
            "--quiet",
        ],
    )
    assert result.exit_code == 0, (result.output, result.exception)
    with av.open(str(out)) as container:
        stream = container.streams.video[0]
        assert (stream.width, stream.height) == (960, 540)
        decoded = sum(1 for _ in container.decode(video=0))
    assert decoded == 221
    names = sorted(p.name for p in masks.glob("*.png"))
    assert names == [f"{i:06d}.png" for i in range(221)]
    mask = cv2.imread(str(masks / names[-1]), cv2.IMREAD_UNCHANGED)
    assert mask.shape == (540, 960) and mask.dtype == np.uint8 and mask.max() < 11
    stats = json.loads(stats_file.read_text())
    assert stats["frames"] == 221 and stats["dropped"] == 0 and stats["fps"] > 0
