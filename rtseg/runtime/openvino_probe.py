"""Whether OpenVINO is healthy on this machine, asked once, in a child process.

Some OpenVINO releases die inside `compile_model` on some CPUs (SIGFPE on AMD EPYC hosts,
openvinotoolkit issue #35943): a crash of that kind kills the process and cannot be caught. So
before the default (`--backend auto` on a CPU) trusts OpenVINO, a child process compiles the
package, runs one frame on OpenVINO and on ONNX Runtime, and compares the class ids. The verdict
is kept in the user cache, keyed by the machine (CPU model, host), the OpenVINO version, the
package's ONNX (sha256), the precision asked and the probe's rules, so the probe runs once per key.

How much agreement is enough depends on the model: on a synthetic frame a model may sit on the
fence between two classes over much of the picture, and there bf16 (or another runtime's INT8
kernels) moves many pixels across while the plugin is sound. So the bar is set by the model
itself: ONNX Runtime runs the frame again with every pixel nudged by at most one grey level, and
OpenVINO must agree with ONNX Runtime at least as well as ONNX Runtime agrees with itself under
that nudge (`required_agreement`). A broken plugin (garbage, one class everywhere) falls far
below either.

`python -m rtseg.runtime.openvino_probe PACKAGE.onnx` is the child: it prints one JSON line
`{"agreement": float, "floor": float, "precision": str}`. `$RTSEG_OPENVINO_PROBE_FAULT` (tests):
"crash" makes it die by SIGFPE before compiling, "disagree" makes OpenVINO's ids differ from
ONNX Runtime's.
"""

from __future__ import annotations

import hashlib
import json
import os
import platform
import subprocess
import sys
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path

import numpy as np

from rtseg.core.notices import warn_once
from rtseg.core.user_cache import usable_folder

MIN_AGREEMENT = 0.97  # the bar for a model whose ids are steady on the probe frame
LOWEST_BAR = 0.5  # the bar for a model whose ids move under a nudge of one grey level anyway
PROBE_RULES = 2  # part of a verdict's key: verdicts judged by earlier rules are probed again
PROBE_TIMEOUT_S = 300.0
FAULT_ENV = "RTSEG_OPENVINO_PROBE_FAULT"


@dataclass(frozen=True)
class ProbeVerdict:
    """`healthy`: OpenVINO compiled and ran the package and agreed with ONNX Runtime.
    `reason`: why not (one line), else ""; `agreement`: fraction of equal ids (None: no result)."""

    healthy: bool
    reason: str = ""
    agreement: float | None = None
    precision: str = ""
    cache: bool = True  # kept for the next process (a timeout is not: it may pass next time)


def openvino_version() -> str | None:
    """The installed OpenVINO's version (from its metadata: nothing is imported), else None."""
    try:
        return metadata.version("openvino")
    except metadata.PackageNotFoundError:
        return None


def machine_key() -> str:
    """The CPU model and flags plus the host name: a cached verdict belongs to one machine."""
    cpu = platform.processor()
    try:
        info = Path("/proc/cpuinfo").read_text()
        lines = [ln for ln in info.splitlines() if ln.startswith(("model name", "flags"))]
        cpu = "\n".join(dict.fromkeys(lines))  # first of each (all cores alike)
    except OSError:
        pass
    return f"{platform.node()}|{platform.machine()}|{cpu}"


def _file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def verdict_path(cache: Path, onnx_path: Path, version: str) -> Path:
    """Where the verdict for this machine, OpenVINO `version`, package and the precision asked
    (`$RTSEG_OPENVINO_PRECISION`, which the child computes in: f16 may fail where bf16 passes)
    is kept."""
    from rtseg.runtime.openvino_backend import PRECISION_ENV

    precision = (os.environ.get(PRECISION_ENV) or "auto").lower()
    text = f"{machine_key()}|{version}|{_file_sha256(onnx_path)}|{precision}|rules {PROBE_RULES}"
    key = hashlib.sha256(text.encode()).hexdigest()
    return cache / "openvino-probe" / f"{key[:32]}.json"


def probe_frame(height: int, width: int) -> np.ndarray:
    """(1, H, W, 3) uint8 RGB: a smooth road-like scene (sky, buildings, road), deterministic."""
    y = np.linspace(0.0, 1.0, height)[:, None]
    x = np.linspace(0.0, 1.0, width)[None, :]
    red = 200 - 120 * y + 30 * np.sin(12 * x)
    green = 190 - 110 * y + 25 * np.cos(9 * x * (1 + y))
    blue = 230 - 160 * y + 20 * np.sin(7 * (x + y))
    frame = np.stack(np.broadcast_arrays(red, green, blue), -1)
    return np.clip(frame, 0, 255).astype(np.uint8)[None]


def nudged(frame: np.ndarray) -> np.ndarray:
    """`frame` (uint8) with every value moved by -1, 0 or +1 grey level (deterministic)."""
    steps = np.random.default_rng(0).integers(-1, 2, frame.shape)
    return np.clip(frame.astype(np.int16) + steps, 0, 255).astype(np.uint8)


def required_agreement(floor: float) -> float:
    """The share of OpenVINO's ids that must equal ONNX Runtime's, given `floor`: the share of
    ONNX Runtime's own ids that survive a nudge of one grey level (see module doc)."""
    return max(LOWEST_BAR, min(MIN_AGREEMENT, floor))


