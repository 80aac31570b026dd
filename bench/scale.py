"""The data stages on Ray at two corpus sizes: does the driver stay flat while the work grows?

Builds a corpus of many small documents (JSONL files of 10,000 documents of
300-600 characters, words drawn with a seeded RNG from the shipped corpus
data/raw/, with planted exact copies, near copies with 5% of the words
replaced, and boilerplate lines) at two sizes, and runs merge, clean,
tokenizer and pack on each (`python -m stages.<name>` in a scratch project,
params.yaml as shipped with merge.engine, clean.engine and pack.engine set to
ray) against one Ray instance that the bench starts (`ray start --head
--block --num-cpus N`, token authentication with a token of its own) and
stops at the end, on an error or Ctrl-C too. The stage's process is then the
driver alone, and bench/_probe.py reports its peak RSS and CPU seconds
(getrusage at exit).

    python bench/scale.py                               # 50,000 and 500,000 documents (~22 and ~220 MB)
    python bench/scale.py --small 200000 --large 2000000  # ~0.1 and ~1 GB
    python bench/scale.py --small 2000 --large 20000    # a quick check of the bench itself
    python bench/scale.py --cpus 8 --keep

Per stage and size it prints the wall seconds, the driver's peak RSS and CPU
seconds per million input documents, and the throughput per core: input
documents and MB / (wall seconds x Ray's CPUs). Then the ratios the targets
are stated in: the driver's peak at the large size over the small (target:
within 1.2x, and under 1 GB), and an estimate for 1 TB of such text on 4, 32
and 128 nodes of 32 cores, next to the ideal (all the work spread evenly,
nothing serial; target: 32 nodes within 1.2x of it).

The estimate, for merge, clean and pack (the stages that run on Ray):
- parallel: core-seconds per TB at the per-core throughput of the large run,
  (wall x CPUs) / input bytes, divided by the cluster's cores. That wall
  includes the driver's own work and Ray's start, so it is an upper bound;
- serial: the driver's CPU seconds that grow with the corpus, per input
  document ((large - small) / (large - small documents)), times the documents
  in 1 TB, added whatever the number of nodes.
It assumes that per-core throughput stays as measured on this machine (cores
of the same speed, no worse for a Ray task on another node) and that the
shared filesystem's bandwidth is never the limit: 1 TB read and some 2 TB
written by each stage, spread over the nodes. The tokenizer is not on Ray: it
learns from tokenizer.train_bytes of text in one process, a fixed cost, but
reads the whole clean corpus to draw that sample; its wall seconds that grow
with the corpus are printed apart, as hours per TB at any number of nodes.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import random
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent
SAMPLE = ROOT / "data/raw"
PROBE = Path(__file__).resolve().parent / "_probe.py"
STAGES = ("merge", "clean", "tokenizer", "pack")
RAY_STAGES = ("merge", "clean", "pack")
FILE_DOCS = 10_000  # documents per JSONL file
EXACT, NEAR, BOILERPLATE = 0.02, 0.02, 0.10  # shares of documents: exact copies, near copies, with a boilerplate line
NEAR_EDIT = 0.05  # share of a near copy's words replaced
POOL = 10_000  # earlier documents kept (a reservoir sample) to copy from: copies land in later files and blocks
BOILERPLATE_LINES = [f"{notice} (notice {i}): all rights reserved by the publishers of this edition."
                     for i, notice in enumerate(["Copyright", "Licence", "Terms of use", "Distribution",
                                                 "Reprint", "Archive", "Mirror", "Edition"])]
TB = 1e12
NODES, NODE_CORES = (4, 32, 128), 32
RAY_CLI = [sys.executable, "-m", "ray.scripts.scripts"]  # the `ray` command of this Python's Ray


# --------------------------------------------------------------------------- the corpus

def sample_words() -> list[str]:
    """The shipped corpus's words with their frequencies (repeats kept); words without a letter left out."""
    text = " ".join(p.read_text(encoding="utf-8", errors="replace") for p in sorted(SAMPLE.rglob("*.txt")))
    return [w for w in text.split() if any(c.isalpha() for c in w)]


def document(rng: random.Random, words: list[str], chars_per_word: float) -> str:
    """300-600 characters of random words, in lines of 6-14 words."""
    drawn = rng.choices(words, k=max(1, round(rng.uniform(300, 600) / chars_per_word)))
    lines, start = [], 0
    while start < len(drawn):
        end = start + rng.randint(6, 14)
        lines.append(" ".join(drawn[start:end]))
        start = end
    return "\n".join(lines)


def near_copy(rng: random.Random, words: list[str], text: str) -> str:
    lines = [line.split(" ") for line in text.split("\n")]
    spots = [(i, j) for i, line in enumerate(lines) for j in range(len(line))]
    for i, j in rng.sample(spots, max(1, round(NEAR_EDIT * len(spots)))):
        lines[i][j] = rng.choice(words)
    return "\n".join(" ".join(line) for line in lines)


