"""The docs say what the code does: README.md and docs/*.md are checked against the params, the commands and metrics/.

In the spirit of litgpt's tests/test_readme.py. For every page:
- every params key shown exists in stages.lib.params.SECTIONS (nested sections included): `section.key` in
  inline code, `section.key=value` in shell blocks (`-S`, bench overrides), the keys of ```yaml blocks; and
  the `-S` settings of each `dvc exp run` command shown give valid params together;
- every `--flag` of `python -m stages.<x>` or `python bench/<x>.py` shown (in ```bash blocks or inline code)
  is an option that script's argparse declares;
- every relative link resolves, anchors included;
- every metrics block equals what `python -m stages.docs` renders from metrics/;
- the cheap commands shown (`--help`, `python -m stages.docs --check`, `dvc dag`) run and succeed.
The second half of the file feeds each check broken text, so that a check that can no longer fail is noticed.
"""
from __future__ import annotations

import ast
import dataclasses
import json
import re
import shlex
import shutil
import subprocess
import sys
import typing
from pathlib import Path

import pytest
import yaml

from stages.lib.docs.metrics_blocks import load_metrics, render_page
from stages.lib.errors import UserError
from stages.lib.params import SECTIONS, parse_section

ROOT = Path(__file__).resolve().parent.parent
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
PAGE_IDS = [str(page.relative_to(ROOT)) for page in PAGES]

FENCE = re.compile(r"^```(\w*)[^\n]*\n(.*?)^```[ \t]*$", re.M | re.S)
SHELL = {"bash", "sh", "shell", "console"}
INLINE_CODE = re.compile(r"`([^`\n]+)`")
# section.key, section.nested.key: not part of a path or a longer name, nor a call (tokenizer.encode(...))
DOTTED = re.compile(r"(?<![\w/.\\-])([a-z_]+(?:\.[a-z_0-9]+)+)(?![\w*(])")
FILE_SUFFIXES = {"json", "jsonl", "pt", "py", "yaml", "md", "bin", "npy", "safetensors", "txt", "parquet", "gz",
                 "model"}
LINK = re.compile(r"\[[^\]]*\]\(([^)\s]+)\)")


# --------------------------------------------------------------------------- reading a page

def fenced_blocks(text: str) -> list[tuple[str, str]]:
    """(language, body) of every fenced code block."""
    return [(m[1], m[2]) for m in FENCE.finditer(text)]


def prose(text: str) -> str:
    """The page without its fenced code blocks."""
    return FENCE.sub("", text)


def inline_code(text: str) -> list[str]:
    return INLINE_CODE.findall(prose(text))


def shell_commands(text: str) -> list[list[str]]:
    """Each simple command of the ```bash blocks and of inline code that starts with python or dvc, as words.

    Continuation lines are joined, comments dropped, and pipelines and `&&` chains split.
    """
    lines = []
    for lang, body in fenced_blocks(text):
        if lang in SHELL:
            lines += body.replace("\\\n", " ").splitlines()
    lines += [span for span in inline_code(text) if re.match(r"(python|dvc) ", span)]
    commands = []
    for line in lines:
        words, current = shlex.split(line, comments=True), []
        for word in words + ["|"]:
            if word in ("|", "&&", "||", ";"):
                if current:
                    commands.append(current)
                current = []
            else:
                current.append(word)
    return commands


# --------------------------------------------------------------------------- params keys

def field_types(cls: type) -> dict[str, typing.Any]:
    return typing.get_type_hints(cls)


def key_exists(dotted: str) -> bool:
    """`model.n_layer`, `clean.near_dedupe.threshold` and `clean.near_dedupe` (a nested section) exist."""
    section, *names = dotted.split(".")
    if section not in SECTIONS:
        return False
    current: typing.Any = SECTIONS[section]
    for name in names:
        if not (dataclasses.is_dataclass(current) and name in field_types(current)):
            return False
        current = field_types(current)[name]
    return True


def looks_like_key(dotted: str) -> bool:
    """A dotted name that claims to be a params key: a section first, not a file name (`eval.json`)."""
    parts = dotted.split(".")
    return parts[0] in SECTIONS and parts[-1] not in FILE_SUFFIXES


def keys_shown(text: str) -> list[str]:
    """Every params key the page shows: in inline code, as `key=value` in shell blocks, in ```yaml blocks."""
    keys = [key for span in inline_code(text) for key in DOTTED.findall(span) if looks_like_key(key)]
    for lang, body in fenced_blocks(text):
        if lang in SHELL:
            keys += [key for key in re.findall(DOTTED.pattern + "=", body) if looks_like_key(key)]
        elif lang == "yaml" and is_params_excerpt(body):
            keys += yaml_keys(yaml.safe_load(body) or {}, "")
    return keys


