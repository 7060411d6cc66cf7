"""A stand-in `pycuda` / `pycuda.driver` that keeps pycuda's per-thread context stack rules.

What it copies from pycuda's C++ (src/cpp/cuda.hpp), on host memory:
- `Device(i).retain_primary_context()` gives a Context; `ctx.push()` pushes it on the calling
  thread's stack, the static `Context.pop()` pops that thread's top, `ctx.detach()` releases it;
- allocations, streams and events need a current context ("no currently active context?"),
  and freeing one from a thread where its context is not current and that did not create the
  context fails ("cannot activate out-of-thread context");
- a thread whose stack is not empty when it ends makes pycuda abort the process ("The context
  stack was not empty upon module cleanup"): here the thread's name is appended to `ABORTS`.

`install(monkeypatch)` puts it in sys.modules and returns the driver module.
"""

from __future__ import annotations

import ctypes
import sys
import threading
import types

import numpy as np

ABORTS: list[str] = []  # threads that ended with a context still pushed


class Error(Exception):
    pass


class LogicError(Error):
    pass


class _Stack(list):
    """One thread's context stack; pycuda aborts when it is destroyed non-empty."""

    def __init__(self):
        super().__init__()
        self.thread = threading.current_thread().name

    def __del__(self):
        if self:
            ABORTS.append(self.thread)


_local = threading.local()


def _stack() -> _Stack:
    if not hasattr(_local, "stack"):
        _local.stack = _Stack()
    return _local.stack


def stack_depth() -> int:
    """How many contexts the calling thread has pushed."""
    return len(_stack())


def _current():
    stack = _stack()
    if not stack:
        raise LogicError(
            "explicit_context_dependent failed: invalid device context - no currently active context?"
        )
    return stack[-1]


class Context:
    def __init__(self, device):
        self.device, self.valid = device, True
        self.creator = threading.get_ident()

    def push(self):
        if not self.valid:
            raise LogicError("cannot push a detached context")
        _stack().append(self)

    @staticmethod
    def pop():
        stack = _stack()
        if not stack:
            raise LogicError("context::pop failed: cannot pop non-current context")
        stack.pop()

    def detach(self):
        if not self.valid:
            raise LogicError("context::detach failed: cannot detach from invalid context")
        self.valid = False

    def check_free(self):
        """pycuda's scoped_context_activation around a free."""
        stack = _stack()
        if not self.valid:
            raise LogicError("cannot activate dead context")
        if (not stack or stack[-1] is not self) and threading.get_ident() != self.creator:
            raise LogicError("cannot activate out-of-thread context")


class Device:
    def __init__(self, index):
        self.index = index

    @staticmethod
    def count():
        return 1

    def retain_primary_context(self):
        return Context(self)

    def name(self):
        return "Fake GPU"

    def compute_capability(self):
        return (9, 0)

    def total_memory(self):
        return 1 << 30


class _Owned:
    """Something allocated under the current context; `free()` once, under pycuda's rules."""

    live = 0

    def __init__(self):
        self.context = _current()
        self.freed = False
        _Owned.live += 1

    def free(self):
        if self.freed:
            raise LogicError("free of a freed allocation")
        self.context.check_free()
        self.freed = True
        _Owned.live -= 1


class HostAllocation(bytearray):
    """The `.base` of a `pagelocked_empty` array."""

    def __init__(self, nbytes):
        super().__init__(nbytes)
        self.owner = _Owned()

    def free(self):
        self.owner.free()


class DeviceAllocation(_Owned):
    def __init__(self, nbytes):
        super().__init__()
        self.memory = np.zeros(max(1, nbytes), np.uint8)

    def __int__(self):
        return int(self.memory.ctypes.data)


class Stream:
    def __init__(self):
        self.context = _current()
        self.handle = id(self)

    def synchronize(self):
        _current()


class Event:
    def __init__(self):
        self.context = _current()

    def record(self, stream):
        _current()

    def synchronize(self):
        pass

    def query(self):
        return True


def init():
    pass


def pagelocked_empty(shape, dtype):
    dtype = np.dtype(dtype)
    allocation = HostAllocation(max(1, int(np.prod(shape))) * dtype.itemsize)
    return np.ndarray(shape, dtype, buffer=allocation)


def mem_alloc(nbytes):
    return DeviceAllocation(nbytes)


def memcpy_htod_async(dest, src, stream=None):
    _current()
    ctypes.memmove(int(dest), src.ctypes.data, src.nbytes)


def memcpy_dtoh_async(dest, src, stream=None):
    _current()
    ctypes.memmove(dest.ctypes.data, int(src), dest.nbytes)


def install(monkeypatch):
    """Make `import pycuda.driver` find this module; returns it."""
    driver = sys.modules[__name__]
    package = types.ModuleType("pycuda")
    package.driver = driver
    monkeypatch.setitem(sys.modules, "pycuda", package)
    monkeypatch.setitem(sys.modules, "pycuda.driver", driver)
    ABORTS.clear()
    _Owned.live = 0
    return driver
