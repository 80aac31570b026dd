"""Concurrent requests decoded together: one thread runs a decoding.Batch, and requests join it as rows.

A request is a Job of one or more rows (its n choices). submit() queues it, or refuses it with Busy when
`max_waiting` jobs already wait for room. Between two steps the decode thread admits waiting jobs, in arrival
order, while the batch has room for all of a job's rows (`max_rows`), prefilling each row alone; then one step
gives every row its next token. After each step the jobs get their rows' tokens on their asyncio queues, in one
call into the event loop for the whole step. cancel() marks a job; its rows leave the batch before the next
step, so a client that goes away stops costing compute within one step.

The decode thread holds the model: the event loop never waits on a forward pass, and a forward pass releases
the GIL for its kernels while the loop serves HTTP.
"""
from __future__ import annotations

import asyncio
import collections
import ctypes
import logging
import sys
import threading
from collections.abc import Callable
from dataclasses import dataclass, field

from stages.lib.model.decoding import Batch, Row
from stages.lib.model.gpt import GPT

log = logging.getLogger("stages.serve")

try:
    LIBC = ctypes.CDLL("libc.so.6") if sys.platform.startswith("linux") else None
except OSError:  # another C library (musl)
    LIBC = None

ERROR = "error"  # the finish of a row whose decoding failed (a bug): its job answers 500
SHUTDOWN = "shutdown"  # the finish of the rows in flight when the server stops: their jobs answer 503


class Busy(Exception):
    """The waiting queue is full."""


@dataclass(eq=False)
class Job:
    """One request's rows, and where their tokens go: (row index, token id, finish) events on `events`, finish
    None while the row goes on ("length", "stop_token", "stop_string" or ERROR with its last event)."""
    rows: list[Row]
    loop: asyncio.AbstractEventLoop
    events: asyncio.Queue = field(default_factory=asyncio.Queue)
    cancelled: bool = False


class Batcher:
    """The decode thread and its waiting queue (see the module docstring)."""

    def __init__(self, model: GPT, decode: Callable[[list[int]], str], max_rows: int, max_waiting: int):
        self.model, self.decode, self.max_rows, self.max_waiting = model, decode, max_rows, max_waiting
        self.batch = Batch(model, max_rows, decode)
        self.waiting: collections.deque[Job] = collections.deque()
        self.owner: dict[Row, tuple[Job, int]] = {}  # each row in the batch: its job and its index there
        self.wake = threading.Condition()
        self.stopping = False
        self.tokens = 0  # generated since the start, for /health
        self.thread = threading.Thread(target=self._run, name="decode", daemon=True)

    # ------------------------------------------------------------------ the event loop's side

    def start(self) -> None:
        """Warm up (the batch's cache buffers, the kernels), so memory at idle is memory under load's floor."""
        self.batch.add(Row([0], max_new_tokens=2))
        while self.batch.rows:
            self.batch.step()
        self.thread.start()

    def shut_down(self) -> None:
        """End every request now (its rows finish with SHUTDOWN, waiting or decoding) and the decode thread."""
        with self.wake:
            self.stopping = True
            self.wake.notify()

    def stop(self) -> None:
        self.shut_down()
        if self.thread.is_alive():
            self.thread.join()

    def submit(self, job: Job) -> None:
        with self.wake:
            # Jobs pass through `waiting` even when the batch has room: only those beyond the room count.
            room = max(0, self.max_rows - len(self.owner))
            if len(self.waiting) >= self.max_waiting + room:
                raise Busy
            self.waiting.append(job)
            self.wake.notify()

    def cancel(self, job: Job) -> None:
        job.cancelled = True  # read by the decode thread before its next step

    def load(self) -> dict:
        """How busy the decode thread is: rows decoding, jobs waiting, tokens generated so far."""
        return {"rows": len(self.owner), "waiting": len(self.waiting), "tokens": self.tokens}

    # ------------------------------------------------------------------ the decode thread

    def _run(self) -> None:
        while True:
            with self.wake:
                if not self.stopping and not self.waiting and not self.batch.rows:
                    release_freed_memory()  # idle again: back to the idle footprint
                while not self.stopping and not self.waiting and not self.batch.rows:
                    self.wake.wait()
                if self.stopping:
                    self._end_all()
                    return
                admitted = self._admit()
            for job in admitted:
                self._join(job)
            for row in [r for r in self.batch.rows if self.owner[r][0].cancelled]:
                self.batch.remove(row)
                row.finish = "cancelled"
                del self.owner[row]
            try:
                out = self.batch.step()
                self.tokens += len(out)
            except Exception:  # a bug: fail the requests in the batch, keep serving the others
                log.exception("decoding step failed")
                out = self._fail_all()
            self._deliver(out)

    def _admit(self) -> list[Job]:
        """Waiting jobs that fit in the batch now, in arrival order (a job that does not fit waits, and so do
        the jobs after it, so a request for n choices is not passed over forever)."""
        free, admitted = self.max_rows - len(self.batch.rows), []
        while self.waiting and (self.waiting[0].cancelled or len(self.waiting[0].rows) <= free):
            job = self.waiting.popleft()
            if not job.cancelled:
                admitted.append(job)
                free -= len(job.rows)
        return admitted

    def _join(self, job: Job) -> None:
        for i, row in enumerate(job.rows):
            try:
                self.batch.add(row)
            except Exception:
                log.exception("prefill failed")
                row.finish = ERROR
                self._deliver([(row, None)], job)
                continue
            self.owner[row] = (job, i)

    def _end_all(self) -> None:
        for job in self.waiting:
            for row in job.rows:
                row.finish = SHUTDOWN
            self._deliver([(row, None) for row in job.rows], job)
        self.waiting.clear()
        for row in self.batch.rows:
            row.finish = SHUTDOWN
        self._deliver([(row, None) for row in self.batch.rows])

    def _fail_all(self) -> list[tuple[Row, None]]:
        failed = list(self.batch.rows)
        for row in failed:
            row.finish = ERROR
        self.batch = Batch(self.model, self.max_rows, self.decode)
        return [(row, None) for row in failed]

    def _deliver(self, out: list[tuple[Row, int | None]], job: Job | None = None) -> None:
        """Hand each row's token to its job, in one call into each event loop."""
        by_loop: dict[asyncio.AbstractEventLoop, list] = collections.defaultdict(list)
        for row, token in out:
            owner, i = (job, job.rows.index(row)) if job is not None else self.owner[row]
            if row.finish is not None:
                self.owner.pop(row, None)
            by_loop[owner.loop].append((owner.events, (i, token, row.finish)))
        for loop, events in by_loop.items():
            try:
                loop.call_soon_threadsafe(put_all, events)
            except RuntimeError:  # the loop has closed (the server is shutting down)
                pass


def release_freed_memory() -> None:
    """Give the memory freed since the last call back to the system (glibc's malloc_trim; a no-op elsewhere):
    glibc keeps what a load of requests freed, and an idle server would otherwise stay at its peak."""
    if LIBC is not None:
        LIBC.malloc_trim(0)


def put_all(events: list[tuple[asyncio.Queue, tuple]]) -> None:
    for queue, event in events:
        queue.put_nowait(event)
