"""Ray for `rtseg batch`: the cluster connection, the worker actors, and handing out videos.

Ray schedules the actors (CPUs / GPUs per worker) and restarts a dead one (`max_restarts=-1`);
the driver hands one video at a time to each ready worker, and puts the video of a worker that
died back at the front of the queue (up to `retries` times), after making sure the dead
incarnation is gone (`ray.kill`), so two attempts never write the same partial outputs.
"""

from __future__ import annotations

import contextlib
import logging
import math
import os
import signal
import socket
import sys
import tempfile
import threading
import time
from collections import deque
from collections.abc import Callable

from rtseg.batch.config import BatchConfig
from rtseg.batch.outputs import OutputPlan
from rtseg.batch.reaper import reaped_cluster
from rtseg.batch.worker import VideoWorker, failed_result
from rtseg.core.signals import Interrupted
from rtseg.errors import BackendError, MissingDependencyError, ModelError

POLL_S = 0.5  # how often the driver asks busy workers how far they are
CONNECT_S = 10.0  # how long a cluster's address may take to accept a connection
WORKER_START_S = 60.0  # how long a worker may wait to be placed (resources) before it is given up
LOCAL_OBJECT_STORE_BYTES = 256 << 20  # results are small dicts; keep /dev/shm free for the rest


def require_ray():
    try:
        import ray
    except ImportError:
        raise MissingDependencyError("ray", "ray", "rtseg batch") from None
    return ray


def _init_kwargs(config: BatchConfig) -> dict:
    return {
        "logging_level": logging.DEBUG if config.verbose else logging.ERROR,
        "log_to_driver": config.verbose,
        "namespace": "rtseg",
    }


@contextlib.contextmanager
def ray_session(config: BatchConfig, workers_wanted: int):
    """Connected Ray: the caller's (already initialised), an existing cluster (--address or
    RAY_ADDRESS) or a local one on this machine, shut down at the end if started here. A local
    cluster's processes never outlive this process (rtseg.batch.reaper); Ray does not take over
    the command's SIGTERM (rtseg.core.signals: exit 143)."""
    ray = require_ray()
    if ray.is_initialized():
        yield ray
        return
    address = config.address or os.environ.get("RAY_ADDRESS")
    if address:
        check_reachable(address)
    elif config.cpus_per_worker > (os.cpu_count() or 1):
        raise BackendError(
            f"this machine has {os.cpu_count()} CPUs; each worker asks for {config.cpus_per_worker:g} "
            "(--cpus-per-worker)"
        )
    with reaped_cluster() if not address else contextlib.nullcontext():
        _connect(ray, config, address, workers_wanted)
        try:
            yield ray
        finally:
            ray.shutdown()


def _connect(ray, config: BatchConfig, address: str | None, workers_wanted: int) -> None:
    kwargs = _init_kwargs(config)
    try:
        with _own_sigterm():
            if address:
                with _quiet_stderr(not config.verbose):  # Ray's C++ client logs each retry there
                    ray.init(address=address, **kwargs)
            else:
                cpus = max(os.cpu_count() or 1, math.ceil(workers_wanted * config.cpus_per_worker))
                ray.init(
                    num_cpus=cpus,
                    include_dashboard=False,
                    object_store_memory=LOCAL_OBJECT_STORE_BYTES,
                    **kwargs,
                )
    except (ConnectionError, RuntimeError, ValueError) as exc:
        where = f"the Ray cluster at {address}" if address else "a local Ray cluster"
        raise BackendError(f"cannot start or reach {where}: {str(exc).strip().splitlines()[0]}") from None
    except ImportError as exc:  # ray:// needs Ray's client extra
        raise MissingDependencyError(exc.name or "ray[client]", "ray", f"--address {address}") from None


