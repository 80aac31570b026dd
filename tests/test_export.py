"""The Hugging Face export: transformers computes what our model computes, and tokenizes as ours does.

Everything runs offline on tiny random models (every weight random, zero-initialised projections included,
so a mapping mistake cannot hide behind a zero) and on tokenizers trained on the shipped corpus.
"""
from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
import torch

from stages.lib.data.split import unit_hash
from stages.lib.errors import UserError
from stages.lib.model.checkpoint import save_checkpoint
from stages.lib.model.decoding import Sampling, generate
from stages.lib.model.gpt import GPT
from stages.lib.model.hf_export import build_hf_model, choose_architecture
from stages.lib.model.hf_folder import export
from stages.lib.params import ModelParams, PackParams
from stages.lib.tokens.hf_tokenizer import hf_tokenizer
from stages.lib.tokens.tokenizer_adapter import train_tokenizer

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
transformers = pytest.importorskip("transformers")

ROOT = Path(__file__).resolve().parent.parent
CORPUS = ROOT / "data" / "raw"
VOCAB = 300
TINY = dict(n_layer=2, n_head=2, n_embd=32, block_size=24)

# Each switch set, with the architecture it must map onto.
MAPPED = {
    "default": ({}, "apertus"),
    "gpt2-125m-switches": (dict(n_layer=2, n_head=2, n_embd=128, block_size=48), "apertus"),  # head size 64
    "swiglu": (dict(mlp="swiglu"), "qwen3"),
    "no-qk-norm": (dict(qk_norm=False), "arcee"),
    "no-qk-norm-gelu-bias-untied": (dict(qk_norm=False, mlp="gelu", bias=True, tie_embeddings=False), "arcee"),
    "llama": (dict(qk_norm=False, mlp="swiglu", bias=True), "llama"),
    "gpt2": (dict(position="learned", norm="layernorm", qk_norm=False, mlp="gelu", bias=True), "gpt2"),
    "gpt2-no-bias-untied-relu2": (dict(position="learned", norm="layernorm", qk_norm=False, mlp="relu2",
                                       tie_embeddings=False), "gpt2"),
}


def random_model(seed: int = 0, **switches) -> GPT:
    torch.manual_seed(seed)
    model = GPT(ModelParams(**{**TINY, **switches}), VOCAB).eval()
    with torch.no_grad():
        for p in model.parameters():
            p.normal_(0.0, 0.2)
    return model


