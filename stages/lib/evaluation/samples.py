"""metrics/samples.md: text the model generates from a few prompts, each named with where it came from.

The prompts are eval.prompts when given, else drawn from the validation documents: the first PROMPT_WORDS
words of a seeded draw of a document and a line. Drawn by document and line, never by token, so every
tokenizer of the same corpus gets the same prompts. A drawn prompt is named by its document's id (its file
under data/raw/) and line: the shards hold tokens only, so the ids come from the clean documents, split as
pack splits them.
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np
import pyarrow.parquet as pq
import torch

from stages.lib.data.documents import part_files
from stages.lib.data.split import is_val
from stages.lib.evaluation.scoring import Documents
from stages.lib.model.decoding import Sampling, generate
from stages.lib.params import EvalParams
from stages.lib.tokens.tokenizer_adapter import Tokenizer

PROMPT_WORDS = 5  # a drawn prompt: the first words of a line, enough to set the scene, short enough to continue
PROMPT_TRIES = 20  # draws per prompt wanted before settling for fewer (a split of few distinct lines)


@dataclass
class Prompt:
    text: str
    source: str  # where it came from, shown in metrics/samples.md


def validation_ids(clean_dir: Path, split_seed: int, val_fraction: float) -> list[str]:
    """The ids of the validation documents in the order pack wrote them (document order), or [] when the
    clean documents are not there."""
    if not clean_dir.is_dir():
        return []
    return [doc_id for path in part_files(clean_dir) for doc_id in pq.read_table(path, columns=["id"])["id"].to_pylist()
            if is_val(doc_id, split_seed, val_fraction)]


def draw_prompts(docs: Documents, decode: Callable[[list[int]], str], n: int, seed: int,
                 names: Sequence[str] = ()) -> list[Prompt]:
    """Up to n distinct prompts: the first PROMPT_WORDS words of seeded draws of a validation document and line.
    names: each validation document's id, which names a prompt's source when there is one per document."""
    named = len(names) == len(docs)  # else the ids are not those of these shards
    rng = np.random.default_rng(seed)
    prompts: dict[str, Prompt] = {}
    for _ in range(n * PROMPT_TRIES):
        if len(prompts) == n:
            break
        index = int(rng.integers(len(docs)))
        lines = decode(docs.document(index)[:-1].tolist()).split("\n")  # [:-1]: its end-of-text
        numbered = [(i, line) for i, line in enumerate(lines, 1) if line.strip()]
        if not numbered:
            continue
        number, line = numbered[int(rng.integers(len(numbered)))]
        text = " ".join(line.split()[:PROMPT_WORDS])
        where = names[index] if named else f"validation document {index + 1} of {len(docs)}"
        prompts.setdefault(text, Prompt(text, f"{where}, line {number}"))
    return list(prompts.values())


def choose_prompts(ep: EvalParams, val: Documents, tok: Tokenizer,
                   names: Sequence[str] = ()) -> tuple[list[Prompt], str]:
    """eval.prompts when given, else prompts drawn from the validation documents (named by `names`, their ids);
    and a line saying which."""
    if ep.prompts:
        return [Prompt(p, "eval.prompts") for p in ep.prompts], "Prompts: eval.prompts."
    prompts = draw_prompts(val, tok.decode, ep.n_prompts, ep.seed, names)
    return prompts, (f"Prompts: {len(prompts)} drawn from the validation documents (eval.prompts is empty; "
                     f"eval.n_prompts {ep.n_prompts}, eval.seed {ep.seed}): the first {PROMPT_WORDS} words of a line.")


def samples_markdown(model, tok: Tokenizer, ep: EvalParams, prompts: list[Prompt], how: str,
                     device: torch.device) -> str:
    """The samples file: `how` the prompts were chosen, the sampling settings, and each prompt's continuation."""
    generator = torch.Generator(device=device).manual_seed(ep.seed)
    parts = ["# Samples", "", how, "", f"temperature {ep.temperature}, top_k {ep.top_k}, "
             f"{ep.max_new_tokens} new tokens, seed {ep.seed}", ""]
    for prompt in prompts:
        ids = tok.encode(prompt.text) or [tok.eot_id]
        out = generate(model, torch.tensor([ids], device=device), ep.max_new_tokens,
                       Sampling(ep.temperature, ep.top_k), generator=generator)
        parts += [f"## {prompt.text}", "", f"From {prompt.source}.", "", "```text", tok.decode(ids + out.ids[0]),
                  "```", ""]
    return "\n".join(parts)