def build_corpus(raw: Path, n_docs: int, words: list[str], seed: int = 0) -> None:
    """n_docs documents in JSONL files of FILE_DOCS; copies are drawn from a reservoir of earlier originals
    (boilerplate line included: an exact copy is the same text)."""
    rng = random.Random(seed)
    chars_per_word = sum(len(w) + 1 for w in words[:100_000]) / min(len(words), 100_000)
    raw.mkdir(parents=True)
    pool: list[str] = []
    originals = 0
    for start in range(0, n_docs, FILE_DOCS):
        lines = []
        for _ in range(min(FILE_DOCS, n_docs - start)):
            roll = rng.random()
            if pool and roll < EXACT:
                text = rng.choice(pool)
            elif pool and roll < EXACT + NEAR:
                text = near_copy(rng, words, rng.choice(pool))
            else:
                text = document(rng, words, chars_per_word)
                if rng.random() < BOILERPLATE:
                    notice = rng.choice(BOILERPLATE_LINES)
                    text = f"{notice}\n{text}" if rng.random() < 0.5 else f"{text}\n{notice}"
                originals += 1
                if len(pool) < POOL:  # reservoir sampling: every original equally likely to be copied
                    pool.append(text)
                elif (slot := rng.randrange(originals)) < POOL:
                    pool[slot] = text
            lines.append(json.dumps({"text": text}))
        (raw / f"docs-{start // FILE_DOCS:05d}.jsonl").write_text("\n".join(lines) + "\n", encoding="utf-8")


def scratch_project(directory: Path, n_docs: int, words: list[str]) -> Path:
    """A project as the stages see it: stages/, params.yaml (the Ray engines), data/raw/."""
    shutil.copytree(ROOT / "stages", directory / "stages", ignore=shutil.ignore_patterns("__pycache__"))
    params = yaml.safe_load((ROOT / "params.yaml").read_text(encoding="utf-8"))
    for section in RAY_STAGES:
        params[section]["engine"] = "ray"
    (directory / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False), encoding="utf-8")
    build_corpus(directory / "data/raw", n_docs, words)
    return directory


# --------------------------------------------------------------------------- Ray

class RayInstance:
    """`ray start --head --block` as a child of the bench: SIGTERM to it stops what it started, and no other
    Ray instance on this machine (`ray stop` would stop them all). Token authentication with a token of its
    own (in its temporary folder), passed to the stages through `env`."""

    def __init__(self, cpus: int):
        self.folder = Path(tempfile.mkdtemp(prefix="ray-", dir="/tmp"))  # short: Ray's socket paths are limited
        token = self.folder / "auth_token"
        token.write_text(secrets.token_hex(32))
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        self.env = {k: v for k, v in os.environ.items() if not k.startswith("RAY_")}
        self.env |= {"RAY_AUTH_MODE": "token", "RAY_AUTH_TOKEN_PATH": str(token)}
        self.log = open(self.folder / "ray-start.log", "w")
        self.proc = subprocess.Popen(
            [*RAY_CLI, "start", "--head", "--block", f"--port={port}", f"--num-cpus={cpus}",
             "--disable-usage-stats", "--include-dashboard=false", f"--temp-dir={self.folder / 'tmp'}"],
            env=self.env, stdout=self.log, stderr=subprocess.STDOUT, start_new_session=True)  # not sent Ctrl-C
        self.env["RAY_ADDRESS"] = f"127.0.0.1:{port}"

    def wait_ready(self) -> None:
        deadline = time.monotonic() + 120
        status = [*RAY_CLI, "status", f"--address={self.env['RAY_ADDRESS']}"]
        while subprocess.run(status, env=self.env, capture_output=True).returncode != 0:
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise SystemExit(f"ray start failed; its log:\n{(self.folder / 'ray-start.log').read_text()[-3000:]}")
            time.sleep(0.5)

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()  # Ray drains, then stops its GCS, raylet and workers
            try:
                self.proc.wait(timeout=60)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)  # its own session: only what it started
                self.proc.wait()
        self.log.close()
        shutil.rmtree(self.folder, ignore_errors=True)


# --------------------------------------------------------------------------- runs

@dataclass
class Run:
    stage: str
    documents: int  # input documents
    bytes: int  # input text bytes
    wall: float  # seconds
    peak: int  # the driver's peak RSS, bytes
    cpu: float  # the driver's CPU seconds


def input_sizes(project: Path, stage: str) -> tuple[int, int]:
    """(documents, bytes) of the stage's input text, from the metrics of the stage that wrote it."""
    if stage == "merge":
        metrics = json.loads((project / "metrics/merge.json").read_text())
        return metrics["documents"], metrics["bytes"]
    metrics = json.loads((project / "metrics/clean.json").read_text())
    if stage == "clean":
        return metrics["documents_in"], metrics["bytes_in"]
    return metrics["documents_out"], metrics["bytes_out"]  # tokenizer and pack read the clean corpus


def run_stage(project: Path, stage: str, env: dict[str, str]) -> Run:
    usage = project / f"usage-{stage}.json"
    start = time.perf_counter()
    proc = subprocess.run([sys.executable, str(PROBE), str(usage), f"stages.{stage}"], cwd=project,
                          env=env | {"PYTHONPATH": str(project)}, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                          text=True)
    wall = time.perf_counter() - start
    if proc.returncode != 0:
        raise SystemExit(f"stage {stage} failed:\n{proc.stdout[-3000:]}")
    measured = json.loads(usage.read_text())
    return Run(stage, *input_sizes(project, stage), wall, measured["peak_rss_bytes"], measured["cpu_seconds"])


