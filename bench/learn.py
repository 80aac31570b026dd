"""Learning per second: two training configurations, the same wall-clock budget, val_bpb on the same bytes.

    python bench/learn.py --a @adamw-384 --b "" --seconds 300     # the default recipe against the one before it
    python bench/learn.py --b "train.learning_rate=0.008" --seconds 40 --common "model.n_layer=2 model.n_embd=128"

    # another domain: the SQLite documentation (public domain; bench/corpora.py fetches it from its Debian package)
    python bench/corpora.py sqlite-doc /tmp/sqlite-doc
    python bench/learn.py --a @adamw-384 --b "" --seconds 300 \
        --corpus /tmp/sqlite-doc --common "clean.quality.filters=[word_count]"

--a, --b and --common are space-separated dotted overrides of params.yaml (section.key=value, values read as
YAML: 0.02, true, [a, b]), or a preset's name (@adamw-384: the previous default recipe); --common applies to
both, and "" is params.yaml as it is. Each run is `python -m stages.train` then
`python -m stages.evaluate` in a scratch project (stages/ and params.yaml copied from this checkout), so the
real code path is measured, and both configurations are scored by the eval stage's own val_bpb over the same
validation bytes (eval.max_bytes of the validation documents; tasks and samples are switched off).

Data: the shards `dvc repro` built (data/shards with artifacts/tokenizer), or --shards DIR --tokenizer DIR,
or --corpus DIR: a raw corpus (a folder like data/raw) that merge, clean, tokenizer and pack turn into
shards in the scratch project first, with this checkout's params and --common. clean's Gopher filters are
tuned for web text: on the SQLite documentation they keep 2.6 of 6.8 MB (duplicate n-grams in reference
pages), on the King James Bible 2.0 of 4.3 MB; `--common "clean.quality.filters=[word_count]"` keeps 6.4 MB
and all 4.3 MB.

Equal wall-clock: the schedules (cosine, wsd) need max_steps in advance, so each configuration is first
timed for --calibration-steps steps (after its compilation, which no budget counts) and then trained for
1 + seconds / (seconds per step) steps; step 0, which pays for torch.compile, is not counted, nor are the
validation passes. The alternative, a time-based schedule in the trainer (progress = elapsed / budget, as in
modded-nanogpt's timed runs), would make the steps depend on the machine's load and break the pipeline's
bit-exact reruns and resume; calibration keeps every training run an ordinary, reproducible one. Each run
reports the training seconds it really took: a figure far from --seconds means the machine's load changed
between calibration and run (other work on the same cores), and the comparison should be rerun.

Noise: every --seeds value (train.seed: initialisation and batch order) trains both configurations, a and b
alternating so that drift in the machine's speed touches both; the ratio b/a per seed, and a's own spread
across seeds, tell a real difference from luck.

Cost: per configuration one calibration (compilation + calibration steps), then per seed and configuration
one compilation, --seconds of training and two evaluations. Two seeds at --seconds 300, @adamw-384 against
the default, take about 30 minutes on 2 cores.
"""
from __future__ import annotations

import argparse
import copy
import json
import os
import shlex
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from stages.lib.tokens.tokenizer_adapter import load_tokenizer  # noqa: E402

DATA_STAGES = ("merge", "clean", "tokenizer", "pack")
# Every scored run: evaluated at step 0 and at its last step only, no resume state saved on the way, and the
# eval stage reduced to val_bpb (no benchmark tasks, no samples).
RUN = {"train.checkpoint_interval": 0}
EVAL = {"eval.tasks": [], "eval.n_prompts": 0, "eval.prompts": [], "eval.heldout": []}
# Named configurations an override string may name (--a @adamw-384): the default recipe before Muon and the
# small shape (params.yaml up to commit ae87d43), so that `--a @adamw-384 --b ""` measures what it buys.
PRESETS = {"@adamw-384": "model.n_layer=6 model.n_head=6 model.n_embd=384 train.optimizer=adamw "
                         "train.learning_rate=0.002 train.schedule=cosine train.min_lr_ratio=0.1 "
                         "train.decay_fraction=0.2 train.muon_lr=0.02"}


