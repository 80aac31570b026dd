"""The one decoding loop: everything that samples from a GPT (generate, eval's samples) goes through here.

    out = generate(model, prompt, max_new_tokens=200, sampling=Sampling(temperature=0.8, top_k=40),
                   stop_token=tok.eot_id, stop_strings=["\\n\\n"], decode=tok.decode, generator=gen)
    out.ids[row], out.texts[row]

`stream` is the same loop as an iterator: after each step it yields every row's new token id.

The prompt is fed once (prefill) into a KV cache, then one token per step. A prompt is B rows of the same
length (usually one prompt repeated for B samples): rows sample independently, and a row that meets its
stop token or a stop string finishes while the others go on.

`Batch` runs the same steps for rows that join and leave at any step (the server: each request is a row):

    batch = Batch(model, max_rows=16, decode=tok.decode)
    batch.add(Row(prompt_ids, max_new_tokens=100, sampling=Sampling(temperature=0), stop_tokens={tok.eot_id}))
    for row, token in batch.step(): ...            # one token for every row; finished rows leave the batch

Each row is prefilled alone (rows of any lengths), then a step feeds every row's last token at the row's own
position (a RowsCache), so one step serves all rows for little more than the cost of one. Each row has its own
sampling options and generator, and the same context windows as stream: at temperature 0 a row's tokens are
stream's for its prompt, whatever else shares the batch (up to float rounding). Sampled, a row draws its token
with one number from its own generator (draw), so a seeded row gives the same tokens whatever shares the batch.

Past block_size: the model never sees more than block_size tokens. When the context is full it is cut
to its last KEEP_FRACTION * block_size tokens, which are prefilled again, and it grows from there; so a
re-prefill happens about once every block_size / 4 tokens, and each window starts as training windows do.
(A sliding window of cached keys would not do: from the second layer on, the cached keys of a token
carry what it saw of tokens that have left the window, which no training window ever showed the model.)
The uncached loop (use_cache=False: the whole context recomputed every step, the reference) cuts the
context at the same points, so at temperature 0 both give the same tokens, up to float rounding.
"""
from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable, Collection, Iterator, Sequence
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from stages.lib.errors import UserError
from stages.lib.model.gpt import GPT

KEEP_FRACTION = 0.75  # of block_size, kept when the context is full and cut


@dataclass(frozen=True)
class Sampling:
    """How the next token is chosen from the logits, applied in this order (as in transformers)."""
    temperature: float = 1.0  # 0: greedy (the argmax, after the repetition penalty)
    top_k: int = 0  # keep the k most likely tokens; 0: all
    top_p: float = 1.0  # keep the smallest set of most likely tokens whose probability reaches p; 1: all
    repetition_penalty: float = 1.0  # > 1 makes tokens already in the context less likely (CTRL); 1: off

    def validate(self, name: Callable[[str], str] = str) -> None:
        """UserError for a bad value; name(field) is how the user spelled it (--top-p, eval.top_p)."""
        checks = [
            ("temperature", math.isfinite(self.temperature) and self.temperature >= 0, "must be >= 0 (0: greedy)"),
            ("top_k", self.top_k >= 0, "must be >= 0 (0: no limit)"),
            ("top_p", 0 < self.top_p <= 1, "must be in (0, 1] (1: no limit)"),
            ("repetition_penalty", math.isfinite(self.repetition_penalty) and self.repetition_penalty > 0,
             "must be > 0 (1: off)"),
        ]
        for field, ok, rule in checks:
            if not ok:
                raise UserError(f"{name(field)}={getattr(self, field)} {rule}")


PLAIN = Sampling()  # temperature 1, no filter: the model's own distribution (frozen, so a safe default)


@dataclass
class Generation:
    """What generate returns, per row: the new token ids (a stop token included, as streamed), the new text
    cut before the first stop string (None without a decode function), and why the row stopped."""
    ids: list[list[int]]
    texts: list[str] | None
    finish: list[str]  # "length", "stop_token" or "stop_string"


# --------------------------------------------------------------------------- choosing a token

