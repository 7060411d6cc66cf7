"""Damaged and failing inputs: drain, don't drop; damage counted or (strict) an error; cut files.

Clips are generated with PyAV, then damaged: cut short (MP4 with its index first, MKV), two
MPEG-TS recordings concatenated, bytes flipped inside the frame data; a frames folder with a
broken image. Every test counts the frames each sink wrote.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import av
import cv2
import numpy as np
import pytest
from conftest import structured_frames, write_video
from test_cli_run import assert_one_line_error, decode_mp4, rtseg_run
from test_cli_run import band_package as band_package  # noqa: F401 - the module fixture
from test_pipeline import RecordingSink, fake_model, quiet_config

from rtseg.errors import InputError
from rtseg.pipeline import Pipeline, SourceFailed
from rtseg.video import MaskSink, Mp4Sink, open_source

FRAMES = structured_frames(48, 120, 160, seed=3)  # 4 s at 12 fps


def decodable_frames(path: Path) -> int:
    """Frames FFmpeg can decode from `path`, single-threaded, skipping packets that fail."""
    count = 0
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        stream.thread_type = "NONE"
        for packet in container.demux(stream):
            try:
                count += len(packet.decode())
            except av.error.FFmpegError:
                continue
    return count


@pytest.fixture(scope="module")
def clips(tmp_path_factory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("damaged")
    full = write_video(folder / "full.mp4", FRAMES, container_options={"movflags": "faststart"})
    cut_mp4 = folder / "cut.mp4"
    cut_mp4.write_bytes(full.read_bytes()[: full.stat().st_size * 6 // 10])
    mkv = write_video(folder / "full.mkv", FRAMES)
    cut_mkv = folder / "cut.mkv"
    cut_mkv.write_bytes(mkv.read_bytes()[: mkv.stat().st_size // 2])
    first = write_video(folder / "a.ts", FRAMES[:24], container_format="mpegts")
    second = write_video(folder / "b.ts", FRAMES[24:], container_format="mpegts")
    joined = folder / "joined.ts"
    joined.write_bytes(first.read_bytes() + second.read_bytes())
    data = bytearray(full.read_bytes())
    for offset in range(len(data) // 3, len(data) // 3 + 2000, 97):
        data[offset] ^= 0xFF
    flipped = folder / "flipped.mp4"
    flipped.write_bytes(bytes(data))
    return {"cut.mp4": cut_mp4, "cut.mkv": cut_mkv, "joined.ts": joined, "flipped.mp4": flipped, "full": full}


def read_all(source) -> tuple[int, InputError | None]:
    delivered = 0
    try:
        while source.read() is not None:
            delivered += 1
    except InputError as error:
        return delivered, error
    return delivered, None


# --- the source: decode through by default, count, warn; strict stops at the first damage --------


def test_concatenated_ts_decodes_through_the_join_and_counts_the_damaged_packet(clips):
    with open_source(str(clips["joined.ts"])) as source:
        delivered, error = read_all(source)
    assert error is None and delivered == 48  # every frame of both recordings
    assert source.damage.damaged_packets >= 1 and not source.damage.warnings


@pytest.mark.parametrize(
    "name, warning",
    [
        ("cut.mp4", r"cut\.mp4: ends after \d+ of the 48 frames its header declares"),
        ("cut.mkv", r"cut\.mkv: ends at [\d.]+ s of the 4\.00 s its header declares"),
    ],
)
def test_a_cut_file_delivers_every_decodable_frame_and_warns(clips, name, warning):
    with open_source(str(clips[name])) as source:
        delivered, error = read_all(source)
    assert error is None
    assert 10 < delivered < 48 and delivered == decodable_frames(clips[name])
    assert len(source.damage.warnings) == 1 and re.search(warning, source.damage.warnings[0])


def test_flipped_bytes_are_decoded_through_and_counted(clips):
    with open_source(str(clips["flipped.mp4"])) as source:
        delivered, error = read_all(source)
    assert error is None and delivered >= 40
    assert source.damage.damaged_frames + source.damage.undecodable_frames >= 1
    with open_source(str(clips["full"])) as source:
        assert read_all(source) == (48, None) and not source.damage


@pytest.mark.parametrize("name", ["joined.ts", "cut.mp4", "cut.mkv", "flipped.mp4"])
def test_strict_stops_at_the_first_damage_after_the_frames_before_it(clips, name):
    with open_source(str(clips[name]), strict=True) as source:
        delivered, error = read_all(source)
        assert source.read() is None  # ended after the error
    assert error is not None and str(error).startswith(f"{name}: ") and "strict" in str(error)
    if "ends" not in str(error):  # damage mid-file: named by the index of the first frame not delivered
        assert int(re.search(r"at frame (\d+)", str(error)).group(1)) == delivered
    assert 0 < delivered < 48


def test_a_cut_jpeg_in_a_folder_is_an_input_error_at_its_frame(tmp_path):
    noise = np.random.default_rng(5).integers(0, 40, (240, 320, 3), dtype=np.uint8)
    for i, frame in enumerate(structured_frames(3, 240, 320, seed=5)):
        cv2.imwrite(str(tmp_path / f"{i}.jpg"), cv2.cvtColor(frame + noise, cv2.COLOR_RGB2BGR))
    data = (tmp_path / "1.jpg").read_bytes()
    (tmp_path / "1.jpg").write_bytes(data[: len(data) * 3 // 4])  # cut inside the picture data
    with open_source(str(tmp_path)) as source:
        delivered, error = read_all(source)
    assert delivered == 1 and re.search(r"1\.jpg: cannot read image at frame 1 \(JPEG cut short", str(error))


# --- the pipeline: frames read before an input failure reach every sink -----------------------------


@pytest.fixture()
def broken_folder(tmp_path) -> Path:
    """Four images; the 4th (frame 3) is corrupt."""
    folder = tmp_path / "frames"
    folder.mkdir()
    for i, frame in enumerate(structured_frames(4, 48, 64, seed=6)):
        cv2.imwrite(str(folder / f"{i:03d}.png"), cv2.cvtColor(frame, cv2.COLOR_RGB2BGR))
    (folder / "003.png").write_bytes(b"\x89PNG\r\n\x1a\n not really a png")
    return folder


def test_an_input_failure_drains_every_frame_read_to_every_sink(tmp_path, broken_folder):
    recorder, out, masks = RecordingSink(delay_s=0.02), tmp_path / "out.mp4", tmp_path / "masks"
    sinks = [Mp4Sink(out, fps=10), MaskSink(masks), recorder]
    with open_source(str(broken_folder)) as source:
        with pytest.raises(SourceFailed, match=r"003\.png: cannot read image at frame 3") as info:
            Pipeline.single(source, fake_model(), sinks, quiet_config(queue_size=4)).run()
    assert isinstance(info.value, InputError)
    assert recorder.indices == [0, 1, 2] and recorder.closed == 1
    assert len(decode_mp4(out)) == 3 and sorted(p.name for p in masks.iterdir()) == [
        "000000.png",
        "000001.png",
        "000002.png",
    ]
    stats = info.value.stats
    assert stats.frames == 3 and stats.stopped_by == "input_error"


def test_a_cut_video_reaches_the_sinks_whole_and_the_stats_carry_the_warning(tmp_path, clips):
    recorder = RecordingSink()
    with open_source(str(clips["cut.mkv"])) as source:
        stats = Pipeline.single(source, fake_model(), [recorder], quiet_config()).run()
    assert len(recorder.indices) == decodable_frames(clips["cut.mkv"]) == stats.frames
    assert stats.to_json()["input_damage"]["warnings"] == stats.warnings and len(stats.warnings) == 1


# --- rtseg run: exit status, one line, summary and stats JSON --------------------------------------


def test_cli_input_failure_writes_what_was_read_then_one_line_exit_1(tmp_path, broken_folder, band_package):  # noqa: F811
    out, masks, stats_file = tmp_path / "out.mp4", tmp_path / "masks", tmp_path / "stats.json"
    result = rtseg_run(
        "--frames", broken_folder, "--model", band_package.onnx_path, "--threads", 1,
        "--output", out, "--masks", masks, "--stats-json", stats_file,
    )  # fmt: skip
    assert_one_line_error(result, "003.png", "frame 3")
    assert len(decode_mp4(out)) == 3 and len(list(masks.glob("*.png"))) == 3
    stats = json.loads(stats_file.read_text())
    assert stats["frames"] == 3 and stats["stopped_by"] == "input_error"
    assert "3 frames" in result.stdout


def test_cli_damaged_ts_runs_through_and_reports_strict_fails(tmp_path, clips, band_package):  # noqa: F811
    stats_file, masks = tmp_path / "stats.json", tmp_path / "masks"
    common = ("--video", clips["joined.ts"], "--model", band_package.onnx_path, "--threads", 1)
    result = rtseg_run(*common, "--masks", masks, "--stats-json", stats_file)
    assert result.exit_code == 0, result.output
    assert len(list(masks.glob("*.png"))) == 48
    damage = json.loads(stats_file.read_text())["input_damage"]
    assert damage["damaged_packets"] >= 1 and damage["warnings"] == []
    assert re.search(r"input damage: [1-9]\d* damaged packet", result.stdout)
    strict = rtseg_run(*common, "--strict", "--masks", tmp_path / "strict_masks")
    assert_one_line_error(strict, "joined.ts", "damaged packet", "strict")
    assert 0 < len(list((tmp_path / "strict_masks").glob("*.png"))) < 48


def test_cli_cut_file_warns_on_one_line_and_strict_exits_1(tmp_path, clips, band_package):  # noqa: F811
    common = ("--video", clips["cut.mkv"], "--model", band_package.onnx_path, "--threads", 1, "--quiet")
    result = rtseg_run(*common, "--stats-json", tmp_path / "stats.json")
    assert result.exit_code == 0, result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("rtseg: warning: cut.mkv: ends at"), result.stderr
    assert json.loads((tmp_path / "stats.json").read_text())["input_damage"]["warnings"] == [lines[0][16:]]
    assert_one_line_error(rtseg_run(*common, "--strict"), "cut.mkv", "ends at", "strict")


def test_a_result_stream_hands_out_the_frames_before_an_input_failure(broken_folder):
    from test_pipeline import FakeBackend

    from rtseg.pipeline.stream import ResultStream

    indices = []
    with open_source(str(broken_folder)) as source:
        with pytest.raises(InputError, match=r"003\.png: cannot read image at frame 3"):
            for result in ResultStream(source, FakeBackend()):
                indices.append(result.index)
    assert indices == [0, 1, 2]


def test_strict_reaches_every_source_of_a_multi_source_run(tmp_path, clips, band_package):  # noqa: F811
    stats_file = tmp_path / "stats.json"
    result = rtseg_run(
        "--source", clips["joined.ts"], "--source", clips["full"], "--model", band_package.onnx_path,
        "--threads", 1, "--strict", "--quiet", "--stats-json", stats_file,
    )  # fmt: skip
    lanes = json.loads(stats_file.read_text())["sources"]
    assert result.exit_code == 0, result.output  # the other source went on
    assert lanes[0]["status"] == "failed" and "joined.ts: damaged packet" in lanes[0]["error"]
    assert 0 < lanes[0]["frames"] < 48 and lanes[1]["frames"] == 48


def _ts(frames: np.ndarray) -> bytes:
    """`frames` encoded as one MPEG-TS recording (H.264, 12 fps)."""
    import io

    buffer = io.BytesIO()
    with av.open(buffer, "w", format="mpegts") as container:
        stream = container.add_stream("libx264", rate=12)
        stream.width, stream.height, stream.pix_fmt = frames.shape[2], frames.shape[1], "yuv420p"
        for i, rgb in enumerate(frames):
            frame = av.VideoFrame.from_ndarray(rgb, format="rgb24")
            frame.pts = i
            for packet in stream.encode(frame):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    return buffer.getvalue()


def test_a_resolution_change_mid_stream_carries_on(tmp_path, band_package):  # noqa: F811
    """Two encodes of different sizes joined: every frame is in the MP4, scaled to the first
    frame's size; each mask PNG keeps its own frame's size."""
    joined = tmp_path / "joined.ts"
    joined.write_bytes(
        _ts(structured_frames(12, 120, 160, seed=1)) + _ts(structured_frames(12, 180, 240, seed=2))
    )
    out, masks = tmp_path / "out.mp4", tmp_path / "masks"
    model = band_package.onnx_path
    result = rtseg_run("--video", joined, "--model", model, "--output", out, "--masks", masks, "--quiet")
    assert result.exit_code == 0, result.output
    frames = decode_mp4(out)
    assert len(frames) == 24 and {f.shape for f in frames} == {(120, 160, 3)}
    sizes = [cv2.imread(str(p), cv2.IMREAD_UNCHANGED).shape for p in sorted(masks.iterdir())]
    assert sizes == [(120, 160)] * 12 + [(180, 240)] * 12
