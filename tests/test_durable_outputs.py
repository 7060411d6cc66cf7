"""Outputs a kill or a full disk leave valid: the fragmented recording, its finishing, image files.

A full disk is simulated by a writer that fails with ENOSPC after a byte budget (every byte of a
recording or an image goes through `durable.write_all`); a real small tmpfs and SIGKILL of real
`rtseg run` processes are in test_crash_outputs.py.
"""

from __future__ import annotations

import errno
import os
import stat
import struct
from pathlib import Path

import av
import cv2
import numpy as np
import pytest
from conftest import structured_frames

from rtseg.core import atomic
from rtseg.errors import OutputError
from rtseg.video import FramesSink, MaskSink, Mp4Sink, durable

FPS = 10
FRAMES = structured_frames(40, 96, 128, seed=8)  # 4 s at 10 fps
IDS = np.zeros((96, 128), np.uint8)


def decodable(path: Path) -> int:
    """Frames a player gets out of `path` (packets that do not decode are skipped)."""
    count = 0
    with av.open(str(path)) as container:
        for packet in container.demux(video=0):
            try:
                count += len(packet.decode())
            except av.error.FFmpegError:
                continue
    return count


def top_level_boxes(path: Path) -> list[tuple[bytes, int]]:
    data, boxes, offset = path.read_bytes(), [], 0
    while offset + 8 <= len(data):
        size, kind = struct.unpack(">I4s", data[offset : offset + 8])
        boxes.append((kind, size))
        offset += size
    assert offset == len(data), "the file ends inside a box"
    return boxes


@pytest.fixture()
def disk_budget(monkeypatch):
    """`budget(n)`: from now on the disk takes n more bytes, then every write fails with ENOSPC."""
    state = {"left": None}
    real_write_all = durable.write_all

    def write_all(fd, data):
        view = memoryview(data).cast("B")
        if state["left"] is not None:
            if len(view) > state["left"]:  # a short write, as a real full disk does, then ENOSPC
                real_write_all(fd, view[: state["left"]])
                state["left"] = 0
                raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
            state["left"] -= len(view)
        return real_write_all(fd, view)

    monkeypatch.setattr(durable, "write_all", write_all)  # recordings
    monkeypatch.setattr(atomic, "write_all", write_all)  # images and every other atomic output
    return lambda n: state.update(left=n)


# --- recording: fragmented while running, a normal MP4 after a clean close ----------------------


def test_a_recording_plays_while_it_is_written_and_closes_into_a_normal_mp4(tmp_path):
    out = tmp_path / "out.mp4"
    with Mp4Sink(out, fps=FPS) as sink:
        for i, frame in enumerate(FRAMES):
            sink.write(i, frame, IDS)
        partial = sink.partial
        assert partial == tmp_path / "out.partial.mp4" and not out.exists()
        kept = decodable(partial)  # what a kill now would leave
        assert len(FRAMES) - 2 * FPS - 16 <= kept <= len(FRAMES)  # a second plus the encoder's delay
        assert b"moof" in {kind for kind, _ in top_level_boxes(partial)}
    assert not partial.exists()
    assert b"moof" not in {kind for kind, _ in top_level_boxes(out)}  # a normal MP4
    with av.open(str(out)) as container:
        stream = container.streams.video[0]
        assert stream.frames == len(FRAMES)
        times = [frame.time for frame in container.decode(stream)]
    assert times == pytest.approx([i / FPS for i in range(len(FRAMES))])


def test_an_existing_output_is_replaced_only_by_the_complete_new_one(tmp_path):
    out = tmp_path / "out.mp4"
    out.write_bytes(b"the previous recording")
    with Mp4Sink(out, fps=FPS) as sink:
        for i, frame in enumerate(FRAMES[:15]):
            sink.write(i, frame, IDS)
        assert out.read_bytes() == b"the previous recording"
    assert decodable(out) == 15 and sorted(p.name for p in tmp_path.iterdir()) == ["out.mp4"]


def test_a_killed_run_s_partial_file_is_never_overwritten(tmp_path):
    out, left_over = tmp_path / "out.mp4", tmp_path / "out.partial.mp4"
    left_over.write_bytes(b"what a killed run recorded")
    with Mp4Sink(out, fps=FPS) as sink:
        sink.write(0, FRAMES[0], IDS)
        assert sink.partial == tmp_path / "out.partial-1.mp4"
    assert left_over.read_bytes() == b"what a killed run recorded" and decodable(out) == 1


def test_matroska_is_recorded_in_clusters_and_finished_in_place(tmp_path):
    out = tmp_path / "out.mkv"
    with Mp4Sink(out, fps=FPS) as sink:
        for i, frame in enumerate(FRAMES):
            sink.write(i, frame, IDS)
        assert sink.partial.name == "out.partial.mkv"
        assert decodable(sink.partial) >= len(FRAMES) - 2 * FPS - 16
    assert decodable(out) == len(FRAMES) and not (tmp_path / "out.partial.mkv").exists()


# --- a full disk: one error line, what was written stays valid ----------------------------------------