def parse_overrides(text: str) -> dict:
    """'train.optimizer=muon train.muon_lr=0.02' -> {'train.optimizer': 'muon', 'train.muon_lr': 0.02}.

    A preset name (PRESETS) stands for its overrides; later items override it ('@adamw-384 train.seed=7')."""
    overrides = {}
    for item in shlex.split(text):
        if item.startswith("@"):
            if item not in PRESETS:
                raise SystemExit(f"unknown preset {item!r}: one of {', '.join(PRESETS)}")
            overrides.update(parse_overrides(PRESETS[item]))
            continue
        key, sep, raw = item.partition("=")
        if not sep or "." not in key:
            raise SystemExit(f"override {item!r}: write section.key=value, e.g. train.learning_rate=0.003")
        value = yaml.safe_load(raw)
        if isinstance(value, str):  # YAML reads 3e-4 as a string; the user meant a number
            try:
                value = float(value)
            except ValueError:
                pass
        overrides[key] = value
    return overrides


def with_overrides(params: dict, *overrides: dict) -> dict:
    params = copy.deepcopy(params)
    for group in overrides:
        for key, value in group.items():
            *path, name = key.split(".")
            node = params
            for part in path:
                node = node.setdefault(part, {})
            node[name] = value
    return params


@dataclass
class Result:
    steps: int
    train_seconds: float  # the timed steps (all but step 0)
    tokens_per_sec: float
    val_bpb: float


