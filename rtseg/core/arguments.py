"""Values a caller gives (the Python API, the CLI, a config), checked where they enter: an
InputError that names the argument, never a ValueError, TypeError, OverflowError or MemoryError
from deep inside (numpy, protobuf, onnxruntime).

    count = integer("max_batch", value, 1, INT32_MAX)
    height, width = size_hw("size", (360, 480))
    mean = channel_triple("mean", (0.485, 0.456, 0.406))
"""

from __future__ import annotations

import math
import numbers
import os

from rtseg.errors import InputError

INT32_MAX = 2**31 - 1
UINT64_MAX = 2**64 - 1
MAX_SIDE = 8192  # pixels: a model input larger than 8K a side is a typo, and would not fit in memory


def integer(name: str, value, low: int | None = None, high: int | None = None) -> int:
    """`value` as an int within low..high (either may be None); InputError naming `name`."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise InputError(f"{name} must be an integer, got {value!r}")
    value = int(value)
    if (low is not None and value < low) or (high is not None and value > high):
        bounds = f"{low if low is not None else '...'}..{high if high is not None else '...'}"
        raise InputError(f"{name} must be within {bounds}, got {value}")
    return value


def number(name: str, value, low: float | None = None, high: float | None = None) -> float:
    """`value` as a finite float within low..high; InputError naming `name`."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or not math.isfinite(value):
        raise InputError(f"{name} must be a finite number, got {value!r}")
    value = float(value)
    if (low is not None and value < low) or (high is not None and value > high):
        raise InputError(f"{name} must be within {_bound(low)}..{_bound(high)}, got {value}")
    return value


def _bound(value) -> str:
    return "..." if value is None else f"{value:g}"


def size_hw(name: str, value, limit: int = MAX_SIDE) -> tuple[int, int]:
    """(height, width): two integers in 1..limit; InputError naming `name` otherwise."""
    if isinstance(value, str | bytes) or not hasattr(value, "__len__") or len(value) != 2:
        raise InputError(f"{name} must be (height, width), two integers, got {value!r}")
    return integer(f"{name} height", value[0], 1, limit), integer(f"{name} width", value[1], 1, limit)


def channel_triple(name: str, value) -> tuple[float, float, float]:
    """Three finite numbers, one per colour channel; InputError naming `name` otherwise."""
    if isinstance(value, str | bytes) or not hasattr(value, "__len__") or len(value) != 3:
        raise InputError(f"{name} must be 3 numbers (one per channel), got {value!r}")
    return tuple(number(f"{name}[{i}]", v) for i, v in enumerate(value))


def model_input(size, mean, std, size_required: bool = False) -> tuple:
    """(size or None, mean, std) of a model's float input, checked (see size_hw, channel_triple)."""
    if size is None and size_required:
        raise InputError("size must be (height, width), two integers, got None")
    checked = None if size is None else size_hw("size", size)
    return checked, channel_triple("mean", mean), channel_triple("std", std)


def positive_integer(name: str, value) -> int:
    """`value` as an int >= 1; InputError 'NAME must be a positive integer, got ...'."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < 1:
        raise InputError(f"{name} must be a positive integer, got {value!r}")
    return int(value)


def check_run_values(alpha=None, max_frames=None, threads=None, fps=None) -> None:
    """The numbers of a run (rtseg run / rtseg.run), each checked when given: alpha in 0..1,
    max_frames and threads positive integers, fps a positive number; InputError naming the
    first that is not."""
    if alpha is not None:
        number("alpha", alpha, 0.0, 1.0)
    for name, value in (("max_frames", max_frames), ("threads", threads)):
        if value is not None:
            positive_integer(name, value)
    if fps is not None and number("fps", fps) <= 0:
        raise InputError(f"fps must be positive, got {fps}")


def user_default(value: str | None, variable: str, choices: tuple[str, ...], what: str) -> str:
    """`value`, else the environment's `$variable`, else "auto" (lower case); InputError for a
    word not in `choices`. The one place the user-level defaults of the environment
    (`$RTSEG_DECODER`, `$RTSEG_OPENVINO_PRECISION`) are read: a run's, eval's and the bench's
    configurations call it, and pass the word down explicitly."""
    word = (value or os.environ.get(variable) or "auto").lower()
    if word not in choices:
        raise InputError(f"unknown {what} {word!r} (use {', '.join(choices)})")
    return word
