"""A decoder-only transformer in the modern small-model style, every choice switchable.

Defaults (model.* in params.yaml): rotary positions, RMSNorm, squared-ReLU MLP,
QK-norm, tied input/output embeddings, zero-initialised output projections,
attention through `scaled_dot_product_attention` (flash kernels on GPU), and a
vocabulary padded to a multiple of 64 for fast matmuls. The switches give back
a GPT-2-style model (learned positions, LayerNorm, GELU) for comparison.

Shapes: B batch, T time (<= block_size), C = n_embd, H heads, D = C // H head size, V padded vocab,
L cached positions plus new ones (<= block_size).

Generation runs the same modules with a KVCache (forward(idx, cache=...)): the prompt is prefilled once,
then each step feeds one token. A RowsCache holds rows of different lengths that join and leave between steps
(the server's batch): each row is prefilled alone into a KVCache and copied in, then a step feeds one token per
row at the row's own position. Sampling itself lives in stages/lib/model/decoding.py.
"""
from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F
from torch.utils.checkpoint import checkpoint

from stages.lib.params import ModelParams

VOCAB_MULTIPLE = 64


def padded_vocab(vocab_size: int) -> int:
    return (vocab_size + VOCAB_MULTIPLE - 1) // VOCAB_MULTIPLE * VOCAB_MULTIPLE


