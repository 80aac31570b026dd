"""tokenizer: train the tokenizer named by tokenizer.kind on a sample of the clean corpus.

Outputs artifacts/tokenizer/ (the library's own files + meta.json) and
metrics/tokenizer.json (vocab size, bytes per token on the sample).
"""
from __future__ import annotations

import itertools
import sys
from collections.abc import Iterator
from pathlib import Path

from tqdm import tqdm

from stages.lib.atomic import atomic_dir, write_json
from stages.lib.data.documents import iter_batches, iter_tables, text_bytes
from stages.lib.data.sampling import CHUNK_CHARS, sample_chunks
from stages.lib.errors import UserError, run_stage
from stages.lib.params import TokenizerParams, load_params
from stages.lib.tokens.tokenizer_adapter import train_tokenizer

PARAM_SECTIONS = ["tokenizer"]
IN_DIR = Path("data/interim/clean")
OUT_DIR = Path("artifacts/tokenizer")
METRICS = Path("metrics/tokenizer.json")
MEASURE_CHARS = 2_000_000  # text encoded to measure bytes per token


def corpus_bytes(in_dir: Path) -> int:
    return sum(text_bytes(table) for table in iter_tables(in_dir))


def documents(in_dir: Path):
    for batch in iter_batches(in_dir):
        cols = batch.to_pydict()
        yield from zip(cols["id"], cols["text"])


def first_chars(texts: Iterator[str], limit: int) -> list[str]:
    """Texts from the start of `texts` until they hold at least `limit` characters."""
    taken, size = [], 0
    for text in texts:
        if size >= limit:
            break
        taken.append(text)
        size += len(text)
    return taken


def non_empty(sample: Iterator[str], params: TokenizerParams, total: int) -> Iterator[str]:
    """The sample, refused when it holds no text: a trainer given nothing would learn bytes alone (BPE) or fail
    (SentencePiece). Whole chunks are kept or dropped, so a train_bytes far below the chunk size can keep none."""
    first = next(sample, None)
    if first is None:
        raise UserError(f"tokenizer.train_bytes={params.train_bytes} sampled no text from the "
                        f"{total / 1e6:.1f} MB corpus in {IN_DIR}: raise it (chunks are kept whole, "
                        f"about {CHUNK_CHARS:,} characters each)" if total else
                        f"the clean corpus in {IN_DIR} is empty: check the clean stage's report")
    return itertools.chain([first], sample)


def main() -> None:
    params: TokenizerParams = load_params(PARAM_SECTIONS)["tokenizer"]
    total = corpus_bytes(IN_DIR)
    keep = min(1.0, params.train_bytes / max(total, 1))
    print(f"tokenizer: training {params.kind} (vocab {params.vocab_size}) on {keep:.0%} of {total / 1e6:.1f} MB")

    sample = tqdm(non_empty(sample_chunks(documents(IN_DIR), keep, params.seed), params, total),
                  desc="tokenizer", unit="chunk")
    with atomic_dir(OUT_DIR) as tmp_dir:
        tok = train_tokenizer(sample, tmp_dir, params.kind, params.vocab_size, params.min_frequency,
                              params.special_tokens, params.byte_fallback, params.seed)

        # Bytes per token on a sample of the corpus: how much text one model step sees. (A small sample may
        # share no chunk with the other seed's: then the corpus's first chunks.)
        measured = (first_chars(sample_chunks(documents(IN_DIR), keep, params.seed + 1), MEASURE_CHARS)
                    or first_chars(sample_chunks(documents(IN_DIR), 1.0, params.seed), MEASURE_CHARS))
        n_tokens = sum(len(ids) for ids in tok.encode_batch(measured))
        n_bytes = sum(len(t.encode("utf-8")) for t in measured)

    if tok.vocab_size < params.vocab_size:  # BPE stops merging when no pair of tokens repeats
        print(f"warning: the tokenizer learned {tok.vocab_size} tokens, fewer than tokenizer.vocab_size="
              f"{params.vocab_size}: its sample holds too little text (raise tokenizer.train_bytes or add text)",
              file=sys.stderr)
    write_json(METRICS, {"vocab_size": tok.vocab_size, "bytes_per_token": round(n_bytes / max(n_tokens, 1), 4)})
    print(f"tokenizer: vocab {tok.vocab_size}, {n_bytes / max(n_tokens, 1):.2f} bytes per token")


if __name__ == "__main__":
    run_stage(main)
