"""One interface over HF `tokenizers` byte-level BPE and SentencePiece (BPE or unigram).

Each kind is saved in its library's own format (`tokenizer.json` loads in
`PreTrainedTokenizerFast`; `spm.model` in `sentencepiece`), plus `meta.json`
naming the kind and the special tokens. The rest of the pipeline sees only
`Tokenizer`: batch encoding, decoding, the end-of-text id, the number of
UTF-8 bytes each token stands for (for bits per byte) and a fingerprint of
the saved files (so a checkpoint can refuse a tokenizer it was not trained with).
"""
from __future__ import annotations

import hashlib
import io
import json
import os
from pathlib import Path
from typing import Iterable, Iterator

import numpy as np

from stages.lib.errors import UserError

META_FILE = "meta.json"
HF_FILE = "tokenizer.json"
SP_PREFIX = "spm"
SP_MAX_SENTENCE_BYTES = 1 << 16
SP_TRAIN_THREADS = 4
# SentencePiece writes every space as U+2581 before it segments, so a literal U+2581 in the text would come
# back as a space. It is swapped for a stand-in on the way in (training and encoding) and back on the way out.
# The stand-in, the noncharacter U+FFFF ("not for interchange", and stripped by the clean stage), is 3 bytes
# in UTF-8 like U+2581, so token_bytes counts it exactly whether it becomes a piece or byte-fallback tokens.
SP_META_SPACE = "\u2581"
SP_STAND_IN = "\uffff"


def _escape_meta_space(text: str) -> str:
    return text.replace(SP_META_SPACE, SP_STAND_IN) if SP_META_SPACE in text else text


class Tokenizer:
    """What the pipeline needs from a trained tokenizer, whatever the library."""

    kind: str
    vocab_size: int
    eot_id: int
    fingerprint: str
    unk_id: int | None = None  # the token for text the vocabulary cannot spell (SentencePiece without byte fallback)

    def encode_batch(self, texts: list[str]) -> list[list[int]]:
        raise NotImplementedError

    def decode(self, ids: Iterable[int]) -> str:
        raise NotImplementedError

    def token_bytes(self) -> np.ndarray:
        """[vocab_size] int64: UTF-8 bytes each token decodes to; 0 for special tokens."""
        raise NotImplementedError

    def encode(self, text: str) -> list[int]:
        return self.encode_batch([text])[0]

    def special_id(self, token: str) -> int | None:
        """The id of special token `token` (one of special_tokens), None when this tokenizer lacks it."""
        raise NotImplementedError


# --------------------------------------------------------------------------- HF byte-level BPE

def _byte_decoder() -> dict[str, int]:
    """Inverse of the GPT-2 byte-to-printable-character table used by ByteLevel."""
    from tokenizers import pre_tokenizers

    alphabet = pre_tokenizers.ByteLevel.alphabet()
    # GPT-2's table: printable bytes map to themselves, the others to U+0100 upwards, in byte order.
    printable = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1)) + \
        list(range(ord("®"), ord("ÿ") + 1))
    table, n = {}, 0
    for b in range(256):
        if b in printable:
            table[chr(b)] = b
        else:
            table[chr(256 + n)] = b
            n += 1
    assert set(table) == set(alphabet), "unexpected ByteLevel alphabet"
    return table


