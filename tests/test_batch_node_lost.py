"""A node lost mid-video (ray.cluster_utils.Cluster: a head without CPUs and two one-CPU worker
nodes on this machine): every video is done exactly once, nothing partial carries a final name,
the manifest is right, and the driver notices within a bound (printed: `-s` shows it)."""

from __future__ import annotations

import json
import logging
import os
import threading
import time

import pytest
from band_model import make_band_package
from conftest import REPO, structured_frames, write_video
from test_cli_run import decode_mp4

from rtseg.batch import BatchConfig, VideoOptions, model_identity, run_batch

pytestmark = pytest.mark.slow

CLIPS = {"a": 900, "b": 700, "c": 500}  # frames: long enough to lose a node in the middle
NOTICE_BOUND_S = 180  # Ray's health checks: a few seconds apart, several misses before "dead"


@pytest.fixture()
def cluster(monkeypatch):
    cluster_utils = pytest.importorskip("ray.cluster_utils", reason="Ray is not installed")
    import ray

    if ray.is_initialized():  # another test file's session cluster: `rtseg batch` starts its own after
        ray.shutdown()
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")]))
    cluster = cluster_utils.Cluster(
        initialize_head=True, head_node_args={"num_cpus": 0, "object_store_memory": 80 << 20}
    )
    nodes = [cluster.add_node(num_cpus=1, object_store_memory=80 << 20) for _ in range(2)]
    ray.init(
        address=cluster.address, logging_level=logging.ERROR, log_to_driver=False, namespace="rtseg-node"
    )
    yield cluster, nodes
    ray.shutdown()
    cluster.shutdown()


def test_a_node_lost_mid_video_redoes_only_that_video(cluster, tmp_path):
    cluster, nodes = cluster
    clips = tmp_path / "clips"
    clips.mkdir()
    for seed, (name, frames) in enumerate(CLIPS.items()):
        write_video(clips / f"{name}.mp4", structured_frames(frames, 64, 96, seed=seed))
    band = make_band_package(tmp_path / "band", height=64, width=96)
    video = VideoOptions.of(
        model=band.onnx_path, model_identity=model_identity(band.onnx_path), threads=1, kinds=("mp4", "stats")
    )
    out = tmp_path / "out"
    config = BatchConfig(inputs=(str(clips),), out_dir=out, video=video, workers=2, retries=2, progress=False)
    lines: list[tuple[float, str]] = []
    result: dict = {}

    def run() -> None:
        result["report"] = run_batch(config, log=lambda line: lines.append((time.monotonic(), line)))

    driver = threading.Thread(target=run)
    driver.start()
    deadline = time.monotonic() + 300
    while not list(out.glob(".*.annotated.partial*.mp4")) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert driver.is_alive(), "the batch ended before a node could be lost"
    time.sleep(0.5)  # a few frames into the video
    lost_at = time.monotonic()
    cluster.remove_node(nodes[0])
    driver.join(timeout=900)
    assert not driver.is_alive()

    report = result["report"]
    died = [(t, line) for t, line in lines if "its worker died" in line]
    assert died, lines
    noticed_s = died[0][0] - lost_at
    print(f"\nnode lost: noticed after {noticed_s:.1f} s ({died[0][1]})")
    assert noticed_s < NOTICE_BOUND_S

    entries = {e["name"]: e for e in json.loads((out / "rtseg-batch.json").read_text())["entries"]}
    assert sorted(entries) == sorted(CLIPS) and all(e["status"] == "done" for e in entries.values())
    assert sum(e["attempts"] for e in entries.values()) == len(CLIPS) + len(died)
    assert report.ok and report.count("done") == len(CLIPS)
    for name, frames in CLIPS.items():
        assert len(decode_mp4(out / f"{name}.annotated.mp4")) == frames
        assert json.loads((out / f"{name}.stats.json").read_text())["frames"] == frames
    assert sorted(p.name for p in out.iterdir()) == sorted(
        ["rtseg-batch.json", *(f"{n}.{k}" for n in CLIPS for k in ("annotated.mp4", "stats.json"))]
    )
