"""Text generation: greedy, temperature, top-k and nucleus (top-p) sampling, with a KV cache.

A language model gives, for the last position, a score (logit) z_i for every token i of the
vocabulary. Generation turns those scores into the next token and repeats:

    greedy (temperature 0):  next = argmax_i z_i
    temperature T > 0:       p_i = softmax(z / T)_i = exp(z_i / T) / sum_j exp(z_j / T)
                             (T < 1 sharpens the distribution, T > 1 flattens it)
    top-k:                   keep the k largest logits, set the others to -inf, then softmax
    top-p (nucleus):         sort p descending, keep the smallest prefix whose cumulative
                             probability reaches p, set the others to -inf, then softmax

The KV cache. Without it, every new token re-runs the model over the whole context: step t costs
O(t) token-passes, so n new tokens cost O(n^2). The keys and values of the earlier positions never
change (causal attention: position s only sees positions <= s), so a model can keep them and feed
only the newest token: each step costs one token-pass plus attention over the cache.

The model interface generate() relies on (``llm_from_scratch.gpt.GPT`` has both):

- ``model(idx)`` -> logits of shape (B, T, V), or a tuple whose first element is the logits;
- for ``use_cache=True``: ``model.forward_cached(idx, cache) -> (logits, cache)``, where
  ``cache=None`` starts a new cache filled from ``idx`` (the prefill) and a returned cache is fed
  back with the next token(s) only. The cache must give exactly the logits of the uncached path.

The context limit. Learned position embeddings exist for positions 0 .. block_size-1 only.
Without a cache, the context is cropped to its last block_size tokens at every step. With a cache,
positions are baked into the cached keys and values, so a cache cannot slide; when it holds
block_size positions, generate() falls back to recomputation over the last block_size tokens for
the remaining steps, which is exactly what the uncached path does, so the tokens are the same.
The speed-up therefore applies while the sequence fits in block_size.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F


def _check_sampling_args(temperature: float, top_k: int | None, top_p: float | None) -> None:
    if not isinstance(temperature, (int, float)) or math.isnan(temperature) or temperature < 0:
        raise ValueError(f"temperature must be a number >= 0 (0 means greedy decoding), got {temperature!r}")
    if math.isinf(temperature):
        raise ValueError("temperature must be finite; use a large value such as 100 for nearly uniform sampling")
    if top_k is not None and (isinstance(top_k, bool) or not isinstance(top_k, int) or top_k < 1):
        raise ValueError(f"top_k must be None (no top-k filtering) or an integer >= 1, got {top_k!r}")
    if top_p is not None and (not isinstance(top_p, (int, float)) or not (0.0 < top_p <= 1.0)):
        raise ValueError(f"top_p must be None (no nucleus filtering) or in (0, 1], got {top_p!r}")


def top_k_filter(logits: torch.Tensor, k: int) -> torch.Tensor:
    """Keep the k largest logits of each row, set the rest to -inf. logits: (..., V) -> (..., V).

    Ties with the k-th largest value are kept (the same rule as nanoGPT), so a row may keep more
    than k tokens when scores tie. k >= V keeps everything.
    """
    if k >= logits.size(-1):
        return logits
    kth_largest = torch.topk(logits, k, dim=-1).values[..., -1:]
    return logits.masked_fill(logits < kth_largest, float("-inf"))


def top_p_filter(logits: torch.Tensor, p: float) -> torch.Tensor:
    """Nucleus filtering: keep the smallest set of most likely tokens whose probability sums to >= p.

    logits: (..., V) -> (..., V) with the tokens outside the nucleus at -inf. The most likely token
    is always kept, so p -> 0 becomes greedy decoding and p = 1 keeps every token.
    """
    if p >= 1.0:
        return logits
    sorted_logits, sorted_idx = torch.sort(logits, dim=-1, descending=True)
    sorted_probs = F.softmax(sorted_logits.float(), dim=-1)
    # Probability mass strictly before each token: a token is in the nucleus when the tokens
    # ranked above it have not yet reached p.
    mass_before = torch.cumsum(sorted_probs, dim=-1) - sorted_probs
    remove_sorted = mass_before >= p
    remove_sorted[..., 0] = False
    remove = torch.zeros_like(remove_sorted).scatter(-1, sorted_idx, remove_sorted)
    return logits.masked_fill(remove, float("-inf"))


def sample_next_token(
    logits: torch.Tensor,
    temperature: float = 1.0,
    top_k: int | None = None,
    top_p: float | None = None,
    generator: torch.Generator | None = None,
    vocab_size: int | None = None,
) -> torch.Tensor:
    """Choose one token per row from last-position logits (B, V) -> LongTensor (B,).

    temperature == 0 is greedy (argmax; top_k and top_p then change nothing). Otherwise the logits
    are divided by the temperature, filtered by top-k and then top-p, and one token is drawn from
    the softmax with ``generator`` (which must live on the logits' device).
    """
    _check_sampling_args(temperature, top_k, top_p)
    if logits.dim() != 2:
        raise ValueError(f"logits must have shape (batch, vocab), got {tuple(logits.shape)}")
    if temperature == 0:
        return logits.argmax(dim=-1)
    logits = logits.float() / temperature
    if top_k is not None:
        logits = top_k_filter(logits, top_k)
    if top_p is not None:
        logits = top_p_filter(logits, top_p)
    probs = F.softmax(logits, dim=-1)
    return torch.multinomial(probs, num_samples=1, generator=generator).squeeze(-1)


def _model_block_size(model) -> int | None:
    config = getattr(model, "config", None)
    if config is not None and getattr(config, "block_size", None) is not None:
        return int(config.block_size)
    size = getattr(model, "block_size", None)
    return int(size) if size is not None else None


def _logits_of(output) -> torch.Tensor:
    return output[0] if isinstance(output, (tuple, list)) else output


@torch.no_grad()
def generate(
    model,
    idx: torch.Tensor,
    max_new_tokens: int,
    temperature: float = 1.0,
    top_k: int | None = None,
    top_p: float | None = None,
    eos_id: int | None = None,
    use_cache: bool = True,
    generator: torch.Generator | None = None,
    vocab_size: int | None = None,
) -> torch.Tensor:
    """Extend each row of ``idx`` (B, T) by up to ``max_new_tokens`` tokens -> LongTensor (B, T + n).

    - temperature == 0: greedy; otherwise sampling with temperature, then top-k, then top-p.
    - eos_id: a row that produces eos_id is finished; its later positions are filled with eos_id
      (the padding of finished rows), and generation stops early once every row has finished, so
      n <= max_new_tokens. Without eos_id, n == max_new_tokens.
    - use_cache: feed only the newest token through the model and reuse the keys and values of
      the earlier ones (see the module docstring for the fallback once the cache reaches
      block_size). The tokens are the same as with use_cache=False.
    - generator: a torch.Generator for reproducible sampling (unused when greedy).
    - vocab_size: sample only ids < vocab_size (the tokenizer's size): the extra rows of a vocabulary
      padded to a multiple of 64 for speed are never emitted.

    A model whose forward takes ``last_only`` (``gpt.GPT``) computes the logits of the last position
    only: generation does not pay for the output layer at every position.

    The model is put in eval mode (no dropout) for the call and restored afterwards.
    """
    _check_sampling_args(temperature, top_k, top_p)
    if isinstance(max_new_tokens, bool) or not isinstance(max_new_tokens, int) or max_new_tokens < 0:
        raise ValueError(f"max_new_tokens must be an integer >= 0, got {max_new_tokens!r}")
    if not isinstance(idx, torch.Tensor) or idx.dim() != 2:
        shape = tuple(idx.shape) if isinstance(idx, torch.Tensor) else type(idx).__name__
        raise ValueError(f"idx must be a LongTensor of shape (batch, time); got {shape}. "
                         "For a single prompt use idx[None] (or idx.unsqueeze(0))")
    if idx.dtype != torch.long:
        raise ValueError(f"idx must hold token ids as torch.long, got {idx.dtype}")
    if idx.size(1) == 0:
        raise ValueError("idx has no tokens: give at least one prompt token (e.g. a BOS or newline id)")
    if use_cache and not hasattr(model, "forward_cached"):
        raise TypeError(f"{type(model).__name__} has no KV cache (no forward_cached method); "
                        "call generate(..., use_cache=False)")

    if vocab_size is not None and (isinstance(vocab_size, bool) or not isinstance(vocab_size, int) or vocab_size < 1):
        raise ValueError(f"vocab_size must be None or a positive integer, got {vocab_size!r}")
    import inspect

    try:
        last = {"last_only": True} if "last_only" in inspect.signature(model.forward).parameters else {}
    except (TypeError, ValueError):
        last = {}
    cached_last = last if use_cache and "last_only" in inspect.signature(model.forward_cached).parameters else {}
    block_size = _model_block_size(model)
    was_training = model.training
    model.eval()
    try:
        out = idx
        finished = torch.zeros(idx.size(0), dtype=torch.bool, device=idx.device)
        cache, cached_len = None, 0
        for _ in range(max_new_tokens):
            cache_fits = block_size is None or cached_len < block_size
            if use_cache and cache is None:
                # Prefill: the whole (cropped) prompt in one pass fills the cache.
                context = out if block_size is None else out[:, -block_size:]
                logits, cache = model.forward_cached(context, None, **cached_last)
                cached_len = context.size(1)
            elif use_cache and cache_fits:
                logits, cache = model.forward_cached(out[:, -1:], cache)
                cached_len += 1
            else:
                # No cache, or the cache is full: recompute over the last block_size tokens.
                context = out if block_size is None else out[:, -block_size:]
                logits = _logits_of(model(context, **last))
            scores = logits[:, -1, :]
            if vocab_size is not None and vocab_size < scores.size(-1):
                scores = scores[:, :vocab_size]  # ids >= vocab_size are padding rows: never sampled
            next_token = sample_next_token(scores, temperature, top_k, top_p, generator)
            if eos_id is not None:
                next_token = torch.where(finished, torch.full_like(next_token, eos_id), next_token)
                finished |= next_token == eos_id
            out = torch.cat([out, next_token[:, None]], dim=1)
            if eos_id is not None and bool(finished.all()):
                break
        return out
    finally:
        model.train(was_training)
