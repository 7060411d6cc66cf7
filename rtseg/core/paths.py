"""The paths of a command: checked together before anything is opened, and outputs that replace
a file only by a complete new one.

`check_paths(inputs=[...], outputs=[...], output_dirs=[...])` resolves every path (symlinks,
`..`, hard links by `(st_dev, st_ino)`, letter case on case-insensitive folders) and raises a
one-line error for:
  - an input that exists but cannot be read, or whose name is too long (InputError);
  - an output that is an input, or the same file as another output (OutputError);
  - an output folder that is an input folder, or holds an input or another output whose name
    matches the names written there (OutputError);
  - an output whose name is too long (ENAMETOOLONG), that is a folder where a file is wanted
    (or the reverse), or whose folder cannot be written: a real probe, since permission bits
    say nothing for root, read-only mounts or /proc (OutputError).
Outputs bring the files a writer derives from them: a package `NAME.onnx` its sidecar
`NAME.json`, an engine `NAME.engine` its `NAME.engine.json` (COMPANIONS), checked as outputs too.
Output folders whose glob is `**` are written at any depth (every path below them is theirs).
Items are a path or `(label, path)`; the label ("--output") names it in the message. Output
folders may add the glob of the names written there: `("--masks", path, "[0-9]*.png")` (default
"*": any name could collide). `None` paths are skipped, so optional options pass as they are.
Inputs that do not exist are left to the code that opens them (it names what was expected).

`atomic_output`, `StagedFile`, `staged_folder`, `atomic_write_bytes` / `atomic_write_text`
(outputs replaced only by a complete new file) live in rtseg.core.atomic and are re-exported
here. Only regular files are ever replaced: `-` (standard output), devices, FIFOs, terminals and
symlinks to them are written in place, block devices and sockets refused, and a symlink to a
file keeps pointing at the (replaced) file (rtseg.core.targets).
"""

from __future__ import annotations

import contextlib
import fnmatch
import os
import stat
import tempfile
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from rtseg.core.atomic import (
    NAME_MAX,
    TEMP_MARK,
    StagedFile,
    atomic_output,
    atomic_write_bytes,
    atomic_write_text,
    staged_folder,
)
from rtseg.core.targets import describe_os_error, in_place, is_stdout, refusal, reserve_stdout, write_all
from rtseg.errors import InputError, OutputError, RtsegError

__all__ = [
    "TEMP_MARK",
    "StagedFile",
    "atomic_output",
    "atomic_write_bytes",
    "atomic_write_text",
    "check_paths",
    "describe_os_error",
    "prepare_output_file",
    "prepare_output_folder",
    "probe_writable",
    "require_file",
    "staged_folder",
    "write_all",
]

PATH_MAX = 4096


@dataclass(frozen=True)
class _Entry:
    label: str
    given: str  # the path as the user wrote it, for messages
    path: Path  # absolute, `..` resolved lexically
    names: str = "*"  # output folders: glob of the names written there

    def __str__(self) -> str:
        return f"{self.label} {self.given}" if self.label else self.given


def _entries(items: Iterable, with_names: bool = False) -> list[_Entry]:
    out = []
    for item in items or ():
        label, names = "", "*"
        if isinstance(item, tuple):
            label, path, *rest = item
            names = rest[0] if rest and with_names else "*"
        else:
            path = item
        if path is None:
            continue
        out.append(_Entry(label, str(path), Path(os.path.abspath(os.fspath(path))), names))
    return out


COMPANIONS = {  # output suffix -> the files its writer derives from it (sidecars)
    ".onnx": lambda p: [p.with_suffix(".json")],
    ".engine": lambda p: [Path(f"{p}.json")],
    ".plan": lambda p: [Path(f"{p}.json")],
}


def _with_companions(outputs: list[_Entry]) -> list[_Entry]:
    """`outputs` and, after them, the companions of each not named already (label "X's sidecar")."""
    named = {e.path for e in outputs}
    derived = []
    for entry in outputs:
        for path in COMPANIONS.get(entry.path.suffix.lower(), lambda p: [])(entry.path):
            if path not in named:
                named.add(path)
                derived.append(_Entry(f"{entry.label or entry.given}'s sidecar", str(path), path))
    return outputs + derived


def _under_folder(path: Path, folder: _Entry, keys: set) -> bool:
    """Whether `folder` writes the name `path`: a direct child matching its glob, or (glob `**`)
    any path below it."""
    if keys & _parent_keys(path) and fnmatch.fnmatch(path.name, folder.names):
        return True
    if folder.names != "**":
        return False
    for above in Path(os.path.realpath(path)).parents:
        st = _stat(above)
        if ("path", str(above)) in keys or (st is not None and ("inode", st.st_dev, st.st_ino) in keys):
            return True
    return False


def _stat(path: Path) -> os.stat_result | None:
    try:
        return os.stat(path)
    except (FileNotFoundError, NotADirectoryError):
        return None


