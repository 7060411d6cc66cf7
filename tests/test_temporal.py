"""Temporal consistency (VSPW's TC with DIS flow, the flip share), the flow-free temporal filter,
and `rtseg eval --video` on the tiny package and (slow) the real clips."""

from __future__ import annotations

import json

import cv2
import numpy as np
import pytest
from click.testing import CliRunner
from conftest import write_video

from rtseg.cli import main
from rtseg.postprocess import StableIds
from rtseg.train.temporal import TemporalConsistency, pair_miou, warp_back


def textured(h: int = 96, w: int = 128, seed: int = 0) -> np.ndarray:
    """`(H, W, 3) uint8 RGB` smooth random texture that optical flow can follow."""
    noise = np.random.default_rng(seed).integers(0, 256, (h // 8, w // 8, 3), dtype=np.uint8)
    return cv2.resize(noise, (w, h), interpolation=cv2.INTER_CUBIC)


def shifted(image: np.ndarray, dx: int) -> np.ndarray:
    """`image` moved `dx` pixels to the right (edge columns repeated)."""
    return np.ascontiguousarray(np.concatenate([np.repeat(image[:, :1], dx, 1), image[:, :-dx]], 1))


def test_pair_miou_counts_only_present_classes():
    a = np.array([0, 0, 1, 1], np.uint8)
    assert pair_miou(a, a, 5) == 1.0
    b = np.array([0, 1, 1, 1], np.uint8)  # class 0: 1/2, class 1: 2/3
    assert pair_miou(a, b, 5) == pytest.approx((0.5 + 2 / 3) / 2)


def test_warp_back_follows_the_flow_and_masks_what_leaves_the_frame():
    ids = np.arange(12, dtype=np.uint8).reshape(3, 4)
    flow = np.zeros((3, 4, 2), np.float32)
    flow[..., 0] = 1.0  # everything moved one pixel right between t and t+1
    warped, valid = warp_back(ids, flow)
    assert np.array_equal(warped[:, :3], ids[:, 1:])
    assert valid[:, :3].all() and not valid[:, 3].any()


def test_tc_is_one_for_a_prediction_that_moves_with_the_image_and_drops_with_flicker():
    image = textured()
    ids = (image[..., 0] > 128).astype(np.uint8)
    steady, flicker = TemporalConsistency(2), TemporalConsistency(2)
    rng = np.random.default_rng(1)
    for t in range(4):
        frame, moved = (
            (image, ids) if t == 0 else (shifted(image, 2 * t), shifted(ids[..., None], 2 * t)[..., 0])
        )
        steady.update(frame, moved)
        noisy = np.where(rng.random(moved.shape) < 0.2, 1 - moved, moved).astype(np.uint8)
        flicker.update(frame, noisy)
    good, bad = steady.summary(), flicker.summary()
    assert good["pairs"] == 3 and good["tc"] > 0.97 and good["flip_share"] < 0.01
    assert bad["tc"] < 0.8 and bad["flip_share"] > 0.2
    assert TemporalConsistency(2).summary() == {"tc": None, "flip_share": None, "pairs": 0}


def test_stable_ids_hides_one_frame_flicker_where_the_image_is_still():
    image = textured()
    ids = np.zeros(image.shape[:2], np.uint8)
    flicker = ids.copy()
    flicker[10:20, 10:20] = 3
    smooth = StableIds(gate=6)
    assert np.array_equal(smooth(image, ids), ids)
    assert np.array_equal(smooth(image, flicker), ids)  # one frame's disagreement: hidden
    assert np.array_equal(smooth(image, flicker), flicker)  # two frames agree: shown


def test_stable_ids_shows_a_change_at_once_where_the_image_moved():
    image = textured()
    image[:, 64:] //= 4  # the right half dark (0..63), then 150 grey levels lighter
    ids = np.zeros(image.shape[:2], np.uint8)
    changed = ids.copy()
    changed[:, 64:] = 2
    moved = image.copy()
    moved[:, 64:] += 150
    smooth = StableIds(gate=6)
    smooth(image, ids)
    assert np.array_equal(smooth(moved, changed), changed)
    other_size = np.zeros((10, 10), np.uint8)
    assert np.array_equal(smooth(textured(10, 10), other_size), other_size)  # starts afresh


def test_eval_video_reports_tc_and_the_labelled_miou(tmp_path, tiny_package):
    frames = np.stack([shifted(textured(64, 96, seed=2), 1 + t) for t in range(6)])
    video = write_video(tmp_path / "clip.mp4", frames)
    (tmp_path / "valannot").mkdir()
    for i in range(3):  # labels for the first three frames only
        cv2.imwrite(str(tmp_path / "valannot" / f"{i}.png"), np.full((64, 96), 3, np.uint8))
    (tmp_path / "clip.frames.txt").write_text("0.png\n1.png\n2.png\n")
    args = ["eval", "--model", str(tiny_package.onnx_path), "--video", str(video), "--threads", "1"]
    labelled = [*args, "--video-labels", str(tmp_path / "clip.frames.txt"), "--data-root", str(tmp_path)]
    result = CliRunner().invoke(main, [*labelled, "--json", str(tmp_path / "tc.json")])
    assert result.exit_code == 0, result.output
    report = json.loads((tmp_path / "tc.json").read_text())
    assert report["frames"] == 6 and report["pairs"] == 5
    assert 0 <= report["tc"] <= 1 and 0 <= report["flip_share"] <= 1 and 0 <= report["miou"] <= 1
    assert "TC (temporal consistency)" in result.stdout and "mIoU" in result.stdout
    assert "model at 64x96 (HxW)" in result.stdout  # sizes HxW, as --size takes them
    filtered = CliRunner().invoke(main, [*args, "--temporal-filter"])
    assert filtered.exit_code == 0 and "temporal filter" in filtered.stdout
    missing = CliRunner().invoke(main, [*args[:4], str(tmp_path / "nope.mp4")])
    assert missing.exit_code == 1 and missing.stderr.count("\n") == 1 and "rtseg: error:" in missing.stderr
    broken = tmp_path / "broken.txt"
    broken.write_bytes(b"\xff\xfe\x00bad")
    bad_list = CliRunner().invoke(main, [*args, "--video-labels", str(broken)])
    assert bad_list.exit_code == 1 and "label list" in bad_list.stderr


@pytest.mark.parametrize(
    "extra, says",
    [
        (["--video-labels", "list.txt"], "--video-labels needs --video"),
        (["--temporal-filter"], "--temporal-filter needs --video"),
        (["--video", "clip.mp4", "--flip-tta"], "--flip-tta scores a dataset; it does not go with --video"),
        (["--video", "clip.mp4", "--dataset", "cityscapes"], "--dataset scores a dataset"),
        (["--video", "lavfi:testsrc2=size=96x64:rate=5"], "no such file (eval scores a recorded clip"),
    ],
)
def test_eval_refuses_the_other_mode_s_options_and_endless_sources(tmp_path, tiny_package, extra, says):
    """Options of the other mode were ignored without a word, and an endless source ran until
    killed: each is one line now, before anything loads."""
    write_video(tmp_path / "clip.mp4", np.zeros((2, 64, 96, 3), np.uint8))
    (tmp_path / "list.txt").write_text("0.png\n")
    args = ["eval", "--model", str(tiny_package.onnx_path), *extra]
    with pytest.MonkeyPatch.context() as patch:
        patch.chdir(tmp_path)
        result = CliRunner().invoke(main, args)
    assert result.exit_code == 1 and result.stderr.count("\n") == 1 and says in result.stderr, result.output


@pytest.mark.slow
def test_eval_video_with_a_missing_label_is_one_line(tmp_path, tiny_package):
    """OpenCV's own warning line came before rtseg's error."""
    import subprocess
    import sys

    from conftest import REPO

    video = write_video(tmp_path / "clip.mp4", np.zeros((2, 64, 96, 3), np.uint8))
    (tmp_path / "list.txt").write_text("0.png\n1.png\n")
    (tmp_path / "valannot").mkdir()
    args = ["--model", tiny_package.onnx_path, "--video", video, "--video-labels", tmp_path / "list.txt"]
    command = [sys.executable, "-m", "rtseg", "eval", *map(str, args), "--data-root", str(tmp_path)]
    done = subprocess.run(command, capture_output=True, text=True, cwd=REPO, timeout=300)
    assert done.returncode == 1, done.stderr
    assert done.stderr.splitlines() == [
        f"rtseg: error: {tmp_path}/valannot/0.png: cannot read label (No such file or directory)"
    ]
