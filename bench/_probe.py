"""Run a module as `python -m MODULE` would, then write this process's peak RSS and CPU seconds as JSON.

    python bench/_probe.py OUT.json stages.clean

The figures are getrusage(RUSAGE_SELF) at exit: every thread of this process
counted, no child process. bench/scale.py runs each stage through it, so what
it measures is the stage's driver alone (the Ray workers are other processes).
"""
from __future__ import annotations

import atexit
import json
import resource
import runpy
import sys
from pathlib import Path


def write_usage(path: Path) -> None:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    peak = usage.ru_maxrss * (1 if sys.platform == "darwin" else 1024)  # bytes on macOS, KiB on Linux
    path.write_text(json.dumps({"peak_rss_bytes": peak, "cpu_seconds": usage.ru_utime + usage.ru_stime}))


def main() -> None:
    out, module = Path(sys.argv[1]), sys.argv[2]
    atexit.register(write_usage, out)  # also when the stage exits through sys.exit
    sys.argv = [module, *sys.argv[3:]]
    sys.path[0] = ""  # as `python -m`: the working directory first, not bench/ (its scripts shadow no module then)
    runpy.run_module(module, run_name="__main__", alter_sys=True)


if __name__ == "__main__":
    main()
