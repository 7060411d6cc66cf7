"""`rtseg bench`: rows and their keys, skipped combinations with reasons, the mIoU gate, CSV /
PNG / JSON output, percentiles, the README table generator and the README benchmark script."""

from __future__ import annotations

import csv
import json
import shutil
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest
from click.testing import CliRunner
from conftest import REPO, TINY_SIZE, structured_frames

from rtseg.bench import GateError, check_gate, latency_summary, machine_info, throughput_fps
from rtseg.bench.accuracy import evaluate_miou
from rtseg.bench.config import DataSpec, parse_data_spec, parse_sizes
from rtseg.bench.runner import BenchReport, select_e2e
from rtseg.cli import main
from rtseg.core.package import write_sidecar
from rtseg.errors import InputError
from rtseg.runtime.base import Backend

FAST = ["--iters", "3", "--warmup", "1", "--threads", "1", "--agreement-frames", "4"]
REQUIRED = {
    "backend": str,
    "precision": str,
    "size": str,
    "batch": int,
    "latency_ms": dict,
    "infer_fps": float,
    "model_bytes": int,
    "peak_rss_mb": float,
}


def bench(*args):
    return CliRunner().invoke(main, ["bench", *map(str, args)])


def assert_error_line(result, *fragments):
    """Exit 1; the last stderr line is the only `rtseg: error: ...` line; no traceback."""
    assert result.exit_code == 1, (result.exit_code, result.output, result.exception)
    assert isinstance(result.exception, SystemExit), result.exception
    lines = result.stderr.strip().splitlines()
    errors = [line for line in lines if line.startswith("rtseg: error: ")]
    assert len(errors) == 1 and lines[-1] == errors[0], result.stderr
    assert "Traceback" not in result.output
    for fragment in fragments:
        assert fragment in errors[0], errors[0]