@pytest.mark.parametrize("name", sorted(MAPPED))
def test_transformers_logits_and_greedy_tokens_equal_ours(name):
    switches, model_type = MAPPED[name]
    model = random_model(**switches)
    assert choose_architecture(model.cfg).model_type == model_type
    hf = build_hf_model(model.state_dict(), model.cfg, VOCAB, eot_id=0)
    ids = torch.randint(0, VOCAB, (3, model.cfg.block_size), generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        ours, _ = model(ids)
        theirs = hf(ids).logits
    assert theirs.shape == ours.shape == (3, model.cfg.block_size, VOCAB)  # padding rows dropped
    assert (ours - theirs).abs().max().item() < 1e-4

    prompt = ids[:1, :5]
    new = model.cfg.block_size - 5
    ours_gen = generate(model, prompt, new, Sampling(temperature=0.0)).ids[0]
    theirs_gen = hf.generate(prompt, max_new_tokens=new, do_sample=False, eos_token_id=None, pad_token_id=0)
    assert theirs_gen[0, 5:].tolist() == ours_gen


@pytest.mark.parametrize("switches, key", [
    (dict(logit_softcap=30.0), "model.logit_softcap"),
    (dict(norm="layernorm"), "model.norm"),
    (dict(position="learned"), "model.norm"),
    (dict(position="learned", norm="layernorm"), "model.qk_norm"),
    (dict(position="learned", norm="layernorm", qk_norm=False, mlp="swiglu"), "model.mlp"),
    (dict(bias=True), "model.bias"),
])
def test_unrepresentable_configs_are_refused_naming_the_switch(switches, key):
    with pytest.raises(UserError, match=key.replace(".", r"\.")):
        choose_architecture(ModelParams(**{**TINY, **switches}))


# --------------------------------------------------------------------------- tokenizers on the shipped corpus

def shipped_documents() -> tuple[list[str], list[str]]:
    """(train, val) texts of the shipped corpus, one document per file, split as pack splits (default params)."""
    pack = PackParams()
    train, val = [], []
    for path in sorted(CORPUS.rglob("*.txt")):
        doc_id = path.relative_to(CORPUS).as_posix()
        text = path.read_text(encoding="utf-8", errors="replace")
        (val if unit_hash(pack.seed, doc_id) < pack.val_fraction else train).append(text)
    return train, val


@pytest.fixture(scope="module")
def corpus():
    train, val = shipped_documents()
    assert len(val) >= 3, "the shipped corpus should give a few validation documents"
    return train, val


@pytest.mark.parametrize("kind", ["bpe", "sentencepiece_bpe"])
def test_exported_tokenizer_gives_our_ids_on_the_val_documents(kind, corpus, tmp_path):
    train, val = corpus
    sample = (t[:200_000] for t in train[::4])
    ours = train_tokenizer(sample, tmp_path / "tok", kind, 1000, 2, ["<|endoftext|>"], True, 1337)
    theirs = hf_tokenizer(tmp_path / "tok")
    for text in val:
        ids = ours.encode(text)
        assert theirs(text, add_special_tokens=False).input_ids == ids
        assert theirs.decode(ids) == ours.decode(ids)
    assert theirs.eos_token_id == ours.eot_id


def test_sentencepiece_unigram_is_refused_at_export(corpus, tmp_path):
    train, _ = corpus
    train_tokenizer((t[:50_000] for t in train[:3]), tmp_path / "tok", "sentencepiece_unigram", 500, 2,
                    ["<|endoftext|>"], True, 1337)
    with pytest.raises(UserError, match="tokenizer.kind=sentencepiece_unigram"):
        hf_tokenizer(tmp_path / "tok")


# --------------------------------------------------------------------------- the export stage's folder

@pytest.fixture(scope="module")
def exported(corpus, tmp_path_factory):
    """A checkpoint trained with nothing (random weights) and a real tokenizer, exported once."""
    root = tmp_path_factory.mktemp("export")
    train, _ = corpus
    tok = train_tokenizer((t[:100_000] for t in train[::6]), root / "tok", "bpe", VOCAB + 40, 2,
                          ["<|endoftext|>"], True, 1337)
    torch.manual_seed(0)
    model = GPT(ModelParams(**TINY), tok.vocab_size)
    with torch.no_grad():
        for p in model.parameters():
            p.normal_(0.0, 0.2)
    save_checkpoint(root / "model.pt", model, tok.fingerprint, step=1, val_loss=1.0)
    architecture = export(root / "model.pt", root / "tok", root / "hf", "float32")
    return root, model.eval(), tok, architecture


def test_export_folder_loads_offline_without_remote_code(exported):
    root, model, tok, architecture = exported
    names = {p.name for p in (root / "hf").iterdir()}
    assert {"config.json", "generation_config.json", "model.safetensors", "tokenizer.json",
            "tokenizer_config.json"} <= names
    assert not any(n.endswith((".bin", ".pt", ".pkl")) for n in names)  # no pickle
    config = json.loads((root / "hf" / "config.json").read_text())
    assert "auto_map" not in config and config["architectures"] == [architecture]
    assert config["eos_token_id"] == tok.eot_id

    hf = transformers.AutoModelForCausalLM.from_pretrained(root / "hf", trust_remote_code=False).eval()
    hf_tok = transformers.AutoTokenizer.from_pretrained(root / "hf", trust_remote_code=False)
    assert hf_tok.eos_token == "<|endoftext|>"
    text = "ROMEO: But soft, what light through yonder window breaks?"
    ids = tok.encode(text)
    assert hf_tok(text, add_special_tokens=False).input_ids == ids
    ids = ids[:model.cfg.block_size]
    with torch.no_grad():
        diff = (model(torch.tensor([ids]))[0] - hf(torch.tensor([ids])).logits).abs().max().item()
    assert diff < 1e-4


def test_export_is_byte_reproducible_and_casts_dtype(exported, tmp_path):
    root, _, _, _ = exported
    export(root / "model.pt", root / "tok", tmp_path / "again", "float32")
    for path in sorted((root / "hf").iterdir()):
        assert path.read_bytes() == (tmp_path / "again" / path.name).read_bytes(), path.name

    export(root / "model.pt", root / "tok", tmp_path / "bf16", "bfloat16")
    hf = transformers.AutoModelForCausalLM.from_pretrained(tmp_path / "bf16")
    assert {p.dtype for p in hf.parameters()} == {torch.bfloat16}
    assert (tmp_path / "bf16" / "model.safetensors").stat().st_size < (root / "hf" / "model.safetensors").stat().st_size


def test_export_refuses_a_tokenizer_the_checkpoint_was_not_trained_with(exported, tmp_path, corpus):
    root, _, _, _ = exported
    other = train_tokenizer(iter(["some other text " * 50]), tmp_path / "other", "bpe", 300, 1,
                            ["<|endoftext|>"], True, 1)
    assert other.fingerprint
    with pytest.raises(UserError, match="tokenizer"):
        export(root / "model.pt", tmp_path / "other", tmp_path / "out", "float32")
    assert not (tmp_path / "out").exists()


def test_a_chat_model_stops_generate_at_end_of_turn(corpus, tmp_path):
    from stages.lib.params import TokenizerParams
    train, _ = corpus
    tok = train_tokenizer((t[:50_000] for t in train[:3]), tmp_path / "tok", "bpe", VOCAB + 40, 2,
                          TokenizerParams().special_tokens, True, 1337)
    model = GPT(ModelParams(**TINY), tok.vocab_size)
    save_checkpoint(tmp_path / "model.pt", model, tok.fingerprint, step=1, val_loss=1.0)
    export(tmp_path / "model.pt", tmp_path / "tok", tmp_path / "hf", "float32")
    generation = json.loads((tmp_path / "hf" / "generation_config.json").read_text())
    assert generation["eos_token_id"] == [tok.eot_id, tok.special_id("<|end|>")]
    assert "max_length" not in generation  # else generate(max_new_tokens=...) warns that both are set
    assert "chat_template" in json.loads((tmp_path / "hf" / "tokenizer_config.json").read_text()) or \
        (tmp_path / "hf" / "chat_template.jinja").exists()
