"""Benchmark configuration and the parsing of its command-line strings."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from rtseg.core.arguments import user_default
from rtseg.core.frames import parse_size
from rtseg.core.package import PRECISIONS, VARIANTS
from rtseg.core.paths import require_file
from rtseg.errors import InputError
from rtseg.loading import BACKENDS, DEVICES
from rtseg.runtime.openvino_backend import OPENVINO_PRECISIONS, PRECISION_ENV
from rtseg.video.hw_decode import DECODER_ENV, DECODERS

# Precisions a benchmark can name: the package precisions plus the `int8cpu` variant (INT8
# quantized for ONNX Runtime's CPU provider; its sidecar says int8).
BENCH_PRECISIONS = PRECISIONS + tuple(v for v in VARIANTS if v not in PRECISIONS)

E2E_OUTPUTS = ("mp4", "none")
E2E_SELECTIONS = ("fastest", "all", "none")


@dataclass(frozen=True)
class DataSpec:
    """A labelled dataset split: `camvid:DIR:SPLIT`."""

    name: str
    root: Path
    split: str


@dataclass(frozen=True)
class BenchConfig:
    """What `rtseg bench` measures. Sizes are (height, width); an empty tuple means the
    package's own input size.

    `e2e_combos`: "fastest" (each backend and size at its fastest precision, batch 1),
    "all", "none", or "backend:precision" pairs such as ("onnxruntime:fp32", "torch:fp32").
    """

    model: Path
    backends: tuple[str, ...] = BACKENDS
    precisions: tuple[str, ...] = BENCH_PRECISIONS
    sizes: tuple[tuple[int, int], ...] = ()
    video: Path | None = None
    data: DataSpec | None = None
    data_limit: int | None = None
    agreement_frames: int = 16
    iters: int = 50
    warmup: int = 10
    batch: int = 8
    threads: int = 2
    device: str = "auto"  # rtseg.loading.DEVICES, for every backend measured
    openvino_precision: str | None = None  # None: the run's default (rtseg.assembly.config)
    decoder: str | None = None  # the end-to-end row's video decoder; None: the run's default
    e2e_output: str = "mp4"
    e2e_combos: tuple[str, ...] = ("fastest",)
    cache_dir: Path | None = None
    timeout_s: float = 1800.0
    json_path: Path | None = None  # the rows written as JSON / CSV / a PNG plot (rtseg.bench.outputs)
    csv_path: Path | None = None
    plot_path: Path | None = None

    def __post_init__(self):
        for name in ("iters", "agreement_frames", "threads"):
            if getattr(self, name) < 1:
                raise InputError(f"--{name.replace('_', '-')} must be at least 1")
        if self.warmup < 0 or self.batch < 0:
            raise InputError("--warmup and --batch cannot be negative")
        if self.data_limit is not None and self.data_limit < 1:
            raise InputError("--data-limit must be at least 1")
        if self.device not in DEVICES:
            raise InputError(f"--device must be one of {', '.join(DEVICES)}")
        precision = user_default(
            self.openvino_precision, PRECISION_ENV, OPENVINO_PRECISIONS, "OpenVINO precision"
        )
        object.__setattr__(self, "openvino_precision", precision)  # the same defaults as a run's
        object.__setattr__(self, "decoder", user_default(self.decoder, DECODER_ENV, DECODERS, "decoder"))
        if self.e2e_output not in E2E_OUTPUTS:
            raise InputError(f"--e2e-output must be one of {', '.join(E2E_OUTPUTS)}")
        if self.video is not None:
            require_file(self.video, "video")


def parse_choices(text: str, allowed: tuple[str, ...], option: str) -> tuple[str, ...]:
    """ "a,b" -> ("a", "b"), each checked against `allowed`, order kept, duplicates dropped."""
    items = tuple(dict.fromkeys(p.strip().lower() for p in text.split(",") if p.strip()))
    if not items:
        raise InputError(f"{option} is empty; choose from {', '.join(allowed)}")
    unknown = [p for p in items if p not in allowed]
    if unknown:
        raise InputError(f"{option}: unknown {', '.join(unknown)}; choose from {', '.join(allowed)}")
    return items


def parse_sizes(text: str | None) -> tuple[tuple[int, int], ...]:
    if not text:
        return ()
    return tuple(dict.fromkeys(parse_size(p, "--sizes") for p in text.split(",") if p.strip()))


def parse_data_spec(text: str | None) -> DataSpec | None:
    """ "camvid:DIR:SPLIT" -> DataSpec (DIR may itself contain colons)."""
    if not text:
        return None
    name, sep, rest = text.partition(":")
    root, sep2, split = rest.rpartition(":")
    if not sep or not sep2 or not name or not root or not split:
        raise InputError(f"--data {text!r} is not NAME:DIR:SPLIT (e.g. camvid:data/camvid:val)")
    if not Path(root).is_dir():
        problem = "is not a folder" if Path(root).exists() else "does not exist"
        raise InputError(f"--data: dataset folder {root} {problem}")
    return DataSpec(name.lower(), Path(root), split)


def parse_e2e_combos(text: str | None) -> tuple[str, ...]:
    """ "fastest" | "all" | "none" | "backend:precision,..." -> a tuple (see BenchConfig)."""
    if not text:
        return ("fastest",)
    items = tuple(p.strip().lower() for p in text.split(",") if p.strip())
    if len(items) == 1 and items[0] in E2E_SELECTIONS:
        return items
    for item in items:
        backend, _, precision = item.partition(":")
        if backend not in BACKENDS or precision not in BENCH_PRECISIONS:
            raise InputError(
                f"--e2e-combos: {item!r} is not BACKEND:PRECISION (or one of {', '.join(E2E_SELECTIONS)})"
            )
    return items