def is_params_excerpt(body: str) -> bool:
    """A ```yaml block shows params.yaml unless its first line is a comment naming another file (# dvc.yaml)."""
    named = re.match(r"#\s*([\w./-]+\.ya?ml)\b", body)
    return named is None or named[1] == "params.yaml"


def yaml_keys(mapping: dict, prefix: str) -> list[str]:
    """The dotted key of every leaf of a params.yaml excerpt."""
    keys = []
    for name, value in mapping.items():
        dotted = f"{prefix}{name}"
        keys += yaml_keys(value, dotted + ".") if isinstance(value, dict) else [dotted]
    return keys


def unknown_keys(text: str) -> list[str]:
    return sorted({key for key in keys_shown(text) if not key_exists(key)})


def invalid_experiments(text: str) -> list[str]:
    """`dvc exp run` commands whose -S settings, applied together to params.yaml, are refused."""
    defaults = yaml.safe_load((ROOT / "params.yaml").read_text(encoding="utf-8"))
    refused = []
    for words in shell_commands(text):
        if words[:3] != ["dvc", "exp", "run"]:
            continue
        params, touched = json.loads(json.dumps(defaults)), set()
        for flag, setting in zip(words, words[1:]):
            if flag != "-S":
                continue
            key, _, raw = setting.partition("=")
            if "." not in key:  # a placeholder: -S key=value
                continue
            *path, name = key.split(".")
            node = params
            for part in path:
                node = node.setdefault(part, {})
            node[name] = yaml.safe_load(raw)  # DVC reads -S values as YAML
            touched.add(path[0])
        try:
            for section in sorted(touched & set(SECTIONS)):
                parse_section(section, params[section])
        except UserError as err:
            refused.append(f"{shlex.join(words)}: {err}")
    return refused


# --------------------------------------------------------------------------- command-line flags

def script_of(words: list[str]) -> Path | None:
    """The project script a `python ...` command runs: stages/<x>.py for -m stages.<x>, or bench/<x>.py."""
    while words and re.match(r"[A-Z_]+=", words[0]):  # VAR=value python ...
        words = words[1:]
    if len(words) < 2 or words[0] not in ("python", "python3"):
        return None
    if any("<" in word for word in words[1:3]):  # a placeholder: python -m stages.<name>
        return None
    if words[1] == "-m" and len(words) > 2 and words[2].startswith("stages."):
        return ROOT / "stages" / (words[2].removeprefix("stages.").replace(".", "/") + ".py")
    if words[1].startswith("bench/") and words[1].endswith(".py"):
        return ROOT / words[1]
    return None


