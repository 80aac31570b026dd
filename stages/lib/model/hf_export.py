"""Export to a Hugging Face model folder that loads with no `trust_remote_code`.

Each supported switch combination maps onto a built-in transformers architecture that computes the same
function, weight for weight (checked in tests/test_export.py to 1e-4 on the logits):

| position | norm    | qk_norm | mlp          | architecture                                             |
|----------|---------|---------|--------------|----------------------------------------------------------|
| rope     | rmsnorm | true    | relu2 / gelu | Apertus: non-gated MLP with any activation, per-head QK-norm |
| rope     | rmsnorm | true    | swiglu       | Qwen3                                                    |
| rope     | rmsnorm | false   | relu2 / gelu | Arcee: Llama with a non-gated MLP                        |
| rope     | rmsnorm | false   | swiglu       | Llama                                                    |
| learned  | layernorm | false | gelu / relu2 | GPT-2                                                    |

Everything else is refused with the `model.*` switch to change: transformers has no built-in model that
computes it exactly, and an approximate export would score differently from what eval measured.

Details that make the mapping exact:
- our QK-norm has no gain: the exported q_norm/k_norm gains are ones;
- the vocabulary is padded to a multiple of 64 for fast matmuls; padding rows are never predicted (the logits
  are cut) and never looked up (ids < vocab_size), so the export drops them and the HF vocabulary is the
  tokenizer's;
- without `model.bias` the architectures whose layers always have biases (GPT-2) get zero biases;
- `qkv` rows are [q; k; v] and a SwiGLU `fc` is [gate; up], so both split in order;
- GPT-2 stores its linear weights transposed (Conv1D).
"""
from __future__ import annotations

from dataclasses import dataclass

import torch

from stages.lib.errors import UserError
from stages.lib.model.gpt import mlp_hidden
from stages.lib.params import ModelParams

# transformers names for our activations: F.gelu(approximate="tanh") is gelu_pytorch_tanh (same kernel).
ACTIVATIONS = {"relu2": "relu2", "gelu": "gelu_pytorch_tanh"}
RMS_EPS = 1e-6  # stages.lib.model.gpt.RMSNorm
LN_EPS = 1e-5  # nn.LayerNorm's default, used by stages.lib.model.gpt.LayerNorm


@dataclass(frozen=True)
class Target:
    architecture: str  # transformers class name, e.g. "Qwen3ForCausalLM"
    model_type: str    # config.json's model_type


def choose_architecture(cfg: ModelParams) -> Target:
    """The built-in architecture that represents `cfg` exactly, or a UserError naming the switch to change."""
    def refuse(why: str) -> UserError:
        return UserError(f"export: {why}; no built-in transformers architecture computes this model exactly")

    if cfg.logit_softcap > 0:
        raise refuse(f"model.logit_softcap={cfg.logit_softcap} (set it to 0.0 to export)")
    if cfg.position == "learned":
        if cfg.norm != "layernorm":
            raise refuse("model.position=learned needs model.norm=layernorm (GPT-2); or use model.position=rope")
        if cfg.qk_norm:
            raise refuse("model.position=learned (GPT-2) has no QK-norm: set model.qk_norm=false")
        if cfg.mlp == "swiglu":
            raise refuse("model.position=learned (GPT-2) has no gated MLP: set model.mlp=gelu or relu2")
        return Target("GPT2LMHeadModel", "gpt2")
    if cfg.norm != "rmsnorm":
        raise refuse("model.position=rope needs model.norm=rmsnorm (Llama family); or use model.position=learned")
    if cfg.qk_norm:
        if cfg.bias:
            raise refuse("model.qk_norm=true (Qwen3/Apertus) has no MLP biases: set model.bias=false")
        return Target("Qwen3ForCausalLM", "qwen3") if cfg.mlp == "swiglu" else Target("ApertusForCausalLM", "apertus")
    return Target("LlamaForCausalLM", "llama") if cfg.mlp == "swiglu" else Target("ArceeForCausalLM", "arcee")


def hf_config(cfg: ModelParams, vocab_size: int, target: Target, eot_id: int):
    """The transformers config for `cfg` under `target`."""
    from transformers import AutoConfig

    tokens = dict(bos_token_id=eot_id, eos_token_id=eot_id, pad_token_id=eot_id,
                  tie_word_embeddings=cfg.tie_embeddings, vocab_size=vocab_size)
    if target.model_type == "gpt2":
        return AutoConfig.for_model(
            "gpt2", n_embd=cfg.n_embd, n_layer=cfg.n_layer, n_head=cfg.n_head, n_positions=cfg.block_size,
            n_inner=int(cfg.mlp_ratio * cfg.n_embd), activation_function=ACTIVATIONS[cfg.mlp],
            layer_norm_epsilon=LN_EPS, resid_pdrop=0.0, embd_pdrop=0.0, attn_pdrop=0.0, **tokens)
    hidden = mlp_hidden(cfg)
    common = dict(
        hidden_size=cfg.n_embd, num_hidden_layers=cfg.n_layer, num_attention_heads=cfg.n_head,
        num_key_value_heads=cfg.n_head, head_dim=cfg.n_embd // cfg.n_head, intermediate_size=hidden,
        max_position_embeddings=cfg.block_size, rms_norm_eps=RMS_EPS, attention_dropout=0.0,
        rope_parameters={"rope_type": "default", "rope_theta": cfg.rope_base}, **tokens)
    if target.model_type in ("qwen3", "llama"):
        common["hidden_act"] = "silu"
    else:
        common["hidden_act"] = ACTIVATIONS[cfg.mlp]
    if target.model_type in ("llama", "arcee"):
        common.update(attention_bias=cfg.bias, mlp_bias=cfg.bias)
    return AutoConfig.for_model(target.model_type, **common)


