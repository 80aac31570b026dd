"""Benchmark tasks: multiple choice and cloze, scored by log-likelihood as lm-evaluation-harness does it.

The task files and their items are in stages/lib/evaluation/task_format.py.

Scoring follows lm-evaluation-harness 0.4 (`hf` model, no BOS token) step by
step, so `lm_eval` on the exported model reports the same accuracies:
- the pair is encoded as in `_encode_pair`: trailing whitespace of the context
  moves to the continuation, the continuation's tokens are those of
  encode(context + continuation) past len(encode(context));
- the model sees (context + continuation)[-(block_size + 1):][:-1], the last
  len(continuation) positions give the log-probabilities (`_loglikelihood_tokens`);
- multiple choice: acc = argmax of the summed log-likelihoods, acc_norm =
  argmax of log-likelihood / characters of the choice (`len(choice)`, as in
  lm-eval's task.py: characters, not bytes), first index on ties (numpy argmax);
- cloze: acc = every continuation token is the argmax at its position
  (lm-eval's is_greedy), bpb = -sum(log-likelihood) / ln 2 / UTF-8 bytes of the target.
"""
from __future__ import annotations

import collections
import math
import warnings
from dataclasses import dataclass
from typing import Callable

import numpy as np
import torch
import torch.nn.functional as F

from stages.lib.errors import UserError
from stages.lib.evaluation.task_format import Cloze, MultipleChoice, Task
from stages.lib.runtime import autocast

# --------------------------------------------------------------------------- log-likelihoods

def encode_pair(encode: Callable[[str], list[int]], context: str, continuation: str,
                prefix_id: int) -> tuple[list[int], list[int]]:
    """Context and continuation tokens, exactly as lm-eval's `_encode_pair` makes them.

    Trailing whitespace moves from the context to the continuation, and the
    continuation's tokens are read off the encoding of the whole text, so a
    merge across the boundary is tokenized as in running text. An empty
    context becomes `prefix_id` (lm-eval's BOS-or-EOS prefix; here end-of-text).
    """
    if not context:
        cont = encode(continuation)
        return ([prefix_id], cont) if cont[:1] != [prefix_id] else (cont[:1], cont[1:])
    n_spaces = len(context) - len(context.rstrip())
    if n_spaces:
        context, continuation = context[:-n_spaces], context[-n_spaces:] + continuation
    whole = encode(context + continuation)
    context_enc = encode(context)
    return context_enc, whole[len(context_enc):]


def model_input(context_enc: list[int], continuation_enc: list[int], max_length: int) -> list[int]:
    """The tokens the model reads: left-truncated to max_length, the last continuation token left out."""
    return (context_enc + continuation_enc)[-(max_length + 1):][:-1]


@dataclass
class Loglik:
    logprob: float  # sum of the continuation tokens' log-probabilities (nats)
    is_greedy: bool  # every continuation token is the argmax at its position


