"""The transformer: shapes, causality, every architecture switch, learning, checkpoints."""
from __future__ import annotations

import dataclasses

import pytest
import torch

from stages.lib.errors import UserError
from stages.lib.model.checkpoint import check_tokenizer, load_checkpoint, save_checkpoint
from stages.lib.model.gpt import GPT, causal_attention, cross_entropy, padded_vocab
from stages.lib.params import ModelParams, TrainParams
from stages.lib.training.optim import build_optimizer

VOCAB = 100


def tiny(**overrides) -> ModelParams:
    cfg = ModelParams(n_layer=2, n_head=2, n_embd=32, block_size=16)
    return dataclasses.replace(cfg, **overrides)


def tokens(batch=2, length=16, seed=0) -> torch.Tensor:
    return torch.randint(0, VOCAB, (batch, length), generator=torch.Generator().manual_seed(seed))


def test_shapes_and_padded_vocab():
    model = GPT(tiny(), VOCAB)
    x = tokens()
    logits, loss = model(x, x)
    assert logits.shape == (2, 16, VOCAB)
    assert loss.shape == ()
    assert model.wte.weight.shape[0] == padded_vocab(VOCAB) == 128
    _, per_token = model(x, x, reduction="none")
    assert per_token.shape == (32,)
    assert torch.allclose(per_token.mean(), loss, atol=1e-6)


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16, torch.float16])
@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
def test_cross_entropy_matches_torch_in_value_and_gradient(dtype, reduction):
    # Our loss precomputes its gradient in the forward; it must still be F.cross_entropy.
    gen = torch.Generator().manual_seed(0)
    logits = (3 * torch.randn(64, VOCAB, generator=gen)).to(dtype)
    targets = torch.randint(0, VOCAB, (64,), generator=gen)
    upstream = torch.rand(64, generator=gen) if reduction == "none" else torch.tensor(0.7)

    ours_in = logits.clone().requires_grad_()
    ours = cross_entropy(ours_in, targets, reduction)
    (ours * upstream).sum().backward()
    ref_in = logits.clone().requires_grad_()
    ref = torch.nn.functional.cross_entropy(ref_in.float(), targets, reduction=reduction)
    (ref * upstream).sum().backward()

    assert ours.dtype == torch.float32
    assert torch.allclose(ours, ref, rtol=1e-5, atol=1e-5)
    assert ours_in.grad.dtype == dtype
    ref_grad = ref_in.grad.float()
    scale = 1e-6 if dtype == torch.float32 else 1e-2  # the saved gradient is in the logits' dtype
    assert torch.allclose(ours_in.grad.float(), ref_grad, rtol=scale, atol=scale * ref_grad.abs().max().item())
    # Without autograd (evaluation) the same values come from the plain path.
    with torch.no_grad():
        assert torch.allclose(cross_entropy(logits, targets, reduction), ours.detach(), rtol=1e-5, atol=1e-5)


def test_fp16_cross_entropy_gradient_survives_loss_scaling():
    # Under fp16 the grad scaler multiplies the loss by 2**16; a probability of 2e-9 must not have been flushed
    # to zero before that factor arrives (fp16's smallest subnormal is 6e-8).
    logits = torch.tensor([[0.0, -20.0, 0.0, 0.0]], dtype=torch.float16, requires_grad=True)
    (cross_entropy(logits, torch.tensor([0]), "sum") * 2.0 ** 16).backward()
    expected = torch.softmax(logits.detach().double(), dim=-1)[0, 1].item() * 2.0 ** 16  # about 1.3e-4
    assert logits.grad[0, 1].item() == pytest.approx(expected, rel=1e-2)


def test_cpu_training_attention_matches_sdpa_in_value_and_gradient():
    # On the CPU, training takes the matmul + softmax path; it must be the same causal attention.
    gen = torch.Generator().manual_seed(0)
    q, k, v = (torch.randn(2, 3, 16, 8, generator=gen) for _ in range(3))  # [B, H, T, D]
    upstream = torch.randn(2, 3, 16, 8, generator=gen)

    ours_inputs = [t.clone().requires_grad_() for t in (q, k, v)]
    ours = causal_attention(*ours_inputs, dropout=0.0)
    (ours * upstream).sum().backward()
    ref_inputs = [t.clone().requires_grad_() for t in (q, k, v)]
    ref = torch.nn.functional.scaled_dot_product_attention(*ref_inputs, is_causal=True)
    (ref * upstream).sum().backward()

    assert torch.allclose(ours, ref, atol=1e-5)
    for mine, theirs in zip(ours_inputs, ref_inputs):
        assert torch.allclose(mine.grad, theirs.grad, atol=1e-5)
    with torch.no_grad():  # evaluation takes SDPA itself
        assert torch.allclose(causal_attention(q, k, v, dropout=0.0), ref, atol=1e-5)
    with torch.autocast("cpu", dtype=torch.bfloat16):  # the mask follows the autocast dtype
        mixed = causal_attention(*ours_inputs, dropout=0.0)
    assert mixed.dtype == torch.bfloat16
    assert torch.allclose(mixed.float(), ref, atol=3e-2)


def test_initial_loss_is_near_uniform():
    # Zero-initialised output projections and small embeddings: the model starts close to uniform.
    _, loss = GPT(tiny(), VOCAB)(tokens(), tokens(seed=1))
    assert abs(loss.item() - torch.log(torch.tensor(float(VOCAB))).item()) < 0.1


