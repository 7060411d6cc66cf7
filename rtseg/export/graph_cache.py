"""A cache of exported ONNX graphs: exporting the same weights the same way twice exports once.

`torch.onnx.export` (torch.export, decompositions, translation) takes seconds to a minute, and
every `rtseg export` of a checkpoint starts from the same FP32 graph: fp32, then fp16, then int8,
or the bench re-exporting a size it exported before. The graph is kept in
`cache_dir()/onnx/KEY.onnx`; KEY digests everything the graph depends on:
  - every weight and buffer (name, dtype, shape, bytes) of the module handed to the exporter;
  - every submodule's class and plain settings (ints, floats, strings, flags: `align_corners`,
    pyramid bins, strides), so two models with equal weights but other settings differ;
  - the example input's shape and dtype, the output name, the opset, the dynamic batch bounds;
  - the versions of torch, onnx and rtseg, and a digest of rtseg's model and export sources.
Only graphs built from rtseg's and torch's own modules are cached: the code of any other module
(a user's, through `rtseg.import_module`) is not in the key, so it is exported every time.
An entry is written whole or not at all (atomic rename), a hit is re-read before it is used (an
unreadable entry is dropped and the graph exported again), and the caller's parity check against
PyTorch still runs on every export. The cache never fails an export: a full disk or a read-only
cache folder only means no copy is kept. It holds at most MAX_ENTRIES graphs and MAX_BYTES in all,
the least recently used going first. `RTSEG_EXPORT_CACHE=0` turns it off; `RTSEG_EXPORT_CACHE=DIR`
keeps it in DIR.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import json
import os
import shutil
from collections.abc import Callable, Iterator
from pathlib import Path

import rtseg
from rtseg.core.paths import atomic_output
from rtseg.core.user_cache import cache_dir

MAX_ENTRIES = 32
MAX_BYTES = 2 << 30
LOCK_TIMEOUT_S = 600.0  # longer than any export; past it, export without waiting
SETTING_TYPES = (bool, int, float, str, type(None))
TRUSTED_CODE = ("rtseg.models.", "rtseg.export.", "torch.")
SOURCES = ("models", "export/onnx_export.py", "export/graph_cache.py")  # under rtseg/


OFF, ON = ("0", "off", "no", "false"), ("", "1", "on", "yes", "true")


def _setting() -> str:
    return os.environ.get("RTSEG_EXPORT_CACHE", "").strip()


def enabled() -> bool:
    return _setting().lower() not in OFF


def folder() -> Path:
    """`$RTSEG_EXPORT_CACHE` when it names a folder, else `cache_dir()/onnx`."""
    setting = _setting()
    return cache_dir() / "onnx" if setting.lower() in ON + OFF else Path(setting)


@functools.lru_cache(maxsize=1)
def source_digest() -> str:
    """sha256 of rtseg's model and export sources: an edit to the code invalidates the cache."""
    root = Path(rtseg.__file__).resolve().parent
    digest = hashlib.sha256()
    for entry in SOURCES:
        path = root / entry
        files = sorted(path.rglob("*.py")) if path.is_dir() else [path]
        for file in files:
            digest.update(file.relative_to(root).as_posix().encode())
            digest.update(file.read_bytes())
    return digest.hexdigest()


def _settings(module) -> str:
    """The plain (non-tensor, non-private) attributes of one torch module, as sorted text."""
    items = []
    for name, value in sorted(vars(module).items()):
        if name.startswith("_") or name == "training":
            continue
        if isinstance(value, SETTING_TYPES) or (
            isinstance(value, (tuple, list)) and all(isinstance(v, SETTING_TYPES) for v in value)
        ):
            items.append(f"{name}={value!r}")
    return ",".join(items)


def cacheable(module) -> bool:
    """Only graphs made of rtseg's and torch's own modules: their code is covered by the key
    (the source digest, torch's version); a user's module could change its forward unseen."""
    return all(type(sub).__module__.startswith(TRUSTED_CODE) for sub in module.modules())