def run_child(onnx_path: Path, cache: Path | None) -> dict:
    """The child's work: OpenVINO and ONNX Runtime on one frame of the package (see module doc)."""
    from rtseg.core.package import load_package
    from rtseg.runtime.onnxruntime_backend import OnnxRuntimeBackend
    from rtseg.runtime.openvino_backend import OpenVinoBackend

    fault = os.environ.get(FAULT_ENV, "")
    if fault == "crash":
        import resource
        import signal

        resource.setrlimit(resource.RLIMIT_CORE, (0, 0))  # no core file for a simulated crash
        os.kill(os.getpid(), signal.SIGFPE)
    package = load_package(onnx_path)
    frame = probe_frame(*package.input_size)
    with OpenVinoBackend(package, threads=1, cache_dir=cache) as ov:
        ids, precision = ov.infer(frame), ov.precision
    with OnnxRuntimeBackend(package, "cpu", threads=1) as ort:
        reference, moved = ort.infer(frame), ort.infer(nudged(frame))
    if fault == "disagree":
        ids = (ids + 1) % max(2, package.num_classes)
    agreement, floor = float((ids == reference).mean()), float((moved == reference).mean())
    return {"agreement": agreement, "floor": floor, "precision": precision}


def _child_verdict(onnx_path: Path, cache: Path | None) -> ProbeVerdict:
    """Run the child and read its verdict; a crash, a timeout or no JSON is unhealthy. `cache`:
    OpenVINO's compiled models (None: none)."""
    command = [sys.executable, "-m", "rtseg.runtime.openvino_probe", str(onnx_path)]
    command += [str(cache)] if cache is not None else []
    try:
        done = subprocess.run(command, capture_output=True, text=True, timeout=PROBE_TIMEOUT_S)
    except subprocess.TimeoutExpired:  # a loaded machine, perhaps: not cached (see probe_openvino)
        return ProbeVerdict(False, f"its probe did not finish in {PROBE_TIMEOUT_S:.0f} s", cache=False)
    if done.returncode != 0:
        if done.returncode < 0:
            import signal

            name = signal.Signals(-done.returncode).name
            return ProbeVerdict(False, f"its probe crashed ({name}) compiling or running {onnx_path.name}")
        last = (done.stderr.strip().splitlines() or ["no message"])[-1]
        return ProbeVerdict(False, f"its probe failed: {last}")
    try:
        result = json.loads(done.stdout.strip().splitlines()[-1])
        agreement, precision = float(result["agreement"]), str(result["precision"])
        floor = float(result["floor"])
    except (IndexError, KeyError, TypeError, ValueError):
        return ProbeVerdict(False, "its probe gave no result")
    needed = required_agreement(floor)
    if agreement < needed:
        share = f"{agreement:.1%} of pixels only (needed {needed:.1%})"
        return ProbeVerdict(False, f"its class ids agree with ONNX Runtime's on {share}", agreement)
    return ProbeVerdict(True, "", agreement, precision)


def _read_verdict(path: Path) -> ProbeVerdict | None:
    """The verdict kept at `path`, or None when there is none or it is not one (a damaged or
    hand-edited file: probed again)."""
    try:
        data = json.loads(path.read_text())
        verdict = ProbeVerdict(**data)
    except (OSError, ValueError, TypeError):
        return None
    kinds = (bool, str, (int, float, type(None)), str, bool)
    values = (verdict.healthy, verdict.reason, verdict.agreement, verdict.precision, verdict.cache)
    return verdict if all(isinstance(v, k) for v, k in zip(values, kinds)) else None


def _keep_verdict(verdict: ProbeVerdict, path: Path) -> None:
    """Write `verdict` to `path` (atomically); a cache that cannot take it is skipped."""
    if usable_folder(path.parent) is None:
        return
    partial = path.with_suffix(f".{os.getpid()}.tmp")
    try:
        partial.write_text(json.dumps(verdict.__dict__))
        os.replace(partial, path)
    except OSError as exc:
        partial.unlink(missing_ok=True)
        warn_once(f"cannot keep the OpenVINO probe's verdict in {path} ({exc.strerror}); going on")


def probe_openvino(onnx_path: Path, cache: Path) -> ProbeVerdict:
    """The verdict for `onnx_path` on this machine: cached, else probed in a child and cached.
    `cache`: the user cache folder (verdicts in `openvino-probe/`, compiled models in `openvino/`;
    either unusable: the probe runs without it)."""
    version = openvino_version()
    if version is None:
        return ProbeVerdict(False, "openvino is not installed")
    path = verdict_path(cache, Path(onnx_path), version)
    kept = _read_verdict(path)
    if kept is not None:
        return kept
    verdict = _child_verdict(Path(onnx_path), usable_folder(cache / "openvino"))
    if verdict.cache:
        _keep_verdict(verdict, path)
    return verdict


def main(argv: list[str]) -> int:
    onnx_path = Path(argv[0])
    cache = Path(argv[1]) if len(argv) > 1 else None
    try:
        print(json.dumps(run_child(onnx_path, cache)))
    except Exception as exc:  # any failure is the verdict; the parent reads the last line
        print(f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
