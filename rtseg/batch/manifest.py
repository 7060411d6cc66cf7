"""`DIR/rtseg-batch.json`: what each input of an archive became; makes a rerun resumable.

    {"format": "rtseg-batch", "format_version": 2, "updated": "2026-...Z", "root": "/abs",
     "entries": [{"name": "day1/clip", "input": "/abs/day1/clip.mp4",
                  "status": "done" | "failed" | "skipped", "frames": int, "fps": float,
                  "outputs": ["day1/clip.annotated.mp4", ...], "error": str | null,
                  "identity": {"size": int, "mtime_ns": int, "sha256": hex (with --hash)},
                  "settings": hex, "attempts": int, "worker": str, "wall_s": float}, ...]}

Written by the driver only, after each video, under a temporary name renamed over the old one,
so it is complete whenever the run stops. A rerun skips an input whose entry is done (or
skipped), whose identity and settings are unchanged and whose outputs all exist; it retries
failed ones and runs the rest. One entry per input (`input`, its absolute path): the name an
input got is kept for it in every run into DIR, and `root` (the folder names are relative to)
too, so another input can never take a finished one's name (rtseg.batch.inputs). Version 1
manifests (names with the suffix, one folder per video) are read; their inputs are named anew.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

from rtseg.core.package import sha256_file
from rtseg.core.paths import atomic_write_text
from rtseg.errors import InputError, OutputError
from rtseg.video.base import natural_sort_key

MANIFEST_NAME = "rtseg-batch.json"
FORMAT = "rtseg-batch"
FORMAT_VERSION = 2
READ_VERSIONS = (1, 2)
DONE_STATUSES = ("done", "skipped")


def input_identity(path: str | os.PathLike, with_hash: bool = False) -> dict:
    """{size, mtime_ns} of the input file (+ sha256 with `with_hash`)."""
    try:
        st = os.stat(path)
    except OSError as exc:
        raise InputError(f"{path}: cannot read ({exc.strerror})") from None
    identity = {"size": st.st_size, "mtime_ns": st.st_mtime_ns}
    if with_hash:
        identity["sha256"] = sha256_file(path)
    return identity


def same_identity(recorded: dict | None, current: dict) -> bool:
    """Same size, and the same sha256 when both have one, else the same mtime."""
    if not recorded or recorded.get("size") != current["size"]:
        return False
    if "sha256" in recorded and "sha256" in current:
        return recorded["sha256"] == current["sha256"]
    return recorded.get("mtime_ns") == current["mtime_ns"]


class Manifest:
    """The entries of `DIR/rtseg-batch.json`, by input name; `save()` writes them atomically."""

    def __init__(self, path: Path, entries: dict[str, dict] | None = None, root: str | None = None):
        self.path = Path(path)
        self.entries: dict[str, dict] = dict(entries or {})
        self.root = root

    @classmethod
    def load(cls, out_dir: str | os.PathLike) -> Manifest:
        """The manifest in `out_dir`, or an empty one when there is none yet."""
        path = Path(out_dir) / MANIFEST_NAME
        if not path.exists():
            return cls(path)
        try:
            data = json.loads(path.read_text())
        except (OSError, ValueError) as exc:
            raise InputError(
                f"{path}: unreadable batch manifest ({exc}); move it away to start afresh"
            ) from None
        if not isinstance(data, dict) or data.get("format") != FORMAT:
            raise InputError(f"{path}: not an rtseg batch manifest; move it away to start afresh")
        version = data.get("format_version")
        if version not in READ_VERSIONS:
            raise InputError(f"{path}: manifest format_version {version!r} is not supported")
        entries = _checked_entries(path, data.get("entries", []))
        if version == 1:  # names were relative paths with the suffix, outputs one folder each
            return cls(path, {e["name"]: {**e, "legacy": True} for e in entries})
        root = data.get("root")
        return cls(path, {e["name"]: e for e in entries}, root if isinstance(root, str) else None)

    def names_by_input(self) -> dict[str, str]:
        """{absolute input path: its name} of the entries this layout named."""
        entries = self.entries.items()
        return {e["input"]: name for name, e in entries if e.get("input") and not e.get("legacy")}

    def put(self, entry: dict) -> None:
        """Store `entry` (keyed by its "name"), the only entry of its input."""
        source = entry.get("input")
        for name in [n for n, e in self.entries.items() if e.get("input") == source and n != entry["name"]]:
            del self.entries[name]
        self.entries[entry["name"]] = entry

    def is_done(self, name: str, identity: dict, settings: str, outputs_complete: bool) -> bool:
        """Whether `name` can be skipped: done before, unchanged, same settings, outputs there."""
        entry = self.entries.get(name)
        return (
            entry is not None
            and entry.get("status") in DONE_STATUSES
            and entry.get("settings") == settings
            and same_identity(entry.get("identity"), identity)
            and outputs_complete
        )

    def record(self, entry: dict) -> None:
        """Store `entry` (see put) and save the manifest."""
        self.put(entry)
        self.save()

    def to_json(self) -> dict:
        return {
            "format": FORMAT,
            "format_version": FORMAT_VERSION,
            "updated": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            "root": self.root,
            "entries": sorted(self.entries.values(), key=lambda e: natural_sort_key(e["name"])),
        }

    def save(self) -> None:
        """Write to a temporary file in the same folder, fsync, rename over the manifest."""
        text = json.dumps(self.to_json(), indent=2) + "\n"
        try:
            atomic_write_text(self.path, text, durable=True)
        except OutputError as exc:
            raise OutputError(f"cannot write the batch manifest: {exc}") from None


def _checked_entries(path: Path, entries) -> list[dict]:
    """The manifest's entries, each an object with a string `name` (a hand edit can break that)."""
    fix = "fix it or move it away to start afresh"
    if not isinstance(entries, list):
        raise InputError(f"{path}: 'entries' must be a list, not {type(entries).__name__}; {fix}")
    for number, entry in enumerate(entries, 1):
        if not isinstance(entry, dict) or not isinstance(entry.get("name"), str) or not entry["name"]:
            raise InputError(f"{path}: entry {number} has no name; {fix}")
        for key in ("input", "status", "settings"):
            if key in entry and not isinstance(entry[key], str | None):
                raise InputError(f"{path}: entry {number} ({entry['name']}): '{key}' must be a string; {fix}")
        if "identity" in entry and not isinstance(entry["identity"], dict | None):
            raise InputError(f"{path}: entry {number} ({entry['name']}): 'identity' must be an object; {fix}")
    return entries
