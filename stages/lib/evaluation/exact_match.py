"""Exact match for instruction data: the greedy answer, stripped, equals the reference's last assistant turn.

Exact match scores only kinds whose answer is one short string. OPEN_KINDS, whose answers are open-ended by
construction, are left out of it (the validation loss still covers them): of the instruction builder's kinds
(stages/lib/data/instruction_builder.py) that is `continue`, whose answer is a whole next line of the text.
Records of kinds the builder does not make (a user's own files) are scored.

Chance, per kind, is what a model that learned only which answer is most common would score: the exact match
of always giving the kind's most frequent answer in the training conversations (a majority baseline; ties go
to the first answer in sorted order), on the same scored items. On next_line's letters that is about 1/4; on
free answers it is the share of items whose answer happens to be that one ("And" for first_word, say). A kind
absent from the training conversations has no such answer: its chance is 0.
"""
from __future__ import annotations

from collections import Counter
from dataclasses import dataclass

import torch
from tqdm import tqdm

from stages.lib.model.decoding import Sampling, generate
from stages.lib.model.gpt import GPT
from stages.lib.tokens.chat import ChatFormat

OPEN_KINDS = ("continue",)  # tests/test_sft.py keeps this in step with the builder's EXACT_MATCH_KINDS


def last_answer(messages: list[dict]) -> str:
    """The reference answer: the last assistant turn, stripped."""
    return [m for m in messages if m["role"] == "assistant"][-1]["content"].strip()


def scored_indices(kinds: list[str], limit: int) -> list[int]:
    """The positions of the first `limit` conversations (0: all) of a kind exact match can score."""
    scorable = [i for i, kind in enumerate(kinds) if kind not in OPEN_KINDS]
    return scorable[:limit] if limit else scorable


def majority_answers(conversations: list[list[dict]], kinds: list[str]) -> dict[str, str]:
    """Each kind's most frequent answer in the conversations (ties: the first in sorted order)."""
    counts: dict[str, Counter] = {}
    for messages, kind in zip(conversations, kinds):
        counts.setdefault(kind, Counter())[last_answer(messages)] += 1
    return {kind: min(c, key=lambda answer: (-c[answer], answer)) for kind, c in counts.items()}


def majority_right(conversations: list[list[dict]], kinds: list[str], majority: dict[str, str]) -> list[bool]:
    """Whether each conversation's answer is its kind's majority answer: the chance baseline's exact match."""
    return [last_answer(messages) == majority.get(kind) for messages, kind in zip(conversations, kinds)]


@dataclass
class Items:
    """The held-out conversations exact match scores, their kinds, and whether the chance baseline gets each."""
    conversations: list[list[dict]]
    kinds: list[str]
    chance: list[bool]
    open_ended: int  # held-out conversations left out as open-ended


def choose_items(val: list[list[dict]], val_kinds: list[str], train: list[list[dict]], train_kinds: list[str],
                 limit: int) -> Items:
    """The first `limit` scorable held-out conversations (0: all), with the training set's majority answers."""
    chosen = scored_indices(val_kinds, limit)
    conversations, kinds = [val[i] for i in chosen], [val_kinds[i] for i in chosen]
    chance = majority_right(conversations, kinds, majority_answers(train, train_kinds))
    return Items(conversations, kinds, chance, sum(kind in OPEN_KINDS for kind in val_kinds))


# --------------------------------------------------------------------------- counting and scoring

@dataclass
class Tally:
    """Exact-match counts over some items: how many, how many the model got right, and the chance baseline."""
    items: int = 0
    right: int = 0
    chance: int = 0  # items the kind's majority answer gets right

    def add(self, right: bool, chance: bool) -> None:
        self.items += 1
        self.right += right
        self.chance += chance

    @property
    def accuracy(self) -> float:
        return self.right / self.items

    @property
    def chance_accuracy(self) -> float:
        return self.chance / self.items


