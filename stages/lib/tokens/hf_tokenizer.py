"""Our tokenizers as a `tokenizers` Tokenizer that transformers' AutoTokenizer loads (tokenizer.json).

Byte-level BPE is already in that format. SentencePiece BPE models are rebuilt from their pieces,
spelled the way our adapter encodes (stages/lib/tokens/tokenizer_adapter.py): identity normalization, no
dummy prefix, spaces as U+2581 and a literal U+2581 swapped for U+FFFF first, byte fallback. Why not
transformers' own SentencePiece converters: they assume Llama-style settings (a dummy prefix, stripped
right spaces, merged runs of spaces) and need protobuf; ours would then encode differently.
tests/test_export.py checks each exported kind gives our ids on real text.

SentencePiece unigram is refused: its Viterbi sums scores in float32, transformers' in float64, and on long
documents (seen on the sample corpus) the two pick different segmentations, so the exported tokenizer would
not give the ids the model was trained on.
"""
from __future__ import annotations

import json
from pathlib import Path

from stages.lib.errors import UserError
from stages.lib.tokens.chat import JINJA_TEMPLATE, has_chat_tokens
from stages.lib.tokens.tokenizer_adapter import (
    HF_FILE,
    SP_META_SPACE,
    SP_PREFIX,
    SP_STAND_IN,
    Tokenizer,
    load_tokenizer,
)

EXPORTABLE_KINDS = ("bpe", "sentencepiece_bpe")


def check_exportable(ours: Tokenizer) -> None:
    if ours.kind not in EXPORTABLE_KINDS:
        raise UserError(f"export: tokenizer.kind={ours.kind} cannot be exported with the same ids (transformers "
                        f"segments unigram models differently on long text): use tokenizer.kind="
                        f"{' or '.join(EXPORTABLE_KINDS)}")


def hf_tokenizer(directory: str | Path):
    """A transformers fast tokenizer equivalent to the one saved in `directory`, end-of-text as eos/bos/pad,
    and the chat format (stages/lib/tokens/chat.py) as chat_template when the tokenizer has the chat tokens."""
    from transformers import PreTrainedTokenizerFast

    directory = Path(directory)
    ours = load_tokenizer(directory)
    check_exportable(ours)
    eot = ours.special_tokens[0]
    backend = _bpe_backend(directory) if ours.kind == "bpe" else _sentencepiece_backend(directory, ours)
    # With the chat tokens, the chat format goes along: apply_chat_template then gives our ids.
    chat_template = JINJA_TEMPLATE if has_chat_tokens(ours) else None
    return PreTrainedTokenizerFast(tokenizer_object=backend, eos_token=eot, bos_token=eot, pad_token=eot,
                                   additional_special_tokens=ours.special_tokens[1:],
                                   clean_up_tokenization_spaces=False, chat_template=chat_template)


def _bpe_backend(directory: Path):
    from tokenizers import Tokenizer as HFTokenizer

    return HFTokenizer.from_file(str(directory / HF_FILE))


def _sentencepiece_backend(directory: Path, ours: Tokenizer):
    import sentencepiece as spm
    from tokenizers import AddedToken, decoders, models, normalizers
    from tokenizers import Tokenizer as HFTokenizer
    from transformers.tokenization_utils_base import generate_merges

    sp = spm.SentencePieceProcessor(model_file=str(directory / f"{SP_PREFIX}.model"))
    vocab = {sp.id_to_piece(i): i for i in range(sp.get_piece_size())}
    byte_fallback = any(sp.is_byte(i) for i in range(sp.get_piece_size()))
    # SentencePiece BPE merges by piece score; its scores fall with the id, so id order is merge order.
    model = models.BPE(vocab, generate_merges(vocab), unk_token=sp.id_to_piece(sp.unk_id()), fuse_unk=True,
                       byte_fallback=byte_fallback)
    backend = HFTokenizer(model)
    backend.normalizer = normalizers.Sequence([normalizers.Replace(SP_META_SPACE, SP_STAND_IN),
                                               normalizers.Replace(" ", SP_META_SPACE)])
    backend.decoder = decoders.Sequence([decoders.Replace(SP_META_SPACE, " "), decoders.ByteFallback(),
                                         decoders.Fuse(), decoders.Replace(SP_STAND_IN, SP_META_SPACE)])
    backend.add_special_tokens([AddedToken(t, normalized=False, special=True) for t in ours.special_tokens])
    return backend


def save_hf_tokenizer(directory: str | Path, out_dir: str | Path, max_length: int) -> None:
    """Write tokenizer.json and tokenizer_config.json for the tokenizer in `directory` into out_dir."""
    tok = hf_tokenizer(directory)
    tok.model_max_length = max_length
    tok.save_pretrained(str(out_dir))
    # Stable bytes: DVC hashes the folder, and a changed key order would look like a new export.
    config = Path(out_dir) / "tokenizer_config.json"
    config.write_text(json.dumps(json.loads(config.read_text()), indent=2, sort_keys=True) + "\n")
