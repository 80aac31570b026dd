"""An ordered map over a process pool with bounded read-ahead.

`Executor.map` and `multiprocessing.Pool.imap` feed their input eagerly, which
would pull a whole corpus into memory; here at most `max_pending` batches are
in flight, and results come back in input order, so output never depends on
the worker count.
"""
from __future__ import annotations

import collections
import ctypes
import multiprocessing as mp
import os
import signal
import sys
import threading
import time
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from typing import Callable, Iterable, Iterator, TypeVar

from stages.lib.errors import UserError

T = TypeVar("T")
R = TypeVar("R")


PR_SET_PDEATHSIG = 1  # <linux/prctl.h>
PARENT_POLL_SECONDS = 1.0


def die_with_parent(parent_pid: int, watch: bool = True) -> None:
    """End this process when its parent (`parent_pid`) dies, even by SIGKILL.

    A pool's workers wait on a pipe that a killed parent never closes for them,
    so they would hang forever; training ranks would go on writing outputs. On
    Linux the kernel sends SIGKILL when the parent exits (prctl PR_SET_PDEATHSIG,
    kept across exec); elsewhere (watch) a daemon thread watches the parent id
    change (the orphan is adopted by another process).
    """
    if sys.platform.startswith("linux"):
        try:
            ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
        except (OSError, AttributeError):
            pass
    if os.getppid() != parent_pid:  # the parent died before the line above took effect
        os._exit(1)
    if watch:
        threading.Thread(target=_watch_parent, args=(parent_pid,), daemon=True).start()


def _watch_parent(parent_pid: int) -> None:
    while os.getppid() == parent_pid:
        time.sleep(PARENT_POLL_SECONDS)
    os._exit(1)


def resolve_workers(workers: int) -> int:
    """0 means all cores this process may use."""
    if workers > 0:
        return workers
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # macOS
        return os.cpu_count() or 1


def ordered_map(fn: Callable[[T], R], items: Iterable[T], workers: int, max_pending: int = 0) -> Iterator[R]:
    """Yield fn(item) for each item, in order; with workers > 1 the calls run in a process pool.

    `fn` must be picklable (a module-level function or a picklable object's method).
    An exception raised by fn propagates; a worker that dies (e.g. killed when out of memory)
    raises a UserError instead of hanging.
    """
    if workers <= 1:
        yield from map(fn, items)
        return
    max_pending = max_pending or 2 * workers
    # fork is cheapest where available; spawn elsewhere (macOS, Windows) works since fn is picklable.
    method = "fork" if "fork" in mp.get_all_start_methods() else "spawn"
    # Not multiprocessing.Pool: it replaces a dead worker but loses its task, so .get() waits forever.
    # A ProcessPoolExecutor fails every pending future with BrokenProcessPool instead.
    pool = ProcessPoolExecutor(workers, mp_context=mp.get_context(method),
                               initializer=die_with_parent, initargs=(os.getpid(),))
    try:
        pending: collections.deque = collections.deque()
        for item in items:
            pending.append(pool.submit(fn, item))
            if len(pending) >= max_pending:
                yield pending.popleft().result()
        while pending:
            yield pending.popleft().result()
    except BrokenProcessPool:
        raise UserError(f"one of the {workers} worker processes died, most likely killed for running out "
                        f"of memory: lower the stage's workers param (e.g. clean.workers) or free some memory, "
                        f"then rerun") from None
    finally:
        # On an error or an abandoned generator, drop queued calls rather than run them all;
        # calls already running (at most one per worker) still finish.
        pool.shutdown(wait=True, cancel_futures=True)