def apply_repetition_penalty(logits: torch.Tensor, context: torch.Tensor, penalty: float) -> torch.Tensor:
    """CTRL's penalty (Keskar et al. 2019) as transformers applies it: the logit of every token present in
    the context [B, T] is divided by penalty when positive, multiplied when negative. logits [B, V]."""
    seen = logits.gather(1, context)  # [B, T]
    seen = torch.where(seen > 0, seen / penalty, seen * penalty)
    return logits.scatter(1, context, seen)


def top_k_filter(logits: torch.Tensor, k: int) -> torch.Tensor:
    """-inf for all but the k largest logits of each row [B, V] (ties with the k-th kept)."""
    kth = torch.topk(logits, min(k, logits.size(-1))).values[:, [-1]]  # [B, 1]
    return logits.masked_fill(logits < kth, float("-inf"))


def top_p_filter(logits: torch.Tensor, p: float) -> torch.Tensor:
    """-inf outside the nucleus (Holtzman et al. 2019): the smallest set of most likely tokens whose
    probabilities sum to at least p. logits [B, V]."""
    sorted_logits, order = logits.sort(dim=-1, descending=True)  # [B, V]
    probs = sorted_logits.softmax(dim=-1)
    before = probs.cumsum(dim=-1) - probs  # probability of the more likely tokens: the most likely is always kept
    drop_sorted = before >= p
    drop = drop_sorted.scatter(1, order, drop_sorted)  # back to vocabulary order
    return logits.masked_fill(drop, float("-inf"))


def filtered_logits(logits: torch.Tensor, context: torch.Tensor | None, sampling: Sampling) -> torch.Tensor:
    """The logits [B, V] a token is chosen from: the repetition penalty (context [B, T]), then, unless greedy,
    the temperature, top-k and top-p (-inf for the tokens they leave out)."""
    logits = logits.float()
    if sampling.repetition_penalty != 1.0:
        logits = apply_repetition_penalty(logits, context, sampling.repetition_penalty)
    if sampling.temperature == 0:
        return logits
    logits = logits / sampling.temperature
    if sampling.top_k > 0:
        logits = top_k_filter(logits, sampling.top_k)
    if sampling.top_p < 1.0:
        logits = top_p_filter(logits, sampling.top_p)
    return logits


def next_token(logits: torch.Tensor, context: torch.Tensor, sampling: Sampling,
               generator: torch.Generator | None = None) -> torch.Tensor:
    """The next token of each row [B] from the last position's logits [B, V] and the context [B, T]."""
    logits = filtered_logits(logits, context, sampling)
    if sampling.temperature == 0:
        return logits.argmax(dim=-1)
    return torch.multinomial(F.softmax(logits, dim=-1), 1, generator=generator).squeeze(-1)


def draw(probs: torch.Tensor, generators: Sequence[torch.Generator | None]) -> torch.Tensor:
    """One token per row [B] from probabilities [B, V], each with one uniform number from the row's own
    generator (the inverse of the row's cumulative distribution). Batch samples this way: torch.multinomial
    draws V random numbers per row, and for 16 rows of an 8k vocabulary that cost more than the forward pass."""
    uniform = torch.cat([torch.rand(1, generator=g, device=probs.device) for g in generators])  # [B]
    cdf = probs.cumsum(dim=-1)  # [B, V]
    picked = torch.searchsorted(cdf, (uniform * cdf[:, -1]).unsqueeze(-1), right=True).squeeze(-1)
    return picked.clamp(max=probs.size(-1) - 1)  # rounding at the very top of the last row's cdf


# --------------------------------------------------------------------------- the loop

def cut_at_stop(text: str, stop_strings: Sequence[str]) -> tuple[str, bool]:
    """text before the earliest stop string, and whether there was one."""
    cut = min((i for i in (text.find(s) for s in stop_strings) if i >= 0), default=-1)
    return (text, False) if cut < 0 else (text[:cut], True)


def window_start(length: int, start: int, block_size: int) -> int:
    """Where the context of a sequence of `length` tokens starts, given that it started at `start`: moved to
    keep the last KEEP_FRACTION * block_size tokens once there are more than block_size."""
    if length - start <= block_size:
        return start
    return length - max(1, int(block_size * KEEP_FRACTION))