def make_camvid(root: Path, count: int = 3, size=(72, 96)) -> Path:
    """CamVid layout `val/*.png` + `valannot/*.png`: top half Sky (0), bottom half Road (3),
    the first 10 columns void (11, ignored)."""
    h, w = size
    (root / "val").mkdir(parents=True)
    (root / "valannot").mkdir()
    label = np.zeros((h, w), np.uint8)
    label[h // 2 :] = 3
    label[:, :10] = 11
    for i, image in enumerate(structured_frames(count, h, w, seed=7)):
        cv2.imwrite(str(root / "val" / f"f{i:03d}.png"), cv2.cvtColor(image, cv2.COLOR_RGB2BGR))
        cv2.imwrite(str(root / "valannot" / f"f{i:03d}.png"), label)
    return root


def copy_package(package, folder: Path, int8: str | None = None) -> Path:
    """The tiny fp32 package copied into `folder`; with `int8="copy"` a stand-in int8 variant
    (the fp32 graph under the int8 name), with `int8="corrupt"` one that is not an ONNX graph."""
    folder.mkdir(parents=True, exist_ok=True)
    onnx_path = folder / "tiny.onnx"
    shutil.copy(package.onnx_path, onnx_path)
    checkpoint = package.sidecar_path.parent / package.meta["source"]["checkpoint"]
    shutil.copy(checkpoint, folder / "tiny.pth")  # the sidecar names it relative to itself
    meta = {k: v for k, v in package.meta.items() if k not in ("onnx", "onnx_sha256")}
    meta["source"] = {**meta["source"], "checkpoint": "tiny.pth"}
    write_sidecar(onnx_path, meta)
    if int8:
        variant = folder / "tiny_int8.onnx"
        shutil.copy(package.onnx_path, variant)
        write_sidecar(variant, dict(meta, precision="int8", name="tiny_int8"))
        if int8 == "corrupt":  # a valid sidecar (no hash to compare) over bytes that are no graph
            variant.write_bytes(b"not an onnx graph")
            sidecar = variant.with_suffix(".json")
            variant_meta = json.loads(sidecar.read_text())
            del variant_meta["onnx_sha256"]
            sidecar.write_text(json.dumps(variant_meta))
    return onnx_path


@pytest.fixture(scope="module")
def full_run(tiny_package, tiny_video, tmp_path_factory):
    """One bench run over every backend and precision with data and video; its outputs."""
    tmp = tmp_path_factory.mktemp("bench")
    model = copy_package(tiny_package, tmp / "pkg", int8="copy")
    data = make_camvid(tmp / "camvid")
    out = {"json": tmp / "rows.json", "csv": tmp / "rows.csv", "png": tmp / "plot.png"}
    result = bench(
        "--model",
        model,
        "--backends",
        "onnxruntime,torch,tensorrt",
        "--precisions",
        "fp32,fp16,int8",
        "--video",
        tiny_video,
        "--data",
        f"camvid:{data}:val",
        "--batch",
        "2",
        "--e2e-combos",
        "onnxruntime:fp32",
        "--e2e-output",
        "mp4",
        "--min-miou",
        "0",
        "--json",
        out["json"],
        "--csv",
        out["csv"],
        "--plot",
        out["png"],
        *FAST,
    )
    return result, out, model


def rows_by(rows, backend, precision, batch=1):
    found = [r for r in rows if (r["backend"], r["precision"], r["batch"]) == (backend, precision, batch)]
    assert len(found) == 1, (backend, precision, batch, rows)
    return found[0]


# --- statistics and parsing ---------------------------------------------------------------


def test_percentiles_on_known_numbers():
    samples = list(range(1, 101))  # 1..100 ms, shuffled order must not matter
    summary = latency_summary(samples[::-1])
    # the streaming histogram's percentiles are within 0.5 % of numpy's exact ones
    assert summary["p50"] == pytest.approx(50.5, rel=0.005)
    assert summary["p90"] == pytest.approx(90.1, rel=0.005)
    assert summary["p95"] == pytest.approx(95.05, rel=0.005)
    assert summary["p99"] == pytest.approx(99.01, rel=0.005)
    assert (summary["min"], summary["max"], summary["mean"]) == (1, 100, pytest.approx(50.5))
    assert latency_summary([4.0])["p99"] == 4.0
    assert throughput_fps([10.0, 10.0, 20.0], batch=2) == pytest.approx(150.0)  # 6 frames / 40 ms
    with pytest.raises(InputError, match="no timing samples"):
        latency_summary([])


def test_option_parsing():
    assert parse_sizes("360x480, 512x1024,360x480") == ((360, 480), (512, 1024))
    assert parse_sizes(None) == ()
    with pytest.raises(InputError, match="HEIGHTxWIDTH"):
        parse_sizes("360by480")
    with pytest.raises(InputError, match="NAME:DIR:SPLIT"):
        parse_data_spec("camvid")
    with pytest.raises(InputError, match="does not exist"):
        parse_data_spec("camvid:/no/such/folder:val")


def test_machine_info_records_hardware_and_versions():
    info = machine_info(threads=2)
    assert info["cpu"] and info["logical_cores"] >= 1 and info["threads"] == 2
    assert isinstance(info["gpus"], list)
    versions = info["versions"]
    assert versions["python"] == ".".join(map(str, sys.version_info[:3]))
    assert versions["numpy"] == np.__version__
    for name in ("torch", "onnxruntime", "onnx", "av", "opencv", "tensorrt", "rtseg"):
        assert name in versions


class ConstantBackend(Backend):
    """Predicts one class everywhere."""

    name = "constant"

    def __init__(self, class_id: int, size=TINY_SIZE):
        self.class_id, self.input_size, self.num_classes = class_id, size, 11

    def _infer_impl(self, images):
        return np.full(images.shape[:3], self.class_id, np.uint8)


def test_miou_of_a_known_prediction(tmp_path):
    data = make_camvid(tmp_path / "camvid")
    # all Road: Road IoU = 1/2 (half the valid pixels), Sky IoU = 0 -> mIoU 0.25
    result = evaluate_miou(ConstantBackend(3), DataSpec("camvid", data, "val"), limit=2)
    assert result["images"] == 2
    assert result["miou"] == pytest.approx(0.25)
    assert result["pixel_acc"] == pytest.approx(0.5)
    wrong = ConstantBackend(3)
    wrong.num_classes = 5
    with pytest.raises(InputError, match="5 classes"):
        evaluate_miou(wrong, DataSpec("camvid", data, "val"))


def test_fastest_precision_is_chosen_for_end_to_end(tmp_path):
    from rtseg.bench.config import BenchConfig

    video = tmp_path / "v.mp4"
    video.write_bytes(b"x")
    rows = [
        {"backend": b, "precision": p, "size": "64x96", "batch": batch, "status": "ok", "infer_fps": fps}
        for b, p, batch, fps in [
            ("onnxruntime", "fp32", 1, 10.0),
            ("onnxruntime", "int8", 1, 30.0),
            ("onnxruntime", "int8", 8, 90.0),
            ("torch", "fp32", 1, 5.0),
        ]
    ]
    cfg = BenchConfig(model=tmp_path / "m.onnx", video=video)
    chosen = {(r["backend"], r["precision"], r["batch"]) for r in select_e2e(cfg, rows)}
    assert chosen == {("onnxruntime", "int8", 1), ("torch", "fp32", 1)}
    cfg = BenchConfig(model=tmp_path / "m.onnx", video=video, e2e_combos=("torch:fp32",))
    assert [r["backend"] for r in select_e2e(cfg, rows)] == ["torch"]


def test_gate_names_the_failing_combinations():
    rows = [
        {
            "backend": "onnxruntime",
            "precision": p,
            "size": "64x96",
            "batch": 1,
            "status": "ok",
            "miou": m,
            "reason": None,
        }
        for p, m in (("fp32", 0.61), ("int8", 0.42))
    ]
    check_gate(BenchReport(rows, {}), 0.4)
    with pytest.raises(GateError, match=r"mIoU under 0.5: onnxruntime int8 64x96 \(0.420\)$"):
        check_gate(BenchReport(rows, {}), 0.5)


# --- the command ----------------------------------------------------------------------------


@pytest.mark.slow
def test_bench_rows_carry_required_keys(full_run):
    result, out, model = full_run
    assert result.exit_code == 0, (result.output, result.exception)
    rows = json.loads(out["json"].read_text())
    assert isinstance(rows, list)
    measured = [r for r in rows if r["status"] == "ok"]
    assert {(r["backend"], r["precision"], r["batch"]) for r in measured} == {
        ("onnxruntime", "fp32", 1),
        ("onnxruntime", "fp32", 2),
        ("onnxruntime", "int8", 1),
        ("onnxruntime", "int8", 2),
        ("torch", "fp32", 1),
        ("torch", "fp32", 2),
    }
    for row in measured:
        for key, kind in REQUIRED.items():
            assert isinstance(row[key], kind), (key, row[key])
        lat = row["latency_ms"]
        assert 0 < lat["p50"] <= lat["p90"] <= lat["p99"] <= lat["max"]
        assert row["size"] == "64x96" and row["infer_fps"] > 0 and row["peak_rss_mb"] > 10
        assert 0.0 <= row["miou"] <= 1.0 and row["miou_images"] == 3
        assert 0.0 <= row["agreement"] <= 1.0 and row["agreement_ref"] == "onnxruntime fp32"
        assert row["machine"]["versions"]["onnxruntime"] and row["machine"]["cpu"]
        assert row["device"] in ("cpu", "cuda")  # --device auto: where it ran
    fp32 = rows_by(rows, "onnxruntime", "fp32")
    assert fp32["model_bytes"] == model.stat().st_size
    # the stand-in int8 is the fp32 graph: it must agree exactly
    assert rows_by(rows, "onnxruntime", "int8")["agreement"] == 1.0
    assert fp32["e2e_fps"] > 0 and fp32["e2e"]["frames"] == 24
    assert fp32["e2e_ratio"] == pytest.approx(fp32["e2e_fps"] / fp32["infer_fps"])
    assert rows_by(rows, "torch", "fp32")["e2e_fps"] is None  # not selected


@pytest.mark.slow
def test_bench_lists_skipped_combinations_with_reasons(full_run):
    result, out, _ = full_run
    rows = json.loads(out["json"].read_text())
    skipped = {(r["backend"], r["precision"]): r["reason"] for r in rows if r["status"] == "skipped"}
    assert "no fp16 package beside the model (tiny_fp16.onnx" in skipped["onnxruntime", "fp16"]
    assert "fp32 checkpoint only" in skipped["torch", "int8"]
    trt = skipped["tensorrt", "fp32"]
    if shutil.which("nvidia-smi") is None:
        assert "no CUDA GPU" in trt
    assert ("tensorrt", "fp16") in skipped and ("tensorrt", "int8") in skipped
    assert "tensorrt fp32, fp16, int8 64x96: skipped:" in result.stdout  # the terminal table


@pytest.mark.slow
def test_bench_writes_csv_and_png(full_run):
    result, out, _ = full_run
    rows = json.loads(out["json"].read_text())
    with out["csv"].open() as fh:
        records = list(csv.DictReader(fh))
    assert len(records) == len(rows)
    first = records[0]
    assert first["backend"] == "onnxruntime" and float(first["latency_p99_ms"]) > 0
    assert float(first["infer_fps"]) > 0 and first["cpu"]
    assert out["png"].read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "onnxruntime" in result.stdout and "p99 ms" in result.stdout
    assert "onnxruntime fp32 64x96: " in result.stdout.split("busy ms per frame")[1]


@pytest.mark.slow
def test_min_miou_gate_exits_1_naming_combinations(tiny_package, tmp_path):
    model = copy_package(tiny_package, tmp_path / "pkg", int8="copy")
    data = make_camvid(tmp_path / "camvid", count=2)
    rows_path = tmp_path / "rows.json"
    result = bench(
        "--model",
        model,
        "--backends",
        "onnxruntime",
        "--precisions",
        "fp32,int8",
        "--data",
        f"camvid:{data}:val",
        "--batch",
        "0",
        "--min-miou",
        "0.99",
        "--json",
        rows_path,
        *FAST,
    )
    assert_error_line(result, "mIoU under 0.99", "onnxruntime fp32 64x96", "onnxruntime int8 64x96")
    assert len(json.loads(rows_path.read_text())) == 2  # results are written before the gate


@pytest.mark.slow
def test_failed_combination_fails_the_command(tiny_package, tmp_path):
    model = copy_package(tiny_package, tmp_path / "pkg", int8="corrupt")
    result = bench(
        "--model",
        model,
        "--backends",
        "onnxruntime",
        "--precisions",
        "fp32,int8",
        "--batch",
        "65",
        "--json",
        tmp_path / "rows.json",
        *FAST,
    )
    assert_error_line(
        result, "1 combination(s) failed", "onnxruntime int8 64x96", "not a readable ONNX graph"
    )
    rows = json.loads((tmp_path / "rows.json").read_text())
    assert [(r["precision"], r["batch"], r["status"]) for r in rows] == [
        ("fp32", 1, "ok"),
        ("fp32", 65, "skipped"),
        ("int8", 1, "failed"),
    ]
    assert "at most batch 64" in rows[1]["reason"]


@pytest.mark.slow
def test_other_size_is_reexported_into_the_cache(tiny_package, tmp_path):
    model = copy_package(tiny_package, tmp_path / "pkg")
    cache = tmp_path / "cache"
    result = bench(
        "--model",
        model,
        "--backends",
        "onnxruntime",
        "--precisions",
        "fp32",
        "--sizes",
        "32x64",
        "--batch",
        "0",
        "--cache-dir",
        cache,
        "--json",
        tmp_path / "rows.json",
        *FAST,
    )
    assert result.exit_code == 0, (result.output, result.exception)
    (row,) = json.loads((tmp_path / "rows.json").read_text())
    assert (row["status"], row["size"], row["height"], row["width"]) == ("ok", "32x64", 32, 64)
    exported = list(cache.glob("tiny-*/32x64/tiny.onnx"))
    assert len(exported) == 1 and row["model_bytes"] == exported[0].stat().st_size


@pytest.mark.parametrize(
    "args, fragments",
    [
        (["--min-miou", "0.5"], ["--min-miou needs labelled data"]),
        (["--sizes", "360by480"], ["HEIGHTxWIDTH"]),
        (["--precisions", "fp8"], ["unknown fp8"]),
        (["--iters", "0"], ["--iters must be at least 1"]),
        (["--e2e-combos", "torch"], ["BACKEND:PRECISION"]),
    ],
)
def test_bad_options_are_one_line_errors(tiny_package, args, fragments):
    assert_error_line(bench("--model", tiny_package.onnx_path, *args), *fragments)


def test_missing_model_and_output_folder(tmp_path, tiny_package):
    assert_error_line(bench("--model", tmp_path / "none.onnx"), "does not exist")
    (tmp_path / "a_file").write_text("x")  # a folder that cannot be made, found before the bench runs
    assert_error_line(
        bench("--model", tiny_package.onnx_path, "--json", tmp_path / "a_file" / "x.json"), "a_file"
    )


# --- README table ---------------------------------------------------------------------------


def readme_table(*args):
    return subprocess.run(
        [sys.executable, str(REPO / "tools" / "readme_table.py"), *map(str, args)],
        capture_output=True,
        text=True,
        cwd=REPO,
        timeout=120,
    )


def sample_rows() -> list[dict]:
    return [
        {
            "model": "m",
            "backend": "onnxruntime",
            "precision": "int8",
            "size": "360x480",
            "batch": 1,
            "status": "ok",
            "reason": None,
            "threads": 2,
            "iters": 50,
            "warmup": 10,
            "latency_ms": {"p50": 20.0, "p90": 22.0, "p99": 30.0},
            "infer_fps": 49.5,
            "e2e_fps": 30.0,
            "e2e_ratio": 30.0 / 49.5,
            "miou": 0.612,
            "agreement": 0.99,
            "model_bytes": 3 * 2**20,
            "peak_rss_mb": 150.0,
            "data": "camvid:val",
            "video": "dash.mp4",
            "miou_images": 101,
            "timestamp": "T",
            "e2e": {"stages": {"capture": {"busy_ms_mean": 5.0}, "infer": {"busy_ms_mean": 20.0}}},
            "machine": machine_info(2),
        },
        {
            "model": "m",
            "backend": "tensorrt",
            "precision": "fp16",
            "size": "360x480",
            "batch": 1,
            "status": "skipped",
            "reason": "no CUDA GPU",
        },
    ]


def test_readme_table_replaces_only_between_markers(tmp_path):
    results = tmp_path / "bench.json"
    results.write_text(json.dumps(sample_rows()))
    head = "# Project\n\nSome text <!-- not a marker -->\n\n<!-- bench:start -->"
    tail = "<!-- bench:end -->\n\n## After\nkept as is\n"
    readme = tmp_path / "README.md"
    readme.write_text(f"{head}\nOLD TABLE\n{tail}")
    done = readme_table(results, "--readme", readme)
    assert done.returncode == 0, done.stderr
    text = readme.read_text()
    assert text.startswith(head) and text.endswith(tail) and "OLD TABLE" not in text
    assert "| onnxruntime | int8 | 360x480 | 1 | 20.0 / 22.0 / 30.0 | - | 49.5 | 30.0 (61%) | 0.612 |" in text
    assert "- tensorrt fp16 360x480: skipped: no CUDA GPU" in text
    assert "- onnxruntime int8 360x480: 30.0 fps; capture 5.0, infer 20.0 ms" in text
    assert readme_table(results, "--readme", readme, "--check").returncode == 0
    readme_table(results, "--readme", readme)
    assert readme.read_text() == text  # idempotent
    results.write_text(json.dumps(sample_rows()[:1]))
    stale = readme_table(results, "--readme", readme, "--check")
    assert stale.returncode == 1 and "out of date" in stale.stderr
    assert readme.read_text() == text  # --check never writes


def test_table_says_when_the_mious_split_was_seen_in_training():
    from rtseg.bench.report import markdown_table

    rows = sample_rows()
    assert "not accuracy" not in markdown_table(rows)
    rows[0]["miou_seen_in_training"] = True
    assert "mIoU on camvid:val (101 images) (a split the model was trained on" in markdown_table(rows)


def test_readme_table_without_markers_is_an_error(tmp_path):
    results = tmp_path / "bench.json"
    results.write_text(json.dumps(sample_rows()))
    readme = tmp_path / "README.md"
    readme.write_text("# no markers\n")
    done = readme_table(results, "--readme", readme)
    assert done.returncode == 1 and "bench:start" in done.stderr and "Traceback" not in done.stderr
    assert readme.read_text() == "# no markers\n"


@pytest.mark.slow
def test_readme_bench_script_end_to_end(tiny_package, tiny_video, tmp_path):
    model = copy_package(tiny_package, tmp_path / "pkg")
    data = make_camvid(tmp_path / "camvid", count=2)
    readme = tmp_path / "README.md"
    readme.write_text("# r\n<!-- bench:start -->\n<!-- bench:end -->\n")
    out = tmp_path / "results"
    done = subprocess.run(
        [
            sys.executable,
            str(REPO / "benchmarks" / "run_readme_bench.py"),
            "--model",
            str(model),
            "--data",
            f"camvid:{data}:val",
            "--video",
            str(tiny_video),
            "--out-dir",
            str(out),
            "--readme",
            str(readme),
            "--backends",
            "onnxruntime",
            "--precisions",
            "fp32",
            "--batch",
            "0",
            *FAST,
        ],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stderr
    rows = json.loads((out / "readme_bench.json").read_text())
    assert rows[0]["e2e_fps"] > 0 and rows[0]["miou"] is not None
    assert (out / "readme_bench.png").is_file() and (out / "readme_bench.csv").is_file()
    text = readme.read_text()
    assert "| onnxruntime | fp32 | 64x96 | 1 |" in text
    assert "](results/readme_bench.png)" in text


def test_plot_accuracy_axis_spans_at_least_five_points_and_stays_within_0_and_1():
    from rtseg.bench.plot import MIN_SPAN, accuracy_limits

    low, high = accuracy_limits([0.6985, 0.6990, 0.6987])  # equal accuracies: not far apart
    assert high - low == pytest.approx(MIN_SPAN) and low < 0.6985 and high > 0.6990
    low, high = accuracy_limits([0.2, 0.9])  # a real spread keeps its margins
    assert low == pytest.approx(0.09) and high == pytest.approx(1.0)  # margins kept, the axis shifted under 1
    assert accuracy_limits([0.999, 1.0]) == pytest.approx((0.95, 1.0))
    assert accuracy_limits([0.0, 0.001]) == pytest.approx((0.0, 0.05))


def test_plot_labels_are_moved_off_each_other_and_off_the_markers():
    from rtseg.bench.plot import label_offsets

    anchors, sizes = [(100, 200), (105, 201), (300, 200)], [(80, 12)] * 3
    offsets = label_offsets(anchors, sizes)
    assert offsets[0] == 0 and offsets[2] == 0  # nothing in their way
    assert abs(offsets[1] + anchors[1][1] - anchors[0][1]) >= 12  # the second label moved clear
    assert label_offsets([(100, 200)], [(80, 12)], obstacles=[(120, 195, 130, 205)]) != [0]


def test_the_bench_cache_is_in_the_user_cache_unless_given(tiny_package, tmp_path, monkeypatch):
    from rtseg.bench.plan import open_family

    monkeypatch.setenv("RTSEG_CACHE", str(tmp_path / "user-cache"))
    assert open_family(tiny_package.onnx_path, None).cache_dir == tmp_path / "user-cache" / "bench"
    assert open_family(tiny_package.onnx_path, tmp_path / "mine").cache_dir == tmp_path / "mine"


@pytest.mark.slow
def test_bench_measures_a_checkpoint_through_a_cached_export(tiny_checkpoint, tmp_path):
    """A checkpoint is benchmarked like a package: exported once into the cache (keyed by its
    hash), its other precisions made there, and the torch row runs the checkpoint itself."""
    cache, rows_path = tmp_path / "cache", tmp_path / "rows.json"
    args = ["--model", tiny_checkpoint, "--backends", "onnxruntime,torch", "--precisions", "fp32,int8"]
    args += ["--batch", "0", "--e2e-combos", "none", "--cache-dir", cache, "--json", rows_path, *FAST]
    result = bench(*args)
    assert result.exit_code == 0, (result.output, result.exception)
    rows = json.loads(rows_path.read_text())
    measured = {(r["backend"], r["precision"]) for r in rows if r["status"] == "ok"}
    assert measured == {("onnxruntime", "fp32"), ("onnxruntime", "int8"), ("torch", "fp32")}
    exported = sorted(p.name for p in cache.rglob("*.onnx"))
    assert exported == ["tiny.onnx", "tiny_int8.onnx"]
    assert bench(*args).exit_code == 0  # the second run reuses the cache
    assert sorted(p.name for p in cache.rglob("*.onnx")) == exported


@pytest.mark.parametrize("video", ["/dev/null", "FOLDER", "missing.mp4"])
def test_bench_names_what_the_video_is(tiny_package, tmp_path, video):
    path = {"FOLDER": str(tmp_path), "missing.mp4": str(tmp_path / "missing.mp4")}.get(video, video)
    result = bench("--model", tiny_package.onnx_path, "--video", path)
    what = {"/dev/null": "is a character device, not a file", "FOLDER": "is a folder, not a file"}
    assert_error_line(result, f"video {path} {what.get(video, 'does not exist')}")
