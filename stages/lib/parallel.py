"""An ordered map over a process pool with bounded read-ahead.

`multiprocessing.Pool.imap` feeds its input eagerly, which would pull a whole
corpus into memory; here at most `max_pending` batches are in flight, and
results come back in input order, so output never depends on the worker count.
"""
from __future__ import annotations

import collections
import multiprocessing as mp
import os
from typing import Callable, Iterable, Iterator, TypeVar

T = TypeVar("T")
R = TypeVar("R")


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
    """
    if workers <= 1:
        yield from map(fn, items)
        return
    max_pending = max_pending or 2 * workers
    # fork is cheapest where available; spawn elsewhere (macOS, Windows) works since fn is picklable.
    method = "fork" if "fork" in mp.get_all_start_methods() else "spawn"
    with mp.get_context(method).Pool(workers) as pool:
        pending: collections.deque = collections.deque()
        for item in items:
            pending.append(pool.apply_async(fn, (item,)))
            if len(pending) >= max_pending:
                yield pending.popleft().get()
        while pending:
            yield pending.popleft().get()