def tally(kinds: list[str], right: list[bool], chance: list[bool]) -> dict[str, Tally]:
    """The counts per kind, kinds in sorted order."""
    by_kind: dict[str, Tally] = {}
    for kind, ok, lucky in zip(kinds, right, chance):
        by_kind.setdefault(kind, Tally()).add(ok, lucky)
    return dict(sorted(by_kind.items()))


def total(by_kind: dict[str, Tally]) -> Tally:
    return Tally(sum(t.items for t in by_kind.values()), sum(t.right for t in by_kind.values()),
                 sum(t.chance for t in by_kind.values()))


def answers_right(model: GPT, chat: ChatFormat, decode, conversations: list[list[dict]], max_new_tokens: int,
                  device: torch.device, label: str) -> list[bool]:
    """Whether the model reproduces each conversation's last assistant turn exactly (greedy, stripped)."""
    model.eval()  # the trainer's validation loss leaves it in training mode
    right = []
    for messages in tqdm(conversations, desc=f"sft: answers ({label})", unit="conv", leave=False):
        last = max(i for i, m in enumerate(messages) if m["role"] == "assistant")
        prompt = torch.tensor([chat.encode_prompt(messages[:last])], device=device)
        out = generate(model, prompt, max_new_tokens, Sampling(temperature=0.0), stop_token=chat.end_id)
        ids = [t for t in out.ids[0] if t not in (chat.end_id, chat.eot_id)]
        right.append(decode(ids).strip() == last_answer(messages))
    return right


def score_answers(model: GPT, chat: ChatFormat, decode, items: Items, max_new_tokens: int, device: torch.device,
                  label: str) -> dict[str, Tally]:
    """The model's exact-match counts per kind on the items."""
    right = answers_right(model, chat, decode, items.conversations, max_new_tokens, device, label)
    return tally(items.kinds, right, items.chance)


# --------------------------------------------------------------------------- metrics

def exact_match_metrics(before: dict[str, Tally], after: dict[str, Tally]) -> dict:
    """metrics/sft.json's: the pretrained and fine-tuned models' exact match over all scored items, and per kind
    the fine-tuned model's exact_match_<kind>; nothing when nothing is scored."""
    whole = total(after)
    if not whole.items:
        return {}
    return {
        "pretrained_exact_match": round(total(before).accuracy, 4),
        "sft_exact_match": round(whole.accuracy, 4),
        **{f"exact_match_{kind}": round(t.accuracy, 4) for kind, t in after.items()},
    }


def exact_match_report(after: dict[str, Tally]) -> dict:
    """reports/sft.json's: the chance baseline over all items and per kind, and the items per kind. They are
    the data's figures, not the model's, so runs are not compared on them."""
    whole = total(after)
    if not whole.items:
        return {}
    return {
        "chance_exact_match": round(whole.chance_accuracy, 4),
        **{f"chance_{kind}": round(t.chance_accuracy, 4) for kind, t in after.items()},
        **{f"items_{kind}": t.items for kind, t in after.items()},
    }


def summary(before: dict[str, Tally], after: dict[str, Tally], open_ended: int) -> list[str]:
    """The lines the sft stage prints: the whole, then each kind."""
    whole = total(after)
    left_out = f" ({open_ended} open-ended conversations left out: {', '.join(OPEN_KINDS)})" if open_ended else ""
    if not whole.items:
        return [f"exact match: no held-out conversation of a kind it can score{left_out}"]
    lines = [f"exact-match accuracy {total(before).accuracy:.1%} -> {whole.accuracy:.1%} (chance "
             f"{whole.chance_accuracy:.1%}) on {whole.items} answers{left_out}"]
    width = max(map(len, after))
    lines += [f"  {kind:<{width}} {t.accuracy:6.1%} (chance {t.chance_accuracy:.1%}) of {t.items}"
              for kind, t in after.items()]
    return lines