def test_disk_full_mid_recording_keeps_the_fragments_before_it(tmp_path, disk_budget):
    out = tmp_path / "out.mp4"
    sink = Mp4Sink(out, fps=FPS)
    sink.write(0, FRAMES[0], IDS)
    disk_budget(6_000)  # room for the header and a fragment, then ENOSPC inside the next one
    with pytest.raises(OutputError) as info:
        for i, frame in enumerate(FRAMES[1:], start=1):
            sink.write(i, frame, IDS)
    message = str(info.value)
    assert "\n" not in message and "disk full (No space left on device)" in message
    assert f"kept in {sink.partial}" in message
    with pytest.raises(OutputError, match="write after a failed write"):
        sink.write(99, FRAMES[0], IDS)
    sink.close()  # no more writes, no error
    sink.close()
    assert not out.exists()
    top_level_boxes(sink.partial)  # cut back to whole boxes: the last one ends at the file's end
    assert 1 <= decodable(sink.partial) <= sink.frames_written


def test_disk_full_while_finishing_keeps_the_partial_recording(tmp_path, disk_budget):
    out = tmp_path / "out.mp4"
    sink = Mp4Sink(out, fps=FPS)
    for i, frame in enumerate(FRAMES):
        sink.write(i, frame, IDS)
    partial = sink.partial
    disk_budget(0)
    with pytest.raises(OutputError, match=r"while finishing it: disk full .* kept in .*out\.partial\.mp4"):
        sink.close()
    assert not out.exists() and decodable(partial) >= len(FRAMES) - 2 * FPS - 16
    top_level_boxes(partial)


def test_no_room_for_the_normal_copy_keeps_the_fragmented_file_as_the_output(tmp_path, monkeypatch, capsys):
    def full_disk(source, target, muxer):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(durable, "remux", full_disk)
    out = tmp_path / "out.mp4"
    with Mp4Sink(out, fps=FPS) as sink:
        for i, frame in enumerate(FRAMES):
            sink.write(i, frame, IDS)
    assert decodable(out) == len(FRAMES) and sorted(p.name for p in tmp_path.iterdir()) == ["out.mp4"]
    warning = capsys.readouterr().err.strip().splitlines()
    assert len(warning) == 1 and "kept as a fragmented MP4" in warning[0] and "disk full" in warning[0]


@pytest.mark.parametrize("sink_class", [MaskSink, FramesSink])
def test_disk_full_leaves_no_broken_image_under_a_final_name(tmp_path, disk_budget, sink_class):
    folder = tmp_path / "images"
    sink = sink_class(folder)
    sink.write(0, FRAMES[0], IDS)
    disk_budget(3 * len((folder / os.listdir(folder)[0]).read_bytes()) + 10)
    with pytest.raises(OutputError) as info:
        for i, frame in enumerate(FRAMES[1:], start=1):
            sink.write(i, frame, IDS + i)
    assert "\n" not in str(info.value) and "disk full" in str(info.value)
    names = sorted(os.listdir(folder))  # no temporary file left either
    assert len(names) == sink.frames_written and 2 <= len(names) < len(FRAMES)
    for name in names:
        assert cv2.imread(str(folder / name), cv2.IMREAD_UNCHANGED) is not None


def test_images_are_written_whole_by_rename(tmp_path):
    sink = MaskSink(tmp_path / "masks")
    sink.write(7, FRAMES[0], IDS + 3)
    mask = cv2.imread(str(tmp_path / "masks" / "000007.png"), cv2.IMREAD_UNCHANGED)
    assert mask.dtype == np.uint8 and mask.shape == IDS.shape and (mask == 3).all()
    assert os.listdir(tmp_path / "masks") == ["000007.png"]


def test_rtseg_run_on_a_full_disk_says_one_line_and_keeps_what_it_wrote(tmp_path, disk_budget):
    from band_model import make_band_package
    from conftest import write_video
    from test_cli_run import assert_one_line_error, rtseg_run

    package = make_band_package(tmp_path / "band", height=64, width=96)
    video = write_video(tmp_path / "in.mp4", FRAMES, fps=FPS)
    out, masks = tmp_path / "out" / "out.mp4", tmp_path / "out" / "masks"
    disk_budget(25_000)  # the masks and the recording share it
    result = rtseg_run(
        "--video", video, "--model", package.onnx_path, "--threads", 1, "--output", out, "--masks", masks
    )  # fmt: skip
    assert_one_line_error(result, "disk full (No space left on device)")
    assert not out.exists()
    names = os.listdir(masks)
    assert 1 <= len(names) < len(FRAMES) and all(name.endswith(".png") for name in names)
    assert all(cv2.imread(str(masks / name), cv2.IMREAD_UNCHANGED) is not None for name in names)
    partial = tmp_path / "out" / "out.partial.mp4"
    assert ("kept in" in result.stderr) == partial.exists()  # no fragment fitted: none kept, none left
    if partial.exists():
        top_level_boxes(partial)
        assert decodable(partial) <= len(names) + 1


def test_a_finished_recording_has_the_mode_the_umask_gives(tmp_path):
    """Like every other output (not 0600, as a private temporary file would have)."""
    old = os.umask(0o022)
    try:
        out = tmp_path / "out.mp4"
        with Mp4Sink(out, fps=FPS) as sink:
            sink.write(0, FRAMES[0], IDS)
        assert stat.S_IMODE(out.stat().st_mode) == 0o644
    finally:
        os.umask(old)