def declared_options(script: Path) -> set[str]:
    """The option strings of every add_argument call in the script (none if it takes no arguments)."""
    options = set()
    for node in ast.walk(ast.parse(script.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Call) and getattr(node.func, "attr", None) == "add_argument":
            options |= {arg.value for arg in node.args
                        if isinstance(arg, ast.Constant) and isinstance(arg.value, str) and arg.value.startswith("-")}
    return options | {"-h", "--help"} if options else options


def unknown_flags(text: str) -> list[str]:
    wrong = []
    for words in shell_commands(text):
        script = script_of(words)
        if script is None:
            continue
        if not script.exists():
            wrong.append(f"{shlex.join(words)}: {script.relative_to(ROOT)} does not exist")
            continue
        options = declared_options(script)
        for word in words:
            flag = word.split("=", 1)[0]
            if re.fullmatch(r"--?[A-Za-z][\w-]*", flag) and flag not in options and word != "-m":
                wrong.append(f"{shlex.join(words)}: {script.relative_to(ROOT)} has no option {flag}")
    return wrong


# --------------------------------------------------------------------------- links

def slug(heading: str) -> str:
    """GitHub's anchor for a heading: lower case, punctuation dropped, spaces as hyphens."""
    return re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")


def anchors(text: str) -> set[str]:
    """The anchors of a page's headings; a repeated heading gets -1, -2, ... as on GitHub."""
    found, times = set(), {}
    for heading in re.findall(r"^#{1,6} (.+)$", prose(text), re.M):
        base = slug(heading)
        found.add(f"{base}-{times[base]}" if base in times else base)
        times[base] = times.get(base, 0) + 1
    return found


def broken_links(page: Path, text: str) -> list[str]:
    broken = []
    for target in LINK.findall(prose(text)):
        if re.match(r"[a-z]+:", target):  # https:, mailto:
            continue
        path, _, anchor = target.partition("#")
        resolved = (page.parent / path).resolve() if path else page
        if not resolved.exists():
            broken.append(f"{target}: no such file")
        elif anchor and resolved.suffix == ".md" and anchor not in anchors(resolved.read_text(encoding="utf-8")):
            broken.append(f"{target}: no heading with anchor #{anchor} in {resolved.name}")
    return broken


# --------------------------------------------------------------------------- cheap commands

def cheap_commands() -> list[str]:
    """The commands the docs show that finish in seconds and need no pipeline outputs."""
    found = []
    for page in PAGES:
        for words in shell_commands(page.read_text(encoding="utf-8")):
            line = shlex.join(words)
            if line.endswith(" --help") or line in ("python -m stages.docs --check", "dvc dag"):
                found.append(line)
    return sorted(set(found))


# =========================================================================== the docs as they are

@pytest.mark.parametrize("page", PAGES, ids=PAGE_IDS)
def test_every_params_key_shown_exists(page):
    assert unknown_keys(page.read_text(encoding="utf-8")) == [], "not a key of stages/lib/params (docs/parameters.md)"


@pytest.mark.parametrize("page", PAGES, ids=PAGE_IDS)
def test_every_experiment_shown_has_valid_params(page):
    assert invalid_experiments(page.read_text(encoding="utf-8")) == []


@pytest.mark.parametrize("page", PAGES, ids=PAGE_IDS)
def test_every_flag_shown_exists(page):
    assert unknown_flags(page.read_text(encoding="utf-8")) == []


@pytest.mark.parametrize("page", PAGES, ids=PAGE_IDS)
def test_every_relative_link_resolves(page):
    assert broken_links(page, page.read_text(encoding="utf-8")) == []


@pytest.mark.parametrize("page", PAGES, ids=PAGE_IDS)
def test_metrics_blocks_are_fresh(page):
    text = page.read_text(encoding="utf-8")
    assert render_page(text, load_metrics(ROOT / "metrics"), page.name) == text, \
        f"{page.name}: a metrics block is stale: run `python -m stages.docs`"


def test_the_docs_show_the_checked_things():
    # Guards the checks above against a parser that silently finds nothing.
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    assert "model.n_layer" in keys_shown(readme)
    assert ["python", "-m", "stages.docs", "--check"] in shell_commands(readme)
    assert "<!-- metrics:results -->" in readme
    assert {"python -m stages.docs --check", "python -m stages.generate --help"} <= set(cheap_commands())


@pytest.mark.parametrize("command", cheap_commands())
def test_cheap_commands_shown_run(command):
    result = subprocess.run(shlex.split(command.replace("python ", f"{shlex.quote(sys.executable)} ", 1)),
                            cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, f"{command}:\n{result.stdout[-2000:]}{result.stderr[-2000:]}"


# =========================================================================== each check fails when broken

README = (ROOT / "README.md").read_text(encoding="utf-8")


def test_a_bogus_key_is_caught():
    broken = README.replace("-S model.n_layer=6", "-S model.n_layers=6", 1)
    assert broken != README
    assert unknown_keys(broken) == ["model.n_layers"]
    assert unknown_keys("Set `clean.near_dedupe.thresold`, not `clean.near_dedupe.threshold`.") == \
        ["clean.near_dedupe.thresold"]
    assert unknown_keys("```yaml\ntrain:\n  max_step: 10\n```\n") == ["train.max_step"]
    assert unknown_keys("```bash\npython bench/learn.py --b \"train.muon_rate=0.1\"\n```\n") == ["train.muon_rate"]


def test_file_names_and_other_files_yaml_are_not_keys():
    assert unknown_keys("`metrics/eval.json`, `eval.json`, `model.pt`, `model.*`, `stages.generate`") == []
    assert unknown_keys("```yaml\n# dvc.yaml\nstages:\n  train:\n    cmd: x\n```\n") == []


def test_an_invalid_experiment_is_caught():
    broken = README.replace("-S tokenizer.kind=sentencepiece_unigram", "-S tokenizer.kind=wordpiece", 1)
    assert broken != README
    assert len(invalid_experiments(broken)) == 1 and "tokenizer.kind='wordpiece'" in invalid_experiments(broken)[0]
    # settings are checked together: each value alone is fine, not this pair
    assert invalid_experiments("```bash\ndvc exp run -S model.n_embd=200 -S model.n_head=3\n```\n")


def test_a_bogus_flag_is_caught():
    broken = README.replace("--max-new-tokens 200", "--max-tokens 200", 1)
    assert broken != README
    assert unknown_flags(broken) == ["python -m stages.generate --prompt ROMEO: --max-tokens 200: "
                                     "stages/generate.py has no option --max-tokens"]
    assert unknown_flags("`python -m stages.train --steps 5`") == ["python -m stages.train --steps 5: "
                                                                   "stages/train.py has no option --steps"]
    assert unknown_flags("```bash\necho x | python bench/nope.py --a 1\n```\n") == \
        ["python bench/nope.py --a 1: bench/nope.py does not exist"]


def test_a_broken_link_is_caught():
    page = ROOT / "README.md"
    broken = README.replace("(docs/data.md)", "(docs/dat.md)", 1).replace("(docs/parameters.md)",
                                                                         "(docs/parameters.md#nope)", 1)
    assert sorted(broken_links(page, broken)) == [
        "docs/dat.md: no such file", "docs/parameters.md#nope: no heading with anchor #nope in parameters.md"]
    assert broken_links(page, "[ok](docs/data.md#what-clean-does) [web](https://dvc.org)") == []


def test_a_stale_metrics_block_is_caught():
    metrics = load_metrics(ROOT / "metrics")
    metrics["eval"] = {**metrics["eval"], "val_bpb": metrics["eval"]["val_bpb"] + 0.5}
    assert render_page(README, metrics, "README.md") != README


def test_stages_docs_check_names_the_stale_file(tmp_path):
    for name in ("README.md", "params.yaml", "dvc.yaml"):
        shutil.copy(ROOT / name, tmp_path / name)
    shutil.copytree(ROOT / "docs", tmp_path / "docs")
    shutil.copytree(ROOT / "metrics", tmp_path / "metrics")
    stale = json.loads((tmp_path / "metrics/eval.json").read_text())
    stale["val_bpb"] += 0.5
    (tmp_path / "metrics/eval.json").write_text(json.dumps(stale))
    env = {"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin"}

    def docs(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, "-m", "stages.docs", *args], cwd=tmp_path, env=env,
                              capture_output=True, text=True, timeout=60)

    check = docs("--check")
    assert check.returncode == 1
    assert "stale: README.md" in check.stderr and "stale: docs/evaluation.md" in check.stderr
    assert "params.yaml" not in check.stderr and "docs/data.md" not in check.stderr
    assert docs().returncode == 0
    assert f"{stale['val_bpb']:.3f}" in (tmp_path / "README.md").read_text(encoding="utf-8")
    assert docs("--check").returncode == 0


def test_render_page_refuses_unknown_and_unclosed_blocks():
    metrics = load_metrics(ROOT / "metrics")
    with pytest.raises(UserError, match="x.md: unknown metrics block 'nope'"):
        render_page("<!-- metrics:nope -->\n<!-- /metrics -->", metrics, "x.md")
    with pytest.raises(UserError, match="x.md: .* not closed"):
        render_page("<!-- metrics:results -->\nold figures\n", metrics, "x.md")
    with pytest.raises(UserError, match=r"metrics/sft.json not found: run `dvc repro` first"):
        render_page("<!-- metrics:results -->\n<!-- /metrics -->", {k: v for k, v in metrics.items() if k != "sft"},
                    "x.md")


def test_blocks_follow_the_metrics_keys():
    # A new task file or clean rule shows up without a change to the renderers.
    metrics = load_metrics(ROOT / "metrics")
    metrics["eval"] = {**metrics["eval"], "task_riddles_acc": 0.5, "task_riddles_acc_norm": 0.625,
                       "task_riddles_chance": 0.25, "task_riddles_n": 40}
    metrics["clean"] = {**metrics["clean"], "removed_documents_too_short": 3, "removed_bytes_too_short": 120,
                        "pii_email": 2}
    metrics["sft"] = {"pretrained_val_loss": 11.0, "sft_val_loss": 4.0, "pretrained_exact_match": 0.0,
                      "sft_exact_match": 0.12, "chance_exact_match": 0.05, "exact_match_speaker": 0.2,
                      "chance_speaker": 0.1, "items_speaker": 50}
    page = "".join(f"<!-- metrics:{name} -->\n<!-- /metrics -->\n" for name in ("results", "clean", "sft"))
    out = render_page(page, metrics, "x.md")
    assert "| `riddles` task, `acc_norm` | 0.625 | chance: `task_riddles_chance` in reports/eval.json |" in out
    assert "0.250" not in out and "| 50 |" not in out  # chance and counts live in reports/, which git lacks
    assert "| removed: too_short | 3 | 120 |" in out and "Personal data found: email 2." in out
    assert "| instruction tuning, `exact_match` before → after | 0.0% → 12.0% | chance: `chance_exact_match` in " \
        "reports/sft.json |" in out
    assert "| `val_loss` | 11.000 | 4.000 |" in out and "| `speaker` | 20.0% |" in out
