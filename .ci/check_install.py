"""Check an installed rtseg (a wheel in a fresh venv, no extras, no torch) as a user meets it.

    python .ci/check_install.py [--video CLIP.mp4]

Run it with the venv's python from outside the source tree. It checks that:
- rtseg is the installed copy, not a checkout, and torch is not installed;
- every submodule of rtseg imports; a module that needs torch by nature (TORCH_BY_NATURE) may
  instead raise MissingDependencyError naming the `train` extra, nothing else;
- importing them all does not import torch;
- `rtseg --help` works and lists the commands;
- `rtseg run` segments the clip with the bundled model into an MP4 (when --video is given), on
  the fastest engine that installs here: OpenVINO on x86-64 (a core dependency there), else
  ONNX Runtime; the stats JSON says which;
- `rtseg export` prints one line naming the `train` extra and exits with status 1.
Exits non-zero with the reasons when any check fails.
"""

from __future__ import annotations

import argparse
import fnmatch
import importlib
import importlib.util
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
from importlib import resources
from pathlib import Path

# Modules that define or load torch models: without torch they raise MissingDependencyError.
TORCH_BY_NATURE = (
    "rtseg.models",
    "rtseg.models.*",
    "rtseg.train.loop",
    "rtseg.train.losses",
    "rtseg.train.checkpoint",
    "rtseg.core.checkpoint",
    "rtseg.export.graph",
    "rtseg.export.onnx_export",
    "rtseg.export.package_export",
    "rtseg.runtime.torch*",
)


def submodules() -> list[str]:
    """Every module of the installed rtseg, from its files (nothing is imported to list them)."""
    root = Path(str(resources.files("rtseg")))
    names = []
    for path in sorted(root.rglob("*.py")):
        parts = path.relative_to(root.parent).with_suffix("").parts
        if parts[-1] == "__main__":
            continue  # runs the CLI when imported
        names.append(".".join(parts[:-1] if parts[-1] == "__init__" else parts))
    return names


def check_imports(errors: list[str]) -> int:
    from rtseg.errors import MissingDependencyError

    names = submodules()
    for name in names:
        try:
            importlib.import_module(name)
        except MissingDependencyError as exc:
            if not any(fnmatch.fnmatch(name, p) for p in TORCH_BY_NATURE) or exc.extra != "train":
                errors.append(f"import {name}: {exc}")
        except Exception as exc:  # any other failure of an import is what this check looks for
            errors.append(f"import {name}: {type(exc).__name__}: {exc}")
    if "torch" in sys.modules:
        errors.append("importing rtseg's modules imported torch")
    return len(names)


def rtseg(*args: str, cwd: str) -> subprocess.CompletedProcess:
    exe = shutil.which("rtseg", path=os.path.dirname(sys.executable))
    return subprocess.run([exe, *args], capture_output=True, text=True, cwd=cwd, timeout=600)


def check_commands(video: Path | None, errors: list[str], tmp: str) -> None:
    from rtseg.core.package import default_model_path

    shown = rtseg("--help", cwd=tmp)
    if shown.returncode != 0 or "run" not in shown.stdout or "export" not in shown.stdout:
        errors.append(f"rtseg --help: status {shown.returncode}: {shown.stderr.strip()}")
    if video is not None:
        out, stats = Path(tmp) / "annotated.mp4", Path(tmp) / "stats.json"
        ran = rtseg(
            "run", "--video", str(video), "--output", str(out), "--stats-json", str(stats), "-q", cwd=tmp
        )
        if ran.returncode != 0 or not out.is_file() or out.stat().st_size == 0:
            errors.append(f"rtseg run: status {ran.returncode}: {ran.stderr.strip()[-500:]}")
        else:
            engine = json.loads(stats.read_text())["backend"]
            print(f"rtseg run: {out.stat().st_size} bytes of MP4 on {engine}")
            check_engine(engine, ran.stderr, errors)
    checkpoint = default_model_path().with_suffix(".pth")
    export = rtseg("export", str(checkpoint), "-o", str(Path(tmp) / "x.onnx"), cwd=tmp)
    lines = export.stderr.strip().splitlines()
    if export.returncode != 1 or len(lines) != 1 or "rtseg[train]" not in lines[0]:
        errors.append(f"rtseg export without torch: status {export.returncode}, stderr {export.stderr!r}")
    else:
        print(f"rtseg export without torch: {lines[0]}")


def check_engine(engine: str, stderr: str, errors: list[str]) -> None:
    """The default run took the fastest engine that installs here (OpenVINO on x86-64), or said
    in one warning line why not (its probe failed on this machine)."""
    expected = "openvino" if platform.machine() in ("x86_64", "AMD64") else "onnxruntime"
    if engine.startswith(expected):
        return
    said = [line for line in stderr.splitlines() if line.startswith("rtseg: warning: OpenVINO is not used")]
    if not said:
        errors.append(f"rtseg run ran on {engine}, not {expected}, and did not say why")
    else:
        print(f"rtseg run: {said[0]}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--video", type=Path, help="clip for `rtseg run` (skipped when not given)")
    args = parser.parse_args()
    import rtseg
    from rtseg.core.package import default_model_path, engines_dir

    errors: list[str] = []
    where = Path(rtseg.__file__).resolve().parent
    if "site-packages" not in where.parts:
        errors.append(f"rtseg imported from {where}, not from an installed wheel")
    if importlib.util.find_spec("torch") is not None:
        errors.append("torch is installed: this check is for the install without extras")
    if not default_model_path().is_file() or engines_dir().parent != where:
        errors.append(f"bundled model packages not found inside the installed package ({engines_dir()})")
    count = check_imports(errors)
    print(f"imported {count} modules of {where} (torch-only ones: MissingDependencyError)")
    with tempfile.TemporaryDirectory(prefix="rtseg-check-") as tmp:
        check_commands(args.video, errors, tmp)
    for line in errors:
        print(f"check_install: FAIL: {line}", file=sys.stderr)
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main())
