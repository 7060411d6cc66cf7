"""What a run was asked to do: small frozen sub-configs, each field one `rtseg run` option.

`EngineConfig` (the model and the engine that runs it), `InputConfig` (how the sources are
read), `OutputConfig` (what is written or shown) and `DrawingConfig` (how frames are drawn)
compose `RunConfig`. rtseg.cli.options makes one click option of each field (its name, its
default), `rtseg batch` ships the same sub-configs to its workers, and `RunConfig.of(source,
**options)` builds a run from the flat keywords `rtseg.run` and the CLI take.

`decoder` and `openvino_precision` None take the user-level default from the environment
(`$RTSEG_DECODER`, `$RTSEG_OPENVINO_PRECISION`, else "auto", read by
rtseg.core.arguments.user_default and nowhere else); the resolved word is passed down explicitly
to `open_source` and `open_model`, and `rtseg batch` ships it to its workers.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path

from rtseg.core.arguments import check_run_values, user_default
from rtseg.errors import InputError
from rtseg.loading import BACKEND_CHOICES, engine_of_file
from rtseg.runtime.openvino_backend import OPENVINO_PRECISIONS, PRECISION_ENV
from rtseg.video.hw_decode import DECODER_ENV, DECODERS
from rtseg.viz import MODES, VizConfig

MODE_CHOICES = MODES


def _paths(config, names: tuple[str, ...]) -> None:
    """str or PathLike fields from Python callers -> Path (None stays None)."""
    for name in names:
        value = getattr(config, name)
        if value is not None and not isinstance(value, Path):
            object.__setattr__(config, name, Path(value))


@dataclass(frozen=True)
class EngineConfig:
    """The model and the engine that runs it.

    model: a model package `.onnx` / `.json`, a checkpoint (torch backend) or an `.engine`;
        None: the bundled default model for `backend`.
    backend: rtseg.loading.BACKEND_CHOICES ("auto": rtseg.loading.choose_backend).
    device: where the model runs (rtseg.loading.DEVICES): "auto" (the best this machine has),
        "cpu", "cuda", or "tensorrt" (ONNX Runtime's TensorRT provider).
    threads: CPU threads for the backend (None: the backend's own choice).
    openvino_precision: what OpenVINO computes in (OPENVINO_PRECISIONS; None: the environment's
        `$RTSEG_OPENVINO_PRECISION`, else "auto").
    """

    model: Path | None = None
    backend: str = "auto"
    device: str = "auto"
    threads: int | None = None
    openvino_precision: str | None = None
    # Not an option: whether `openvino_precision` was asked for rather than the environment's
    # default (None: worked out from it), kept through dataclasses.replace and pickling.
    precision_given: bool | None = field(default=None, metadata={"internal": True})

    def __post_init__(self):
        _paths(self, ("model",))
        if self.backend not in BACKEND_CHOICES:
            raise InputError(f"unknown backend {self.backend!r} (use {', '.join(BACKEND_CHOICES)})")
        check_run_values(threads=self.threads)
        if self.precision_given is None:
            given = self.openvino_precision is not None and self.openvino_precision.lower() != "auto"
            object.__setattr__(self, "precision_given", given)
        precision = user_default(
            self.openvino_precision, PRECISION_ENV, OPENVINO_PRECISIONS, "OpenVINO precision"
        )
        object.__setattr__(self, "openvino_precision", precision)
        self._check_precision_backend()

    def _check_precision_backend(self) -> None:
        """An OpenVINO precision asked for (not the environment's default) on a model or backend
        that runs elsewhere: InputError, rather than a flag silently ignored."""
        if not self.precision_given:
            return
        runs_on = self.backend if self.backend != "auto" else engine_of_file(self.model) or "auto"
        if runs_on not in ("auto", "openvino"):
            raise InputError(
                f"--openvino-precision {self.openvino_precision} is for the OpenVINO backend; "
                f"this model runs on {runs_on} (drop the option, or pass --backend openvino)"
            )


@dataclass(frozen=True)
class InputConfig:
    """How each source is read.

    max_frames: read at most this many frames (of each source). realtime: pace a file at its
    frame rate (a live stand-in). fps: frame rate of a frames folder (and the MP4).
    strict: the first input damage (corrupt packet, undecodable frame, file cut short) is an
        InputError; by default it is decoded through, counted and reported in the stats.
    decoder: rtseg.video.hw_decode.DECODERS (None: `$RTSEG_DECODER`, else "auto").
    """

    max_frames: int | None = None
    realtime: bool = False
    fps: float | None = None
    strict: bool = False
    decoder: str | None = None

    def __post_init__(self):
        check_run_values(max_frames=self.max_frames, fps=self.fps)
        object.__setattr__(self, "decoder", user_default(self.decoder, DECODER_ENV, DECODERS, "decoder"))


@dataclass(frozen=True)
class OutputConfig:
    """What the run writes or shows.

    output / masks / save_frames: annotated MP4; class-id PNGs (`000000.png`, pixel = id) at
        each frame's size; annotated JPEG frames. With several sources each is a pattern with
        `{index}` or `{name}`. show: a window (main thread); its s key writes snapshots into
        snapshot_dir. stats_json: the summary as JSON.
    codec / preset / crf: the MP4 encoder ("auto": NVENC where it opens, else libx264), its
        speed preset (None: real-time ultrafast; x264 names or NVENC p1..p7) and quality
        (None: 23; x264 crf / NVENC cq, lower is better and larger).
    quiet: no progress bar and no header line.
    """

    output: Path | None = None
    masks: Path | None = None
    save_frames: Path | None = None
    show: bool = False
    snapshot_dir: Path = Path(".")
    stats_json: Path | None = None
    codec: str = "auto"
    preset: str | None = None
    crf: int | None = None
    quiet: bool = False

    def __post_init__(self):
        _paths(self, ("output", "masks", "save_frames", "snapshot_dir", "stats_json"))


@dataclass(frozen=True)
class DrawingConfig:
    """How frames are drawn: mode ("overlay", "mask", "side-by-side"), alpha (0..1), legend,
    hud (the fps | latency line; None: on with a window, off for files)."""

    mode: str = "overlay"
    alpha: float = 0.5
    legend: bool = True
    hud: bool | None = None

    def __post_init__(self):
        check_run_values(self.alpha)
        if self.mode not in MODE_CHOICES:
            raise InputError(f"unknown mode {self.mode!r} (use {', '.join(MODE_CHOICES)})")

    def viz(self, show: bool) -> VizConfig:
        """The Visualizer's configuration; the HUD follows `show` unless `hud` says."""
        return VizConfig(
            mode=self.mode, alpha=self.alpha, legend=self.legend, hud=show if self.hud is None else self.hud
        )


SUB_CONFIGS = {
    "engine": EngineConfig,
    "input": InputConfig,
    "outputs": OutputConfig,
    "drawing": DrawingConfig,
}


@dataclass(frozen=True)
class RunConfig:
    """Everything one run of the pipeline was asked to do (`rtseg run`'s options).

    source_uri: what `open_source` takes: a video file, a frames folder or glob, a camera index
        or device ("0", "/dev/video0"), a stream URL (rtsp://...) or "lavfi:<graph>".
    engine / input / outputs / drawing: the sub-configs (see each).
    """

    source_uri: str
    engine: EngineConfig = field(default_factory=EngineConfig)
    input: InputConfig = field(default_factory=InputConfig)
    outputs: OutputConfig = field(default_factory=OutputConfig)
    drawing: DrawingConfig = field(default_factory=DrawingConfig)

    def __post_init__(self):
        object.__setattr__(self, "source_uri", str(self.source_uri))

    @classmethod
    def of(cls, source_uri, **options) -> RunConfig:
        """A run from flat keywords, each a field of one sub-config (`rtseg.run`'s and the CLI's
        options): `RunConfig.of("a.mp4", output="o.mp4", device="cpu")`. TypeError for a keyword
        no sub-config has."""
        return cls(source_uri, **split_options(options))


def option_fields() -> dict[str, dataclasses.Field]:
    """Every run option: field name -> its dataclass Field, over all sub-configs (names unique;
    fields marked internal are bookkeeping, not options)."""
    fields = (f for sub in SUB_CONFIGS.values() for f in dataclasses.fields(sub))
    return {f.name: f for f in fields if not f.metadata.get("internal")}


def split_options(options: dict) -> dict:
    """Flat keywords -> {"engine": EngineConfig(...), ...} for the sub-configs they name (a
    sub-config no keyword names is left out). TypeError for a keyword no sub-config has."""
    unknown = set(options) - set(option_fields())
    if unknown:
        raise TypeError(f"unknown run option(s): {', '.join(sorted(unknown))}")
    parts = {}
    for name, sub in SUB_CONFIGS.items():
        mine = {f.name: options[f.name] for f in dataclasses.fields(sub) if f.name in options}
        if mine:
            parts[name] = sub(**mine)
    return parts