def _name_too_long(entry: _Entry) -> str | None:
    """Why `entry`'s path cannot exist (a component over NAME_MAX bytes), or None."""
    text = os.fsencode(entry.path)
    if len(text) > PATH_MAX:
        return f"path too long ({len(text)} bytes; the limit is {PATH_MAX})"
    for part in entry.path.parts:
        size = len(os.fsencode(part))
        if size > NAME_MAX:
            return f"file name too long ({size} bytes; the limit is {NAME_MAX})"
    return None


def _case_insensitive(folder: Path) -> bool:
    """Whether names in `folder` are looked up ignoring case (vfat, exFAT, macOS and Windows)."""
    with contextlib.suppress(OSError):
        for entry in os.scandir(folder):
            if entry.name.swapcase() != entry.name:
                twin = _stat(folder / entry.name.swapcase())
                return twin is not None and twin.st_ino == entry.stat(follow_symlinks=False).st_ino
    return False


def _existing_folder(path: Path) -> Path:
    """The nearest folder above `path` that exists (the filesystem root at worst)."""
    folder = path
    while not folder.exists() and folder.parent != folder:
        folder = folder.parent
    return folder


def _keys(path: Path) -> set:
    """Every name of the file or folder at `path`: as given, resolved, folded, and its inode."""
    names = {os.path.abspath(path), os.path.realpath(path)}
    if _case_insensitive(_existing_folder(path.parent)):
        names |= {n.casefold() for n in names}
    keys: set = {("path", n) for n in names}
    st = _stat(path)
    if st is not None:
        keys.add(("inode", st.st_dev, st.st_ino))
    return keys


def _parent_keys(path: Path) -> set:
    """The names of the folder holding `path`, and of the folder holding its target if a link."""
    return _keys(path.parent) | _keys(Path(os.path.realpath(path)).parent)


def _sample(names: str) -> str:
    """A name matching the glob `names` ('[0-9]*.png' -> '0000.png'), to compare two globs."""
    return names.replace("[0-9]", "0").replace("*", "0000").replace("?", "0")


def _globs_overlap(a: str, b: str) -> bool:
    return fnmatch.fnmatch(_sample(a), b) or fnmatch.fnmatch(_sample(b), a)


def _check_input(entry: _Entry) -> None:
    try:
        st = os.stat(entry.path)
    except (FileNotFoundError, NotADirectoryError):
        return  # the opener says what was expected there
    except OSError as exc:
        reason = _name_too_long(entry) or exc.strerror
        raise InputError(f"{entry}: cannot read ({reason})") from None
    try:
        if stat.S_ISREG(st.st_mode):
            with open(entry.path, "rb"):
                pass
        elif stat.S_ISDIR(st.st_mode):
            os.listdir(entry.path)
    except OSError as exc:
        raise InputError(f"{entry}: cannot read ({exc.strerror})") from None


def not_a_file(path: str | os.PathLike) -> str | None:
    """Why `path` is not a regular file (after symlinks), in words to follow its name: "does not
    exist", "is a folder, not a file", "is a character device, not a file" (also a FIFO, socket
    or block device), "cannot be read (Permission denied)"; None for a regular file."""
    try:
        st = os.stat(path)
    except (FileNotFoundError, NotADirectoryError):
        return "does not exist"
    except OSError as exc:
        return f"cannot be read ({exc.strerror})"
    if stat.S_ISREG(st.st_mode):
        return None
    found = "a folder" if stat.S_ISDIR(st.st_mode) else f"a {_kind(st.st_mode)}"
    return f"is {found}, not a file"


def require_file(path: str | os.PathLike, what: str, error: type[RtsegError] = InputError) -> Path:
    """`path` as a Path when it is a regular file; else `error` "WHAT PATH does not exist" (or
    is a folder, a device, ... : not_a_file). The one check of a file a command reads whole."""
    problem = not_a_file(path)
    if problem is not None:
        raise error(f"{what} {path} {problem}".lstrip())
    return Path(path)


def _kind(mode: int) -> str:
    """What a file system entry that is not a folder is, in words ("file", "character device")."""
    kinds = (
        (stat.S_ISCHR, "character device"),
        (stat.S_ISBLK, "block device"),
        (stat.S_ISFIFO, "FIFO"),
        (stat.S_ISSOCK, "socket"),
    )
    return next((name for test, name in kinds if test(mode)), "file")