class Project:
    """A scratch copy of the pipeline: stages/, a params.yaml per run, and its data."""

    def __init__(self, path: Path, base_params: dict):
        self.path = path
        self.base_params = base_params
        shutil.copytree(ROOT / "stages", path / "stages", ignore=shutil.ignore_patterns("__pycache__"))
        (path / "logs").mkdir()

    def run(self, stage: str, params: dict, log_name: str) -> float:
        """`python -m stages.<stage>` with these params; its wall seconds. Output goes to logs/<log_name>.log."""
        (self.path / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
        env = {**os.environ, "PYTHONPATH": str(self.path)}
        log = self.path / "logs" / f"{log_name}.log"
        start = time.perf_counter()
        with open(log, "w") as out:
            proc = subprocess.run([sys.executable, "-m", f"stages.{stage}"], cwd=self.path, env=env, stdout=out,
                                  stderr=subprocess.STDOUT)
        if proc.returncode != 0:
            raise SystemExit(f"{stage} failed ({log}):\n{log.read_text()[-3000:]}")
        return time.perf_counter() - start

    def metrics(self, stage: str) -> dict:
        return json.loads((self.path / f"metrics/{stage}.json").read_text())

    def link(self, target: Path, name: str) -> None:
        (self.path / name).parent.mkdir(parents=True, exist_ok=True)
        os.symlink(target.resolve(), self.path / name)


def provide_data(project: Project, args) -> None:
    """data/shards and artifacts/tokenizer in the scratch project: linked, or built from --corpus."""
    if args.corpus:
        project.link(args.corpus, "data/raw")
        params = with_overrides(project.base_params, {"merge.input_dir": "data/raw"})
        for stage in DATA_STAGES:
            seconds = project.run(stage, params, stage)
            print(f"  {stage}: {seconds:.0f} s")
        return
    for path in (args.shards / "meta.json", args.tokenizer / "tokenizer.json"):
        if not path.is_file():
            raise SystemExit(f"{path} not found: run `dvc repro` first, or pass --shards/--tokenizer or --corpus")
    shards = json.loads((args.shards / "meta.json").read_text())["tokenizer_fingerprint"]
    if load_tokenizer(args.tokenizer).fingerprint != shards:
        raise SystemExit(f"{args.tokenizer} is not the tokenizer that packed {args.shards}: pass the right --tokenizer")
    project.link(args.shards, "data/shards")
    project.link(args.tokenizer, "artifacts/tokenizer")


def seconds_per_step(project: Project, params: dict, steps: int, name: str) -> float:
    """The mean time of a training step, step 0 (compilation) excepted."""
    project.run("train", with_overrides(params, RUN, {"train.max_steps": steps + 1,
                                                      "train.eval_interval": steps + 1}), f"calibrate-{name}")
    metrics = project.metrics("train")
    return metrics["tokens"] / metrics["steps"] / metrics["tokens_per_sec"]


def train_and_score(project: Project, params: dict, steps: int, name: str) -> Result:
    project.run("train", with_overrides(params, RUN, {"train.max_steps": steps, "train.eval_interval": steps}),
                f"train-{name}")
    train = project.metrics("train")
    project.run("evaluate", with_overrides(params, EVAL), f"eval-{name}")
    tokens_per_step = train["tokens"] / train["steps"]
    return Result(steps, (steps - 1) * tokens_per_step / train["tokens_per_sec"], train["tokens_per_sec"],
                  project.metrics("eval")["val_bpb"])


def describe_data(project: Project) -> str:
    meta = json.loads((project.path / "data/shards/meta.json").read_text())
    splits = meta["splits"]
    return (f"{splits['train']['tokens']:,} train tokens in {splits['train']['documents']} documents, "
            f"{splits['val']['bytes']:,} validation bytes; vocabulary {meta['vocab_size']}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--a", default="", help="overrides of configuration a (e.g. the current default: '')")
    parser.add_argument("--b", required=True, help="overrides of configuration b")
    parser.add_argument("--common", default="", help="overrides for both (e.g. a smaller model)")
    parser.add_argument("--seconds", type=float, default=400.0, help="training budget of every run")
    parser.add_argument("--seeds", type=int, nargs="+", default=[1337, 7])
    parser.add_argument("--calibration-steps", type=int, default=30)
    parser.add_argument("--shards", type=Path, default=ROOT / "data/shards")
    parser.add_argument("--tokenizer", type=Path, default=ROOT / "artifacts/tokenizer")
    parser.add_argument("--corpus", type=Path, help="raw corpus folder: build shards from it first")
    parser.add_argument("--keep", action="store_true", help="keep the scratch project (its logs/ and metrics/)")
    args = parser.parse_args()

    base = yaml.safe_load((ROOT / "params.yaml").read_text())
    common = parse_overrides(args.common)
    configs = {"a": with_overrides(base, common, parse_overrides(args.a)),
               "b": with_overrides(base, common, parse_overrides(args.b))}
    project = Project(Path(tempfile.mkdtemp(prefix="bench-learn-")), with_overrides(base, common))
    try:
        print(f"scratch project {project.path}; {os.cpu_count()} cores")
        provide_data(project, args)
        print(f"data: {describe_data(project)}")
        print(f"a: {args.a or '(params.yaml)'}\nb: {args.b}" + (f"\nboth: {args.common}" if args.common else ""))

        steps = {}
        for name, params in configs.items():
            step_time = seconds_per_step(project, params, args.calibration_steps, name)
            steps[name] = 1 + max(1, round(args.seconds / step_time))
            print(f"calibration {name}: {step_time:.3f} s/step -> {steps[name]} steps for {args.seconds:.0f} s")

        results: dict[tuple[int, str], Result] = {}
        print(f"\n{'seed':>6} {'config':>6} {'steps':>6} {'train s':>8} {'tokens/s':>9} {'val_bpb':>8}")
        for seed in args.seeds:
            for name, params in configs.items():
                run = with_overrides(params, {"train.seed": seed})
                r = results[seed, name] = train_and_score(project, run, steps[name], f"{name}-{seed}")
                print(f"{seed:>6} {name:>6} {r.steps:>6} {r.train_seconds:>8.1f} {r.tokens_per_sec:>9,.0f} "
                      f"{r.val_bpb:>8.4f}", flush=True)
        report(results, args.seeds, args.seconds)
    finally:
        if args.keep:
            print(f"kept {project.path}")
        else:
            shutil.rmtree(project.path, ignore_errors=True)


def report(results: dict, seeds: list[int], budget: float) -> None:
    print()
    ratios = []
    for seed in seeds:
        a, b = results[seed, "a"], results[seed, "b"]
        ratios.append(b.val_bpb / a.val_bpb)
        print(f"seed {seed}: val_bpb a {a.val_bpb:.4f}, b {b.val_bpb:.4f}, b/a {ratios[-1]:.4f}")
    if len(seeds) > 1:
        a_bpb = [results[seed, "a"].val_bpb for seed in seeds]
        print(f"b/a mean {sum(ratios) / len(ratios):.4f} (from {min(ratios):.4f} to {max(ratios):.4f}); "
              f"noise: a's val_bpb spans {max(a_bpb) - min(a_bpb):.4f} across seeds "
              f"({(max(a_bpb) - min(a_bpb)) / min(a_bpb):.2%})")
    off = [f"{name}-{seed} {r.train_seconds:.0f} s" for (seed, name), r in results.items()
           if abs(r.train_seconds - budget) > 0.1 * budget]
    if off:
        print(f"warning: runs more than 10% off the {budget:.0f} s budget ({', '.join(off)}): the machine's load "
              f"changed since calibration; rerun on quiet cores")


if __name__ == "__main__":
    main()