class CrossEntropy(torch.autograd.Function):
    """Cross-entropy whose gradient is written as one elementwise expression: softmax - one_hot.

    logits [N, V] (any float dtype), targets [N] -> per-token losses [N] in fp32.
    Why not F.cross_entropy: compiled for the CPU, its backward sums a one-hot over the
    whole vocabulary for every row, about a tenth of a training step at the default shape.
    Here the gradient is kept in the logits' dtype (fp32 for fp16), which the lm_head backward matmul reads
    anyway (under torch.compile the partitioner may instead recompute it in the backward from
    the logits and the logsumexp: one fused pass either way).
    """

    @staticmethod
    def forward(ctx, logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        logits32 = logits.float()
        lse = torch.logsumexp(logits32, dim=-1, keepdim=True)  # [N, 1]
        losses = lse.squeeze(-1) - logits32.gather(-1, targets.unsqueeze(-1)).squeeze(-1)  # [N]
        # int32 ids: twice the lanes of int64 in the vectorized comparison
        one_hot = torch.arange(logits.size(-1), dtype=torch.int32, device=logits.device) == targets.int().unsqueeze(-1)
        # fp16 is kept for the backward in fp32: the grad scaler's factor only arrives there, and unscaled
        # probabilities below fp16's smallest subnormal (6e-8) would be flushed to zero.
        saved_dtype = torch.float32 if logits.dtype == torch.float16 else logits.dtype
        ctx.save_for_backward(((logits32 - lse).exp() - one_hot.float()).to(saved_dtype))  # [N, V]
        return losses

    @staticmethod
    def backward(ctx, grad_losses: torch.Tensor):  # grad_losses [N]
        (grad_logits,) = ctx.saved_tensors
        return grad_logits * grad_losses.unsqueeze(-1).to(grad_logits.dtype), None


IGNORE = -1  # a target that is not learned (fine-tuning: prompt tokens and padding): no loss, no gradient


def cross_entropy(logits: torch.Tensor, targets: torch.Tensor, reduction: str = "mean") -> torch.Tensor:
    """Mean, sum or per-token ('none') cross-entropy in fp32; logits [N, V], targets [N].

    IGNORE targets add nothing to the loss or its gradient, and the mean is over the other targets.
    """
    learned = targets != IGNORE  # [N]
    targets = targets.clamp(min=0)  # any valid id: its loss is zeroed below
    if torch.is_grad_enabled() and logits.requires_grad:
        losses = CrossEntropy.apply(logits, targets)
    else:  # evaluation: no gradient to precompute
        losses = F.cross_entropy(logits.float(), targets, reduction="none")
    losses = losses * learned  # a zero factor also zeroes the gradient CrossEntropy saved for that row
    if reduction == "none":
        return losses
    return losses.sum() if reduction == "sum" else losses.sum() / learned.sum().clamp(min=1)


class RMSNorm(nn.Module):
    """RMSNorm whose gain follows the input dtype: under bf16 autocast the fused kernel needs matching dtypes."""

    def __init__(self, dim: int, affine: bool = True, eps: float = 1e-6):
        super().__init__()
        self.eps = eps
        self.weight = nn.Parameter(torch.ones(dim)) if affine else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        weight = self.weight.to(x.dtype) if self.weight is not None else None
        return F.rms_norm(x, (x.size(-1),), weight, self.eps)


class LayerNorm(nn.LayerNorm):
    """LayerNorm whose weight and bias follow the input dtype, like RMSNorm: FSDP may gather them in bf16
    while the residual stream it normalizes stays fp32."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        weight = self.weight.to(x.dtype) if self.weight is not None else None
        bias = self.bias.to(x.dtype) if self.bias is not None else None
        return F.layer_norm(x, self.normalized_shape, weight, bias, self.eps)


def make_norm(cfg: ModelParams, dim: int) -> nn.Module:
    if cfg.norm == "rmsnorm":
        return RMSNorm(dim)
    return LayerNorm(dim, bias=cfg.bias)


def token_positions(start: int | torch.Tensor, T: int) -> torch.Tensor:
    """The positions of T new tokens: [T] from an int start, [B, T] from a start per row [B]."""
    if isinstance(start, torch.Tensor):
        return start[:, None] + torch.arange(T, device=start.device)
    return torch.arange(start, start + T)


class Rotary(nn.Module):
    """Rotary position embedding (Su et al. 2021), applied to queries and keys."""

    def __init__(self, head_dim: int, max_len: int, base: float):
        super().__init__()
        inv_freq = 1.0 / (base ** (torch.arange(0, head_dim, 2, dtype=torch.float32) / head_dim))  # [D/2]
        angles = torch.outer(torch.arange(max_len, dtype=torch.float32), inv_freq)  # [max_len, D/2]
        # Not saved in checkpoints: derived from the config.
        self.register_buffer("cos", angles.cos(), persistent=False)
        self.register_buffer("sin", angles.sin(), persistent=False)

    def forward(self, x: torch.Tensor, start: int | torch.Tensor = 0) -> torch.Tensor:
        """x: [B, H, T, D] at positions start.. (start: an int, or [B] a first position per row)."""
        T = x.size(-2)
        if isinstance(start, torch.Tensor):  # rows at positions of their own (a RowsCache)
            positions = token_positions(start, T)  # [B, T]
            cos, sin = self.cos[positions].unsqueeze(1), self.sin[positions].unsqueeze(1)  # [B, 1, T, D/2]
            cos, sin = cos.to(x.dtype), sin.to(x.dtype)
        else:
            cos, sin = self.cos[start:start + T].to(x.dtype), self.sin[start:start + T].to(x.dtype)  # [T, D/2]
        x1, x2 = x.chunk(2, dim=-1)  # rotate the two halves as (real, imaginary) pairs
        return torch.cat((x1 * cos - x2 * sin, x1 * sin + x2 * cos), dim=-1)


MATERIALIZED_SCORES = 64 << 20  # attention score elements [B, H, T, T] per layer the CPU path may hold


def attention_is_materialized(device: torch.device, B: int, H: int, T: int, training: bool) -> bool:
    """Whether causal_attention builds the full [B, H, T, T] scores (and keeps them for the backward pass)."""
    return device.type == "cpu" and training and B * H * T * T <= MATERIALIZED_SCORES


def causal_attention(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, dropout: float) -> torch.Tensor:
    """softmax(q k^T / sqrt(D) + causal mask) v; q, k, v: [B, H, T, D].

    scaled_dot_product_attention (flash kernels on GPU), except when training on the CPU:
    there the flash backward kernel took a quarter of a step at the default shape. Batched
    matmuls that add the mask as they multiply (baddbmm), and a softmax torch.compile fuses,
    give 20% more tokens/s. Their scores grow with T^2, so long contexts (over
    MATERIALIZED_SCORES elements per layer, 256 MiB in fp32) go to the flash kernel too.
    """
    B, H, T, D = q.shape
    if not attention_is_materialized(q.device, B, H, T, torch.is_grad_enabled()):
        return F.scaled_dot_product_attention(q, k, v, is_causal=True, dropout_p=dropout)
    dtype = torch.get_autocast_dtype("cpu") if torch.is_autocast_enabled("cpu") else q.dtype
    mask = torch.full((T, T), float("-inf"), dtype=dtype, device=q.device).triu(diagonal=1)  # 0 where visible
    scores = torch.baddbmm(mask.expand(B * H, T, T), q.flatten(0, 1), k.flatten(0, 1).transpose(1, 2),
                           alpha=D ** -0.5)  # [B*H, T, T]
    probs = F.dropout(scores.softmax(dim=-1), dropout)
    return torch.bmm(probs, v.flatten(0, 1)).view(B, H, T, D)


def cached_attention(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor,
                     visible: torch.Tensor | None = None) -> torch.Tensor:
    """Attention of T new queries [B, H, T, D] over L >= T keys and values [B, H, L, D], the last T of which
    belong to the queries themselves (inference only). visible [B, 1, T, L]: which keys each row's queries see,
    for rows of different lengths (a RowsCache); None: the causal case."""
    if visible is not None:
        return F.scaled_dot_product_attention(q, k, v, attn_mask=visible)
    T, L = q.size(-2), k.size(-2)
    if T == L:  # a prefill from an empty cache: the plain causal case
        return F.scaled_dot_product_attention(q, k, v, is_causal=True)
    if T == 1:  # one decoding step: the newest token sees everything
        return F.scaled_dot_product_attention(q, k, v)
    # is_causal aligns the mask top-left; new queries sit bottom-right, after the cached positions
    visible = torch.ones(T, L, dtype=torch.bool, device=q.device).tril(diagonal=L - T)  # [T, L]
    return F.scaled_dot_product_attention(q, k, v, attn_mask=visible)


class LayerCache:
    """One layer's keys and values so far: [B, H, capacity, D] buffers whose first `length` positions are filled.

    Preallocated (on first use, in the keys' dtype) so a step writes one position instead of copying the
    whole cache as torch.cat would.
    """

    visible = None  # every cached position is visible to the new tokens (causally)

    def __init__(self, capacity: int):
        self.capacity = capacity
        self.length = 0
        self.k: torch.Tensor | None = None
        self.v: torch.Tensor | None = None

    def append(self, k: torch.Tensor, v: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Store new keys and values [B, H, T, D]; return all of them so far, [B, H, L, D] views."""
        B, H, T, D = k.shape
        start, end = self.length, self.length + T
        if self.k is None or self.k.shape[0] != B or self.k.dtype != k.dtype:
            self.k = k.new_empty(B, H, self.capacity, D)
            self.v = v.new_empty(B, H, self.capacity, D)
        self.k[:, :, start:end] = k
        self.v[:, :, start:end] = v
        self.length = end
        return self.k[:, :, :end], self.v[:, :, :end]


class KVCache:
    """Every layer's keys and values for the tokens fed so far, so a new token costs one position's work.

    It holds at most block_size positions (the context the model was trained on); the caller decides what
    happens when it is full (decoding.py re-prefills a shorter context). reset() empties it, keeping buffers.
    """

    def __init__(self, n_layer: int, capacity: int):
        self.layers = [LayerCache(capacity) for _ in range(n_layer)]

    @property
    def length(self) -> int:
        return self.layers[0].length

    @property
    def capacity(self) -> int:
        return self.layers[0].capacity

    def reset(self) -> None:
        for layer in self.layers:
            layer.length = 0


class RowsCache:
    """Keys and values of up to `max_rows` sequences of different lengths, decoded together one token per step:
    the server's batch, which requests join and leave between steps.

    Row r holds its sequence's first lengths[r] positions; rows 0..n-1 are in use. fill() copies a row in from
    a one-row KVCache (its prefill, computed as for a lone request, so a prompt never pads to the others'
    lengths); move() lets the last row take the place of one that left. A step (forward with T = 1 and B = n)
    writes each row's new key at the row's own position and masks the positions past each row's length.
    """

    def __init__(self, n_layer: int, max_rows: int, capacity: int, device: torch.device):
        self.layers = [RowsLayerCache(self) for _ in range(n_layer)]
        self.max_rows, self.capacity, self.device = max_rows, capacity, device
        self.lengths = [0] * max_rows  # positions filled per row (bookkeeping on the host)
        self.n = 0
        self.positions: torch.Tensor | None = None  # [n]: this step's new token position per row
        self.visible: torch.Tensor | None = None  # [n, 1, 1, L]: the keys each row sees this step

    def start_step(self, B: int, T: int) -> torch.Tensor:
        """Before a step's forward: the new tokens' positions [B], and the mask the layers read."""
        if T != 1 or B != self.n:
            raise ValueError(f"a RowsCache step feeds one token for each of its {self.n} rows, got [{B}, {T}]")
        lengths = self.lengths[:B]
        if max(lengths) + 1 > self.capacity:
            raise ValueError(f"the KV cache holds {self.capacity} positions: a row of {max(lengths)} is full")
        self.positions = torch.tensor(lengths, device=self.device)  # [B]
        for row in range(B):
            self.lengths[row] += 1
        L = max(lengths) + 1
        self.visible = (torch.arange(L, device=self.device) <= self.positions[:, None])[:, None, None, :]
        return self.positions

    def fill(self, row: int, cache: KVCache) -> None:
        """Row `row` becomes the one-row cache's sequence."""
        length = cache.length
        for mine, theirs in zip(self.layers, cache.layers):
            if length:
                mine.buffers(theirs.k)
                mine.k[row, :, :length] = theirs.k[0, :, :length]
                mine.v[row, :, :length] = theirs.v[0, :, :length]
        self.lengths[row] = length

    def move(self, src: int, dst: int) -> None:
        """Row dst becomes a copy of row src (the last row filling the place of one that left)."""
        length = self.lengths[src]
        for layer in self.layers:
            if layer.k is not None and length:
                layer.k[dst, :, :length] = layer.k[src, :, :length]
                layer.v[dst, :, :length] = layer.v[src, :, :length]
        self.lengths[dst] = length


class RowsLayerCache:
    """One layer's part of a RowsCache: [max_rows, H, capacity, D] buffers, allocated on first use."""

    def __init__(self, rows: RowsCache):
        self.rows = rows
        self.k: torch.Tensor | None = None
        self.v: torch.Tensor | None = None

    @property
    def length(self) -> torch.Tensor:  # [n]: where each row's new token goes (its rotary position)
        return self.rows.positions

    @property
    def visible(self) -> torch.Tensor:
        return self.rows.visible

    def buffers(self, like: torch.Tensor) -> None:
        """Allocate the buffers for keys like `like` ([B, H, T, D]) if they are not there yet."""
        if self.k is None or self.k.dtype != like.dtype:
            _, H, _, D = like.shape
            self.k = like.new_zeros(self.rows.max_rows, H, self.rows.capacity, D)
            self.v = like.new_zeros(self.rows.max_rows, H, self.rows.capacity, D)

    def append(self, k: torch.Tensor, v: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Store each row's new key and value ([n, H, 1, D]) at its position; return [n, H, L, D] views
        (L: the longest row's length; the mask hides what lies past a shorter row's end)."""
        self.buffers(k)
        n, H, _, D = k.shape
        # scatter_ along positions: a hundred times faster on the CPU than indexing [rows, :, positions]
        where = self.length.view(n, 1, 1, 1).expand(n, H, 1, D)
        self.k[:n].scatter_(2, where, k)
        self.v[:n].scatter_(2, where, v)
        L = self.visible.size(-1)
        return self.k[:n, :, :L], self.v[:n, :, :L]


class CausalSelfAttention(nn.Module):
    def __init__(self, cfg: ModelParams):
        super().__init__()
        self.n_head = cfg.n_head
        self.head_dim = cfg.n_embd // cfg.n_head
        self.dropout = cfg.dropout
        self.qkv = nn.Linear(cfg.n_embd, 3 * cfg.n_embd, bias=cfg.bias)
        self.proj = nn.Linear(cfg.n_embd, cfg.n_embd, bias=cfg.bias)
        self.proj.zero_init = True
        # QK-norm keeps attention logits bounded, which allows higher learning rates.
        self.q_norm = RMSNorm(self.head_dim, affine=False) if cfg.qk_norm else nn.Identity()
        self.k_norm = RMSNorm(self.head_dim, affine=False) if cfg.qk_norm else nn.Identity()
        self.rotary = Rotary(self.head_dim, cfg.block_size, cfg.rope_base) if cfg.position == "rope" else None

    def forward(self, x: torch.Tensor, cache: LayerCache | RowsLayerCache | None = None) -> torch.Tensor:
        B, T, C = x.shape
        q, k, v = self.qkv(x).view(B, T, 3, self.n_head, self.head_dim).unbind(dim=2)  # 3 x [B, T, H, D]
        q, k, v = (t.transpose(1, 2) for t in (q, k, v))  # [B, H, T, D]
        q, k = self.q_norm(q), self.k_norm(k)
        start = 0 if cache is None else cache.length  # the new tokens' first position (a RowsCache: one per row)
        if self.rotary is not None:
            q, k = self.rotary(q, start), self.rotary(k, start)
        if cache is None:
            y = causal_attention(q, k, v, self.dropout if self.training else 0.0)  # [B, H, T, D]
        else:
            k, v = cache.append(k, v)  # [B, H, L, D]: cached positions, then these
            y = cached_attention(q, k, v, cache.visible)  # [B, H, T, D]
        return self.proj(y.transpose(1, 2).reshape(B, T, C))


def mlp_hidden(cfg: ModelParams) -> int:
    """The MLP's hidden width (per half for swiglu)."""
    hidden = int(cfg.mlp_ratio * cfg.n_embd)
    # 2/3 of the width keeps a gated MLP's parameters equal to a plain MLP's of the same ratio.
    return padded_vocab(int(2 * hidden / 3)) if cfg.mlp == "swiglu" else hidden


class MLP(nn.Module):
    def __init__(self, cfg: ModelParams):
        super().__init__()
        self.kind = cfg.mlp
        hidden = mlp_hidden(cfg)
        self.fc = nn.Linear(cfg.n_embd, 2 * hidden if cfg.mlp == "swiglu" else hidden, bias=cfg.bias)
        self.proj = nn.Linear(hidden, cfg.n_embd, bias=cfg.bias)
        self.proj.zero_init = True

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.fc(x)  # [B, T, hidden] (x2 for swiglu)
        if self.kind == "relu2":
            h = F.relu(h).square()
        elif self.kind == "swiglu":
            gate, up = h.chunk(2, dim=-1)
            h = F.silu(gate) * up
        else:
            h = F.gelu(h, approximate="tanh")
        return self.proj(h)


class Block(nn.Module):
    def __init__(self, cfg: ModelParams):
        super().__init__()
        self.norm1 = make_norm(cfg, cfg.n_embd)
        self.attn = CausalSelfAttention(cfg)
        self.norm2 = make_norm(cfg, cfg.n_embd)
        self.mlp = MLP(cfg)
        self.drop = nn.Dropout(cfg.dropout)

    def forward(self, x: torch.Tensor, cache: LayerCache | RowsLayerCache | None = None) -> torch.Tensor:
        x = x + self.drop(self.attn(self.norm1(x), cache))
        return x + self.drop(self.mlp(self.norm2(x)))


class GPT(nn.Module):
    def __init__(self, cfg: ModelParams, vocab_size: int):
        super().__init__()
        self.cfg = cfg
        self.vocab_size = vocab_size
        V = padded_vocab(vocab_size)
        self.wte = nn.Embedding(V, cfg.n_embd)
        self.wpe = nn.Embedding(cfg.block_size, cfg.n_embd) if cfg.position == "learned" else None
        self.drop = nn.Dropout(cfg.dropout)
        self.blocks = nn.ModuleList(Block(cfg) for _ in range(cfg.n_layer))
        self.norm_f = make_norm(cfg, cfg.n_embd)
        self.lm_head = nn.Linear(cfg.n_embd, V, bias=False)
        if cfg.tie_embeddings:
            self.lm_head.weight = self.wte.weight
        self.grad_checkpointing = False
        self.apply(self._init_weights)

    @staticmethod
    def _init_weights(module: nn.Module) -> None:
        if isinstance(module, nn.Linear):
            # Output projections start at zero: each block begins as the identity, which trains faster.
            if getattr(module, "zero_init", False):
                nn.init.zeros_(module.weight)
            else:
                nn.init.normal_(module.weight, mean=0.0, std=0.02)
            if module.bias is not None:
                nn.init.zeros_(module.bias)
        elif isinstance(module, nn.Embedding):
            nn.init.normal_(module.weight, mean=0.0, std=0.02)

    def forward(self, idx: torch.Tensor, targets: torch.Tensor | None = None, reduction: str = "mean",
                cache: KVCache | RowsCache | None = None) -> tuple[torch.Tensor, torch.Tensor | None]:
        """idx, targets: [B, T] token ids. Returns logits [B, T, vocab_size] (detached when there are
        targets) and the loss (or None).

        With a cache (inference, no targets): idx are the tokens after the cached ones, at positions
        cache.length.. (which must stay below block_size); their keys and values are added to the cache,
        and the logits are the last position's alone, [B, 1, vocab_size]: all a decoding step needs.
        A RowsCache takes one token per row in use ([n, 1]), each at its own row's position.
        """
        B, T = idx.shape
        if isinstance(cache, RowsCache):
            start = cache.start_step(B, T)  # [B]
        elif cache is not None:
            if cache.length + T > cache.capacity:
                raise ValueError(f"the KV cache holds {cache.capacity} positions: {cache.length} + {T} do not fit")
            start = cache.length
        else:
            start = 0
        x = self.wte(idx)  # [B, T, C]
        if self.wpe is not None:
            x = x + self.wpe(token_positions(start, T).to(idx.device))  # + [T, C], or [B, T, C] per row
        x = self.drop(x)
        for i, block in enumerate(self.blocks):
            if cache is not None:
                x = block(x, cache.layers[i])
            elif self.grad_checkpointing and self.training:
                x = checkpoint(block, x, use_reentrant=False)  # recompute activations in backward: less memory
            else:
                x = block(x)
        if cache is not None:
            x = x[:, -1:]  # [B, 1, C]: the prefill's other positions need no logits
        x = self.norm_f(x)
        logits = self.lm_head(x)  # [B, T, V]
        if logits.size(-1) != self.vocab_size:
            logits = logits[..., :self.vocab_size]  # [B, T, vocab]: padding columns are never predicted
        if self.cfg.logit_softcap > 0:
            cap = self.cfg.logit_softcap
            logits = cap * torch.tanh(logits / cap)
        if targets is None:
            return logits, None
        loss = cross_entropy(logits.view(B * T, -1), targets.reshape(B * T), reduction)
        # With a loss, the gradient flows through it alone: compiled, logits that require grad would get an
        # all-zero gradient buffer of their own in backward (65 MB at the default shape).
        return logits.detach(), loss

    # ------------------------------------------------------------------ accounting

    def num_params(self, non_embedding: bool = True) -> int:
        n = sum(p.numel() for p in self.parameters())
        if non_embedding:
            n -= self.wte.weight.numel()
            if self.wpe is not None:
                n -= self.wpe.weight.numel()
        return n

    def flops_per_token(self, seq_len: int | None = None) -> int:
        """Training FLOPs per token: 6 N (matmul weights, forward + backward) + attention (PaLM, appendix B)."""
        T = seq_len or self.cfg.block_size
        n_matmul = sum(p.numel() for p in self.blocks.parameters() if p.dim() == 2) + self.lm_head.weight.numel()
        return 6 * n_matmul + 12 * self.cfg.n_layer * self.cfg.n_embd * T

    def new_cache(self) -> KVCache:
        """An empty KV cache for decoding (see forward and stages/lib/model/decoding.py)."""
        return KVCache(self.cfg.n_layer, self.cfg.block_size)

    def new_rows_cache(self, max_rows: int) -> RowsCache:
        """An empty cache for up to max_rows sequences of their own lengths (decoding.Batch: the server)."""
        return RowsCache(self.cfg.n_layer, max_rows, self.cfg.block_size, self.wte.weight.device)
