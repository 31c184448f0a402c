"""Attention, from the formula up: scaled dot-product attention, masks, multi-head attention,
and the two ways a Transformer learns where a token is (sinusoidal and learned positions).

    Attention(Q, K, V) = softmax(Q Kᵀ / √d_k) V                       (Vaswani et al., 2017)
    MultiHead(Q, K, V) = Concat(head_1, ..., head_h) Wᴼ,  head_i = Attention(Q W_i^Q, K W_i^K, V W_i^V)
    PE(pos, 2i) = sin(pos / 10000^(2i/d)),  PE(pos, 2i+1) = cos(pos / 10000^(2i/d))

Shapes: B batch, H heads, T queries, S keys (S = T in self-attention without a cache),
d = d_k the size of one query/key vector, d_model = H * d_head.

Masks follow torch's convention everywhere: a boolean mask is True where a query MAY attend
to a key. A query whose row is all False attends to nothing and gets a zero output (and zero
weights), never NaN.

This is chapter 03 (``chapters/03_attention.ipynb``); ``gpt`` and ``bert`` build on
``MultiHeadAttention``.
"""

from __future__ import annotations

import math

import torch
import torch.nn as nn
import torch.nn.functional as F

__all__ = [
    "causal_mask",
    "scaled_dot_product_attention",
    "MultiHeadAttention",
    "repeat_kv",
    "SinusoidalPositionalEncoding",
    "sinusoidal_positional_encoding",
    "LearnedPositionalEmbedding",
]

KVCache = tuple[torch.Tensor, torch.Tensor]


# --------------------------------------------------------------------------------------------
# Masks
# --------------------------------------------------------------------------------------------
def causal_mask(T: int, S: int | None = None, device: torch.device | str | None = None) -> torch.Tensor:
    """The causal ("no peeking at the future") mask: a bool tensor (T, S), True = may attend.

    Query i may attend to key j when j <= i + (S - T). With S = T (the default) this is the
    lower triangle, diagonal included. With S > T the T queries are the LAST T positions of a
    sequence of S keys (generation with a KV cache: S - T keys are cached), so the triangle is
    aligned to the bottom-right corner:

        causal_mask(2, 4) = [[1, 1, 1, 0],     # query at absolute position 2 sees keys 0..2
                             [1, 1, 1, 1]]     # query at absolute position 3 sees keys 0..3

    (``torch.nn.functional.scaled_dot_product_attention(is_causal=True)`` aligns to the top-left
    instead; the two agree when S = T.)
    """
    S = T if S is None else S
    if T < 0 or S < 0:
        raise ValueError(f"causal_mask needs non-negative sizes, got T={T}, S={S}")
    if S < T:
        raise ValueError(
            f"causal_mask(T={T}, S={S}): fewer keys than queries. The queries are the last T of the "
            f"S positions, so S must be >= T (S = cached keys + T)."
        )
    return torch.ones(T, S, dtype=torch.bool, device=device).tril(diagonal=S - T)


def _check_mask(mask: torch.Tensor, target: tuple[int, ...], where: str) -> None:
    """A clear error for a mask of the wrong kind or shape (rather than a broadcasting error deep in torch)."""
    if mask.dtype != torch.bool and not mask.is_floating_point():
        raise TypeError(
            f"{where}: mask must be bool (True = may attend) or float (added to the scores), "
            f"got dtype {mask.dtype}. Convert a 0/1 mask with mask.bool()."
        )
    try:
        shape = torch.broadcast_shapes(mask.shape, target)
    except RuntimeError:
        shape = None
    if shape != torch.Size(target):
        raise ValueError(
            f"{where}: mask of shape {tuple(mask.shape)} does not broadcast to the scores' shape "
            f"{target} (..., T queries, S keys)."
        )