def hf_state_dict(state: dict[str, torch.Tensor], cfg: ModelParams, vocab_size: int,
                  target: Target) -> dict[str, torch.Tensor]:
    """Our weights under transformers' names; state is GPT.state_dict() (padded vocabulary)."""
    if target.model_type == "gpt2":
        return _gpt2_state(state, cfg, vocab_size)
    C = cfg.n_embd
    out = {"model.embed_tokens.weight": state["wte.weight"][:vocab_size],
           "model.norm.weight": state["norm_f.weight"]}
    if not cfg.tie_embeddings:
        out["lm_head.weight"] = state["lm_head.weight"][:vocab_size]
    names = ({"norm1": "attention_layernorm", "norm2": "feedforward_layernorm"} if target.model_type == "apertus"
             else {"norm1": "input_layernorm", "norm2": "post_attention_layernorm"})
    for i in range(cfg.n_layer):
        ours, theirs = f"blocks.{i}.", f"model.layers.{i}."
        out[theirs + names["norm1"] + ".weight"] = state[ours + "norm1.weight"]
        out[theirs + names["norm2"] + ".weight"] = state[ours + "norm2.weight"]
        for suffix in ("weight", "bias") if cfg.bias else ("weight",):
            q, k, v = state[ours + f"attn.qkv.{suffix}"].split(C, dim=0)  # rows are [q; k; v]
            out[theirs + f"self_attn.q_proj.{suffix}"] = q
            out[theirs + f"self_attn.k_proj.{suffix}"] = k
            out[theirs + f"self_attn.v_proj.{suffix}"] = v
            out[theirs + f"self_attn.o_proj.{suffix}"] = state[ours + f"attn.proj.{suffix}"]
            fc = state[ours + f"mlp.fc.{suffix}"]
            if cfg.mlp == "swiglu":
                gate, up = fc.chunk(2, dim=0)  # rows are [gate; up]
                out[theirs + f"mlp.gate_proj.{suffix}"] = gate
                out[theirs + f"mlp.up_proj.{suffix}"] = up
            else:
                out[theirs + f"mlp.up_proj.{suffix}"] = fc
            out[theirs + f"mlp.down_proj.{suffix}"] = state[ours + f"mlp.proj.{suffix}"]
        if cfg.qk_norm:  # ours has no gain; theirs has one: ones make them equal
            ones = torch.ones(C // cfg.n_head, dtype=state[ours + "norm1.weight"].dtype)
            out[theirs + "self_attn.q_norm.weight"] = ones
            out[theirs + "self_attn.k_norm.weight"] = ones.clone()
    return {name: t.contiguous() for name, t in out.items()}


def _gpt2_state(state: dict[str, torch.Tensor], cfg: ModelParams, vocab_size: int) -> dict[str, torch.Tensor]:
    def bias_of(name: str, size: int) -> torch.Tensor:
        return state[name] if cfg.bias else torch.zeros(size, dtype=state["wte.weight"].dtype)

    out = {"transformer.wte.weight": state["wte.weight"][:vocab_size],
           "transformer.wpe.weight": state["wpe.weight"],
           "transformer.ln_f.weight": state["norm_f.weight"],
           "transformer.ln_f.bias": bias_of("norm_f.bias", cfg.n_embd)}
    if not cfg.tie_embeddings:
        out["lm_head.weight"] = state["lm_head.weight"][:vocab_size]
    for i in range(cfg.n_layer):
        ours, theirs = f"blocks.{i}.", f"transformer.h.{i}."
        for a, b in (("norm1", "ln_1"), ("norm2", "ln_2")):
            out[theirs + f"{b}.weight"] = state[ours + f"{a}.weight"]
            out[theirs + f"{b}.bias"] = bias_of(ours + f"{a}.bias", cfg.n_embd)
        # Conv1D keeps weights as [in, out]: the transpose of nn.Linear's.
        for a, b in (("attn.qkv", "attn.c_attn"), ("attn.proj", "attn.c_proj"),
                     ("mlp.fc", "mlp.c_fc"), ("mlp.proj", "mlp.c_proj")):
            weight = state[ours + f"{a}.weight"]
            out[theirs + f"{b}.weight"] = weight.t()
            out[theirs + f"{b}.bias"] = bias_of(ours + f"{a}.bias", weight.size(0))
    return {name: t.contiguous() for name, t in out.items()}


def build_hf_model(state: dict[str, torch.Tensor], cfg: ModelParams, vocab_size: int, eot_id: int):
    """A transformers model holding our weights, in fp32 and eval mode."""
    from transformers import AutoModelForCausalLM

    target = choose_architecture(cfg)
    config = hf_config(cfg, vocab_size, target, eot_id)
    config.architectures = [target.architecture]
    model = AutoModelForCausalLM.from_config(config, dtype=torch.float32)
    weights = hf_state_dict({k: v.float() for k, v in state.items()}, cfg, vocab_size, target)
    missing, unexpected = model.load_state_dict(weights, strict=False)
    # A tied lm_head is not in our export (it is the embedding); anything else missing is a mapping bug.
    missing = [m for m in missing if not (cfg.tie_embeddings and m == "lm_head.weight")]
    assert not missing and not unexpected, f"export mapping: missing {missing}, unexpected {unexpected}"
    if cfg.tie_embeddings:
        model.tie_weights()
    return model.eval()
