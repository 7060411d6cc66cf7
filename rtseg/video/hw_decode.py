"""Which decoder a video stream is read with: FFmpeg's software decoder (the CPU) or NVIDIA's
NVDEC through FFmpeg's `*_cuvid` decoders, which PyAV's own wheel carries (no new dependency).

`decoder`: "auto" (NVDEC where an NVIDIA device is present and FFmpeg has a cuvid decoder for
the codec), "cpu", or "nvdec"; None is "auto" (a run's `$RTSEG_DECODER` default is read by its
configuration, rtseg.assembly.config, and passed down from there). NVDEC that cannot
open (no GPU, no driver libraries, an unsupported profile) falls back to the CPU decoder with
one warning line; so does one that fails on the first packet (nothing is lost: that packet is
decoded again on the CPU). The cuvid decoders hand back NV12 frames in host memory.
"""

from __future__ import annotations

from rtseg.core.gpu import nvidia_device_present
from rtseg.core.notices import warn_once
from rtseg.errors import InputError

DECODERS = ("auto", "cpu", "nvdec")
DECODER_ENV = "RTSEG_DECODER"
# FFmpeg's software decoder name -> its NVDEC twin
NVDEC_OF = {
    "h264": "h264_cuvid",
    "hevc": "hevc_cuvid",
    "av1": "av1_cuvid",
    "vp9": "vp9_cuvid",
    "vp8": "vp8_cuvid",
    "mpeg2video": "mpeg2_cuvid",
    "mpeg4": "mpeg4_cuvid",
    "mjpeg": "mjpeg_cuvid",
}


def decoder_choice(decoder: str | None = None) -> str:
    """`decoder`, else "auto"; InputError for an unknown word."""
    word = (decoder or "auto").lower()
    if word not in DECODERS:
        raise InputError(f"unknown decoder {word!r} (use {', '.join(DECODERS)})")
    return word


def nvdec_name(codec: str) -> str | None:
    """The cuvid decoder for FFmpeg codec `codec` when this FFmpeg has it, else None."""
    import av

    name = NVDEC_OF.get(codec)
    return name if name is not None and name in av.codecs_available else None


def wants_nvdec(choice: str, codec: str) -> str | None:
    """The cuvid decoder to try for `choice` ("auto" / "cpu" / "nvdec") and `codec`, else None.
    "nvdec" for a codec NVDEC does not decode warns and returns None (the CPU decodes it)."""
    if choice == "cpu":
        return None
    name = nvdec_name(codec)
    if choice == "auto":
        return name if name is not None and nvidia_device_present() else None
    if name is None:
        warn_once(f"--decoder nvdec: no NVDEC decoder for {codec}; decoding on the CPU")
    return name


def open_nvdec(stream, name: str, source: str):
    """An opened cuvid CodecContext for `stream` (its extradata copied), or None after one
    warning line when it cannot open here."""
    import av

    try:
        context = av.CodecContext.create(name, "r")
        if stream.codec_context.extradata:
            context.extradata = stream.codec_context.extradata
        context.open()
    except av.error.FFmpegError as exc:
        warn_once(f"{source}: NVDEC ({name}) cannot open ({ffmpeg_reason(exc)}); decoding on the CPU")
        return None
    return context


def choose_decoder(stream, decoder: str | None, source: str):
    """The CodecContext to decode `stream` with: a cuvid one (see the module doc) or the
    stream's own (the CPU)."""
    name = wants_nvdec(decoder_choice(decoder), stream.codec_context.name)
    context = open_nvdec(stream, name, source) if name is not None else None
    return context if context is not None else stream.codec_context


def ffmpeg_reason(error: Exception) -> str:
    """FFmpeg's text of an error, without PyAV's errno and call decoration."""
    return getattr(error, "strerror", None) or str(error)
