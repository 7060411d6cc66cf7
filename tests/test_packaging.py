"""Packaging: what the wheel holds, where the bundled model is found, optional extras, and that
nothing committed or exported records a path of the machine it was made on."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import onnx
import pytest

from rtseg.core.package import DEFAULT_MODEL, engines_dir, portable, portable_source, relative_reference
from rtseg.errors import MissingDependencyError, import_optional
from rtseg.export.onnx_export import STACK_TRACE_KEY, drop_stack_traces

REPO = Path(__file__).resolve().parent.parent
VARIANT_SUFFIXES = ("", "_fp16", "_int8", "_int8cpu", "_int8ov")
BUNDLED = [f"{DEFAULT_MODEL}{v}.{ext}" for v in VARIANT_SUFFIXES for ext in ("onnx", "json")] + [
    f"{DEFAULT_MODEL}.pth",
    "metrics.json",
    "MODEL_CARD.md",
]
# An absolute POSIX path in a string: `/x...` at the start or after whitespace, ':', '(' or '='
# (written apart from rtseg.core.package's own pattern on purpose).
ABSOLUTE = re.compile(r"(?:^|[\s:(=])/[\w.-]")


def _strings(value):
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for v in value.values():
            yield from _strings(v)
    elif isinstance(value, list):
        for v in value:
            yield from _strings(v)


def absolute_paths(value) -> list[str]:
    return [s for s in _strings(value) if ABSOLUTE.search(s) and "://" not in s]


def tracked_files(pattern: str) -> list[Path]:
    """Committed files matching a glob (`git ls-files`), else the files on disk."""
    try:
        out = subprocess.run(
            ["git", "ls-files", "-z", pattern], cwd=REPO, capture_output=True, check=True, text=True
        ).stdout
        return [REPO / p for p in out.split("\0") if p]
    except (OSError, subprocess.CalledProcessError):
        return sorted(REPO.glob(f"**/{pattern}"))


@pytest.mark.parametrize(
    "given,recorded",
    [
        ("camvid:/data/sets/camvid:val", "camvid:camvid:val"),
        ("/home/me/clip.mp4", "clip.mp4"),
        ("clip.mp4 (from /home/me/clips/clip.mp4)", "clip.mp4 (from clip.mp4)"),
        ("../shared/data/camvid", "../shared/data/camvid"),
        ("rtsp://user:pw@cam.local:554/stream", "rtsp://user:pw@cam.local:554/stream"),
        ("lavfi:testsrc2=size=640x480:rate=30", "lavfi:testsrc2=size=640x480:rate=30"),
        ("generated frames", "generated frames"),
    ],
)
def test_recorded_sources_name_absolute_paths_by_name_only(given, recorded):
    assert portable_source(given) == recorded
    assert portable({"a": [given, 3, None]}) == {"a": [recorded, 3, None]}


def test_a_sidecar_names_its_checkpoint_relative_to_it_or_by_name(tmp_path):
    (tmp_path / "runs" / "x").mkdir(parents=True)
    (tmp_path / "out").mkdir()
    assert relative_reference(tmp_path / "out" / "m.pth", tmp_path / "out") == "m.pth"
    assert relative_reference(tmp_path / "runs/x/best.pth", tmp_path / "out") == "../runs/x/best.pth"
    assert relative_reference("/nowhere-else/best.pth", tmp_path / "out") == "best.pth"


def test_no_committed_json_or_csv_records_an_absolute_path():
    files = tracked_files("*.json") + tracked_files("*.csv")
    assert any(p.parent.name == "engines" for p in files) and any(p.parent.name == "results" for p in files)
    for path in files:
        text = path.read_text()
        found = (
            absolute_paths(json.loads(text)) if path.suffix == ".json" else absolute_paths(text.split(","))
        )
        assert not found, f"{path.relative_to(REPO)} records absolute paths: {found[:3]}"


def test_the_bundled_onnx_and_checkpoint_record_no_build_paths():
    torch = pytest.importorskip("torch")
    for name in BUNDLED:
        if name.endswith(".onnx"):
            model = onnx.load(str(engines_dir() / name))
            assert drop_stack_traces(model) == 0, f"{name} holds the exporter's stack traces"
    config = torch.load(engines_dir() / f"{DEFAULT_MODEL}.pth", weights_only=True)["config"]
    assert not absolute_paths(config)


def test_an_exported_package_records_no_absolute_path(tiny_package):
    assert not absolute_paths(tiny_package.meta)
    checkpoint = tiny_package.sidecar_path.parent / tiny_package.meta["source"]["checkpoint"]
    assert checkpoint.is_file()  # relative to the sidecar, still found
    model = onnx.load(str(tiny_package.onnx_path))
    assert not any(p.key == STACK_TRACE_KEY for n in model.graph.node for p in n.metadata_props)


def test_drop_stack_traces_keeps_the_other_node_metadata():
    node = onnx.helper.make_node("Relu", ["x"], ["y"])
    for key in (STACK_TRACE_KEY, "namespace"):
        node.metadata_props.add(key=key, value='File "/home/me/x.py", line 1')
    graph = onnx.helper.make_graph(
        [node],
        "g",
        [onnx.helper.make_tensor_value_info("x", onnx.TensorProto.FLOAT, [1])],
        [onnx.helper.make_tensor_value_info("y", onnx.TensorProto.FLOAT, [1])],
    )
    model = onnx.helper.make_model(graph)
    assert drop_stack_traces(model) == 1
    assert [p.key for p in model.graph.node[0].metadata_props] == ["namespace"]


def test_every_folder_of_rtseg_is_a_regular_package():
    folders = {p.parent for p in (REPO / "rtseg").rglob("*.py")}
    missing = [str(f.relative_to(REPO)) for f in folders if not (f / "__init__.py").is_file()]
    assert not missing, f"no __init__.py (left out of the wheel): {missing}"


def test_bundled_models_come_from_the_installed_package_data(tmp_path, monkeypatch):
    monkeypatch.delenv("RTSEG_ENGINES", raising=False)
    assert (engines_dir() / f"{DEFAULT_MODEL}.onnx").is_file()  # checkout: the repo's engines/
    installed = tmp_path / "site" / "_bundled"
    installed.mkdir(parents=True)
    (installed / "__init__.py").write_text("")
    monkeypatch.syspath_prepend(str(installed.parent))
    import importlib

    monkeypatch.setitem(sys.modules, "rtseg._bundled", importlib.import_module("_bundled"))
    assert engines_dir() == installed
    monkeypatch.setenv("RTSEG_ENGINES", str(tmp_path / "mine"))
    assert engines_dir() == tmp_path / "mine"


def test_a_missing_optional_package_is_one_error_naming_its_extra(tmp_path, monkeypatch):
    with pytest.raises(MissingDependencyError, match=r"pip install 'rtseg\[train\]'") as caught:
        import_optional("no_such_pkg_xyz", "testing", extra="train")
    assert isinstance(caught.value, ImportError) and caught.value.extra == "train"
    monkeypatch.setitem(sys.modules, "torch", None)
    with pytest.raises(MissingDependencyError, match=r"torch is required for training.*rtseg\[train\]"):
        import_optional("torch")
    (tmp_path / "broken_mod_xyz.py").write_text("import another_missing_pkg_xyz\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    with pytest.raises(ModuleNotFoundError, match="another_missing_pkg_xyz"):  # not the extra's error
        import_optional("broken_mod_xyz")


NO_TORCH = (
    "import sys; sys.modules['torch'] = None; sys.argv[0] = 'rtseg'\n"
    "from rtseg.cli import main\n"
    "try:\n    main()\nfinally:\n    assert sys.modules.get('torch') is None, 'torch was imported'\n"
)


def _without_torch(*args, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-c", NO_TORCH, *map(str, args)],
        capture_output=True,
        text=True,
        cwd=cwd,
        timeout=300,
    )


@pytest.mark.parametrize(
    "args",
    [
        ("export", "ckpt.pth", "-o", "x.onnx"),
        ("train", "--dataset", "camvid", "--data-root", "."),
        ("run", "--video", "{video}", "--backend", "torch", "--max-frames", "1"),
    ],
)
def test_commands_that_need_torch_say_which_extra_in_one_line(args, tiny_video, tmp_path):
    (tmp_path / "ckpt.pth").write_bytes(b"")
    result = _without_torch(*(a.format(video=tiny_video) for a in args), cwd=tmp_path)
    assert result.returncode == 1, result.stderr
    assert result.stderr.strip().splitlines() == [
        "rtseg: error: torch is required for training, export and the torch backend but is not "
        "installed (pip install 'rtseg[train]')"
    ]


def test_run_on_onnx_runtime_needs_no_torch(tiny_package, tiny_video, tmp_path):
    out = tmp_path / "out.mp4"
    result = _without_torch(
        "run", "--video", tiny_video, "--model", tiny_package.onnx_path, "--output", out, "-q", cwd=tmp_path
    )
    assert result.returncode == 0, result.stderr
    assert out.stat().st_size > 0


def _copy_tracked_tree(dst: Path) -> None:
    try:
        listed = subprocess.run(
            ["git", "ls-files", "-co", "--exclude-standard", "-z"], cwd=REPO, capture_output=True, check=True
        ).stdout.decode()
    except (OSError, subprocess.CalledProcessError):
        pytest.skip("not a git checkout: cannot tell the tracked files")
    for rel in filter(None, listed.split("\0")):
        if (REPO / rel).is_file():
            (dst / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(REPO / rel, dst / rel)


@pytest.mark.slow
def test_the_wheel_holds_every_subpackage_and_the_bundled_model(tmp_path):
    pytest.importorskip("setuptools")
    src, out = tmp_path / "src", tmp_path / "dist"
    _copy_tracked_tree(src)
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "-q",
            "--no-deps",
            "--no-build-isolation",
            "-w",
            str(out),
            ".",
        ],
        cwd=src,
        check=True,
        capture_output=True,
    )
    (wheel,) = out.glob("rtseg-*.whl")
    with zipfile.ZipFile(wheel) as zf:
        names = set(zf.namelist())
        packages = {str(p.parent.relative_to(src)) for p in (src / "rtseg").rglob("*.py")}
        assert {f"{p}/__init__.py" for p in packages} <= names
        assert "rtseg/export/__init__.py" in names and "rtseg/export/int8.py" in names
        assert {f"rtseg/_bundled/{n}" for n in BUNDLED} <= names
        assert not [n for n in names if n.endswith((".engine", ".plan", ".pyc"))]
        for name in (n for n in names if n.endswith(".json")):
            assert not absolute_paths(json.loads(zf.read(name))), name
