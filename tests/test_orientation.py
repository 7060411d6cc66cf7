"""Frames come out upright as players show them: display matrix (video), EXIF (JPEG frames).

Clips are written losslessly (libx264rgb, qp 0) with the picture stored turned and a display
matrix saying how to show it, so the upright frames must come back exactly.
"""

from __future__ import annotations

import math

import av
import cv2
import numpy as np
import pytest
from conftest import structured_frames
from test_cli_run import band_package as band_package  # noqa: F401 - the module fixture
from test_cli_run import decode_mp4, read_masks, rtseg_run

from rtseg.video import open_source
from rtseg.video.orientation import display_transform

UPRIGHT = structured_frames(4, 48, 80, seed=7)  # (H, W) = (48, 80): landscape as shown


def mirrored(frames: np.ndarray, hflip: bool, vflip: bool) -> np.ndarray:
    frames = frames[:, :, ::-1] if hflip else frames
    return frames[:, ::-1] if vflip else frames


def write_turned_clip(path, upright: np.ndarray, degrees: int, hflip=False, vflip=False, codec="libx264rgb"):
    """Store the frames so that a player, applying the display matrix (a counter-clockwise turn
    by `degrees`, then the mirrors), shows `upright`. libx264rgb: lossless; libx264: yuv420p."""
    stored = np.rot90(mirrored(upright, hflip, vflip), -(degrees // 90), axes=(1, 2))
    lossless = codec == "libx264rgb"
    with av.open(str(path), "w") as container:
        stream = container.add_stream(codec, rate=10, options={"qp": "0"} if lossless else {})
        stream.width, stream.height = stored.shape[2], stored.shape[1]
        stream.pix_fmt = "rgb24" if lossless else "yuv420p"
        if degrees or hflip or vflip:
            stream.set_display_rotation(degrees, hflip=hflip, vflip=vflip)
        for frame in stored:
            for packet in stream.encode(av.VideoFrame.from_ndarray(np.ascontiguousarray(frame), "rgb24")):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    return path


@pytest.mark.parametrize("degrees", [0, 90, 180, 270])
@pytest.mark.parametrize("hflip", [False, True])
def test_every_orientation_comes_out_upright(tmp_path, degrees, hflip):
    clip = write_turned_clip(tmp_path / "turned.mp4", UPRIGHT, degrees, hflip=hflip)
    with open_source(str(clip)) as source:
        assert source.frame_size == (48, 80)
        frames = list(source)
    assert len(frames) == 4
    for got, want in zip(frames, UPRIGHT):
        assert got.flags.c_contiguous and got.shape == want.shape
        np.testing.assert_array_equal(got, want)


def test_vertical_mirror_alone_is_applied(tmp_path):
    clip = write_turned_clip(tmp_path / "vflip.mp4", UPRIGHT, 0, vflip=True)
    with open_source(str(clip)) as source:
        np.testing.assert_array_equal(source.read(), UPRIGHT[0])


def test_a_rotation_that_is_not_a_quarter_turn_is_left_alone_with_a_warning(tmp_path):
    c, s = (round(v * 65536) for v in (math.cos(math.radians(30)), math.sin(math.radians(30))))
    assert display_transform((c, -s, 0, s, c, 0, 0, 0, 1 << 30)) is None
    assert display_transform((0, -65536, 0, 65536, 0, 0, 0, 0, 1 << 30)) == "rotate_ccw"
    path = tmp_path / "tilted.mp4"
    with av.open(str(path), "w") as container:
        stream = container.add_stream("libx264rgb", rate=10, options={"qp": "0"})
        stream.width, stream.height, stream.pix_fmt = 80, 48, "rgb24"
        stream.set_display_rotation(30)
        for packet in stream.encode(av.VideoFrame.from_ndarray(UPRIGHT[0], "rgb24")):
            container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    with open_source(str(path)) as source:
        np.testing.assert_array_equal(source.read(), UPRIGHT[0])
    assert len(source.damage.warnings) == 1 and "not a quarter turn" in source.damage.warnings[0]


def test_masks_of_a_rotated_clip_match_the_upright_run(tmp_path, band_package):  # noqa: F811
    upright = write_turned_clip(tmp_path / "upright.mp4", UPRIGHT, 0)
    turned = write_turned_clip(tmp_path / "phone.mp4", UPRIGHT, 90)
    with av.open(str(turned)) as container:  # stored sideways: a model fed this sees a turned road
        assert container.streams.video[0].height == 80
    results = {}
    for name, clip in (("upright", upright), ("turned", turned)):
        out, masks = tmp_path / f"{name}_out.mp4", tmp_path / f"{name}_masks"  # not over the input
        result = rtseg_run(
            "--video", clip, "--model", band_package.onnx_path, "--threads", 1,
            "--output", out, "--masks", masks, "--quiet",
        )  # fmt: skip
        assert result.exit_code == 0, result.output
        assert decode_mp4(out)[0].shape == (48, 80, 3)  # the output is upright too
        results[name] = read_masks(masks)
    assert results["upright"][0] == results["turned"][0] and len(results["upright"][0]) == 4
    for a, b in zip(results["upright"][1], results["turned"][1]):
        assert a.shape == (48, 80)
        np.testing.assert_array_equal(a, b)
    assert len({m.tobytes() for m in results["upright"][1]}) > 1  # the masks do carry content


def test_jpeg_frames_follow_their_exif_orientation(tmp_path):
    pil = pytest.importorskip("PIL.Image")
    stored = np.ascontiguousarray(np.rot90(UPRIGHT[0], -1))  # turned clockwise; EXIF 8 turns it back
    image = pil.fromarray(stored)
    exif = image.getexif()
    exif[0x0112] = 8  # EXIF "rotate 270 CW": viewers turn it a quarter counter-clockwise
    image.save(tmp_path / "0.jpg", exif=exif, quality=100, subsampling=0)
    with open_source(str(tmp_path)) as source:
        frame = source.read()
    assert frame.shape == UPRIGHT[0].shape
    assert np.abs(frame.astype(int) - UPRIGHT[0]).mean() < 3
    assert cv2.imread(str(tmp_path / "0.jpg")).shape == (48, 80, 3)


@pytest.mark.parametrize("pixel_format", ["yuv420p", "gbrp", "rgb24", "nv12"])
def test_frames_are_turned_in_the_decoder_s_own_pixel_format(pixel_format):
    from rtseg.video.decoded import plane_view
    from rtseg.video.orientation import TRANSFORMS, turn_video_frame

    frame = av.VideoFrame.from_ndarray(UPRIGHT[0], "rgb24").reformat(format=pixel_format)
    channels = {"rgb24": (3,), "nv12": (1, 2)}.get(pixel_format, (1, 1, 1))
    for name, turn in TRANSFORMS.items():
        turned = turn_video_frame(frame, name)
        assert turned is not None and turned.format.name == pixel_format
        for index, count in enumerate(channels):
            np.testing.assert_array_equal(
                plane_view(turned, index, count), turn(plane_view(frame, index, count))
            )
    assert turn_video_frame(frame.reformat(format="yuv422p"), "rotate_cw") is None  # 4:2:2 cannot


def test_a_turned_h264_clip_keeps_the_decoder_s_fast_path(tmp_path):
    from rtseg.video.decoded import AvFrame

    clip = write_turned_clip(tmp_path / "phone.mp4", UPRIGHT, 90, codec="libx264")
    with open_source(str(clip)) as source:
        decoded = source.read_frame()
    assert isinstance(decoded, AvFrame) and decoded.yuv420p_planes()[0].shape == (48, 80)
    assert np.abs(decoded.rgb().astype(int) - UPRIGHT[0]).mean() < 6


def test_calibration_and_bench_frames_of_a_turned_clip_are_upright(tmp_path):
    from rtseg.export.calibration import calibration_frames
    from rtseg.video.sampling import sample_video_frames

    clip = write_turned_clip(tmp_path / "turned.mp4", UPRIGHT, 90)
    picked = sample_video_frames(clip, 2, purpose="benchmark")  # evenly spaced: frames 1 and 3
    np.testing.assert_array_equal(np.stack(picked), UPRIGHT[[1, 3]])
    assert calibration_frames(clip, 4, (24, 40)).shape == (4, 24, 40, 3)  # landscape, as shown