class HFByteLevelBPE(Tokenizer):
    kind = "bpe"

    def __init__(self, directory: Path, special_tokens: list[str]):
        from tokenizers import Tokenizer as HFTokenizer

        self.tok = HFTokenizer.from_file(str(directory / HF_FILE))
        self.special_tokens = special_tokens
        self.vocab_size = self.tok.get_vocab_size()
        self.eot_id = self.tok.token_to_id(special_tokens[0])
        # HF matches added tokens inside ordinary text, so a document quoting "<|endoftext|>" would get a
        # false document boundary. Encode with a copy that has no added tokens: the special tokens stay in
        # the vocabulary (we append their ids ourselves) but text never produces them.
        config = json.loads(self.tok.to_str())
        config["added_tokens"] = []
        self.text_encoder = HFTokenizer.from_str(json.dumps(config))

    def encode_batch(self, texts: list[str]) -> list[list[int]]:
        return [enc.ids for enc in self.text_encoder.encode_batch_fast(texts, add_special_tokens=False)]

    def decode(self, ids: Iterable[int]) -> str:
        return self.tok.decode(list(ids), skip_special_tokens=True)

    def special_id(self, token: str) -> int | None:
        return self.tok.token_to_id(token) if token in self.special_tokens else None

    def token_bytes(self) -> np.ndarray:
        byte_of = _byte_decoder()
        special = set(self.special_tokens)
        out = np.zeros(self.vocab_size, dtype=np.int64)
        for token, idx in self.tok.get_vocab().items():
            out[idx] = 0 if token in special else len(token)  # one character per byte in ByteLevel
            assert token in special or all(c in byte_of for c in token)
        return out

    @staticmethod
    def train(texts: Iterator[str], directory: Path, vocab_size: int, min_frequency: int,
              special_tokens: list[str]) -> None:
        from tokenizers import Tokenizer as HFTokenizer
        from tokenizers import decoders, models, pre_tokenizers, trainers

        tok = HFTokenizer(models.BPE())
        tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
        tok.decoder = decoders.ByteLevel()
        trainer = trainers.BpeTrainer(
            vocab_size=vocab_size, min_frequency=min_frequency, special_tokens=special_tokens,
            initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), show_progress=False)
        tok.train_from_iterator(texts, trainer)
        tok.save(str(directory / HF_FILE))


# --------------------------------------------------------------------------- SentencePiece

