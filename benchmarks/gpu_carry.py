"""What a device call for the GPU check carries, and making it fit (run through gpu_check.sh).

    bash benchmarks/gpu_check.sh --plan [--wheels DIR] [--data DIR] [--limit-mib 60]
    bash benchmarks/gpu_check.sh --slim      # set aside what the check does not need
    bash benchmarks/gpu_check.sh --restore   # put it back

A device call carries the checkout's working tree as git sees it (tracked files and untracked
files git does not ignore) plus the folders it names (the wheels, the data), 64 MiB in all. The
check runs the checkpoint (torch on CUDA, torch on the CPU for agreement): the bundled ONNX
packages (about 35 of the 52 MiB tracked) are not needed there. `--slim` moves them into
`.gpu_check_aside/` (git-ignored through .git/info/exclude, so not carried) and `--restore` moves
them back; `git checkout -- engines` restores them as well. `--plan` prints the bytes of each
part and exits 1 above the limit (60 MiB: room under the 64 MiB a call takes).
"""

from __future__ import annotations

import argparse
import fnmatch
import shutil
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
LIMIT_MIB = 60.0
MIB = 1 << 20
ASIDE = ".gpu_check_aside"
NOT_NEEDED = ("engines/*.onnx",)  # the check runs the .pth; its .json sidecars stay (small)


def _git(repo: Path, *args: str) -> str:
    return subprocess.run(["git", "-C", str(repo), *args], capture_output=True, text=True, check=True).stdout


def carried_files(repo: Path) -> list[Path]:
    """The working tree as a device call sees it: tracked files that exist, and untracked ones
    git does not ignore (paths relative to `repo`)."""
    listed = _git(repo, "ls-files", "-z", "--cached", "--others", "--exclude-standard").split("\0")
    return sorted({Path(name) for name in listed if name and (repo / name).is_file()})


def folder_bytes(folder: Path | None, pattern: str = "*") -> dict[str, int]:
    """{name: bytes} of the files under `folder` matching `pattern` (none for None)."""
    if folder is None or not folder.is_dir():
        return {}
    files = [p for p in sorted(folder.rglob(pattern)) if p.is_file()]
    return {str(p.relative_to(folder)): p.stat().st_size for p in files}


def plan(repo: Path, wheels: Path | None, data: Path | None, limit_mib: float = LIMIT_MIB) -> dict:
    """Bytes of each part a call carries: the working tree (data or wheels inside it counted
    once), the wheels, the data; and whether the total fits `limit_mib`."""
    tree = {str(p): (repo / p).stat().st_size for p in carried_files(repo)}
    parts = {"working tree": tree, "wheels": folder_bytes(wheels, "*.whl"), "data": folder_bytes(data)}
    for name, folder in (("wheels", wheels), ("data", data)):
        if folder is not None and folder.resolve().is_relative_to(repo.resolve()):
            inside = str(folder.resolve().relative_to(repo.resolve()))
            parts[name] = {k: v for k, v in parts[name].items() if f"{inside}/{k}" not in tree}
    total = sum(sum(part.values()) for part in parts.values())
    return {
        "parts": {name: {"files": len(part), "bytes": sum(part.values())} for name, part in parts.items()},
        "largest": sorted(((v, k) for k, v in tree.items()), reverse=True)[:5],
        "total_bytes": total,
        "limit_bytes": int(limit_mib * MIB),
        "fits": total <= limit_mib * MIB,
    }


def print_plan(result: dict) -> None:
    for name, part in result["parts"].items():
        print(f"gpu_check plan: {name:<12} {part['bytes'] / MIB:7.1f} MiB in {part['files']} files")
    for size, name in result["largest"]:
        print(f"gpu_check plan:   largest carried: {name} {size / MIB:.1f} MiB")
    total, limit = result["total_bytes"] / MIB, result["limit_bytes"] / MIB
    verdict = "fits" if result["fits"] else "does not fit: bash benchmarks/gpu_check.sh --slim sets aside"
    print(f"gpu_check plan: total {total:.1f} MiB of {limit:g} MiB: {verdict}")


def _exclude_aside(repo: Path) -> None:
    """`/.gpu_check_aside/` in the repository's info/exclude (a worktree's too), once."""
    exclude = Path(_git(repo, "rev-parse", "--git-path", "info/exclude").strip())
    exclude = exclude if exclude.is_absolute() else repo / exclude
    exclude.parent.mkdir(parents=True, exist_ok=True)
    lines = exclude.read_text().splitlines() if exclude.is_file() else []
    if f"/{ASIDE}/" not in lines:
        exclude.write_text("\n".join([*lines, f"/{ASIDE}/"]) + "\n")


def slim(repo: Path) -> list[str]:
    """Move the carried files matching NOT_NEEDED into ASIDE; returns their paths."""
    _exclude_aside(repo)
    moved = []
    for path in carried_files(repo):
        if any(fnmatch.fnmatch(str(path), pattern) for pattern in NOT_NEEDED):
            target = repo / ASIDE / path
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.move(repo / path, target)
            moved.append(str(path))
    return moved


def restore(repo: Path) -> list[str]:
    """Move everything in ASIDE back to its place; returns the paths."""
    aside, moved = repo / ASIDE, []
    for path in sorted(aside.rglob("*")) if aside.is_dir() else []:
        if path.is_file():
            name = path.relative_to(aside)
            (repo / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.move(path, repo / name)
            moved.append(str(name))
    shutil.rmtree(aside, ignore_errors=True)
    return moved


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    action = parser.add_mutually_exclusive_group(required=True)
    action.add_argument("--plan", action="store_true")
    action.add_argument("--slim", action="store_true")
    action.add_argument("--restore", action="store_true")
    parser.add_argument("--wheels", type=Path)
    parser.add_argument("--data", type=Path)
    parser.add_argument("--limit-mib", type=float, default=LIMIT_MIB)
    parser.add_argument("--repo", type=Path, default=REPO)
    args = parser.parse_args(argv)
    if args.slim or args.restore:
        moved = slim(args.repo) if args.slim else restore(args.repo)
        where = f"into {ASIDE}/" if args.slim else "back"
        print(f"gpu_check: moved {len(moved)} files {where}: {' '.join(moved) or 'none'}")
        return 0
    result = plan(args.repo, args.wheels, args.data, args.limit_mib)
    print_plan(result)
    return 0 if result["fits"] else 1


if __name__ == "__main__":
    sys.exit(main())
