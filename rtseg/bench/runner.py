"""Run a benchmark: plan the combinations, measure each in a fresh worker process, compare
with fp32, run the pipeline end to end, and return one row per combination and batch."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from rtseg.bench.accuracy import agreement
from rtseg.bench.config import BenchConfig
from rtseg.bench.frames import resize_frames, synthetic_frames, video_sample
from rtseg.bench.machine import machine_info
from rtseg.bench.plan import (
    Combo,
    ModelFamily,
    Unavailable,
    model_input_size,
    open_family,
    plan_combos,
    resolve_package,
)
from rtseg.core.frames import format_size
from rtseg.errors import RtsegError

REFERENCE_ORDER = ("onnxruntime", "tensorrt", "torch")  # fp32 reference for agreement


@dataclass
class BenchReport:
    """Rows (dicts, JSON-ready; see `rtseg.bench` for the schema) and the machine they ran on."""

    rows: list[dict]
    machine: dict

    def failed(self) -> list[dict]:
        """Rows that failed, and measured rows whose end-to-end run failed."""
        return [r for r in self.rows if r["status"] == "failed" or "failed" in (r.get("e2e") or {})]

    def below(self, min_miou: float) -> list[dict]:
        """Measured batch-1 rows whose mIoU is under `min_miou` (or missing)."""
        return [
            r
            for r in self.rows
            if r["status"] == "ok" and r["batch"] == 1 and (r.get("miou") is None or r["miou"] < min_miou)
        ]


def row_label(row: dict) -> str:
    """ "backend precision HxW", as Combo.label."""
    return f"{row['backend']} {row['precision']} {row['size']}"


def _log_stderr(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def source_frames(cfg: BenchConfig, size: tuple[int, int]) -> tuple[np.ndarray, str]:
    """`(N, H, W, 3) uint8 RGB` frames for timing, parity and agreement, and where they came
    from: the video's frames sampled evenly, else the dataset's images, else generated."""
    n = cfg.agreement_frames
    if cfg.video is not None:
        return video_sample(cfg.video, n), "video"
    if cfg.data is not None:
        from rtseg.bench.accuracy import open_split
        from rtseg.core.frames import evenly_spaced

        dataset = open_split(cfg.data)
        images = [dataset[i][0] for i in evenly_spaced(len(dataset), n)]
        first = images[0].shape[:2]
        return np.stack([resize_frames(im[None], first)[0] for im in images]), "dataset"
    return synthetic_frames(n, *size), "synthetic"


class WorkerRunner:
    """Spawns `python -m rtseg.bench.worker` with a spec file and reads its result file."""

    def __init__(self, work: Path, threads: int, timeout_s: float, log: Callable[[str], None]):
        self.work, self.threads, self.timeout_s, self.log = work, threads, timeout_s, log
        self.count = 0

    def __call__(self, spec: dict) -> dict:
        self.count += 1
        spec_path = self.work / f"spec{self.count}.json"
        out_path = self.work / f"result{self.count}.json"
        spec_path.write_text(json.dumps(spec))
        env = dict(os.environ, OMP_NUM_THREADS=str(self.threads))
        root = str(Path(__file__).resolve().parents[2])
        env["PYTHONPATH"] = os.pathsep.join(p for p in (root, env.get("PYTHONPATH")) if p)
        command = [sys.executable, "-m", "rtseg.bench.worker", str(spec_path), str(out_path)]
        try:
            proc = subprocess.run(command, env=env, capture_output=True, text=True, timeout=self.timeout_s)
        except subprocess.TimeoutExpired:
            return {"status": "failed", "reason": f"timed out after {self.timeout_s:.0f} s"}
        if out_path.is_file():
            return json.loads(out_path.read_text())
        tail = proc.stderr.strip().splitlines()
        self.log(proc.stderr.strip())
        last = tail[-1] if tail else "no output"
        return {"status": "failed", "reason": f"worker exited with status {proc.returncode}: {last}"}


def _base_row(cfg: BenchConfig, family: ModelFamily, combo: Combo) -> dict:
    h, w = combo.size
    return {
        "model": family.stem,
        "backend": combo.backend,
        "precision": combo.precision,
        "size": format_size(combo.size),
        "height": h,
        "width": w,
        "batch": 1,
        "status": "ok",
        "reason": None,
        "latency_ms": None,
        "infer_fps": None,
        "miou": None,
        "pixel_acc": None,
        "miou_images": None,
        "miou_seen_in_training": None,
        "agreement": None,
        "agreement_ref": None,
        "model_bytes": None,
        "peak_rss_mb": None,
        "gpu_mem_mb": None,
        "e2e_fps": None,
        "e2e_ratio": None,
        "e2e": None,
        "load_s": None,
        "runtime": None,
        "device": None,
        "threads": cfg.threads,
        "iters": cfg.iters,
        "warmup": cfg.warmup,
    }


def _spec(cfg: BenchConfig, combo: Combo, frames_path: Path, mode: str, **extra) -> dict:
    return {
        "mode": mode,
        "backend": combo.backend,
        "precision": combo.precision,
        "size": list(combo.size),
        "package": str(combo.package),
        "checkpoint": str(combo.checkpoint) if combo.checkpoint else None,
        "threads": cfg.threads,
        "device": cfg.device,
        "openvino_precision": cfg.openvino_precision,
        "decoder": cfg.decoder,
        "frames": str(frames_path),
        **extra,
    }


def _measured_rows(base: dict, result: dict) -> list[dict]:
    """Rows for one combination from a worker's "measure" result."""
    if result["status"] != "ok":
        return [dict(base, status="failed", reason=result["reason"])]
    miou = result.get("miou") or {}
    shared = {
        "model_bytes": result["model_bytes"],
        "load_s": round(result["load_s"], 3),
        "runtime": result["describe"],
        "device": result.get("device"),
        "miou": miou.get("miou"),
        "pixel_acc": miou.get("pixel_acc"),
        "miou_images": miou.get("images"),
        "miou_seen_in_training": miou.get("seen_in_training"),
    }
    return [dict(base, **shared, **row) for row in result["rows"]]


