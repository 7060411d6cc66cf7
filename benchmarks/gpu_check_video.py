"""NVDEC decode and NVENC encode rates for the GPU check (benchmarks/gpu_check.py), at 960x540
and 1920x1080, through PyAV's own FFmpeg (h264_cuvid, h264_nvenc: no other dependency), beside
the CPU's h264 decoder and libx264. The 1920x1080 clip is made from the 960x540 dashcam clip on
the machine itself (nothing more to carry).

A decoder or encoder that cannot open is recorded with the reason; `require_gpu_codecs` makes
that a failure on a GPU machine (where NVDEC and NVENC must work), not in the dry mode.
"""

from __future__ import annotations

import tempfile
import time
from fractions import Fraction
from pathlib import Path

SIZES = {"960x540": (540, 960), "1920x1080": (1080, 1920)}  # name -> (height, width)
CLIP_FRAMES = 240


class CodecUnavailable(Exception):
    """PyAV is missing, or the clip to measure on is."""


def _av():
    try:
        import av
    except ImportError as exc:
        raise CodecUnavailable("PyAV is not installed: bring its wheel (gpu_check.sh --wheels DIR)") from exc
    return av


def clip_at(source: Path, size: tuple[int, int], frames: int = CLIP_FRAMES) -> Path:
    """`source` itself at its own size, else up to `frames` of its frames scaled to `size`
    (height, width) and encoded with libx264 (crf 18) into a temporary folder, made once."""
    av = _av()
    if not source.is_file():
        raise CodecUnavailable(f"no clip at {source}")
    with av.open(str(source)) as probe:
        stream = probe.streams.video[0]
        if (stream.height, stream.width) == size:
            return source
    out = Path(tempfile.gettempdir()) / f"rtseg-gpu-check-{size[1]}x{size[0]}-{frames}.mp4"
    if out.is_file():
        return out
    partial = out.with_suffix(".partial.mp4")
    with av.open(str(source)) as src, av.open(str(partial), "w") as dst:
        stream = dst.add_stream("libx264", rate=25, options={"preset": "veryfast", "crf": "18"})
        stream.height, stream.width, stream.pix_fmt = *size, "yuv420p"
        for index, frame in enumerate(src.decode(video=0)):
            if index == frames:
                break
            scaled = frame.reformat(width=size[1], height=size[0], format="yuv420p")
            dst.mux(stream.encode(scaled))
        dst.mux(stream.encode(None))
    partial.replace(out)
    return out


def decode_rate(clip: Path, decoder: str, limit: int | None = None) -> dict:
    """Frames per second decoding `clip` with `decoder` ("cpu" or "nvdec", rtseg.video.hw_decode:
    the fallback to the CPU is taken and reported as such), frames left in the decoder's format."""
    from rtseg.video.hw_decode import choose_decoder

    av = _av()
    with av.open(str(clip)) as container:
        stream = container.streams.video[0]
        stream.thread_type = "AUTO"
        context = choose_decoder(stream, decoder, clip.name)
        count, start = 0, time.perf_counter()
        for packet in container.demux(stream):
            count += len(context.decode(packet) if packet.size else context.decode(None))
            if limit and count >= limit:
                break
        seconds = time.perf_counter() - start
        return {"decoder": context.name, "frames": count, "fps": round(count / seconds, 1)}


def encode_rate(clip: Path, codec: str, limit: int | None = None) -> dict:
    """Frames per second encoding `clip`'s frames (decoded first, kept in memory) with `codec`
    ("libx264" ultrafast, or "h264_nvenc" p4) into an MP4 in a temporary folder; the reason
    when the encoder cannot open here."""
    from rtseg.video.encoders import NVENC_OPTIONS, X264_OPTIONS

    av = _av()
    with av.open(str(clip)) as container:
        frames = [f for _, f in zip(range(limit or CLIP_FRAMES), container.decode(video=0))]
    options = dict(NVENC_OPTIONS if codec == "h264_nvenc" else X264_OPTIONS)
    with tempfile.TemporaryDirectory(prefix="rtseg-gpu-check-enc-") as tmp:
        try:
            with av.open(f"{tmp}/out.mp4", "w") as out:
                stream = out.add_stream(codec, rate=25, options=options)
                stream.height, stream.width, stream.pix_fmt = frames[0].height, frames[0].width, "yuv420p"
                stream.codec_context.time_base = Fraction(1, 25)
                stream.codec_context.open()
                start = time.perf_counter()
                for frame in frames:
                    frame.pts = None
                    out.mux(stream.encode(frame))
                out.mux(stream.encode(None))
                seconds = time.perf_counter() - start
        except av.error.FFmpegError as exc:
            return {"encoder": codec, "opened": False, "reason": str(getattr(exc, "strerror", exc))}
        size = Path(f"{tmp}/out.mp4").stat().st_size
    return {"encoder": codec, "opened": True, "frames": len(frames), "fps": round(len(frames) / seconds, 1),
            "bytes": size}  # fmt: skip


def codec_rates(
    source: Path, limit: int | None, require_gpu_codecs: bool, clip_frames: int = CLIP_FRAMES
) -> dict:
    """Decode and encode rates at each of SIZES (clips of `clip_frames`, at most `limit` frames
    measured), CPU and NVIDIA side by side. RuntimeError when `require_gpu_codecs` and NVDEC
    fell back to the CPU or NVENC did not open."""
    results = {}
    for name, size in SIZES.items():
        clip = clip_at(source, size, clip_frames)
        decode = {which: decode_rate(clip, which, limit) for which in ("cpu", "nvdec")}
        encode = {codec: encode_rate(clip, codec, limit) for codec in ("libx264", "h264_nvenc")}
        results[name] = {"decode": decode, "encode": encode, "clip": clip.name}
        if require_gpu_codecs and (
            not decode["nvdec"]["decoder"].endswith("_cuvid") or not encode["h264_nvenc"]["opened"]
        ):
            raise RuntimeError(
                f"{name}: NVDEC ran as {decode['nvdec']['decoder']}, NVENC {encode['h264_nvenc']}"
            )
    return results
