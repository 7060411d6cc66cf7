"""The exported-graph cache: the same weights exported the same way are exported once; anything
that could change the graph changes the key; a bad entry is never used and never fails an export."""

from __future__ import annotations

import pytest
from conftest import structured_frames

torch = pytest.importorskip("torch")

from rtseg.export import graph_cache  # noqa: E402
from rtseg.export import onnx_export as onnx_export_module  # noqa: E402
from rtseg.export.onnx_export import export_onnx  # noqa: E402
from rtseg.export.package_export import export_fp32_graph  # noqa: E402

SIZE = (24, 32)
MEAN, STD = (0.5, 0.5, 0.5), (0.25, 0.25, 0.25)


def pointwise(seed: int = 0, clip: float = 6.0):
    """(N, 3, H, W) float -> (N, 4, H, W) logits, of torch's own modules; `clip` is a setting."""
    torch.manual_seed(seed)
    return torch.nn.Sequential(torch.nn.Conv2d(3, 4, 1), torch.nn.Hardtanh(-clip, clip))


class UserModule(torch.nn.Module):
    """A module whose code is the user's: its forward could change without its weights."""

    def __init__(self):
        super().__init__()
        self.conv = torch.nn.Conv2d(3, 4, 1)

    def forward(self, x):
        return self.conv(x)


@pytest.fixture
def cache(tmp_path, monkeypatch):
    """A private cache folder; returns the list of real exports made (one path per export)."""
    monkeypatch.setenv("RTSEG_CACHE", str(tmp_path / "cache"))
    monkeypatch.delenv("RTSEG_EXPORT_CACHE", raising=False)
    made = []
    real = onnx_export_module._export_graph

    def counting(module, example, path, input_name, output_name, opset):
        made.append(path)
        real(module, example, path, input_name, output_name, opset)

    monkeypatch.setattr(onnx_export_module, "_export_graph", counting)
    return made


@pytest.fixture
def fake_exports(cache, monkeypatch):
    """As `cache`, but each export writes a small valid ONNX (an Identity) instead of running
    the exporter: for what the cache does with files, not what the exporter makes."""
    import onnx
    from onnx import TensorProto, helper

    def fake(module, example, path, input_name, output_name, opset):
        cache.append(path)
        io = [helper.make_tensor_value_info(n, TensorProto.UINT8, [1]) for n in (input_name, output_name)]
        graph = helper.make_graph(
            [helper.make_node("Identity", [input_name], [output_name])], "g", io[:1], io[1:]
        )
        onnx.save(helper.make_model(graph), str(path))

    monkeypatch.setattr(onnx_export_module, "_export_graph", fake)
    return cache


def _export(model, path):
    return export_onnx(model, path, SIZE, MEAN, STD)


def test_the_same_weights_are_exported_once_and_the_copy_is_identical(cache, tmp_path):
    first = _export(pointwise(), tmp_path / "a.onnx")
    second = _export(pointwise(), tmp_path / "b.onnx")
    assert len(cache) == 1
    assert first.read_bytes() == second.read_bytes()
    assert len(list(graph_cache.folder().glob("*.onnx"))) == 1


def test_other_weights_settings_sizes_or_outputs_are_other_graphs(cache, tmp_path):
    graph = onnx_export_module.DeployableSegmenter(pointwise(), MEAN, STD, "ids")
    example = torch.zeros((2, *SIZE, 3), dtype=torch.uint8)
    base = graph_cache.graph_key(graph, example, opset=18)
    assert graph_cache.graph_key(graph, example, opset=18) == base  # deterministic
    others = [
        graph_cache.graph_key(
            onnx_export_module.DeployableSegmenter(pointwise(seed=1), MEAN, STD, "ids"), example, opset=18
        ),
        graph_cache.graph_key(
            onnx_export_module.DeployableSegmenter(pointwise(clip=2.0), MEAN, STD, "ids"), example, opset=18
        ),
        graph_cache.graph_key(
            onnx_export_module.DeployableSegmenter(pointwise(), (0.4, 0.5, 0.5), STD, "ids"),
            example,
            opset=18,
        ),
        graph_cache.graph_key(
            onnx_export_module.DeployableSegmenter(pointwise(), MEAN, STD, "logits"), example, opset=18
        ),
        graph_cache.graph_key(graph, torch.zeros((2, 24, 40, 3), dtype=torch.uint8), opset=18),
        graph_cache.graph_key(graph, example, opset=17),
    ]
    assert len({base, *others}) == 1 + len(others)


def test_a_graph_with_a_users_module_is_exported_every_time(fake_exports, tmp_path):
    example = torch.zeros((2, *SIZE, 3), dtype=torch.uint8)
    user = onnx_export_module.DeployableSegmenter(UserModule(), MEAN, STD, "ids")
    assert graph_cache.graph_key(user, example) is None
    _export(UserModule(), tmp_path / "a.onnx")
    _export(UserModule(), tmp_path / "b.onnx")
    assert len(fake_exports) == 2 and not list(graph_cache.folder().glob("*.onnx"))


