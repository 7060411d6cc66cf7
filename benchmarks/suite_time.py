"""The README's suite-time table: the whole suite and the fast loop, cold then warm.

Cold: `--cache-clear` empties pytest's cache, so every exported graph is exported again (as on a
fresh clone in CI). Warm: the same command again, the graphs now cached. Each run is the README's
test command (`-n auto --dist worksteal`); the wall time of the whole pytest process is printed
with its summary line, and written as JSON with `--json FILE`.

    python benchmarks/suite_time.py [--json results/suite_time.json] [--only fast|whole]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
COMMAND = [sys.executable, "-m", "pytest", "-q", "-n", "auto", "--dist", "worksteal"]
SUITES = {"whole": [], "fast": ["-m", "not slow"]}


def timed(args: list[str]) -> dict:
    start = time.perf_counter()
    done = subprocess.run([*COMMAND, *args], cwd=REPO, capture_output=True, text=True)
    seconds = time.perf_counter() - start
    summary = done.stdout.strip().splitlines()[-1] if done.stdout.strip() else done.stderr[-300:]
    return {"args": args, "seconds": round(seconds, 1), "exit": done.returncode, "summary": summary}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", type=Path)
    parser.add_argument("--only", choices=sorted(SUITES))
    args = parser.parse_args(argv)
    results = {"cpu": platform.processor() or platform.machine(), "cpus": os.cpu_count(), "runs": []}
    for name in [args.only] if args.only else list(SUITES):
        for state, extra in (("cold", ["--cache-clear"]), ("warm", [])):
            run = {"suite": name, "state": state, **timed([*SUITES[name], *extra])}
            results["runs"].append(run)
            print(f"{name:5s} {state}: {run['seconds']:7.1f} s  {run['summary']}", flush=True)
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(results, indent=2) + "\n")
    return 0 if all(r["exit"] == 0 for r in results["runs"]) else 1


if __name__ == "__main__":
    sys.exit(main())