@torch.no_grad()
def stream(model: GPT, prompt: torch.Tensor, max_new_tokens: int, sampling: Sampling = PLAIN, *,
           stop_token: int | None = None, stop_strings: Sequence[str] = (),
           decode: Callable[[list[int]], str] | None = None, generator: torch.Generator | None = None,
           use_cache: bool = True) -> Iterator[list[int | None]]:
    """Yield, after each step, every row's new token id (None for a row that has finished).

    prompt: [B, T] token ids on the model's device, T >= 1. A row finishes on stop_token (which is yielded)
    or once decode(its new ids) contains one of stop_strings (searched in the new text only).
    use_cache=False recomputes the whole context every step: the slow reference the cache must match.
    """
    if stop_strings and decode is None:
        raise ValueError("stop strings need a decode function")
    if prompt.dim() != 2 or prompt.size(1) == 0:
        raise ValueError(f"prompt must be [B, T] with T >= 1, got shape {tuple(prompt.shape)}")
    block_size = model.cfg.block_size
    tokens = prompt  # [B, T + new so far]: the context for the repetition penalty, and for re-prefills
    start = window_start(tokens.size(1), 0, block_size)
    cache = model.new_cache() if use_cache else None
    fed = start  # tokens[:, start:fed] are in the cache
    new_ids: list[list[int]] = [[] for _ in range(prompt.size(0))]
    done = [False] * prompt.size(0)
    for _ in range(max_new_tokens):
        if cache is None:
            logits, _ = model(tokens[:, start:])  # [B, T, V]
        else:
            if cache.length != fed - start:  # the window moved: prefill it afresh
                cache.reset()
                fed = start
            logits, _ = model(tokens[:, fed:], cache=cache)  # [B, 1, V]
            fed = tokens.size(1)
        next_ids = next_token(logits[:, -1], tokens, sampling, generator)  # [B]
        tokens = torch.cat((tokens, next_ids.unsqueeze(1)), dim=1)
        start = window_start(tokens.size(1), start, block_size)
        step: list[int | None] = []
        for row, token in enumerate(next_ids.tolist()):
            if done[row]:
                step.append(None)
                continue
            step.append(token)
            new_ids[row].append(token)
            if token == stop_token:
                done[row] = True
            elif stop_strings:
                done[row] = cut_at_stop(decode(new_ids[row]), stop_strings)[1]
        yield step
        if all(done):
            return


def generate(model: GPT, prompt: torch.Tensor, max_new_tokens: int, sampling: Sampling = PLAIN, *,
             stop_token: int | None = None, stop_strings: Sequence[str] = (),
             decode: Callable[[list[int]], str] | None = None, generator: torch.Generator | None = None,
             use_cache: bool = True, on_step: Callable[[list[int | None]], None] | None = None) -> Generation:
    """Run stream() to the end (calling on_step with each step's ids) and collect each row's result."""
    ids: list[list[int]] = [[] for _ in range(prompt.size(0))]
    for step in stream(model, prompt, max_new_tokens, sampling, stop_token=stop_token, stop_strings=stop_strings,
                       decode=decode, generator=generator, use_cache=use_cache):
        for row, token in enumerate(step):
            if token is not None:
                ids[row].append(token)
        if on_step is not None:
            on_step(step)
    finish = ["stop_token" if row and row[-1] == stop_token else "length" for row in ids]
    texts = None
    if decode is not None:
        texts = []
        for row, row_ids in enumerate(ids):
            text, stopped = cut_at_stop(decode(row_ids[:-1] if finish[row] == "stop_token" else row_ids),
                                        stop_strings)
            texts.append(text)
            finish[row] = "stop_string" if stopped else finish[row]
    return Generation(ids, texts, finish)


# --------------------------------------------------------------------------- rows that join and leave

@dataclass(eq=False)
class Row:
    """One sequence of a Batch: its prompt, how it samples and stops, and (filled in as it decodes) its new ids
    and why it finished: "stop_token", "stop_string" or "length" (as Generation.finish), or "cancelled"."""
    prompt: list[int]
    max_new_tokens: int
    sampling: Sampling = PLAIN
    generator: torch.Generator | None = None
    stop_tokens: Collection[int] = ()
    stop_strings: Sequence[str] = ()
    new_ids: list[int] = dataclasses.field(default_factory=list)
    finish: str | None = None
    ids: list[int] = dataclasses.field(default_factory=list, repr=False)  # prompt + new ids: the context
    start: int = 0  # where the context window starts in ids