def test_a_corrupt_entry_is_dropped_and_exported_again(fake_exports, tmp_path):
    _export(pointwise(), tmp_path / "a.onnx")
    (entry,) = graph_cache.folder().glob("*.onnx")
    entry.write_bytes(b"\x08\x07 not a protobuf at all \xff\xff")
    again = _export(pointwise(), tmp_path / "b.onnx")
    assert len(fake_exports) == 2
    assert again.read_bytes() == (tmp_path / "a.onnx").read_bytes() == entry.read_bytes()


def test_off_means_every_export_is_real_and_nothing_is_kept(fake_exports, tmp_path, monkeypatch):
    monkeypatch.setenv("RTSEG_EXPORT_CACHE", "0")
    _export(pointwise(), tmp_path / "a.onnx")
    _export(pointwise(), tmp_path / "b.onnx")
    assert len(fake_exports) == 2
    assert not graph_cache.folder().exists()


def test_an_unwritable_cache_never_fails_the_export(fake_exports, tmp_path, monkeypatch):
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("a file where the cache folder would be")
    monkeypatch.setenv("RTSEG_CACHE", str(blocker))
    path = _export(pointwise(), tmp_path / "a.onnx")
    assert path.stat().st_size > 0 and len(fake_exports) == 1
    assert blocker.read_text() == "a file where the cache folder would be"


def test_a_cached_graph_that_fails_parity_is_replaced_by_a_fresh_export(cache, tmp_path):
    _export(pointwise(seed=1), tmp_path / "other.onnx")  # a valid graph of other weights
    (poison,) = graph_cache.folder().glob("*.onnx")
    model = pointwise(seed=0)
    graph = onnx_export_module.DeployableSegmenter(model, MEAN, STD, "ids").eval()
    example = torch.zeros((2, *SIZE, 3), dtype=torch.uint8)
    key = graph_cache.graph_key(graph, example, input="image", output="class_ids", opset=18, max=256)
    poison.rename(graph_cache.folder() / f"{key}.onnx")  # the entry for `model` holds wrong weights

    checkpoint = tmp_path / "ckpt.pth"
    checkpoint.write_bytes(b"stands in for the checkpoint file (hashed into the sidecar)")
    payload = {
        "labels": {"name": "toy", "classes": ["a", "b", "c", "d"], "palette": [[0, 0, 0]] * 4},
        "normalization": {"mean": list(MEAN), "std": list(STD)},
        "model": {"arch": "pointwise", "encoder": "none"},
    }
    frames = structured_frames(2, *SIZE)
    out = tmp_path / "pkg.onnx"
    meta, report = export_fp32_graph(payload, model, checkpoint, out, frames, SIZE)
    assert report.argmax_agreement == 1.0 and meta["parity"]["frames"] == 2
    assert len(cache) == 2  # the poisoned hit was thrown away and the graph exported afresh
    assert not (graph_cache.folder() / f"{key}.onnx").exists()


def test_least_recently_used_entries_go_first(tmp_path, monkeypatch):
    import os

    monkeypatch.setenv("RTSEG_EXPORT_CACHE", str(tmp_path / "graphs"))
    folder = graph_cache.folder()
    assert folder == tmp_path / "graphs"
    folder.mkdir(parents=True)
    for age, name in enumerate("abcd"):
        path = folder / f"{name}.onnx"
        path.write_bytes(b"x" * 10)
        os.utime(path, (1000 - age, 1000 - age))  # a newest, d oldest
    graph_cache.prune(max_entries=3)
    assert sorted(p.stem for p in folder.glob("*.onnx")) == ["a", "b", "c"]
    graph_cache.prune(max_bytes=25)
    assert sorted(p.stem for p in folder.glob("*.onnx")) == ["a", "b"]


def test_two_exports_of_one_graph_at_once_export_it_once(tmp_path, monkeypatch):
    import threading

    import onnx
    from onnx import TensorProto, helper

    monkeypatch.setenv("RTSEG_CACHE", str(tmp_path / "cache"))
    monkeypatch.delenv("RTSEG_EXPORT_CACHE", raising=False)
    graph = helper.make_graph(
        [helper.make_node("Identity", ["x"], ["y"])],
        "g",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1])],
    )
    missed, both_missed, exports = set(), threading.Event(), []
    real_fetch = graph_cache.fetch

    def fetch(key, out):
        hit = real_fetch(key, out)
        if not hit:
            missed.add(out.name)
            if len(missed) == 2:
                both_missed.set()
        return hit

    def export(out):  # the first exporter holds on until the other has looked and missed
        exports.append(out)
        assert both_missed.wait(10)
        onnx.save(helper.make_model(graph), str(out))

    monkeypatch.setattr(graph_cache, "fetch", fetch)
    results = {}
    workers = [
        threading.Thread(
            target=lambda n=n: results.update({n: graph_cache.cached_export("k", tmp_path / n, export)})
        )
        for n in ("a.onnx", "b.onnx")
    ]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(30)
    assert len(exports) == 1 and sorted(results.values()) == [False, True]
    assert (tmp_path / "a.onnx").read_bytes() == (tmp_path / "b.onnx").read_bytes()
