"""What every data stage needs to run on Ray Data: a Ray connection, documents read in order, clear errors.

`ray_session(stage, workers)` connects to the cluster that RAY_ADDRESS names
(`ray start --head` on one node, `ray start --address=...` on the others) or
starts a Ray instance on this machine with `workers` CPUs (0: all cores), and
always shuts it down when the stage ends, so no Ray process outlives the stage.
A task that fails on Ray (a bad input file, a bug, a worker killed for memory)
becomes one UserError line that names the stage, instead of pages of Ray logs.

The per-block passes of the stages are plain Ray tasks (`run_tasks`): each
writes its block's files itself and returns a few rows of counts, in block
order. Clean's shuffles are Ray Data pipelines (`map_tables`, ray_shuffle.py).

Paths must be the same on every node (a shared filesystem): the driver passes
absolute paths, and the code of `stages/` travels with the job (py_modules),
so the nodes need only Python and the requirements installed.
"""
from __future__ import annotations

import collections
import contextlib
import logging
import os
import re
import warnings
from pathlib import Path
from typing import Callable, Iterator

import pyarrow as pa
import ray
import ray.data

from stages.lib.data.parallel import resolve_workers
from stages.lib.errors import UserError

STAGES_DIR = Path(__file__).resolve().parents[2]  # the `stages` package, shipped to the workers
# Ray Data retries a task whose worker died forever by default: a task that is killed every time (out of
# memory) would hang the stage. A few retries ride out a lost node; then the stage fails.
TASK_RETRIES = 2


def start_ray(workers: int = 0) -> None:
    """Connect to RAY_ADDRESS, or start Ray here with `workers` CPUs (0: all cores), the stages' code shipped."""
    options = dict(include_dashboard=False, log_to_driver=False, logging_level=logging.ERROR,
                   runtime_env={"py_modules": [str(STAGES_DIR)], "excludes": ["__pycache__"]})
    if os.environ.get("RAY_ADDRESS"):
        address = os.environ["RAY_ADDRESS"]
        try:
            ray.init(address=address, **options)  # the cluster's CPUs: workers is for this machine
        except ConnectionError as err:
            raise UserError(f"cannot connect to the Ray cluster at RAY_ADDRESS={address} ({err}): check it runs "
                            f"(ray status); if `ray start` said token authentication is enabled, export "
                            f"RAY_AUTH_MODE=token here too, or unset RAY_ADDRESS to run on this machine") from None
    else:
        # address="local": a new instance even when a `ray start` cluster runs on this machine (ray.init()
        # alone would join that one, and refuse num_cpus).
        ray.init(address="local", num_cpus=resolve_workers(workers), **options)


@contextlib.contextmanager
def ray_session(stage: str, workers: int = 0) -> Iterator[None]:
    """Ray for the length of one stage; Ray failures inside become one UserError naming the stage.

    A Ray already started in this process (a test's, a notebook's) is used and left running.
    """
    started = not ray.is_initialized()
    if started:
        start_ray(workers)
    try:
        context = ray.data.DataContext.get_current()
        context.execution_options.preserve_order = True  # blocks come back in input order: "document order"
        # Shuffles (groupby) as tasks that sort and merge: no aggregator actors to start, which cost seconds per
        # shuffle on a small machine, and memory spread over the tasks.
        context.shuffle_strategy = ray.data.context.ShuffleStrategy.SORT_SHUFFLE_PULL_BASED
        context.enable_progress_bars = False
        context.print_on_execution_start = False
        # Ray Data logs every failure at length on stderr; the stage reports it once, below.
        logging.getLogger("ray.data").setLevel(logging.CRITICAL)
        yield
    except ray.exceptions.RayError as err:
        raise UserError(f"{stage} (engine: ray): {describe(err)}") from None
    finally:
        if started:
            ray.shutdown()


def describe(err: BaseException) -> str:
    """One line for a Ray failure: a UserError's own message, else the worker's error and where to look.

    The worker's exception reaches the driver as text (the traceback inside
    RayTaskError's message), not as an object: its last line is read there.
    """
    chain, todo = [], [err]
    while todo:
        cause = todo.pop()
        if cause is not None and not any(cause is c for c in chain):
            chain.append(cause)
            todo += [getattr(cause, "cause", None), cause.__cause__, cause.__context__]
    if any(isinstance(c, (ray.exceptions.WorkerCrashedError, ray.exceptions.NodeDiedError,
                          ray.exceptions.OutOfMemoryError, ray.exceptions.ObjectLostError)) for c in chain):
        return (f"a Ray worker or node died ({type(chain[-1]).__name__}), most likely killed for running out of "
                f"memory: lower the stage's workers param or give Ray more memory, then rerun")
    name, message = worker_error(str(err))
    if name.endswith("UserError"):
        return message
    return f"a Ray task failed: {name}: {message} (the traceback is in Ray's logs, /tmp/ray/session_latest/logs)"


