"""Which H.264 encoder an MP4 is written with, and its options: "auto" picks h264_nvenc when it
opens here, else libx264; `--preset` / `--crf` are mapped to the chosen encoder's own words.
Every check is an OutputError line before anything is opened."""

from __future__ import annotations

from fractions import Fraction

from rtseg.core.gpu import nvidia_device_present
from rtseg.core.notices import warn_once
from rtseg.errors import OutputError

# Real-time default: ultrafast spends about a third of veryfast's CPU per frame for files about
# twice as large at the same crf (the same or better PSNR); on a machine where the encoder
# shares the cores with inference that is frames per second. `--preset` / `--crf` trade back.
X264_OPTIONS = {"preset": "ultrafast", "crf": "23"}
X264_PRESETS = (
    *("ultrafast", "superfast", "veryfast", "faster", "fast"),
    *("medium", "slow", "slower", "veryslow"),
)
NVENC_OPTIONS = {"preset": "p4", "rc": "vbr", "cq": "23"}
NVENC_PRESETS = tuple(f"p{i}" for i in range(1, 8))
# a preset named for the other encoder: its nearest speed / quality step
NVENC_FOR_X264 = dict(zip(X264_PRESETS, ("p1", "p1", "p2", "p3", "p4", "p5", "p6", "p7", "p7")))
X264_FOR_NVENC = dict(zip(NVENC_PRESETS, X264_PRESETS[:7]))
_encoder_probe_cache: dict[tuple[str, int, int], bool] = {}


def encoder_opens(codec: str, width: int, height: int) -> bool:
    """Whether `codec` can encode (width, height) yuv420p here (h264_nvenc needs an NVENC GPU).

    Listed is not enough: PyAV's FFmpeg lists h264_nvenc on every machine, and opening it fails
    without an NVENC-capable GPU and driver. Cached per (codec, size).
    """
    import av

    key = (codec, width, height)
    if key not in _encoder_probe_cache:
        try:
            context = av.CodecContext.create(codec, "w")
            context.width, context.height, context.pix_fmt = width, height, "yuv420p"
            context.time_base = Fraction(1, 25)
            context.framerate = Fraction(25)
            context.open()
            _encoder_probe_cache[key] = True
        except (av.error.FFmpegError, ValueError):
            _encoder_probe_cache[key] = False
    return _encoder_probe_cache[key]


def check_encoder(codec: str, what: object = "--codec") -> None:
    """OutputError unless `codec` is "auto" or a video encoder FFmpeg has here (an audio or
    subtitle encoder, a decoder-only name or a typo is refused before anything is opened)."""
    if codec == "auto":
        return
    import av

    try:
        found = av.codec.Codec(codec, "w")
    except (av.error.FFmpegError, ValueError, KeyError):
        found = None
    if found is None or found.type != "video":
        kind = f"an encoder of {found.type}, not video" if found else "not an encoder FFmpeg has here"
        raise OutputError(f"{what}: '{codec}' is {kind}; use auto, libx264 or h264_nvenc")


def choose_encoder(codec: str, width: int, height: int) -> tuple[str, dict[str, str]]:
    """(encoder name, its options). "auto": h264_nvenc when it is listed and opens, else libx264."""
    import av

    if codec == "auto":
        if "h264_nvenc" in av.codecs_available and encoder_opens("h264_nvenc", width, height):
            return "h264_nvenc", dict(NVENC_OPTIONS)
        if nvidia_device_present():  # an NVIDIA GPU that should have taken it: say why not
            warn_once(f"NVENC (h264_nvenc) cannot open at {width}x{height}; encoding with libx264 on the CPU")
        return "libx264", dict(X264_OPTIONS)
    options = {"libx264": X264_OPTIONS, "h264_nvenc": NVENC_OPTIONS}.get(codec, {})
    return codec, dict(options)


def check_encoder_settings(preset: str | None, crf: int | None) -> None:
    """OutputError unless `preset` is an x264 preset or an NVENC p1..p7 and crf is 0..51."""
    if preset is not None and preset not in X264_PRESETS + NVENC_PRESETS:
        raise OutputError(
            f"unknown encoder preset '{preset}' (x264: {', '.join(X264_PRESETS)}; NVENC: p1..p7)"
        )
    if crf is not None and not 0 <= crf <= 51:
        raise OutputError(f"crf must be within 0..51, got {crf}")


def apply_encoder_settings(codec: str, options: dict, preset: str | None, crf: int | None) -> dict:
    """`options` with `preset` / `crf` set the way `codec` names them (NVENC: p1..p7, cq)."""
    options = dict(options)
    if codec == "h264_nvenc":
        if preset is not None:
            options["preset"] = NVENC_FOR_X264.get(preset, preset)
        if crf is not None:
            options["cq"] = str(crf)
    else:
        if preset is not None:
            options["preset"] = X264_FOR_NVENC.get(preset, preset)
        if crf is not None:
            options["crf"] = str(crf)
    return options
