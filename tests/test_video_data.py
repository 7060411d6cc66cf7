"""Video sources on the real clips in ../shared/data/video (skipped when the data is absent)."""

from __future__ import annotations

import re

import numpy as np
import pytest

from rtseg.errors import InputError
from rtseg.video import open_source

pytestmark = pytest.mark.data


def test_dashcam_video_opens_with_its_metadata_and_yields_every_frame(dashcam_video):
    with open_source(str(dashcam_video)) as source:
        assert not source.live
        assert source.frame_size == (540, 960)
        assert source.fps == pytest.approx(25, abs=0.1)
        assert source.frame_count == 221
        assert source.description == "dashcam_highway_960x540.mp4 (h264 960x540 25 fps, 221 frames)"
        count, first, last = 0, None, None
        while (frame := source.read()) is not None:
            assert frame.shape == (540, 960, 3) and frame.dtype == np.uint8
            first = frame if first is None else first
            last, count = frame, count + 1
    assert count == 221
    assert not np.array_equal(first, last)
    # a daytime road scene: the bottom (road) is darker than the top rows (sky) in every channel
    assert (first[:100].mean(axis=(0, 1)) > first[-100:].mean(axis=(0, 1))).all()


def test_camvid_clip_yields_its_101_labelled_frames(data_dir):
    path = data_dir / "video" / "camvid_0016E5_val_15fps.mp4"
    if not path.is_file():
        pytest.skip(f"{path} not found")
    with open_source(str(path)) as source:
        assert source.frame_size == (360, 480) and source.fps == pytest.approx(15, abs=0.1)
        assert sum(1 for _ in source) == 101 == source.frame_count


def _read_all(source) -> int:
    delivered = 0
    while source.read() is not None:
        delivered += 1
    return delivered


def test_real_file_cut_at_60_percent_keeps_the_good_frames_and_warns(dashcam_video, tmp_path):
    """A cut MP4 (index first) delivers every decodable frame and says it ends early; with
    strict=True the same file raises after the good frames."""
    cut = tmp_path / "cut.mp4"  # a temporary copy of part of the clip, deleted with tmp_path
    data = dashcam_video.read_bytes()
    cut.write_bytes(data[: int(len(data) * 0.6)])
    with open_source(str(cut)) as source:
        assert source.frame_count == 221
        delivered = _read_all(source)
        warnings = list(source.damage.warnings)
    assert 100 < delivered < 221
    assert len(warnings) == 1 and re.search(r"cut\.mp4: ends after \d+ of the 221 frames", warnings[0])
    with open_source(str(cut), strict=True) as source:
        with pytest.raises(InputError, match=r"cut\.mp4: .*(--strict)"):
            _read_all(source)