def worker_error(text: str) -> tuple[str, str]:
    """(exception name, message) of the first error in a Ray traceback text."""
    text = re.sub(r"\x1b\[[0-9;]*m", "", text).split("\n\nThe above exception was the direct cause")[0]
    lines = text.strip().splitlines()
    for i in range(len(lines) - 1, -1, -1):
        match = re.match(r"([A-Za-z_][\w.]*(?:Error|Exception|Exit|Interrupt)): ?(.*)", lines[i])
        if match:
            message = " ".join([match.group(2)] + [line.strip() for line in lines[i + 1:]]).strip()
            message = message.split(" Failed to apply UDF transform")[0]  # Ray Data's advice on retries
            return match.group(1).rsplit(".", 1)[-1], message
    return "error", " ".join(line.strip() for line in lines[-3:])


# --------------------------------------------------------------------------- tasks

def tasks_dataset(tasks: list[dict]) -> ray.data.Dataset:
    """A dataset of one row per task and one block per row, so each task is its own Ray task."""
    return ray.data.from_items(tasks, override_num_blocks=max(len(tasks), 1))


def map_tables(dataset: ray.data.Dataset, fn: Callable[[pa.Table], pa.Table | Iterator[pa.Table]],
               **options) -> ray.data.Dataset:
    """dataset.map_batches over Arrow tables, with bounded retries (TASK_RETRIES)."""
    with warnings.catch_warnings():  # Ray 2.60 deprecates ray_remote_args but names no other way to bound retries
        warnings.filterwarnings("ignore", message="`ray_remote_args` is deprecated")
        return dataset.map_batches(fn, batch_format="pyarrow", max_retries=TASK_RETRIES, **options)


@ray.remote(max_retries=TASK_RETRIES)
def _run_task(fn: Callable[[dict], Iterator[pa.Table]], task: dict) -> list[pa.Table]:
    return list(fn(task))


def run_tasks(tasks: list[dict], fn: Callable[[dict], Iterator[pa.Table]]) -> Iterator[pa.Table]:
    """fn(task) -> tables (a few rows of counts), each task a plain Ray task, the tables in task order.

    Plain tasks rather than a Ray Data pipeline for the per-block passes: the
    driver then waits in ray.get, where Ray Data's scheduling loop would cost it
    CPU for as long as the pass runs (~3% of a core). At most two tasks per
    CPU of the cluster are queued at a time, so the driver holds that many results.
    """
    fn_ref = ray.put(fn)  # shipped once, not with every task
    limit = max(2 * int(ray.cluster_resources().get("CPU", 1)), 2)
    in_flight: collections.deque = collections.deque()
    try:
        for task in tasks:
            in_flight.append(_run_task.remote(fn_ref, task))
            if len(in_flight) >= limit:
                yield from ray.get(in_flight.popleft())
        while in_flight:
            yield from ray.get(in_flight.popleft())
    finally:
        for ref in in_flight:  # a failure (or Ctrl-C) stops the tasks still queued or running
            ray.cancel(ref, force=True)


def map_tasks(tasks: list[dict], fn: Callable[[dict], Iterator[pa.Table]]) -> ray.data.Dataset:
    """fn(task) -> tables, each task in its own Ray task, the results in task order."""
    return map_tables(tasks_dataset(tasks), per_task(fn), batch_size=1)


def per_task(fn: Callable[[dict], Iterator[pa.Table]]) -> Callable[[pa.Table], Iterator[pa.Table]]:
    """fn(task) -> tables, as a map_batches function over `tasks_dataset` (batch_size=1, pyarrow)."""
    def run(batch: pa.Table) -> Iterator[pa.Table]:
        for task in batch.to_pylist():
            yield from fn(task)
    return run


def stream(dataset: ray.data.Dataset) -> Iterator[pa.Table]:
    """The dataset's blocks on the driver, one at a time, in order (preserve_order)."""
    yield from dataset.iter_batches(batch_size=None, batch_format="pyarrow", prefetch_batches=2)
