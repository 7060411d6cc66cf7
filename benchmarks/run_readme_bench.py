#!/usr/bin/env python
"""Reproduce the README's performance table on this machine.

Runs `rtseg bench` on the bundled default model (every package precision on ONNX Runtime and
on OpenVINO, which computes the float ones in bf16 where the CPU has it; eager PyTorch fp32;
TensorRT where there is one) with CamVid val for mIoU and the dashcam video end to end, then
the plain loop beside `rtseg run` on the same clip (benchmarks/plain_loop.py), writes
`benchmarks/results/<name>.json|.csv|.png` and `<name>_plain_loop.json`, then
`tools/readme_table.py` rewrites the README's table from them.

    python benchmarks/run_readme_bench.py            # the README's numbers (minutes)
    python benchmarks/run_readme_bench.py --model other.onnx --data camvid:DIR:val \\
        --video clip.mp4 --out-dir /tmp/b --readme /tmp/README.md --iters 5

Options not listed below are passed on to `rtseg bench` (e.g. --threads 4, --data-limit 20).
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
DATA = Path(os.environ.get("RTSEG_DATA", REPO.parent / "shared" / "data"))
E2E_COMBOS = (
    "onnxruntime:fp32,onnxruntime:int8cpu,openvino:fp32,openvino:fp16,openvino:int8ov,"
    "torch:fp32,tensorrt:fp16,tensorrt:int8"
)


def _default_model() -> Path:
    sys.path.insert(0, str(REPO))
    from rtseg.core.package import default_model_path

    return default_model_path()


def _arguments(argv: list[str] | None) -> tuple[argparse.Namespace, list[str]]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", type=Path, default=None, help="default: the bundled model")
    parser.add_argument("--data", default=f"camvid:{DATA / 'camvid'}:val")
    parser.add_argument("--video", type=Path, default=DATA / "video" / "dashcam_highway_960x540.mp4")
    parser.add_argument("--backends", default="onnxruntime,openvino,torch,tensorrt")
    parser.add_argument("--precisions", default="fp32,fp16,int8,int8cpu,int8ov")
    parser.add_argument("--plain-loop-frames", type=int, default=None, help="default: the whole clip")
    parser.add_argument("--e2e-combos", default=E2E_COMBOS)
    parser.add_argument("--out-dir", type=Path, default=REPO / "benchmarks" / "results")
    parser.add_argument("--name", default="readme_bench", help="results file stem")
    parser.add_argument("--readme", type=Path, default=REPO / "README.md")
    parser.add_argument("--no-readme", action="store_true", help="only write the results")
    return parser.parse_known_args(argv)


def _rel(path: Path) -> str:
    """A path relative to the repository when it is in it or beside it (the committed JSON
    then names no home folders), else absolute."""
    resolved = Path(path).resolve()
    relative = os.path.relpath(resolved, REPO)
    return str(resolved) if relative.startswith(f"..{os.sep}..") else relative


def _data_arg(spec: str) -> str:
    name, _, rest = spec.partition(":")
    root, _, split = rest.rpartition(":")
    return f"{name}:{_rel(Path(root))}:{split}" if root else spec


def main(argv: list[str] | None = None) -> int:
    args, extra = _arguments(argv)
    model = args.model or _default_model()
    if not Path(model).is_file():
        print(
            f"run_readme_bench: error: model {model} does not exist (the bundled model is "
            "committed under engines/; or give --model)",
            file=sys.stderr,
        )
        return 1
    args.out_dir.mkdir(parents=True, exist_ok=True)
    results = args.out_dir / f"{args.name}.json"
    command = [
        sys.executable,
        "-m",
        "rtseg",
        "bench",
        "--model",
        _rel(model),
        "--backends",
        args.backends,
        "--precisions",
        args.precisions,
        "--data",
        _data_arg(args.data),
        "--video",
        _rel(args.video),
        "--e2e-combos",
        args.e2e_combos,
        "--e2e-output",
        "mp4",
        "--json",
        _rel(results),
        "--csv",
        _rel(results.with_suffix(".csv")),
        "--plot",
        _rel(results.with_suffix(".png")),
        *extra,
    ]
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(REPO), env.get("PYTHONPATH")) if p)
    print("+ " + " ".join(command[1:]), file=sys.stderr, flush=True)
    status = subprocess.call(command, cwd=REPO, env=env)
    if status != 0:
        print(
            f"run_readme_bench: rtseg bench exited with status {status}; README not updated", file=sys.stderr
        )
        return status
    plain = [sys.executable, str(REPO / "benchmarks" / "plain_loop.py"), "--video", str(args.video)]
    plain += ["--json", str(results.with_name(f"{args.name}_plain_loop.json"))]
    plain += ["--max-frames", str(args.plain_loop_frames)] if args.plain_loop_frames else []
    print("+ " + " ".join(plain[1:]), file=sys.stderr, flush=True)
    status = subprocess.call(plain, cwd=REPO, env=env)
    if status != 0 or args.no_readme:
        return status
    table = [
        sys.executable,
        str(REPO / "tools" / "readme_table.py"),
        str(results),
        "--readme",
        str(args.readme),
        "--plot",
        str(results.with_suffix(".png")),
    ]
    return subprocess.call(table, cwd=REPO, env=env)


if __name__ == "__main__":
    sys.exit(main())
