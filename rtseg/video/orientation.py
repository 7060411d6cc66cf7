"""Turn decoded frames upright as players show them, from the stream's display matrix.

Phones and many dashcams store frames sideways and say in the container how to show them: a
display matrix (MP4 `tkhd`, the H.264/HEVC display orientation SEI), which FFmpeg hands out as
`DISPLAYMATRIX` side data on each decoded frame. Players apply it; a decoder does not. This
module reads it and applies the same transform as FFmpeg's own autorotation (fftools'
`get_rotation` + `transpose` / `hflip` / `vflip`), so a frame comes out as a player shows it.

The matrix is 9 int32 in FFmpeg's `AV_FRAME_DATA_DISPLAYMATRIX` layout (16.16 fixed point; see
libavutil/display.h); only quarter turns and mirrors are applied, as FFmpeg does without its
`rotate` filter. Frames are `(H, W, 3) uint8 RGB`; a quarter turn gives `(W, H, 3)`.
"""

from __future__ import annotations

import math

import cv2
import numpy as np

# transform name -> function of a (H, W, 3) array returning a C-contiguous array
TRANSFORMS = {
    "identity": lambda rgb: rgb,
    "rotate_cw": lambda rgb: cv2.rotate(rgb, cv2.ROTATE_90_CLOCKWISE),
    "rotate_ccw": lambda rgb: cv2.rotate(rgb, cv2.ROTATE_90_COUNTERCLOCKWISE),
    "rotate_180": lambda rgb: cv2.rotate(rgb, cv2.ROTATE_180),
    "hflip": lambda rgb: cv2.flip(rgb, 1),
    "vflip": lambda rgb: cv2.flip(rgb, 0),
    "transpose": lambda rgb: cv2.transpose(rgb),  # FFmpeg transpose=cclock_flip
    "antitranspose": lambda rgb: cv2.rotate(cv2.transpose(rgb), cv2.ROTATE_180),  # clock_flip
}


def rotation_ccw(matrix) -> float | None:
    """Counter-clockwise display rotation in degrees, (-180, 180] (av_display_rotation_get);
    None for a degenerate matrix."""
    a, b, _, c, d = (v / 65536.0 for v in matrix[:5])
    scale_x, scale_y = math.hypot(a, c), math.hypot(b, d)
    if scale_x == 0.0 or scale_y == 0.0:
        return None
    return -math.degrees(math.atan2(b / scale_y, a / scale_x))


def display_transform(matrix) -> str | None:
    """The name (a key of TRANSFORMS) of what a player does to show a frame with this display
    matrix, or None when it asks for a rotation that is not a quarter turn (not applied)."""
    ccw = rotation_ccw(matrix)
    if ccw is None:
        return "identity"
    theta = -round(ccw)  # clockwise degrees to turn, as fftools' get_rotation
    theta -= 360 * math.floor(theta / 360 + 0.9 / 360)
    m0, m3, m4 = matrix[0], matrix[3], matrix[4]
    if abs(theta - 90) < 1.0:
        return "transpose" if m3 > 0 else "rotate_cw"
    if abs(theta - 180) < 1.0:
        return {(True, True): "rotate_180", (True, False): "hflip", (False, True): "vflip"}.get(
            (m0 < 0, m4 < 0), "identity"
        )
    if abs(theta - 270) < 1.0:
        return "antitranspose" if m3 < 0 else "rotate_ccw"
    if abs(theta) > 1.0:
        return None
    return "vflip" if m4 < 0 else "identity"


def frame_display_matrix(frame) -> tuple[int, ...] | None:
    """The 9 int32 of a PyAV VideoFrame's DISPLAYMATRIX side data, or None when it has none."""
    side_data = frame.side_data
    if not side_data:
        return None
    import av.sidedata.sidedata as sd

    entry = side_data.get(sd.Type.DISPLAYMATRIX)
    if entry is None:
        return None
    values = np.frombuffer(bytes(entry), "=i4")
    return tuple(int(v) for v in values) if values.size == 9 else None


def apply_transform(rgb: np.ndarray, name: str) -> np.ndarray:
    """`(H, W, 3) uint8` (or `(H, W)`) -> the same picture turned by TRANSFORMS[name], C-contiguous."""
    return TRANSFORMS[name](rgb)


# 8-bit pixel formats whose planes all subsample both axes alike: each plane turns on its own.
# value: channels per plane
_TURNABLE_FORMATS = {
    "yuv420p": (1, 1, 1),
    "yuvj420p": (1, 1, 1),
    "yuv444p": (1, 1, 1),
    "yuvj444p": (1, 1, 1),
    "gbrp": (1, 1, 1),
    "gray": (1,),
    "nv12": (1, 2),
    "rgb24": (3,),
    "bgr24": (3,),
}
_HALF_SIZE_CHROMA = {"yuv420p", "yuvj420p", "nv12"}


def turn_video_frame(frame, name: str):
    """An av.VideoFrame turned by TRANSFORMS[name] in its own pixel format (no colour
    conversion: the picture then takes the same path as an upright one), or None when the
    format cannot be turned plane by plane (4:2:2, odd sizes of subsampled formats, > 8 bits)."""
    import av

    from rtseg.video.decoded import plane_view

    channels = _TURNABLE_FORMATS.get(frame.format.name)
    odd = frame.width % 2 or frame.height % 2
    if channels is None or (frame.format.name in _HALF_SIZE_CHROMA and odd):
        return None
    quarter = name in ("rotate_cw", "rotate_ccw", "transpose", "antitranspose")
    width, height = (frame.height, frame.width) if quarter else (frame.width, frame.height)
    turned = av.VideoFrame(width, height, frame.format.name)
    for index, count in enumerate(channels):
        np.copyto(plane_view(turned, index, count), apply_transform(plane_view(frame, index, count), name))
    return turned
