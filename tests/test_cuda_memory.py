"""The cuda-python memory layer: every runtime call and enum it names checked against the real
bindings where cuda-python is installed (cuda.bindings.runtime 12.6+/13, or cuda.cudart 12.x; no
GPU needed), and on a CUDA GPU (marked `gpu`): page-locked buffers, async copies, streams,
events and graph capture for real."""

from __future__ import annotations

import ast
import re
import threading
from pathlib import Path

import numpy as np
import pytest

import rtseg.core.gpu as gpu
import rtseg.runtime.cuda.cuda_python_memory as cuda_python_memory

SOURCES = [Path(cuda_python_memory.__file__), Path(gpu.__file__)]


def _real_cudart():
    cudart = gpu.import_cudart()
    if cudart is None:
        pytest.skip("cuda-python is not installed")
    return cudart


def _cudart_uses(path: Path):
    """(call node or None, attribute chain after `cudart`) for every `...cudart.X[.Y](...)`."""
    uses = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Attribute):
            chain, inner = [node.attr], node.value
            while isinstance(inner, ast.Attribute) and inner.attr != "cudart":
                chain.insert(0, inner.attr)
                inner = inner.value
            at_cudart = (isinstance(inner, ast.Attribute) and inner.attr == "cudart") or (
                isinstance(inner, ast.Name) and inner.id == "cudart"
            )
            if at_cudart and chain[0] != "cudart":
                uses.append(tuple(chain))
    calls = {}
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute):
            inner = node.func.value
            if (isinstance(inner, ast.Attribute) and inner.attr == "cudart") or (
                isinstance(inner, ast.Name) and inner.id == "cudart"
            ):
                calls.setdefault(node.func.attr, set()).add(len(node.args))
    return set(uses), calls


def _parameters(function) -> int:
    """How many parameters cuda-python's docstring signature line names: 'f(a, b: T, c)' -> 3."""
    first = (function.__doc__ or "").strip().splitlines()[0]
    inside = re.match(r"\w+\((.*)\)", first).group(1).strip()
    return 0 if not inside else len(inside.split(","))


def test_every_cuda_python_name_and_call_matches_the_real_bindings():
    cudart = _real_cudart()
    checked = 0
    for path in SOURCES:
        uses, calls = _cudart_uses(path)
        for chain in uses:
            target = cudart
            for name in chain:
                assert hasattr(target, name), (
                    f"{path.name}: cudart.{'.'.join(chain)} is not in {cudart.__name__}"
                )
                target = getattr(target, name)
            checked += 1
        for name, arities in calls.items():
            expected = _parameters(getattr(cudart, name))
            assert arities == {expected}, (
                f"{path.name}: cudart.{name} called with {arities} args, takes {expected}"
            )
    assert checked >= 25  # the layer's whole surface, not a few names


# --- on a CUDA GPU ---------------------------------------------------------------------------


@pytest.fixture
def memory():
    _real_cudart()
    from rtseg.runtime.cuda import cuda_device_info, open_cuda_memory

    assert cuda_device_info().compute_capability[0] >= 3
    with open_cuda_memory("cuda-python") as opened:
        with opened.activate():
            yield opened


@pytest.mark.gpu
def test_pinned_buffers_async_copies_and_events(memory):
    data = np.arange(1 << 20, dtype=np.int32).reshape(1024, 1024)  # 4 MiB
    with (
        memory.host_buffer(data.shape, data.dtype) as host_in,
        memory.host_buffer(data.shape, data.dtype) as host_out,
    ):
        with memory.device_buffer(data.nbytes) as device, memory.stream() as stream, memory.event() as event:
            host_in.array[:] = data
            memory.copy_to_device(device, host_in, data.nbytes, stream)
            memory.copy_to_host(host_out, device, data.nbytes, stream)
            event.record(stream)
            event.synchronize()
            assert event.query()
            np.testing.assert_array_equal(host_out.array, data)
            with pytest.raises(ValueError, match="overruns"):
                memory.copy_to_device(device, host_in, data.nbytes + 1, stream)


@pytest.mark.gpu
def test_graph_capture_replays_copies_on_new_data(memory):
    data = np.arange(4096, dtype=np.uint8).reshape(64, 64)
    host_in, host_out = memory.host_buffer(data.shape, data.dtype), memory.host_buffer(data.shape, data.dtype)
    device, stream = memory.device_buffer(data.nbytes), memory.stream()
    memory.begin_capture(stream)
    memory.copy_to_device(device, host_in, data.nbytes, stream)
    memory.copy_to_host(host_out, device, data.nbytes, stream)
    graph = memory.end_capture(stream)
    for k in (1, 2, 3):
        host_in.array[:] = data * k
        graph.launch(stream)
        stream.synchronize()
        np.testing.assert_array_equal(host_out.array, data * k)
    for item in (graph, host_in, host_out, device, stream):
        item.close()
        item.close()  # idempotent


@pytest.mark.gpu
def test_activate_in_another_thread(memory):
    errors, results = [], []

    def worker():
        try:
            with memory.activate(), memory.stream() as stream, memory.host_buffer((16,), np.uint8) as host:
                with memory.device_buffer(16) as device:
                    host.array[:] = 7
                    memory.copy_to_device(device, host, 16, stream)
                    host.array[:] = 0
                    memory.copy_to_host(host, device, 16, stream)
                    stream.synchronize()
                    results.append(host.array.copy())
        except Exception as exc:  # noqa: BLE001 - handed to the main thread's assertion
            errors.append(exc)

    thread = threading.Thread(target=worker)
    thread.start()
    thread.join(timeout=60)
    assert errors == [] and results and (results[0] == 7).all()