@contextlib.contextmanager
def _own_sigterm():
    """ray.init() installs a SIGTERM handler of its own (sys.exit(15)); put back the command's."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.getsignal(signal.SIGTERM)
    try:
        yield
    except SystemExit as exc:  # Ray's handler ran: the command was terminated while connecting
        if exc.code != signal.SIGTERM:
            raise
        raise Interrupted("SIGTERM") from None
    finally:
        signal.signal(signal.SIGTERM, previous)


@contextlib.contextmanager
def _quiet_stderr(quiet: bool):
    """Descriptor 2 into a temporary file while the block runs (when `quiet`)."""
    if not quiet:
        yield
        return
    sys.stderr.flush()
    saved = os.dup(2)
    try:
        with tempfile.TemporaryFile() as sink:
            os.dup2(sink.fileno(), 2)
            try:
                yield
            finally:
                os.dup2(saved, 2)
    finally:
        os.close(saved)


def _bootstrap_address(address: str) -> str:
    """host:port that `address` (host:port, ray://host:port, auto) connects to first."""
    target = address.removeprefix("ray://")
    if target != "auto":
        return target
    from ray._private.services import canonicalize_bootstrap_address

    try:
        found = canonicalize_bootstrap_address("auto")
    except Exception:  # noqa: BLE001 - Ray's own lookup: any failure means none found
        found = None
    if not found:
        raise BackendError("--address auto: no Ray cluster was started on this machine (ray start --head)")
    return found


def check_reachable(address: str, timeout: float = CONNECT_S) -> None:
    """BackendError in at most `timeout` seconds unless something accepts a connection at the
    cluster's `address` (ray.init itself would retry for minutes)."""
    target = _bootstrap_address(address)
    host, _, port = target.rpartition(":")
    try:
        with socket.create_connection((host.strip("[]"), int(port)), timeout=timeout):
            pass
    except (OSError, ValueError) as exc:
        reason = "no answer" if isinstance(exc, TimeoutError) else getattr(exc, "strerror", None) or str(exc)
        raise BackendError(
            f"the Ray cluster at {address} does not answer ({reason}, {target}); "
            "start it (ray start --head) or fix --address / RAY_ADDRESS"
        ) from None


def worker_count(ray, config: BatchConfig, videos: int, log: Callable[[str], None]) -> int:
    """How many actors to start: --workers (capped to what the cluster holds), else all it holds."""
    resources = ray.cluster_resources()
    cpus, gpus = resources.get("CPU", 0.0), resources.get("GPU", 0.0)
    need_gpus = config.worker_gpus
    if need_gpus > gpus:
        raise BackendError(
            f"the Ray cluster has {gpus:g} GPUs; each worker asks for {need_gpus:g} "
            f"(--gpus-per-worker; --backend {config.video.backend})"
        )
    if config.cpus_per_worker > cpus:
        raise BackendError(
            f"the Ray cluster has {cpus:g} CPUs; each worker asks for {config.cpus_per_worker:g}"
        )
    fits = math.floor(cpus / config.cpus_per_worker + 1e-9)
    if need_gpus > 0:
        fits = min(fits, math.floor(gpus / need_gpus + 1e-9))
    count = config.workers or fits
    if count > fits:
        log(
            f"the cluster holds {fits} workers of {config.cpus_per_worker:g} CPUs / "
            f"{need_gpus:g} GPUs; starting {fits}"
        )
        count = fits
    return max(1, min(count, videos))


def start_actors(ray, config: BatchConfig, count: int) -> list:
    """`count` VideoWorker actors (restarted by Ray when they die; two calls at a time, so
    progress() answers while process() runs)."""
    actor_class = ray.remote(VideoWorker).options(
        num_cpus=config.cpus_per_worker,
        num_gpus=config.worker_gpus,
        max_restarts=-1,
        max_task_retries=0,
        max_concurrency=2,
    )
    video = config.video
    if video.engine.threads is None:
        from dataclasses import replace

        video = replace(video, engine=replace(video.engine, threads=config.worker_threads))
    return [actor_class.remote(video, str(config.out_dir)) for _ in range(count)]


def _died(ray) -> tuple[type[BaseException], ...]:
    """The exceptions that mean the worker died (killed, out of memory, its node gone)."""
    exc = ray.exceptions
    return (exc.RayActorError, exc.WorkerCrashedError, exc.ObjectLostError, exc.OwnerDiedError)


class Dispatcher:
    """Hands `jobs` [(name, path)] to the actors; `on_result(result)` per video, in finish order.

    on_progress(frames in flight) is called every POLL_S with the frames the busy workers have
    written of their current videos. log(line) gets retries and worker problems.
    """

    def __init__(self, ray, actors: list, config: BatchConfig, on_result, on_progress, log):
        self.ray, self.config = ray, config
        self.on_result, self.on_progress, self.log = on_result, on_progress, log
        self.actors = actors
        self.idle: deque = deque()
        self.starting: dict = {}  # ready() ref -> (actor, failures so far)
        self.placing: dict = {}  # ping() ref -> (actor, deadline): not yet running anywhere
        self.busy: dict = {}  # process() ref -> (actor, name, path, attempt)
        self.polls: dict = {}  # progress() ref -> actor
        self.in_flight: dict = {}  # actor id -> frames of its current video
        self.queue: deque = deque()
        # TensorRT: the first worker finds or builds the engine alone, the others start once it
        # is ready (they find it then, where the engine folder is shared), so a homogeneous
        # cluster builds each engine once, and no two builds race for one file.
        self.held = list(actors[1:]) if config.video.backend == "tensorrt" else []
        for actor in actors[: 1 if self.held else None]:
            self._start(actor, 0)

    def _start(self, actor, failures: int) -> None:
        self.placing[actor.ping.remote()] = (actor, time.monotonic() + WORKER_START_S)
        self.starting[actor.ready.remote()] = (actor, failures)

    def _give_up_unplaced(self) -> None:
        """Workers that Ray could not place within WORKER_START_S (resources the cluster does not
        have free) are given up; BackendError when that leaves none."""
        now = time.monotonic()
        late = [ref for ref, (_, deadline) in self.placing.items() if deadline < now]
        for ref in late:
            actor, _ = self.placing.pop(ref)
            for ready in [r for r, (a, _) in self.starting.items() if a is actor]:
                del self.starting[ready]
            self.actors.remove(actor)
            self.ray.kill(actor)
            self.log(f"a worker found no place on the cluster within {WORKER_START_S:g} s; giving it up")
        if late and not (self.busy or self.starting or self.idle):
            gpus = self.config.worker_gpus
            raise BackendError(
                f"no batch worker could be placed on the cluster within {WORKER_START_S:g} s "
                f"(each asks for {self.config.cpus_per_worker:g} CPUs and {gpus:g} GPUs: are they free?)"
            )

    def run(self, jobs: list[tuple[str, str]]) -> None:
        self.queue.extend((name, path, 1) for name, path in jobs)
        try:
            while self.queue or self.busy:
                self._assign()
                if not self.busy and not self.starting and not self.idle:
                    raise BackendError("no batch worker could start")
                waiting = [*self.placing, *self.starting, *self.busy]
                done, _ = self.ray.wait(waiting, num_returns=1, timeout=POLL_S)
                for ref in done:
                    self._handle(ref)
                self._give_up_unplaced()
                self._poll_progress()
        finally:
            for actor in self.actors:
                self.ray.kill(actor)

    def _assign(self) -> None:
        kill_at = self.config.kill_at
        while self.idle and self.queue:
            actor = self.idle.popleft()
            name, path, attempt = self.queue.popleft()
            frame = kill_at[1] if kill_at is not None and kill_at[0] == name else None
            self.busy[actor.process.remote(name, path, attempt, frame)] = (actor, name, path, attempt)

    def _handle(self, ref) -> None:
        if ref in self.placing:  # the worker runs (or died trying): no longer waits for a place
            del self.placing[ref]
            return
        if ref in self.starting:
            self._handle_ready(ref, *self.starting.pop(ref))
            return
        actor, name, path, attempt = self.busy.pop(ref)
        self.in_flight.pop(id(actor), None)
        try:
            result = self.ray.get(ref)
        except _died(self.ray) as exc:
            self._worker_died(actor, name, path, attempt, exc)
            return
        self.idle.append(actor)
        self.on_result(result)

    def _handle_ready(self, ref, actor, failures: int) -> None:
        try:
            answer = self.ray.get(ref)
        except _died(self.ray) as exc:
            if failures >= self.config.retries:
                self.log(
                    f"a worker died {failures + 1} times while opening the model; "
                    f"giving it up ({_first_line(exc)})"
                )
                self.actors.remove(actor)
                self.ray.kill(actor)
                if self.held:  # the next one tries in its place
                    self._start(self.held.pop(0), 0)
                return
            self._start(actor, failures + 1)
            return
        if "error" in answer:
            raise ModelError(f"worker ({answer['worker']}) cannot open the model: {answer['error']}")
        self.idle.append(actor)
        held, self.held = self.held, []
        for other in held:
            self._start(other, 0)

    def _worker_died(self, actor, name: str, path: str, attempt: int, exc: BaseException) -> None:
        self.ray.kill(actor, no_restart=False)  # the old incarnation must be gone before a retry
        self._start(actor, 0)
        reason = f"its worker died (killed or out of memory?): {_first_line(exc)}"
        if attempt > self.config.retries:  # given up: what the dead worker half wrote goes
            OutputPlan(self.config.out_dir, name, self.config.video.kinds).discard()
            self.on_result(failed_result(name, f"{reason}; tried {attempt} times", attempt))
            return
        self.log(f"{name}: {reason}; trying again (attempt {attempt + 1})")
        self.queue.appendleft((name, path, attempt + 1))

    def _poll_progress(self) -> None:
        if self.polls:
            answered, _ = self.ray.wait(list(self.polls), num_returns=len(self.polls), timeout=0)
            for ref in answered:
                actor = self.polls.pop(ref)
                try:
                    name, frames = self.ray.get(ref)
                except _died(self.ray):
                    continue
                if name is not None and any(a is actor for a, *_ in self.busy.values()):
                    self.in_flight[id(actor)] = frames
        polled = {id(a) for a in self.polls.values()}
        for actor, *_ in self.busy.values():
            if id(actor) not in polled:
                self.polls[actor.progress.remote()] = actor
        self.on_progress(sum(self.in_flight.values()))


def _first_line(exc: BaseException) -> str:
    """Ray's class name of the failure (its messages run to several long lines)."""
    return type(exc).__name__


def stderr_log(line: str) -> None:
    print(f"rtseg: {line}", file=sys.stderr, flush=True)