# --------------------------------------------------------------------------------------------
# Scaled dot-product attention
# --------------------------------------------------------------------------------------------
def scaled_dot_product_attention(
    q: torch.Tensor,
    k: torch.Tensor,
    v: torch.Tensor,
    mask: torch.Tensor | None = None,
    dropout_p: float = 0.0,
    training: bool = True,
    *,
    is_causal: bool = False,
    scale: float | None = None,
    generator: torch.Generator | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """softmax(Q Kᵀ / √d_k + mask) V, written out so that the weights can be looked at.

    Args:
        q: (..., T, d) queries.  k: (..., S, d) keys.  v: (..., S, d_v) values.
            Leading dimensions broadcast (e.g. (B, H, T, d) against (B, H, S, d)).
        mask: optional, broadcastable to (..., T, S). Bool: True = may attend (torch's
            convention). Float: added to the scores (0 = attend, -inf = don't).
        dropout_p: probability of zeroing an attention weight (only when ``training``), the
            survivors scaled by 1 / (1 - p), as in ``F.dropout``.
        training: apply dropout or not (pass ``module.training``).
        is_causal: also apply ``causal_mask(T, S)`` (bottom-right aligned: the queries are the
            last T of S positions).
        scale: multiplies the scores; default 1 / √d.
        generator: for reproducible dropout.

    Returns:
        out: (..., T, d_v) = weights @ v.
        weights: (..., T, S) the attention probabilities, each row summing to 1 (before dropout),
            or a row of zeros for a query that may attend to no key (its output is zero too).
    """
    if q.dim() < 2 or k.dim() < 2 or v.dim() < 2:
        raise ValueError(
            f"q, k, v need at least 2 dimensions (..., length, features); got shapes "
            f"{tuple(q.shape)}, {tuple(k.shape)}, {tuple(v.shape)}"
        )
    if q.shape[-1] != k.shape[-1]:
        raise ValueError(f"queries and keys must have the same last dim d_k: q {tuple(q.shape)}, k {tuple(k.shape)}")
    if k.shape[-2] != v.shape[-2]:
        raise ValueError(f"keys and values must have the same length S: k {tuple(k.shape)}, v {tuple(v.shape)}")
    if not 0.0 <= dropout_p < 1.0:
        raise ValueError(f"dropout_p must be in [0, 1), got {dropout_p}")
    T, S = q.shape[-2], k.shape[-2]
    scale = 1.0 / math.sqrt(q.shape[-1]) if scale is None else scale

    scores = (q @ k.transpose(-2, -1)) * scale  # (..., T, S): how well query t matches key s
    if scores.dtype in (torch.float16, torch.bfloat16):
        scores = scores.float()  # softmax in fp32: exp() of half-precision scores loses too much
    if is_causal:
        scores = scores.masked_fill(~causal_mask(T, S, device=scores.device), float("-inf"))
    if mask is not None:
        _check_mask(mask, tuple(scores.shape), "scaled_dot_product_attention")
        if mask.dtype == torch.bool:
            scores = scores.masked_fill(~mask, float("-inf"))
        else:
            scores = scores + mask

    # A row that is -inf everywhere has no softmax (0/0 = NaN). Give it harmless finite scores
    # and zero its weights afterwards: the output is 0 and no NaN reaches the gradients.
    # (Only a mask can empty a row: the bottom-right causal mask always leaves key 0. The test is a
    # tensor op, not a Python `if` on data, so the graph compiles whole.)
    if mask is not None:
        dead = scores.amax(dim=-1, keepdim=True) == float("-inf")
        scores = scores.masked_fill(dead, 0.0)
        weights = torch.softmax(scores, dim=-1).masked_fill(dead, 0.0)
    else:
        weights = torch.softmax(scores, dim=-1)
    weights = weights.to(q.dtype)

    dropped = weights
    if dropout_p > 0.0 and training:
        keep = torch.rand(weights.shape, device=weights.device, generator=generator) >= dropout_p
        dropped = weights * keep / (1.0 - dropout_p)
    return dropped @ v, weights


# --------------------------------------------------------------------------------------------
# Multi-head attention
# --------------------------------------------------------------------------------------------
def repeat_kv(x: torch.Tensor, n_rep: int) -> torch.Tensor:
    """Grouped-query attention's sharing rule: (B, H_kv, S, d) -> (B, H_kv * n_rep, S, d).

    Each key/value head is repeated ``n_rep`` times in a row, so query head h reads key/value head
    h // n_rep (the layout of ``transformers``' ``repeat_kv``). ``n_rep = 1`` returns x itself.
    """
    if n_rep < 1:
        raise ValueError(f"repeat_kv needs n_rep >= 1, got {n_rep}")
    return x if n_rep == 1 else torch.repeat_interleave(x, n_rep, dim=1)


class MultiHeadAttention(nn.Module):
    """MultiHead(X) = Concat(head_1, ..., head_h) Wᴼ,  head_i = Attention(X W_i^Q, C W_i^K, C W_i^V).

    Self-attention (C = X, the default) or cross-attention (``cross=True``: C is another
    sequence, the ``context``, e.g. an encoder's output) over x of shape (B, T, d_model), with
    ``n_heads`` query heads of size d_head (default d_model / n_heads) and ``n_kv_heads`` key/value
    heads (default n_heads). With n_kv_heads < n_heads (grouped-query attention, GQA) each
    key/value head serves n_heads / n_kv_heads query heads (see ``repeat_kv``), and a KV cache
    holds only n_kv_heads heads.

    Parameters (the layout that weights from elsewhere are mapped onto):
        qkv:      (self-attention) nn.Linear(d_model, (n_heads + 2 n_kv_heads) d_head). Its
                  weight's rows are [W_q; W_k; W_v] in that order, and inside each block the heads
                  are contiguous: rows h*d_head : (h+1)*d_head of W_q belong to head h. With
                  n_kv_heads = n_heads this is exactly ``torch.nn.MultiheadAttention.in_proj_weight``
                  / ``in_proj_bias``, and the transpose of GPT-2's ``c_attn.weight`` (a Conv1D:
                  (d_model, 3*d_model)). BERT's separate query/key/value Linears are ``torch.cat``
                  of their weights.
        q_proj, kv_proj: (cross-attention) nn.Linear(d_model, n_heads d_head) for the queries
                  and nn.Linear(d_context, 2 n_kv_heads d_head) for [W_k; W_v] of the context.
        out_proj: nn.Linear(n_heads d_head, d_model), Wᴼ (torch's ``out_proj``, GPT-2's ``c_proj``).

    Dropout (``dropout``) is applied to the attention weights only, as torch's module does; the
    dropout on the residual branch belongs to the Transformer block.

    forward(x, mask=None, past_kv=None, use_cache=False, need_weights=None, context=None)
        x:        (B, T, d_model).
        mask:     optional bool (True = may attend / is a real token), one of
                    (B, S)          a key-padding mask: key s of sequence b is real.
                                    (A 2-D mask is ALWAYS read as key padding.)
                    4-D             broadcastable to (B, H, T, S), e.g. (B, 1, T, S) or (1, 1, T, S).
                  It is combined (AND) with the causal mask when ``causal=True``. A float 4-D
                  mask is added to the scores instead. In cross-attention it is the context's
                  padding mask (B, S).
        past_kv:  optional cache (k, v), each (B, n_kv_heads, S_past, d_head), from an earlier
                  call with ``use_cache=True``. Self-attention appends the new keys and values to
                  it, so the T queries of x are positions S_past .. S_past + T - 1 and attend to
                  all S = S_past + T keys (causally: query i sees keys 0 .. S_past + i); a padding
                  mask must then cover all S keys: shape (B, S). Cross-attention reuses it as it
                  is (the projected context, computed once), and ``context`` may be None.
        use_cache: also return the cache (k, v) of all S keys, to pass as ``past_kv`` next time.
        need_weights: use the explicit path and keep the weights (B, H, T, S) in
                  ``self.last_attn_weights`` (detached) for plots. Default: the attribute
                  ``self.need_weights`` (False): the fast path, ``F.scaled_dot_product_attention``,
                  which on a GPU dispatches to flash / memory-efficient kernels.
        context:  (B, S, d_context), the sequence that cross-attention reads keys and values from.

    Returns ``out`` (B, T, d_model), or ``(out, (k, v))`` when ``use_cache``.

    The forward pass is two public steps, so that a variant can change the queries and keys in
    between (a Llama block applies RoPE and q/k norms there)::

        q, k, v = attn.project(x)              # (B, H, T, d_head), (B, H_kv, S, d_head) twice
        out = attn.attend(q, k, v, mask)       # cache, GQA repeat, masks, attention, Wᴼ

    Generation, token by token::

        out, cache = attn(prompt, use_cache=True)                 # T = prompt length
        out, cache = attn(next_token, past_kv=cache, use_cache=True)  # T = 1, S grows by one
    """

    def __init__(
        self,
        d_model: int,
        n_heads: int,
        dropout: float = 0.0,
        bias: bool = True,
        causal: bool = False,
        *,
        n_kv_heads: int | None = None,
        d_head: int | None = None,
        cross: bool = False,
        d_context: int | None = None,
    ):
        super().__init__()
        if n_heads <= 0 or d_model <= 0 or (d_head is None and d_model % n_heads != 0):
            raise ValueError(
                f"d_model ({d_model}) must be a positive multiple of n_heads ({n_heads}): "
                f"each head gets d_model / n_heads features (or pass d_head)"
            )
        n_kv_heads = n_heads if n_kv_heads is None else n_kv_heads
        if n_kv_heads <= 0 or n_heads % n_kv_heads != 0:
            raise ValueError(
                f"n_kv_heads ({n_kv_heads}) must divide n_heads ({n_heads}): each key/value head "
                f"serves n_heads / n_kv_heads query heads"
            )
        if d_head is not None and d_head <= 0:
            raise ValueError(f"d_head must be positive, got {d_head}")
        if not 0.0 <= dropout < 1.0:
            raise ValueError(f"dropout must be in [0, 1), got {dropout}")
        if cross and causal:
            raise ValueError("cross-attention reads another sequence: it has no causal mask (causal=False)")
        self.d_model = d_model
        self.n_heads = n_heads
        self.n_kv_heads = n_kv_heads
        self.d_head = d_model // n_heads if d_head is None else d_head
        self.dropout = dropout
        self.causal = causal
        self.cross = cross
        q_size, kv_size = n_heads * self.d_head, n_kv_heads * self.d_head
        if cross:
            self.q_proj = nn.Linear(d_model, q_size, bias=bias)
            self.kv_proj = nn.Linear(d_model if d_context is None else d_context, 2 * kv_size, bias=bias)
        else:
            self.qkv = nn.Linear(d_model, q_size + 2 * kv_size, bias=bias)  # [W_q; W_k; W_v] in one matmul
        self.out_proj = nn.Linear(q_size, d_model, bias=bias)  # Wᴼ
        self.need_weights = False
        self.last_attn_weights: torch.Tensor | None = None

    def extra_repr(self) -> str:
        kv = f", n_kv_heads={self.n_kv_heads}" if self.n_kv_heads != self.n_heads else ""
        return (
            f"d_model={self.d_model}, n_heads={self.n_heads}{kv}, d_head={self.d_head}, "
            f"dropout={self.dropout}, causal={self.causal}, cross={self.cross}"
        )

    def _split_heads(self, t: torch.Tensor, n: int) -> torch.Tensor:
        B, T, _ = t.shape  # (B, T, n * d_head) -> (B, n, T, d_head)
        return t.view(B, T, n, self.d_head).transpose(1, 2)

    def project(self, x: torch.Tensor, context: torch.Tensor | None = None):
        """Q = X W_q, K = C W_k, V = C W_v, split into heads.

        Returns q (B, n_heads, T, d_head) and k, v (B, n_kv_heads, S, d_head); C = x for
        self-attention, C = ``context`` (B, S, d_context) for cross-attention.
        """
        if x.dim() != 3 or x.shape[-1] != self.d_model:
            raise ValueError(f"x must be (B, T, d_model={self.d_model}), got {tuple(x.shape)}")
        q_size, kv_size = self.n_heads * self.d_head, self.n_kv_heads * self.d_head
        if self.cross:
            if context is None or context.dim() != 3 or context.shape[0] != x.shape[0]:
                got = None if context is None else tuple(context.shape)
                raise ValueError(
                    f"cross-attention needs context (B={x.shape[0]}, S, d_context), the sequence "
                    f"it reads keys and values from; got {got}"
                )
            q = self.q_proj(x)
            k, v = self.kv_proj(context).split(kv_size, dim=-1)
        else:
            q, k, v = self.qkv(x).split([q_size, kv_size, kv_size], dim=-1)
        return self._split_heads(q, self.n_heads), self._split_heads(k, self.n_kv_heads), self._split_heads(v, self.n_kv_heads)

    def _build_mask(self, mask: torch.Tensor | None, B: int, T: int, S: int, device) -> torch.Tensor | None:
        """The caller's mask as something broadcastable to (B, H, T, S), AND the causal mask."""
        if mask is not None:
            if mask.dim() == 2:
                if mask.dtype != torch.bool:
                    raise TypeError(
                        f"a key-padding mask (B, S) must be bool (True = real token), got {mask.dtype}; "
                        f"use attention_mask.bool()"
                    )
                if tuple(mask.shape) != (B, S):
                    raise ValueError(
                        f"a 2-D mask is a key-padding mask and must have shape (B, S) = {(B, S)} "
                        f"(S = cached + new keys), got {tuple(mask.shape)}. For a (T, S) attention "
                        f"mask pass mask[None, None] (shape (1, 1, T, S))."
                    )
                mask = mask[:, None, None, :]  # (B, 1, 1, S): the same keys hidden from every query
            elif mask.dim() == 4:
                _check_mask(mask, (B, self.n_heads, T, S), "MultiHeadAttention")
            else:
                raise ValueError(
                    f"MultiHeadAttention mask must be 2-D (B, S) key padding or 4-D broadcastable to "
                    f"(B, H, T, S) = {(B, self.n_heads, T, S)}; got shape {tuple(mask.shape)}. "
                    f"Add the missing axes with mask[:, None] (heads) or mask[None, None]."
                )
        if self.causal:
            c = causal_mask(T, S, device=device)
            if mask is None:
                mask = c
            elif mask.dtype == torch.bool:
                mask = mask & c
            else:
                mask = torch.where(c, mask, torch.full((), float("-inf"), dtype=mask.dtype, device=device))
        return mask

    def attend(
        self,
        q: torch.Tensor,
        k: torch.Tensor,
        v: torch.Tensor,
        mask: torch.Tensor | None = None,
        past_kv: KVCache | None = None,
        use_cache: bool = False,
        need_weights: bool | None = None,
    ):
        """The rest of the forward pass after ``project``: extend the cache (self-attention), share
        the key/value heads among the query heads (GQA), mask, attend, Concat(heads) Wᴼ.

        q (B, n_heads, T, d_head); k, v (B, n_kv_heads, S_new, d_head). Returns out (B, T, d_model),
        or (out, (k, v)) with ``use_cache`` (k, v with n_kv_heads heads and all S keys).
        """
        B, _, T, _ = q.shape
        if past_kv is not None:
            k_past, v_past = past_kv
            expected = (B, self.n_kv_heads, k_past.shape[2], self.d_head)
            if tuple(k_past.shape) != expected or tuple(v_past.shape) != expected:
                raise ValueError(
                    f"past_kv must be (k, v), each (B, H_kv, S_past, d_head) = {expected}; got "
                    f"{tuple(k_past.shape)} and {tuple(v_past.shape)}"
                )
            k = torch.cat([k_past, k], dim=2)
            v = torch.cat([v_past, v], dim=2)
        cache = (k, v)
        S = k.shape[2]
        n_rep = self.n_heads // self.n_kv_heads
        # torch's kernel shares the key/value heads itself (enable_gqa, the same h // n_rep rule as
        # repeat_kv) without copying them; the explicit path below repeats them by hand.
        gqa = n_rep > 1
        need_weights = self.need_weights if need_weights is None else need_weights
        p = self.dropout if self.training else 0.0

        if need_weights:
            full_mask = self._build_mask(mask, B, T, S, q.device)
            k, v = repeat_kv(k, n_rep), repeat_kv(v, n_rep)  # (B, n_heads, S, d_head)
            y, weights = scaled_dot_product_attention(q, k, v, full_mask, dropout_p=p, training=self.training)
            self.last_attn_weights = weights.detach()
        elif mask is None and self.causal and T == S:
            # No padding and no cache: torch's own causal flag lets flash attention skip the
            # masked half of the matrix instead of reading a mask.
            y = F.scaled_dot_product_attention(q, k, v, dropout_p=p, is_causal=True, enable_gqa=gqa)
        elif mask is None and (T == 1 or not self.causal):
            # Nothing to hide: no mask, or one new query (cached decoding), which is the latest
            # position, so the causal mask would allow every key.
            y = F.scaled_dot_product_attention(q, k, v, dropout_p=p, enable_gqa=gqa)
        else:
            full_mask = self._build_mask(mask, B, T, S, q.device)
            # Some kernels return NaN for a query with no key to attend to (e.g. a left-pad token
            # under a causal mask). Let such rows attend to everything, then zero them. Done
            # unconditionally (no `if dead.any()`), so the graph has no data-dependent branch and
            # compiles whole (torch.compile(fullgraph=True)).
            allowed = full_mask if full_mask.dtype == torch.bool else full_mask > float("-inf")
            dead = ~allowed.any(dim=-1, keepdim=True)  # (..., T, 1)
            full_mask = (full_mask | dead) if full_mask.dtype == torch.bool else full_mask.masked_fill(dead, 0.0)
            y = F.scaled_dot_product_attention(q, k, v, attn_mask=full_mask, dropout_p=p, enable_gqa=gqa)
            y = y.masked_fill(dead, 0.0)

        y = y.transpose(1, 2).reshape(B, T, self.n_heads * self.d_head)  # Concat(head_1, ..., head_h)
        out = self.out_proj(y)
        return (out, cache) if use_cache else out

    def forward(
        self,
        x: torch.Tensor,
        mask: torch.Tensor | None = None,
        past_kv: KVCache | None = None,
        use_cache: bool = False,
        need_weights: bool | None = None,
        context: torch.Tensor | None = None,
    ):
        if x.dim() != 3 or x.shape[-1] != self.d_model:
            raise ValueError(f"x must be (B, T, d_model={self.d_model}), got {tuple(x.shape)}")
        if self.cross and past_kv is not None:
            # The context's keys and values were projected once (the first call); reuse them.
            q = self._split_heads(self.q_proj(x), self.n_heads)
            k, v = past_kv
            expected = (x.shape[0], self.n_kv_heads, k.shape[2], self.d_head)
            if tuple(k.shape) != expected or tuple(v.shape) != expected:
                raise ValueError(
                    f"cross-attention past_kv must be the projected context (k, v), each (B, H_kv, S, d_head) "
                    f"= {expected}; got {tuple(k.shape)} and {tuple(v.shape)}"
                )
            return self.attend(q, k, v, mask, None, use_cache, need_weights)
        if not self.cross and context is not None:
            raise ValueError("context is for cross-attention: build the module with cross=True")
        q, k, v = self.project(x, context)
        return self.attend(q, k, v, mask, past_kv, use_cache, need_weights)


# --------------------------------------------------------------------------------------------
# Positions
# --------------------------------------------------------------------------------------------
def sinusoidal_positional_encoding(max_len: int, d_model: int, base: float = 10000.0) -> torch.Tensor:
    """The table PE (max_len, d_model) in float32:

        PE(pos, 2i)   = sin(pos / base^(2i / d_model))
        PE(pos, 2i+1) = cos(pos / base^(2i / d_model))

    Each pair of columns (2i, 2i+1) is a rotating 2-D point with wavelength 2π·base^(2i/d):
    fast in the first columns, slow in the last. (An odd d_model's last column is a sine.)
    """
    if max_len <= 0 or d_model <= 0:
        raise ValueError(f"max_len and d_model must be positive, got max_len={max_len}, d_model={d_model}")
    pos = torch.arange(max_len, dtype=torch.float64)[:, None]  # (max_len, 1)
    two_i = torch.arange(0, d_model, 2, dtype=torch.float64)  # 0, 2, 4, ...
    angle = pos / base ** (two_i / d_model)  # (max_len, ceil(d/2)); float64 keeps large pos exact
    pe = torch.zeros(max_len, d_model, dtype=torch.float64)
    pe[:, 0::2] = torch.sin(angle)
    pe[:, 1::2] = torch.cos(angle[:, : d_model // 2])
    return pe.float()


def _check_positions(T: int, offset: int, max_len: int, what: str) -> None:
    if offset < 0:
        raise ValueError(f"{what}: offset must be >= 0, got {offset}")
    if offset + T > max_len:
        raise ValueError(
            f"{what}: positions {offset}..{offset + T - 1} do not fit max_len={max_len}. "
            f"Crop the sequence to its last {max_len} tokens or build the model with a larger max_len."
        )


class SinusoidalPositionalEncoding(nn.Module):
    """Adds the fixed sinusoidal table to token embeddings: x (B, T, d_model) -> x + PE[offset:offset+T].

    The table (see ``sinusoidal_positional_encoding``) is a non-persistent buffer: it moves with
    ``.to(device)`` but is not saved in a state dict (it is recomputed, never learned).
    ``offset`` is the position of x's first token (the number of cached tokens when generating).
    """

    def __init__(self, d_model: int, max_len: int = 5000, base: float = 10000.0):
        super().__init__()
        self.d_model, self.max_len = d_model, max_len
        self.register_buffer("pe", sinusoidal_positional_encoding(max_len, d_model, base), persistent=False)

    def encoding(self, T: int, offset: int = 0) -> torch.Tensor:
        """The rows PE[offset : offset + T], shape (T, d_model)."""
        _check_positions(T, offset, self.max_len, "SinusoidalPositionalEncoding")
        return self.pe[offset : offset + T]

    def forward(self, x: torch.Tensor, offset: int = 0) -> torch.Tensor:
        if x.shape[-1] != self.d_model:
            raise ValueError(f"x's last dim must be d_model={self.d_model}, got {tuple(x.shape)}")
        return x + self.encoding(x.shape[-2], offset).to(x.dtype)


class LearnedPositionalEmbedding(nn.Module):
    """A learned vector per position (GPT-2's ``wpe``, BERT's ``position_embeddings``):
    x (B, T, d_model) -> x + E[offset : offset + T], with E = ``self.embedding.weight`` (max_len, d_model).

    Unlike the sinusoidal table it cannot extrapolate: positions >= max_len were never trained,
    so asking for them is an error.
    """

    def __init__(self, max_len: int, d_model: int):
        super().__init__()
        self.max_len, self.d_model = max_len, d_model
        self.embedding = nn.Embedding(max_len, d_model)

    @property
    def weight(self) -> torch.Tensor:
        return self.embedding.weight

    def encoding(self, T: int, offset: int = 0) -> torch.Tensor:
        """The rows E[offset : offset + T], shape (T, d_model)."""
        _check_positions(T, offset, self.max_len, "LearnedPositionalEmbedding")
        positions = torch.arange(offset, offset + T, device=self.embedding.weight.device)
        return self.embedding(positions)

    def forward(self, x: torch.Tensor, offset: int = 0) -> torch.Tensor:
        if x.shape[-1] != self.d_model:
            raise ValueError(f"x's last dim must be d_model={self.d_model}, got {tuple(x.shape)}")
        return x + self.encoding(x.shape[-2], offset)