def test_causal_future_tokens_do_not_change_the_past():
    torch.manual_seed(0)
    model = GPT(tiny(), VOCAB)
    for p in model.parameters():  # leave the zero init so attention matters
        torch.nn.init.normal_(p, std=0.1)
    x = tokens(batch=1)
    y = x.clone()
    y[0, 10:] = (y[0, 10:] + 1) % VOCAB
    a, _ = model(x)
    b, _ = model(y)
    assert torch.allclose(a[0, :10], b[0, :10], atol=1e-5)
    assert not torch.allclose(a[0, 10:], b[0, 10:], atol=1e-5)


@pytest.mark.parametrize("overrides", [
    {},
    {"position": "learned", "norm": "layernorm", "mlp": "gelu", "qk_norm": False, "tie_embeddings": False,
     "bias": True},
    {"mlp": "swiglu"},
    {"logit_softcap": 5.0},
    {"dropout": 0.1},
])
def test_every_switch_trains(overrides):
    torch.manual_seed(0)
    model = GPT(tiny(**overrides), VOCAB)
    optimizer = build_optimizer(model, TrainParams(learning_rate=3e-3, weight_decay=0.0), torch.device("cpu"))
    x = tokens(batch=4)
    model.train()
    first = None
    for _ in range(30):
        _, loss = model(x[:, :-1], x[:, 1:])
        first = loss.item() if first is None else first
        loss.backward()
        optimizer.step()
        optimizer.zero_grad()
    model.eval()
    _, loss = model(x[:, :-1], x[:, 1:])
    assert loss.item() < first - 1.0, f"loss {first:.3f} -> {loss.item():.3f}"
    if overrides.get("logit_softcap"):
        logits, _ = model(x)
        assert logits.abs().max() <= overrides["logit_softcap"]


def test_tied_embeddings_share_storage():
    model = GPT(tiny(), VOCAB)
    assert model.lm_head.weight.data_ptr() == model.wte.weight.data_ptr()
    untied = GPT(tiny(tie_embeddings=False), VOCAB)
    assert untied.lm_head.weight.data_ptr() != untied.wte.weight.data_ptr()


def test_blocks_start_as_identity():
    model = GPT(tiny(), VOCAB)
    x = torch.randn(2, 8, 32)
    for block in model.blocks:
        assert torch.equal(block(x), x)


def test_grad_checkpointing_gives_the_same_gradients():
    torch.manual_seed(0)
    model = GPT(tiny(), VOCAB)
    for p in model.parameters():
        torch.nn.init.normal_(p, std=0.05)
    x = tokens()
    grads = []
    for flag in (False, True):
        model.zero_grad()
        model.grad_checkpointing = flag
        _, loss = model(x, x)
        loss.backward()
        grads.append(torch.cat([p.grad.flatten() for p in model.parameters()]))
    assert torch.allclose(grads[0], grads[1], atol=1e-6)


def test_flops_per_token_counts_matmuls_and_attention():
    cfg = tiny()
    model = GPT(cfg, VOCAB)
    n_matmul = sum(p.numel() for n, p in model.named_parameters() if p.dim() == 2)  # tied: wte counted once
    assert model.flops_per_token() == 6 * n_matmul + 12 * cfg.n_layer * cfg.n_embd * cfg.block_size


@pytest.mark.parametrize("position", ["rope", "learned"])
def test_cached_forward_matches_the_full_forward(position):
    # Prefill part of a sequence, then feed the rest one token and then three tokens at a time: each
    # step's last logits are the full forward's at that position.
    torch.manual_seed(0)
    model = GPT(tiny(position=position), VOCAB).eval()
    for p in model.parameters():
        torch.nn.init.normal_(p, std=0.2)
    x = tokens(length=16)
    with torch.no_grad():
        full, _ = model(x)  # [B, 16, V]
        cache = model.new_cache()
        for lo, hi in [(0, 9), (9, 10), (10, 13), (13, 16)]:
            step, _ = model(x[:, lo:hi], cache=cache)
            assert step.shape == (2, 1, VOCAB) and cache.length == hi
            assert torch.allclose(step[:, 0], full[:, hi - 1], atol=1e-5)
        with pytest.raises(ValueError, match="cache holds 16 positions"):
            model(x[:, :1], cache=cache)


def test_checkpoint_round_trip_with_weights_only(tmp_path):
    torch.manual_seed(0)
    model = GPT(tiny(mlp="swiglu"), VOCAB)
    for p in model.parameters():
        torch.nn.init.normal_(p, std=0.05)
    path = tmp_path / "model.pt"
    save_checkpoint(path, model, "abc123", step=7, val_loss=1.5)
    loaded, meta = load_checkpoint(path)
    assert meta["step"] == 7 and meta["tokenizer_fingerprint"] == "abc123" and meta["val_loss"] == 1.5
    x = tokens()
    assert torch.allclose(model.eval()(x)[0], loaded(x)[0])
    torch.load(path, weights_only=True)  # loads without unpickling code
    with pytest.raises(UserError, match="tokenizer"):
        check_tokenizer(meta, "other", "artifacts/tokenizer")


def test_bad_checkpoints_are_user_errors(tmp_path):
    with pytest.raises(UserError, match="not found"):
        load_checkpoint(tmp_path / "missing.pt")
    garbage = tmp_path / "garbage.pt"
    garbage.write_bytes(b"not a checkpoint")
    with pytest.raises(UserError, match="not a checkpoint this project wrote"):
        load_checkpoint(garbage)


def test_checkpoint_bytes_depend_only_on_content(tmp_path):
    model = GPT(tiny(), VOCAB)
    save_checkpoint(tmp_path / "a.pt", model, "abc", step=1, val_loss=2.0)
    save_checkpoint(tmp_path / "b.pt", model, "abc", step=1, val_loss=2.0)
    assert (tmp_path / "a.pt").read_bytes() == (tmp_path / "b.pt").read_bytes()  # so DVC's hash means something