def measure_combos(cfg, family, combos, frames, work, run_worker, log) -> tuple[list, dict]:
    """Rows of every combination in order, and {label: predictions file} for agreement."""
    rows, predictions = [], {}
    frames_path = work / "frames.npy"
    for index, combo in enumerate(combos, 1):
        base = _base_row(cfg, family, combo)
        prefix = f"[{index}/{len(combos)}] {combo.label}"
        if combo.skip:
            rows.append(dict(base, status="skipped", reason=combo.skip))
            log(f"{prefix}: skipped ({combo.skip})")
            continue
        try:
            combo = resolve_package(family, combo, resize_frames(frames, combo.size))
        except Unavailable as exc:
            rows.append(dict(base, status="skipped", reason=str(exc)))
            log(f"{prefix}: skipped ({exc})")
            continue
        except RtsegError as exc:
            rows.append(dict(base, status="failed", reason=str(exc)))
            log(f"{prefix}: failed ({exc})")
            continue
        preds = work / f"preds{index}.npy"
        spec = _spec(
            cfg,
            combo,
            frames_path,
            "measure",
            preds_out=str(preds),
            iters=cfg.iters,
            warmup=cfg.warmup,
            batch=cfg.batch,
            data=_data_dict(cfg),
            data_limit=cfg.data_limit,
        )
        new_rows = _measured_rows(base, run_worker(spec))
        rows.extend(new_rows)
        if new_rows[0]["status"] == "ok":
            predictions[combo.label] = (preds, combo)  # the package now resolved
        log(f"{prefix}: {_progress(new_rows[0])}")
    return rows, predictions


def _data_dict(cfg: BenchConfig) -> dict | None:
    if cfg.data is None:
        return None
    return {"name": cfg.data.name, "root": str(cfg.data.root), "split": cfg.data.split}


def _progress(row: dict) -> str:
    if row["status"] != "ok":
        return f"{row['status']} ({row['reason']})"
    text = f"{row['infer_fps']:.1f} fps, p50 {row['latency_ms']['p50']:.1f} ms"
    return text + (f", mIoU {row['miou']:.3f}" if row.get("miou") is not None else "")


def add_agreement(cfg, family, rows, predictions, frames, work, run_worker, log) -> None:
    """Argmax agreement of every measured row with the fp32 reference at the same size."""
    for size in dict.fromkeys(c.size for _, c in predictions.values()):
        at_size = {label: item for label, item in predictions.items() if item[1].size == size}
        reference = _reference(cfg, family, at_size, size, frames, work, run_worker, log)
        if reference is None:
            continue
        ref_label, ref_ids = reference
        for label, (path, _) in at_size.items():
            value = agreement(np.load(path), ref_ids)
            for row in rows:
                if row["status"] == "ok" and row_label(row) == label:
                    row["agreement"], row["agreement_ref"] = value, ref_label


