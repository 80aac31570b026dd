"""ordered_map: results in input order for any worker count, fn's errors propagate, a dead worker stops it."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from stages.lib.data.parallel import ordered_map

TESTS = Path(__file__).resolve().parent


def square(x: int) -> int:
    return x * x


def fail_on_three(x: int) -> int:
    if x == 3:
        raise ValueError(f"bad item {x}")
    return x


def die_on_three(x: int) -> int:
    """Stands in for a worker the out-of-memory killer picks."""
    if x == 3:
        os.kill(os.getpid(), signal.SIGKILL)
    return x


@pytest.mark.parametrize("workers", [1, 2, 3])
def test_results_come_back_in_input_order(workers):
    assert list(ordered_map(square, range(50), workers, max_pending=4)) == [x * x for x in range(50)]


@pytest.mark.parametrize("workers", [1, 2])
def test_an_exception_in_fn_propagates(workers):
    with pytest.raises(ValueError, match="bad item 3"):
        list(ordered_map(fail_on_three, range(8), workers))


def test_a_killed_worker_raises_a_user_error_instead_of_hanging(project_root):
    # In a child process of its own, so that a hang fails this test instead of stalling the suite.
    script = textwrap.dedent("""
        from stages.lib.errors import UserError
        from stages.lib.data.parallel import ordered_map
        from test_parallel import die_on_three
        try:
            list(ordered_map(die_on_three, range(6), workers=2))
        except UserError as err:
            print(f"error: {err}")
    """)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(project_root), str(TESTS)])}
    child = subprocess.Popen([sys.executable, "-c", script], cwd=project_root, env=env, text=True,
                             stdout=subprocess.PIPE, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        output, _ = child.communicate(timeout=30)
    except subprocess.TimeoutExpired:
        os.killpg(child.pid, signal.SIGKILL)  # the child and its pool workers
        child.communicate()
        pytest.fail("ordered_map hung after a worker was killed")
    assert child.returncode == 0, output
    assert "error: one of the 2 worker processes died" in output
    assert "out of memory" in output and "workers" in output


def report_pid_then_sleep(x: int) -> int:
    """Prints the worker's pid, then works long enough for the parent to be killed."""
    import time
    # One write(2) of a short line is atomic on a pipe; print's separate writes of text and newline let the
    # two workers' lines interleave ("worker 12worker 13").
    os.write(1, f"worker {os.getpid()}\n".encode())
    time.sleep(60)
    return x


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().split(")")[-1].split()[0] != "Z"  # a zombie has already exited
    except FileNotFoundError:
        return False


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")
def test_workers_die_when_the_stage_is_killed(project_root):
    # kill -9 of the stage process runs no cleanup: the workers must still go, not wait on the pool forever.
    script = textwrap.dedent("""
        from stages.lib.data.parallel import ordered_map
        from test_parallel import report_pid_then_sleep
        list(ordered_map(report_pid_then_sleep, range(4), workers=2))
    """)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(project_root), str(TESTS)])}
    child = subprocess.Popen([sys.executable, "-c", script], cwd=project_root, env=env, text=True,
                             stdout=subprocess.PIPE, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        workers = [int(child.stdout.readline().split()[1]) for _ in range(2)]
        child.kill()
        child.wait()
        deadline = time.monotonic() + 10
        while any(map(_alive, workers)) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert not any(map(_alive, workers)), f"workers {workers} outlived their killed parent"
    finally:
        try:
            os.killpg(child.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