def print_run(n_docs: int, run: Run, cpus: int) -> None:
    per_core = run.wall * cpus
    print(f"{n_docs:>10,}  {run.stage:9s} {run.wall:7.1f} {run.peak / 2**20:10.0f} "
          f"{run.cpu / run.documents * 1e6:20.1f} {run.documents / per_core:12,.0f} "
          f"{run.bytes / 1e6 / per_core:10.2f}", flush=True)


def growth_per_document(small: Run, large: Run, seconds) -> float:
    """Seconds per input document that grow with the corpus: what the large run took beyond the small one,
    over the documents it had beyond them (the fixed costs, imports and Ray's connection, cancel out)."""
    return max(seconds(large) - seconds(small), 0.0) / (large.documents - small.documents)


def print_ratios(small: dict[str, Run], large: dict[str, Run], cpus: int) -> None:
    ratios = ", ".join(f"{s} {large[s].peak / small[s].peak:.2f}x" for s in STAGES)
    biggest = max(large.values(), key=lambda r: r.peak)
    print(f"\ndriver peak large/small: {ratios} (target: within 1.2x)")
    print(f"driver peak at most: {biggest.peak / 2**20:.0f} MB ({biggest.stage}; target: under 1 GB)")

    # 1 TB of merge's input text; each stage's input (fewer documents after clean) scales alike.
    scale = TB / large["merge"].bytes
    core_seconds = sum(large[s].wall * cpus * scale for s in RAY_STAGES)
    driver = {s: growth_per_document(small[s], large[s], lambda r: r.cpu) for s in RAY_STAGES}
    serial = sum(driver[s] * large[s].documents * scale for s in RAY_STAGES)
    print("driver CPU growing with the corpus, us per input document: "
          + ", ".join(f"{s} {driver[s] * 1e6:.1f}" for s in RAY_STAGES))
    print(f"1 TB of such text: {large['merge'].documents * scale:.2e} documents; merge, clean and pack "
          f"{core_seconds / 3600:,.0f} core-hours, driver CPU growing with the corpus {serial / 3600:.2f} h")
    print(f"{'nodes':>6} {'cores':>6} {'ideal h':>9} {'estimate h':>11} {'ratio':>6}")
    for nodes in NODES:
        cores = nodes * NODE_CORES
        ideal = core_seconds / cores / 3600
        estimate = ideal + serial / 3600
        print(f"{nodes:6d} {cores:6d} {ideal:9.2f} {estimate:11.2f} {estimate / ideal:5.2f}x")
    print("target: 32 nodes within 1.2x of ideal")
    tokenizer = growth_per_document(small["tokenizer"], large["tokenizer"], lambda r: r.wall)
    print(f"tokenizer (one process, not on Ray): {tokenizer * large['tokenizer'].documents * scale / 3600:.2f} h "
          f"per TB at any node count")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--small", type=int, default=50_000, help="documents in the small corpus")
    parser.add_argument("--large", type=int, default=500_000, help="documents in the large corpus")
    parser.add_argument("--cpus", type=int, default=os.cpu_count(), help="CPUs of the Ray instance (ray start)")
    parser.add_argument("--keep", action="store_true", help="keep the scratch projects")
    args = parser.parse_args()
    if not 0 < args.small < args.large:
        parser.error("--small and --large: documents, small below large")

    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # so `finally` stops Ray on a kill too
    words = sample_words()
    scratch = Path(tempfile.mkdtemp(prefix="bench-scale-"))
    ray_instance = None
    try:
        ray_instance = RayInstance(args.cpus)
        ray_instance.wait_ready()
        print(f"{platform.machine()}, {os.cpu_count()} cores; Ray: one node, --num-cpus {args.cpus}, "
              f"{ray_instance.folder}; scratch {scratch}")
        print(f"{'documents':>10}  {'stage':9s} {'wall s':>7} {'driver MB':>10} {'driver CPU s/M docs':>20} "
              f"{'docs/s/core':>12} {'MB/s/core':>10}")
        runs: dict[int, dict[str, Run]] = {}
        for n_docs in (args.small, args.large):
            project = scratch_project(scratch / f"docs-{n_docs}", n_docs, words)
            runs[n_docs] = {}
            for stage in STAGES:
                runs[n_docs][stage] = run_stage(project, stage, ray_instance.env)
                print_run(n_docs, runs[n_docs][stage], args.cpus)
            if not args.keep:
                shutil.rmtree(project)
        print_ratios(runs[args.small], runs[args.large], args.cpus)
    except KeyboardInterrupt:
        print("interrupted: stopping Ray (it drains its tasks for up to 30 s)", file=sys.stderr)
        sys.exit(130)
    finally:
        if ray_instance is not None:
            ray_instance.stop()
        if not args.keep:
            shutil.rmtree(scratch, ignore_errors=True)


if __name__ == "__main__":
    main()