def _reference(cfg, family, at_size, size, frames, work, run_worker, log):
    """(label, ids) of the fp32 reference at `size`: a measured fp32 row if there is one, else
    onnxruntime fp32 predicted for the purpose; None when neither can be had."""
    for backend in REFERENCE_ORDER:
        label = f"{backend} fp32 {format_size(size)}"
        if label in at_size:
            return f"{backend} fp32", np.load(at_size[label][0])
    combo = Combo("onnxruntime", "fp32", size, checkpoint=family.checkpoint)
    try:
        combo = resolve_package(family, combo, resize_frames(frames, size))
    except RtsegError as exc:
        log(f"agreement at {format_size(size)}: no fp32 reference ({exc})")
        return None
    out = work / f"reference_{format_size(size)}.npy"
    result = run_worker(_spec(cfg, combo, work / "frames.npy", "predict", preds_out=str(out)))
    if result["status"] != "ok":
        log(f"agreement at {format_size(size)}: fp32 reference failed ({result['reason']})")
        return None
    return "onnxruntime fp32", np.load(out)


def select_e2e(cfg: BenchConfig, rows: list[dict]) -> list[dict]:
    """The measured batch-1 rows to run end to end, per `cfg.e2e_combos`."""
    candidates = [r for r in rows if r["status"] == "ok" and r["batch"] == 1]
    choice = cfg.e2e_combos
    if choice == ("none",) or cfg.video is None:
        return []
    if choice == ("all",):
        return candidates
    if choice == ("fastest",):
        best: dict = {}
        for row in candidates:
            key = (row["backend"], row["size"])
            if key not in best or row["infer_fps"] > best[key]["infer_fps"]:
                best[key] = row
        return list(best.values())
    wanted = set(choice)
    return [r for r in candidates if f"{r['backend']}:{r['precision']}" in wanted]


def add_end_to_end(cfg, rows, predictions, work, run_worker, log) -> None:
    """Pipeline fps on the video for the selected rows: `e2e_fps` beside `infer_fps`."""
    selected = select_e2e(cfg, rows)
    for index, row in enumerate(selected):
        combo = predictions[row_label(row)][1]
        spec = _spec(
            cfg,
            combo,
            work / "frames.npy",
            "e2e",
            video=str(cfg.video),
            e2e_output=cfg.e2e_output,
            e2e_path=str(work / f"e2e{index}.mp4"),
        )
        result = run_worker(spec)
        if result["status"] != "ok":
            row["e2e"] = {"failed": result["reason"]}
            log(f"end to end {combo.label}: failed ({result['reason']})")
            continue
        row["e2e"] = result["e2e"]
        row["e2e_fps"] = result["e2e"]["fps"]
        row["e2e_ratio"] = row["e2e_fps"] / row["infer_fps"] if row["infer_fps"] else None
        log(
            f"end to end {combo.label}: {row['e2e_fps']:.1f} fps "
            f"({row['e2e_ratio']:.0%} of inference-only {row['infer_fps']:.1f} fps)"
        )


def run_bench(cfg: BenchConfig, log: Callable[[str], None] = _log_stderr) -> BenchReport:
    """Measure every combination `cfg` asks for; see BenchReport. Every path is checked first
    (rtseg.bench.outputs: no output may destroy an input) and the JSON / CSV / plot `cfg` names
    are written at the end."""
    from rtseg.bench.outputs import check_bench_paths, write_outputs

    check_bench_paths(cfg)
    size = model_input_size(cfg.model)
    if cfg.data is not None:
        from rtseg.bench.accuracy import open_split

        open_split(cfg.data)  # a bad --data fails here, once, not in every worker
    frames, origin = source_frames(cfg, size)
    family = open_family(cfg.model, cfg.cache_dir, frames)
    machine = machine_info(cfg.threads)
    combos = plan_combos(family, cfg.backends, cfg.precisions, cfg.sizes, bool(machine["gpus"]), cfg.device)
    stamp = time.strftime("%Y-%m-%dT%H:%M:%S%z")
    with tempfile.TemporaryDirectory(prefix="rtseg-bench-") as tmp:
        work = Path(tmp)
        np.save(work / "frames.npy", frames)
        run_worker = WorkerRunner(work, cfg.threads, cfg.timeout_s, log)
        rows, predictions = measure_combos(cfg, family, combos, frames, work, run_worker, log)
        add_agreement(cfg, family, rows, predictions, frames, work, run_worker, log)
        add_end_to_end(cfg, rows, predictions, work, run_worker, log)
    for row in rows:
        row.update(
            agreement_source=origin,
            agreement_frames=len(frames),
            video=str(cfg.video) if cfg.video else None,
            data=f"{cfg.data.name}:{cfg.data.split}" if cfg.data else None,
            timestamp=stamp,
            machine=machine,
        )
    write_outputs(cfg, rows, log)
    return BenchReport(rows, machine)


__all__ = ["BenchReport", "run_bench", "select_e2e", "source_frames"]