class Batch:
    """Rows of different lengths decoded together, one token per row per step; rows join (add) and leave
    (when they finish, or remove) between steps. See the module docstring."""

    def __init__(self, model: GPT, max_rows: int, decode: Callable[[list[int]], str] | None = None):
        self.model, self.max_rows, self.decode = model, max_rows, decode
        self.device = next(model.parameters()).device
        self.cache = model.new_rows_cache(max_rows)
        self.prefill_cache = model.new_cache()  # one row's prefill, copied into its place in self.cache
        self.rows: list[Row] = []  # rows[i] is row i of the cache

    def add(self, row: Row) -> None:
        """Prefill the row's prompt alone and give it a place: its first token comes with the next step."""
        if len(self.rows) == self.max_rows:
            raise ValueError(f"the batch holds {self.max_rows} rows")
        if not row.prompt or row.max_new_tokens < 1:
            raise ValueError("a row needs a prompt of at least one token and max_new_tokens >= 1")
        if row.stop_strings and self.decode is None:
            raise ValueError("stop strings need a decode function")
        row.ids = list(row.prompt)
        row.start = window_start(len(row.ids), 0, self.model.cfg.block_size)
        self.rows.append(row)
        self.cache.n = len(self.rows)
        self._fill(len(self.rows) - 1)

    def remove(self, row: Row) -> None:
        """Take a row out of the batch (the last row moves into its place)."""
        i, last = self.rows.index(row), len(self.rows) - 1
        if i != last:
            self.cache.move(last, i)
            self.rows[i] = self.rows[last]
        self.rows.pop()
        self.cache.n = len(self.rows)

    @torch.no_grad()
    def step(self) -> list[tuple[Row, int]]:
        """Feed every row's last token; return each row's new token. Rows that finish leave the batch."""
        if not self.rows:
            return []
        last = torch.tensor([[row.ids[-1]] for row in self.rows], device=self.device)  # [n, 1]
        logits, _ = self.model(last, cache=self.cache)  # [n, 1, V]
        out = []
        for row, token in zip(self.rows, self._choose(logits[:, -1])):
            self._record(row, token)
            out.append((row, token))
        for row, _ in out:
            if row.finish is not None:
                self.remove(row)
        for i, row in enumerate(self.rows):
            start = window_start(len(row.ids), row.start, self.model.cfg.block_size)
            if start != row.start:  # the window moved: prefill it afresh, as stream does
                row.start = start
                self._fill(i)
        return out

    def _choose(self, logits: torch.Tensor) -> list[int]:
        """Each row's next token from logits [n, V]: rows with the same sampling options together, each drawing
        from its own generator; a row with a repetition penalty alone (its context is its own)."""
        groups: dict[tuple[Sampling, int], list[int]] = {}
        for i, row in enumerate(self.rows):
            groups.setdefault((row.sampling, i if row.sampling.repetition_penalty != 1 else -1), []).append(i)
        tokens = [0] * len(self.rows)
        for (sampling, alone), rows in groups.items():
            context = torch.tensor([self.rows[alone].ids], device=self.device) if alone >= 0 else None
            chosen = filtered_logits(logits[rows], context, sampling)  # [k, V]
            if sampling.temperature == 0:
                picked = chosen.argmax(dim=-1)
            else:
                picked = draw(F.softmax(chosen, dim=-1), [self.rows[i].generator for i in rows])
            for i, token in zip(rows, picked.tolist()):
                tokens[i] = token
        return tokens

    def _record(self, row: Row, token: int) -> None:
        row.ids.append(token)
        row.new_ids.append(token)
        if token in row.stop_tokens:
            row.finish = "stop_token"
        elif row.stop_strings and cut_at_stop(self.decode(row.new_ids), row.stop_strings)[1]:
            row.finish = "stop_string"
        elif len(row.new_ids) >= row.max_new_tokens:
            row.finish = "length"

    def _fill(self, i: int) -> None:
        """Row i's cache holds its window but the last token (which the next step feeds)."""
        row = self.rows[i]
        self.prefill_cache.reset()
        window = row.ids[row.start:-1]
        if window:
            with torch.no_grad():
                self.model(torch.tensor([window], device=self.device), cache=self.prefill_cache)
        self.cache.fill(i, self.prefill_cache)