class SentencePieceTokenizer(Tokenizer):
    def __init__(self, directory: Path, kind: str, special_tokens: list[str]):
        import sentencepiece as spm

        self.kind = kind
        self.sp = spm.SentencePieceProcessor(model_file=str(directory / f"{SP_PREFIX}.model"))
        self.special_tokens = special_tokens
        self.vocab_size = self.sp.get_piece_size()
        self.eot_id = self.sp.piece_to_id(special_tokens[0])
        self.unk_id = self.sp.unk_id()
        self.threads = os.cpu_count() or 1

    def encode_batch(self, texts: list[str]) -> list[list[int]]:
        return self.sp.encode([_escape_meta_space(t) for t in texts], out_type=int, num_threads=self.threads)

    def decode(self, ids: Iterable[int]) -> str:
        return self.sp.decode([int(i) for i in ids]).replace(SP_STAND_IN, SP_META_SPACE)

    def special_id(self, token: str) -> int | None:
        i = self.sp.piece_to_id(token)  # the unknown piece's id when there is no such piece
        return i if token in self.special_tokens and self.sp.is_control(i) else None

    def token_bytes(self) -> np.ndarray:
        out = np.zeros(self.vocab_size, dtype=np.int64)
        for i in range(self.vocab_size):
            if self.sp.is_byte(i):
                out[i] = 1
            elif not (self.sp.is_control(i) or self.sp.is_unknown(i)):
                out[i] = len(self.sp.id_to_piece(i).replace(SP_META_SPACE, " ").encode("utf-8"))
        return out

    @staticmethod
    def train(texts: Iterator[str], directory: Path, kind: str, vocab_size: int, special_tokens: list[str],
              byte_fallback: bool, seed: int) -> None:
        import sentencepiece as spm

        spm.set_random_generator_seed(seed)
        # SentencePiece learns from lines; long lines are cut so none is silently skipped.
        lines = (_escape_meta_space(line[:SP_MAX_SENTENCE_BYTES // 4]) for text in texts for line in text.split("\n")
                 if line)
        # Trained into memory: with model_prefix the output path would be stored in the model, and the
        # fingerprint would change with the (temporary) folder it was trained in.
        model = io.BytesIO()
        try:
            spm.SentencePieceTrainer.train(
                sentence_iterator=lines, model_writer=model,
                model_type=kind.removeprefix("sentencepiece_"), vocab_size=vocab_size,
                control_symbols=special_tokens, byte_fallback=byte_fallback, character_coverage=0.9999,
                # Identity normalization and no dummy prefix: decode(encode(text)) == text.
                normalization_rule_name="identity", remove_extra_whitespaces=False, add_dummy_prefix=False,
                allow_whitespace_only_pieces=True, split_digits=True, max_sentence_length=SP_MAX_SENTENCE_BYTES,
                bos_id=-1, eos_id=-1, pad_id=-1, unk_id=0, hard_vocab_limit=False,
                # A fixed thread count: it is saved in the model and changes unigram results, so tying it to
                # the machine's cores would make the tokenizer depend on the machine.
                num_threads=SP_TRAIN_THREADS, minloglevel=2)
        except RuntimeError as err:
            if "vocab" in str(err).lower():
                raise UserError(f"tokenizer.vocab_size={vocab_size} is too small for SentencePiece on this text "
                                f"({str(err).strip().splitlines()[-1]}): raise it") from None
            raise
        (directory / f"{SP_PREFIX}.model").write_bytes(model.getvalue())


# --------------------------------------------------------------------------- train / load

def fingerprint(directory: Path) -> str:
    """sha256 over the saved files (names and bytes), in name order."""
    digest = hashlib.sha256()
    for path in sorted(p for p in directory.iterdir() if p.is_file()):
        digest.update(path.name.encode())
        digest.update(path.read_bytes())
    return digest.hexdigest()[:16]


def train_tokenizer(texts: Iterator[str], directory: str | Path, kind: str, vocab_size: int, min_frequency: int,
                    special_tokens: list[str], byte_fallback: bool, seed: int) -> Tokenizer:
    """Train a tokenizer of `kind` on `texts`, save it in `directory`, and load it back."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    if kind == "bpe":
        HFByteLevelBPE.train(texts, directory, vocab_size, min_frequency, special_tokens)
    elif kind in ("sentencepiece_bpe", "sentencepiece_unigram"):
        SentencePieceTokenizer.train(texts, directory, kind, vocab_size, special_tokens, byte_fallback, seed)
    else:
        raise UserError(f"tokenizer.kind={kind!r} is not one of: bpe, sentencepiece_bpe, sentencepiece_unigram")
    meta = {"kind": kind, "special_tokens": special_tokens}
    (directory / META_FILE).write_text(json.dumps(meta, indent=2) + "\n")
    return load_tokenizer(directory)


def load_tokenizer(directory: str | Path) -> Tokenizer:
    directory = Path(directory)
    meta_path = directory / META_FILE
    if not meta_path.exists():
        raise UserError(f"no tokenizer in {directory} ({META_FILE} missing): run the tokenizer stage first")
    rerun = "rerun the tokenizer stage (dvc repro --force tokenizer)"
    try:
        meta = json.loads(meta_path.read_text(encoding="utf-8"))
    except ValueError as err:  # bad JSON or bad UTF-8
        raise UserError(f"{meta_path} is damaged ({err}): {rerun}") from None
    missing = [key for key in ("kind", "special_tokens") if not isinstance(meta, dict) or key not in meta]
    if missing:
        raise UserError(f"{meta_path} has no {missing[0]}: it is damaged or from another version; {rerun}")
    try:
        if meta["kind"] == "bpe":
            tok: Tokenizer = HFByteLevelBPE(directory, meta["special_tokens"])
        else:
            tok = SentencePieceTokenizer(directory, meta["kind"], meta["special_tokens"])
    except UserError:
        raise
    except Exception as err:  # the libraries raise their own types for a damaged file
        first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise UserError(f"the tokenizer in {directory} cannot be loaded ({first}): {rerun}") from None
    tok.fingerprint = fingerprint(directory)
    return tok
