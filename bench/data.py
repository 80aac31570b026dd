"""Data-stage throughput and memory on a corpus of at least 200 MB, all measured in one run.

Builds (or takes, with --raw DIR) a corpus, runs merge, clean, tokenizer and
pack as the pipeline does (`python -m stages.<name>` in a scratch project),
and prints for each stage MB/s of input text and the peak RSS of the stage's
process tree (workers included, sampled every 20 ms). For pack it also times
the tokenizer library's raw batch encoding of the same clean text in this
process, right before and after pack, and prints pack's throughput as a
ratio of their mean.

    python bench/data.py                 # 200 MB built from the shipped corpus
    python bench/data.py --mb 50         # quicker
    python bench/data.py --raw /my/corpus
    python bench/data.py --engine ray    # merge, clean and pack on Ray Data (a local instance, all cores)

With --engine ray each stage starts its own Ray instance as its child, so the
process tree measured includes Ray's GCS, raylet and worker processes (their
shared object store pages count in each process that touches them, so the
peak RSS is an upper bound), and the times include Ray's start and shutdown.
"""
from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import psutil
import yaml

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from stages.lib.data.documents import iter_batches  # noqa: E402
from stages.lib.tokens.tokenizer_adapter import load_tokenizer  # noqa: E402

SAMPLE = ROOT / "data/raw/shakespeare-milton"
DOC_CHARS = 50_000


def build_corpus(out_dir: Path, megabytes: int, seed: int = 0) -> None:
    """Unique documents of shuffled paragraphs from the sample corpus.

    One word of every line is swapped for a random one, so lines do not repeat
    across documents: dedupe and boilerplate removal keep the text, and every
    later stage sees the whole corpus.
    """
    paragraphs = [p.split("\n") for f in sorted(SAMPLE.rglob("*.txt"))
                  for p in f.read_text(encoding="utf-8").split("\n\n") if p.strip()]
    words = sorted({w for p in paragraphs for line in p for w in line.split()})
    rng = random.Random(seed)
    out_dir.mkdir(parents=True)
    target, written, index = megabytes * 1_000_000, 0, 0
    while written < target:
        lines, size = [], 0
        while size < DOC_CHARS:
            for line in rng.choice(paragraphs):
                tokens = line.split(" ")
                tokens[rng.randrange(len(tokens))] = rng.choice(words)
                lines.append(" ".join(tokens))
                size += len(line) + 1
            lines.append("")
        text = "\n".join(lines)
        (out_dir / f"doc-{index:05d}.txt").write_text(text, encoding="utf-8")
        written += len(text.encode("utf-8"))
        index += 1


def run_stage(name: str, project: Path) -> tuple[float, int]:
    """Wall seconds and peak RSS (bytes) of `python -m stages.<name>` and its children."""
    env = {k: v for k, v in os.environ.items() if k != "RAY_ADDRESS"} | {"PYTHONPATH": str(project)}
    start = time.perf_counter()
    proc = subprocess.Popen([sys.executable, "-m", f"stages.{name}"], cwd=project, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    peak = 0
    ps = psutil.Process(proc.pid)
    while proc.poll() is None:
        try:
            tree = [ps] + ps.children(recursive=True)
            peak = max(peak, sum(p.memory_info().rss for p in tree if p.is_running()))
        except psutil.Error:
            pass
        time.sleep(0.02)
    seconds = time.perf_counter() - start
    output = proc.stdout.read()
    if proc.returncode != 0:
        raise SystemExit(f"stage {name} failed:\n{output[-3000:]}")
    return seconds, peak


def raw_tokenizer_mb_per_s(project: Path) -> float:
    """The tokenizer's own batch encoding of the clean text, batches as pack makes them, text preloaded."""
    tok = load_tokenizer(project / "artifacts/tokenizer")
    batches, batch, size = [], [], 0
    for record_batch in iter_batches(project / "data/interim/clean"):
        for text in record_batch.column("text").to_pylist():
            batch.append(text)
            size += len(text)
            if size >= 4 << 20:
                batches.append(batch)
                batch, size = [], 0
    batches.append(batch)
    nbytes = sum(len(t.encode("utf-8")) for b in batches for t in b)
    start = time.perf_counter()
    for b in batches:
        tok.encode_batch(b)
    return nbytes / 1e6 / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--mb", type=int, default=200, help="size of the generated corpus")
    parser.add_argument("--raw", type=Path, help="use this folder as data/raw instead of generating one")
    parser.add_argument("--keep", action="store_true", help="keep the scratch project")
    parser.add_argument("--engine", choices=("local", "ray"), default="local",
                        help="merge.engine, clean.engine and pack.engine for the run")
    args = parser.parse_args()

    project = Path(tempfile.mkdtemp(prefix="bench-data-"))
    try:
        shutil.copytree(ROOT / "stages", project / "stages", ignore=shutil.ignore_patterns("__pycache__"))
        params = yaml.safe_load((ROOT / "params.yaml").read_text())
        for section in ("merge", "clean", "pack"):
            params[section]["engine"] = args.engine
        (project / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
        if args.raw:
            (project / "data").mkdir()
            os.symlink(args.raw.resolve(), project / "data/raw")
        else:
            build_corpus(project / "data/raw", args.mb)
        print(f"corpus {project / 'data/raw'}; {os.cpu_count()} cores; engine {args.engine}")

        rows = []
        for name in ("merge", "clean", "tokenizer", "pack"):
            if name == "pack":  # the raw tokenizer, measured right before and after pack: this VM drifts
                raw_before = raw_tokenizer_mb_per_s(project)
            seconds, peak = run_stage(name, project)
            metrics = json.loads((project / f"metrics/{name}.json").read_text())
            in_bytes = {"merge": metrics.get("bytes"), "clean": metrics.get("bytes_in")}.get(name)
            if in_bytes is None:  # tokenizer and pack read the clean text
                in_bytes = json.loads((project / "metrics/clean.json").read_text())["bytes_out"]
            rows.append((name, in_bytes / 1e6, seconds, peak))
            print(f"{name:10s} {in_bytes / 1e6:8.1f} MB in {seconds:7.1f} s = {in_bytes / 1e6 / seconds:6.1f} MB/s, "
                  f"peak RSS {peak / 2**20:6.0f} MiB")
        raw = (raw_before + raw_tokenizer_mb_per_s(project)) / 2
        pack_mb, pack_s = rows[-1][1], rows[-1][2]
        print(f"raw tokenizer batch encoding: {raw:.1f} MB/s (mean of before and after pack, {raw_before:.1f} before); "
              f"pack / raw = {pack_mb / pack_s / raw:.2f}")
    finally:
        if not args.keep:
            shutil.rmtree(project, ignore_errors=True)


if __name__ == "__main__":
    main()