def _check_output_shape(entry: _Entry, folder: bool) -> None:
    if is_stdout(entry.given):
        if folder:
            raise OutputError(f"{entry}: standard output is not a folder")
        return
    reason = _name_too_long(entry)
    if reason:
        raise OutputError(f"{entry}: {reason}")
    special = refusal(entry.path)
    if special:
        raise OutputError(f"{entry} {special}")
    try:
        st = _stat(entry.path)
    except OSError as exc:  # a folder on the way that may not be searched (EACCES), a loop
        raise OutputError(f"{entry}: cannot reach ({exc.strerror})") from None
    if st is not None and stat.S_ISDIR(st.st_mode) != folder:
        found, wanted = (_kind(st.st_mode), "folder") if folder else ("folder", "file")
        raise OutputError(f"{entry} is a {found}, not a {wanted}")
    if not folder and st is not None and not os.access(entry.path, os.W_OK):
        raise OutputError(f"{entry}: file exists and is read-only")
    parent = entry.path if folder else entry.path.parent
    above = _existing_folder(parent)
    if above.is_dir():
        return
    if above == parent:
        raise OutputError(f"{entry}: cannot write into {above}: it is a file, not a folder")
    raise OutputError(f"{entry}: cannot create folder {parent}: {above} is a file")


def _entry_keys(entry: _Entry) -> set:
    return {("stdout",)} if is_stdout(entry.given) else _keys(entry.path)


def _collisions(inputs: list[_Entry], outputs: list[_Entry], dirs: list[_Entry]) -> None:
    in_keys = [(e, _keys(e.path)) for e in inputs]
    out_keys = [(e, _entry_keys(e)) for e in outputs]
    dir_keys = [(e, _keys(e.path)) for e in dirs]
    for i, (out, keys) in enumerate(out_keys):
        for inp, ikeys in in_keys:
            if keys & ikeys:
                raise OutputError(f"{out} is the input {inp}: an output must never overwrite an input")
        for other, okeys in out_keys[:i]:
            if keys & okeys:
                raise OutputError(f"{other} and {out} are the same file: give each output its own path")
    for i, (folder, keys) in enumerate(dir_keys):
        for inp, ikeys in in_keys:
            if keys & ikeys:
                raise OutputError(
                    f"{folder} is the input folder {inp}: its files could overwrite the input; "
                    "write to another folder"
                )
            if _under_folder(inp.path, folder, keys):
                raise OutputError(f"{folder} holds the input {inp}: writing there could overwrite it")
        for out, okeys in out_keys:
            if okeys & keys:
                raise OutputError(f"{out} and {folder} are the same path: give each output its own path")
            if _under_folder(out.path, folder, keys):
                raise OutputError(f"{out} lies in {folder}, whose files could overwrite it")
        for other, okeys in dir_keys[:i]:
            if keys & okeys and _globs_overlap(folder.names, other.names):
                raise OutputError(
                    f"{other} and {folder} write the same file names into one folder: "
                    "give each its own folder"
                )


def check_paths(inputs: Iterable = (), outputs: Iterable = (), output_dirs: Iterable = ()) -> None:
    """Refuse, with one line, any output that would destroy an input or another output, or that
    cannot be written; see the module doc. Creates nothing (the write probe leaves no file); an
    output `-` keeps standard output for itself from now on (rtseg.core.targets.reserve_stdout)."""
    ins, dirs = _entries(inputs), _entries(output_dirs, with_names=True)
    outs = _with_companions(_entries(outputs))
    for entry in ins:
        _check_input(entry)
    for entry in outs:
        _check_output_shape(entry, folder=False)
    for entry in dirs:
        _check_output_shape(entry, folder=True)
    _collisions(ins, outs, dirs)
    for entry in outs:
        if not in_place(entry.given):
            probe_writable(_existing_folder(entry.path.parent), entry)
    if any(is_stdout(entry.given) for entry in outs):
        reserve_stdout()
    for entry in dirs:
        probe_writable(_existing_folder(entry.path), entry)


def probe_writable(folder: Path, what: object) -> None:
    """OutputError unless a file can be created in `folder` (created and removed at once)."""
    try:
        with tempfile.NamedTemporaryFile(dir=folder, prefix=".rtseg-probe-"):
            pass
    except OSError as exc:
        raise OutputError(f"{what}: folder {folder} is not writable ({exc.strerror})") from None


def prepare_output_folder(folder: str | os.PathLike) -> Path:
    """Create `folder` (with parents) if needed and check that files can be written into it."""
    path = Path(folder)
    if path.exists() and not path.is_dir():
        raise OutputError(f"{path}: exists and is not a folder")
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise OutputError(f"{path}: cannot create folder ({exc.strerror})") from None
    probe_writable(path, path)
    return path


def prepare_output_file(path: str | os.PathLike, suffixes: tuple[str, ...] = ()) -> Path:
    """Check that `path` can be written (not a folder, a short enough name, an allowed suffix)
    and create its folder. OutputError naming the problem otherwise."""
    path = Path(path)
    _check_output_shape(_entries([path])[0], folder=False)
    if suffixes and path.suffix.lower() not in suffixes:
        raise OutputError(f"{path}: the file name must end in {', '.join(suffixes)}")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise OutputError(f"{path}: cannot create folder {path.parent} ({exc.strerror})") from None
    probe_writable(path.parent, path)
    return path