def graph_key(module, example, **export_args) -> str | None:
    """The cache key (hex sha256) of exporting torch `module` on the tensor `example` with the
    exporter's JSON-serialisable `export_args` (output names, opset, batch bounds); None when
    the graph is not cacheable."""
    import onnx
    import torch

    if not cacheable(module):
        return None

    digest = hashlib.sha256()
    header = {
        "torch": torch.__version__,
        "onnx": onnx.__version__,
        "rtseg": rtseg.__version__,
        "sources": source_digest(),
        "example": [list(example.shape), str(example.dtype)],
        "args": export_args,
    }
    digest.update(json.dumps(header, sort_keys=True, default=str).encode())
    for name, sub in module.named_modules():
        kind = f"{type(sub).__module__}.{type(sub).__qualname__}"
        digest.update(f"\n{name}:{kind}:{_settings(sub)}".encode())
    for name, tensor in module.state_dict().items():
        digest.update(f"\n{name}:{tensor.dtype}:{tuple(tensor.shape)}".encode())
        digest.update(tensor.detach().cpu().contiguous().reshape(-1).view(torch.uint8).numpy().tobytes())
    return digest.hexdigest()


def _readable(path: Path) -> bool:
    import onnx

    try:
        onnx.load(str(path), load_external_data=False)
    except Exception:  # noqa: BLE001 - onnx raises DecodeError, ValueError, OSError...: all "unusable"
        return False
    return True


def fetch(key: str, out: Path) -> bool:
    """Copy the cached graph `key` to `out`; False (and nothing written) when there is none."""
    entry = folder() / f"{key}.onnx"
    if not enabled() or not entry.is_file():
        return False
    if not _readable(entry):
        entry.unlink(missing_ok=True)
        return False
    with atomic_output(out) as tmp:
        shutil.copyfile(entry, tmp)
    os.utime(entry)  # most recently used
    return True


def store(key: str, graph: Path) -> None:
    """Keep a copy of the exported `graph` under `key`; any OSError only means no copy."""
    if not enabled():
        return
    try:
        folder().mkdir(parents=True, exist_ok=True)
        with atomic_output(folder() / f"{key}.onnx") as tmp:
            shutil.copyfile(graph, tmp)
        prune()
    except OSError:
        pass


def evict(key: str) -> None:
    (folder() / f"{key}.onnx").unlink(missing_ok=True)


def prune(max_entries: int = MAX_ENTRIES, max_bytes: int = MAX_BYTES) -> None:
    """Drop the least recently used entries beyond `max_entries` or `max_bytes` in all."""
    entries = []
    for path in folder().glob("*.onnx"):
        try:
            entries.append((path.stat().st_mtime, path.stat().st_size, path))
        except FileNotFoundError:  # another process pruned it
            continue
    entries.sort(reverse=True)
    total = 0
    for count, (_, size, path) in enumerate(entries, 1):
        total += size
        if count > max_entries or total > max_bytes:
            path.unlink(missing_ok=True)
            path.with_suffix(".lock").unlink(missing_ok=True)


@contextlib.contextmanager
def _exporting(key: str) -> Iterator[None]:
    """Held while `key` is exported, so a second process exporting the same graph (two exports
    of one checkpoint, parallel test workers) waits and then takes the first one's copy. Without
    a writable cache folder there is nothing to share, and no lock."""
    from filelock import FileLock  # torch's own dependency: here wherever torch is

    try:
        folder().mkdir(parents=True, exist_ok=True)
        lock = FileLock(folder() / f"{key}.lock", timeout=LOCK_TIMEOUT_S)
        lock.acquire()
    except (OSError, TimeoutError):  # filelock.Timeout is a TimeoutError
        yield
        return
    try:
        yield
    finally:
        lock.release()


def cached_export(key: str, out: Path, export: Callable[[Path], None]) -> bool:
    """Write the graph `key` to `out`: a cached copy when there is one (True), else run
    `export(out)` and keep a copy (False)."""
    if fetch(key, out):
        return True
    if not enabled():
        export(out)
        return False
    with _exporting(key):
        if fetch(key, out):  # exported by another process while this one waited
            return True
        export(out)
        store(key, out)
    return False
