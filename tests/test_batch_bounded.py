"""Every wait of `rtseg batch` has a bound and ends in one line: a cluster address that answers
nothing, workers that no node can take, more CPUs per worker than the machine has."""

from __future__ import annotations

import socket
import time
from pathlib import Path

import pytest

from rtseg.batch import cluster
from rtseg.batch.config import BatchConfig, VideoOptions
from rtseg.errors import BackendError


def config(**kw) -> BatchConfig:
    video = VideoOptions.of(model=Path("m.onnx"))
    return BatchConfig(inputs=("a.mp4",), out_dir=Path("out"), video=video, **kw)


def test_an_address_where_nothing_listens_is_one_line_at_once():
    with socket.socket() as sock:  # a port that is bound, so nothing else takes it, and not listening
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
        start = time.monotonic()
        with pytest.raises(BackendError, match=f"the Ray cluster at 127.0.0.1:{port} does not answer"):
            cluster.check_reachable(f"127.0.0.1:{port}")
        with pytest.raises(BackendError, match="does not answer"):
            cluster.check_reachable(f"ray://127.0.0.1:{port}")
    assert time.monotonic() - start < cluster.CONNECT_S
    with pytest.raises(BackendError, match="does not answer"):
        cluster.check_reachable("127.0.0.1:notaport")


def test_more_cpus_per_worker_than_the_machine_has_is_refused_before_ray_starts(monkeypatch):
    ray = pytest.importorskip("ray")
    if ray.is_initialized():
        pytest.skip("Ray is already initialised in this process")
    with pytest.raises(BackendError, match="each worker asks for 1e\\+06"):
        with cluster.ray_session(config(cpus_per_worker=1e6), 1):
            pass
    assert not ray.is_initialized()


class _Ref:
    pass


class _Method:
    def __init__(self, calls: list, name: str):
        self.calls, self.name = calls, name

    def remote(self, *args):
        ref = _Ref()
        self.calls.append((self.name, ref))
        return ref


class _UnplacedActor:
    """An actor Ray never places: no call of it ever answers."""

    def __init__(self):
        self.calls: list = []
        self.ping, self.ready = _Method(self.calls, "ping"), _Method(self.calls, "ready")


class _NothingAnswers:
    """The part of `ray` the Dispatcher uses, for a cluster where no actor is ever placed."""

    killed: list

    def __init__(self):
        self.killed = []

    def wait(self, refs, num_returns=1, timeout=None):
        time.sleep(min(timeout or 0, 0.01))
        return [], list(refs)

    def kill(self, actor, no_restart=True):
        self.killed.append(actor)


def test_workers_that_no_node_can_take_are_given_up_within_the_bound(monkeypatch):
    monkeypatch.setattr(cluster, "WORKER_START_S", 0.2)
    ray, actors, lines = _NothingAnswers(), [_UnplacedActor(), _UnplacedActor()], []
    dispatcher = cluster.Dispatcher(ray, list(actors), config(), print, lambda n: None, lines.append)
    start = time.monotonic()
    with pytest.raises(BackendError, match="no batch worker could be placed on the cluster within 0.2 s"):
        dispatcher.run([("a", "/x/a.mp4")])
    assert time.monotonic() - start < 5
    assert all(a in ray.killed for a in actors)
    assert len(lines) == 2 and "found no place" in lines[0]