@torch.no_grad()
def loglikelihoods(model, pairs: list[tuple[list[int], list[int]]], max_length: int, batch_tokens: int,
                   device: torch.device, dtype: torch.dtype = torch.float32) -> list[Loglik]:
    """Score (context_enc, continuation_enc) pairs; `model(idx)` returns (logits [B, T, V], _).

    Inputs are sorted by length and batched up to `batch_tokens` (padded) tokens,
    padded on the right: the model is causal, so padding never reaches the
    positions read. Log-softmax runs in fp32 on the continuation positions only.
    """
    for context_enc, continuation_enc in pairs:
        if not context_enc or not continuation_enc or len(continuation_enc) > max_length:
            raise ValueError(f"cannot score a continuation of {len(continuation_enc)} tokens after "
                             f"{len(context_enc)} context tokens with a context of {max_length}")
    inputs = [model_input(c, k, max_length) for c, k in pairs]
    order = sorted(range(len(pairs)), key=lambda i: -len(inputs[i]))
    results: list[Loglik | None] = [None] * len(pairs)
    model.eval()
    start = 0
    while start < len(order):
        width = len(inputs[order[start]])  # the longest in the batch: the sort puts it first
        batch = order[start:start + max(1, batch_tokens // width)]
        start += len(batch)
        idx = torch.zeros(len(batch), width, dtype=torch.long)
        for row, i in enumerate(batch):
            idx[row, :len(inputs[i])] = torch.tensor(inputs[i])
        with autocast(device, dtype):
            logits, _ = model(idx.to(device))  # [B, width, V]
        for row, i in enumerate(batch):
            cont = torch.tensor(pairs[i][1], device=device)
            end = len(inputs[i])
            logprobs = F.log_softmax(logits[row, end - len(cont):end].float(), dim=-1)  # [len(cont), V]
            results[i] = Loglik(logprobs.gather(1, cont[:, None]).sum().item(),
                                bool((logprobs.argmax(dim=-1) == cont).all()))
    return results  # type: ignore[return-value]


# --------------------------------------------------------------------------- metrics

def requests(task: Task) -> list[tuple[str, str]]:
    """The (context, continuation) pairs the task asks for, in item order (choices in order)."""
    if task.kind == "multiple_choice":
        return [(item.context, choice) for item in task.items for choice in item.choices]
    return [(item.context, item.target) for item in task.items]


def multiple_choice_metrics(items: list[MultipleChoice], scores: list[Loglik]) -> dict[str, float]:
    acc = acc_norm = 0.0
    at = 0
    for item in items:
        lls = np.array([s.logprob for s in scores[at:at + len(item.choices)]])
        at += len(item.choices)
        lengths = np.array([float(len(choice)) for choice in item.choices])  # characters, as lm-eval
        acc += float(np.argmax(lls) == item.answer)
        acc_norm += float(np.argmax(lls / lengths) == item.answer)
    n = len(items)
    return {"acc": acc / n, "acc_norm": acc_norm / n, "chance": float(np.mean([1 / len(i.choices) for i in items]))}


def cloze_metrics(items: list[Cloze], scores: list[Loglik]) -> dict[str, float]:
    """acc (greedy exact match), bpb of the targets, and chance: the accuracy of always answering
    the file's most common target, the baseline a model that ignores the context can reach."""
    n = len(items)
    nbytes = sum(len(item.target.encode("utf-8")) for item in items)
    most_common = collections.Counter(item.target for item in items).most_common(1)[0][1]
    return {"acc": sum(s.is_greedy for s in scores) / n,
            "bpb": -sum(s.logprob for s in scores) / math.log(2) / nbytes,
            "chance": most_common / n}


def score_task(model, encode: Callable[[str], list[int]], task: Task, prefix_id: int, max_length: int,
               batch_tokens: int, device: torch.device, dtype: torch.dtype = torch.float32) -> dict[str, float]:
    """The task's metrics: acc, acc_norm (multiple choice) or acc, bpb (cloze); chance; n (items)."""
    pairs = [encode_pair(encode, context, continuation, prefix_id) for context, continuation in requests(task)]
    for (context, continuation), (_, continuation_enc) in zip(requests(task), pairs):
        if not 0 < len(continuation_enc) <= max_length:
            raise UserError(f"task {task.name}: the continuation {continuation[:60]!r} after the context "
                            f"{context[-60:]!r} is {len(continuation_enc)} tokens, and must be 1 to "
                            f"{max_length} (the model's context): fix or remove that record")
    truncated = sum(len(c) + len(k) > max_length + 1 for c, k in pairs)
    if truncated:  # lm-eval truncates the same way, and warns too
        warnings.warn(f"task {task.name}: {truncated} of {len(pairs)} inputs are longer than the model's context "
                      f"of {max_length} tokens and lose the start of their context", stacklevel=2)
    scores = loglikelihoods(model, pairs, max_length, batch_tokens, device, dtype)
    metrics = (multiple_choice_metrics(task.items, scores) if task.kind == "multiple_choice"
               else cloze_metrics(task.items, scores))
    return {**metrics, "n": len(task.items)}
