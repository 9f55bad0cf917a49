"""BLAS thread limits that nest and overlap safely across Python threads, and the threads that
share one evaluation.

threadpoolctl's limits are process-wide and each context restores what it saw on entry, so two
overlapping limits in two threads can leave the process limited for good.  Here every library
keeps a count of the holders: the first one in lowers it to one thread, the last one out
restores the original setting.  :func:`blas_threads` says how many threads NumPy's BLAS may use;
:func:`in_threads` runs that many parts of one evaluation at once, each on one BLAS thread.
"""

from __future__ import annotations

import contextvars
import os
import sys
import threading
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from functools import partial
from typing import TypeVar

from threadpoolctl import ThreadpoolController

T = TypeVar("T")
_lock = threading.Lock()
_held: dict[str, list[int]] = {}  # library path -> [holders, original number of threads]
_controller: list = [None, -1]  # [ThreadpoolController, len(sys.modules) when it was made]


def _libraries() -> list:
    """The loaded libraries' thread pools.  Scanning them takes ~9 ms, so the scan is kept
    until a new module is imported (which is how a new library gets loaded)."""
    if _controller[1] != len(sys.modules):
        _controller[:] = [ThreadpoolController(), len(sys.modules)]
    return _controller[0].lib_controllers


def _set_num_threads(controller, n: int) -> None:
    """``controller.set_num_threads(n)``, effective from any Python thread.

    threadpoolctl 3.8 lets one "controlling" thread change OpenBLAS's process-wide pool: the
    first thread to call ``set_num_threads`` keeps control, and calls from every other thread
    silently do nothing, so after one limit in the main thread the limits of worker threads were
    lost.  The callers here are serialised by ``_lock``: each takes control for its call and
    gives it back.
    """
    release = getattr(type(controller), "clear_controlling_thread", None)  # threadpoolctl >= 3.8
    if release is not None:
        release(force=True)
    controller.set_num_threads(n)
    if release is not None:
        release(force=True)


@contextmanager
def one_blas_thread(select: Callable[[str], bool] = lambda path: True) -> Iterator[None]:
    """Run the BLAS libraries whose file path ``select`` accepts on one thread, for the block."""
    with _lock:
        mine = [c for c in _libraries()
                if c.user_api == "blas" and select(c.filepath or "")]
        for c in mine:
            entry = _held.setdefault(c.filepath, [0, c.num_threads])
            if entry[0] == 0:
                entry[1] = c.num_threads
                _set_num_threads(c, 1)
            entry[0] += 1
    try:
        yield
    finally:
        with _lock:
            for c in mine:
                entry = _held[c.filepath]
                entry[0] -= 1
                # restored only if our 1 is still in effect: a limit another thread took and
                # gave back meanwhile (threadpoolctl's, not counted here) is theirs to restore
                if entry[0] == 0 and c.num_threads == 1:
                    _set_num_threads(c, entry[1])


def blas_threads() -> int:
    """How many threads NumPy's BLAS may use now (its setting: OPENBLAS_NUM_THREADS, threadpoolctl),
    at most the cores this process may run on: how many parts one evaluation is split into.
    1 inside a part of :func:`in_threads` (parts are never split again)."""
    if getattr(_local, "in_part", False):
        return 1
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    with _lock:
        numpy_blas = [c.num_threads for c in _libraries()
                      if c.user_api == "blas" and "numpy" in (c.filepath or "")]
    return max(1, min(max(numpy_blas, default=1), cores or 1))


_pool: list[ThreadPoolExecutor | None] = [None]
_local = threading.local()  # .in_part: this thread runs a part of in_threads


def _after_fork_in_child() -> None:
    """A forked child has none of the parent's other threads: not the pool's (a new pool is made
    when needed), and none that could release a lock or a limit they held at the fork."""
    global _lock
    _lock = threading.Lock()
    _held.clear()
    _pool[0] = None


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork_in_child)


def _as_part(call: Callable[[], T]) -> T:
    """``call()`` marked as a part: :func:`in_threads` inside it runs its calls in turn."""
    before = getattr(_local, "in_part", False)
    _local.in_part = True
    try:
        return call()
    finally:
        _local.in_part = before


def in_threads(calls: Sequence[Callable[[], T]]) -> list[T]:
    """``[call() for call in calls]``, the first in this thread and the others at the same time in
    threads of a pool kept for the process (BLAS and NumPy's loops release the GIL), in this
    thread's context (``np.errstate`` holds there too).  The first exception raised by any call
    is raised here, after all have finished.

    In turn, in this thread: a single call; calls made from inside a part (a part waiting for the
    pool's threads could wait for itself); and when the pool is shut down (at interpreter exit,
    in ``atexit`` handlers and threads still running then).
    """
    if len(calls) == 1 or getattr(_local, "in_part", False):
        return [call() for call in calls]
    with _lock:
        if _pool[0] is None or _pool[0]._max_workers < len(calls) - 1:
            if _pool[0] is not None:
                _pool[0].shutdown(wait=False)
            _pool[0] = ThreadPoolExecutor(len(calls) - 1, "softmaxreg")
        pool = _pool[0]
    futures = []
    try:  # each in a copy of this thread's context: np.errstate and other context variables hold
        for call in calls[1:]:
            futures.append(pool.submit(contextvars.copy_context().run, _as_part, call))
    except RuntimeError:  # "cannot schedule new futures after (interpreter) shutdown"
        pass  # what was not submitted runs here, after the first
    try:
        first = _as_part(calls[0])
        last = [_as_part(call) for call in calls[1 + len(futures):]]
    finally:
        others = [f.result() if f.exception() is None else f.exception() for f in futures]
    for value in others:
        if isinstance(value, BaseException):
            raise value
    return [first, *others, *last]


def even_slices(n: int, k: int) -> list[slice]:
    """0..n in ``k`` contiguous slices of near-equal length (fewer when n < k)."""
    k = max(1, min(k, n))
    return [slice(n * j // k, n * (j + 1) // k) for j in range(k)]


def map_parts(fn: Callable[..., T], *parts: Sequence) -> list[T]:
    """``[fn(*args) for args in zip(*parts)]``: with more than one part, all at once through
    :func:`in_threads`, every BLAS on one thread meanwhile (the parts are the parallelism)."""
    calls = [partial(fn, *args) for args in zip(*parts)]
    if len(calls) == 1:
        return [calls[0]()]
    with one_blas_thread():
        return in_threads(calls)
