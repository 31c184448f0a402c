"""Exercises of chapters 05-08: the references (the package's own code) and the public tests."""

from __future__ import annotations

import copy

import torch
import torch.nn.functional as F
from torch import nn

from llm_from_scratch import attention as A
from llm_from_scratch import finetune, generate, gpt, lora, mlm
from llm_from_scratch.exercises.core import Exercise, Mismatch, expect_close, generator, randn, same_as_reference

# ---------------------------------------------------------------------------------------------- 05


def mask_tokens(input_ids, vocab_size, mask_token_id, special_ids, generator):
    """BERT's 15% with 80/10/10, drawing in this order from ``generator`` (all of shape input_ids.shape):
    1. u = torch.rand: a token is selected when u < 0.15 and it is neither special nor [MASK];
    2. a = torch.rand: a selected token becomes [MASK] if a < 0.8, a random token if 0.8 <= a < 0.9,
       else stays;
    3. r = torch.randint(len(candidates)): the random token is candidates[r], candidates = the sorted ids
       of the vocabulary without the special ids and [MASK].
    Returns (inputs, labels): labels = the original id where selected, -100 elsewhere."""
    return mlm.mask_tokens(input_ids, vocab_size=vocab_size, mask_token_id=mask_token_id,
                           special_token_ids=special_ids, generator=generator)


def _masking_test(doc, seed, shape, vocab, specials):
    def test(fn):
        ids = torch.randint(vocab, shape, generator=generator(seed))
        ids[..., 0] = specials[0]  # a [CLS]-like special token at every row's start: never selected
        want = mask_tokens(ids.clone(), vocab, vocab - 1, list(specials), generator(seed + 1))
        got = fn(ids.clone(), vocab, vocab - 1, list(specials), generator(seed + 1))
        on = f"input_ids of shape {tuple(shape)}, vocab_size={vocab}, mask_token_id={vocab - 1}, special_ids={list(specials)}"
        if not isinstance(got, tuple) or len(got) != 2:
            raise Mismatch(f"on {on}: expected a tuple (inputs, labels), got {type(got).__name__}")
        expect_close(got[1], want[1], on, what="labels")
        expect_close(got[0], want[0], on, what="inputs")

    test.__doc__ = doc
    return test


def mlm_loss(logits, labels):
    """L = −(1/|M|) Σ_{i∈M} log P(wᵢ | context), M = the positions whose label is not -100."""
    return mlm.mlm_loss(logits, labels)


def masked_accuracy(logits, labels):
    """The fraction of labelled positions (label != -100) where argmax of the logits equals the label."""
    keep = labels != -100
    return (logits.argmax(-1)[keep] == labels[keep]).float().mean().item()


def _labels(seed, shape, vocab, rate=0.3):
    g = generator(seed)
    labels = torch.randint(vocab, shape, generator=g)
    labels[torch.rand(shape, generator=g) > rate] = -100
    labels.view(-1)[0] = 1  # at least one labelled position
    return labels


# ---------------------------------------------------------------------------------------------- 06


def gpt_param_count(V, T, L, d):
    """N = V·d + T·d + L(12d² + 13d) + 2d: embeddings, L blocks (with biases), the final LayerNorm; the
    output layer shares the token embedding (tied), so it is not counted again."""
    return gpt.gpt_parameter_count(V, T, L, d)


def _param_count_test(fn):
    """GPT-2 small (124,439,808) and tiny configurations"""
    for V, T, L, d in [(50257, 1024, 12, 768), (65, 64, 2, 32), (10, 8, 1, 4), (100, 16, 0, 8)]:
        expect_close(fn(V, T, L, d), gpt_param_count(V, T, L, d), f"V={V}, T={T}, L={L}, d={d}", atol=0, rtol=0)


def top_p_filter(logits, p):
    """Keep the smallest set of most likely tokens whose probabilities sum to >= p (the token that crosses
    p is kept, the most likely token always is); the others become -inf. (..., V) -> (..., V)."""
    return generate.top_p_filter(logits, p)


def kv_cache_step(q, k_new, v_new, cache=None):
    """One generation step with a KV cache. q, k_new, v_new: (B, H, 1, d), the newest position.
    cache: None at the first step, else (K, V) of shape (B, H, S, d). Append k_new, v_new along the
    time axis, attend q to all S + 1 keys (no mask: the newest query sees every earlier key).
    Returns (out (B, H, 1, d), (K, V) with S + 1 positions)."""
    if cache is not None:
        k_new = torch.cat([cache[0], k_new], dim=2)
        v_new = torch.cat([cache[1], v_new], dim=2)
    return A.scaled_dot_product_attention(q, k_new, v_new)[0], (k_new, v_new)


def _kv_cache_test(doc, seed, B, H, T, d):
    def test(fn):
        q, k, v = randn(seed, B, H, T, d), randn(seed + 1, B, H, T, d), randn(seed + 2, B, H, T, d)
        full = A.scaled_dot_product_attention(q, k, v, is_causal=True)[0]  # what T cached steps must give
        cache = None
        for t in range(T):
            on = f"step {t} of {T} (B={B}, H={H}, d={d}), cache {'None' if t == 0 else f'of {t} positions'}"
            got = fn(q[:, :, t:t + 1], k[:, :, t:t + 1], v[:, :, t:t + 1], cache)
            if not isinstance(got, tuple) or len(got) != 2:
                raise Mismatch(f"on {on}: expected (out, (K, V)), got {type(got).__name__}")
            out, cache = got
            expect_close(out, full[:, :, t:t + 1], on, what="out")
        expect_close(cache[0], k, f"the end of {T} steps", what="the cached K")
        expect_close(cache[1], v, f"the end of {T} steps", what="the cached V")

    test.__doc__ = doc
    return test


# ---------------------------------------------------------------------------------------------- 07


def perplexity_and_accuracy(logits, targets):
    """logits (B, T, V), targets (B, T) -> (exp(mean NLL), fraction of argmax == target), two floats."""
    nll = F.cross_entropy(logits.reshape(-1, logits.size(-1)).float(), targets.reshape(-1))
    return nll.exp().item(), (logits.argmax(-1) == targets).float().mean().item()


def accumulate_gradients(model, loss_fn, micro_batches):
    """Gradient accumulation over K micro-batches of equal size: zero the gradients, then for each (x, y)
    backpropagate loss_fn(model(x), y) / K. The gradients equal those of the mean loss over the whole batch.
    Returns the mean of the K losses as a float."""
    model.zero_grad(set_to_none=True)
    K, total = len(micro_batches), 0.0
    for x, y in micro_batches:
        loss = loss_fn(model(x), y) / K
        loss.backward()
        total += loss.item()
    return total


def _accum_test(doc, seed, K):
    def test(fn):
        torch.manual_seed(seed)  # only the model's initial weights; the data come from generator(seed)
        model = nn.Sequential(nn.Linear(3, 4), nn.Tanh(), nn.Linear(4, 2))
        batches = [(randn(seed + i, 5, 3), randn(seed + 100 + i, 5, 2)) for i in range(K)]
        mine, ref = copy.deepcopy(model), copy.deepcopy(model)
        for p in mine.parameters():
            p.grad = torch.ones_like(p)  # stale gradients of an earlier step: must be cleared
        # the truth, computed without accumulation: one backward pass of the mean loss over the whole
        # batch (equal micro-batches, so the mean of their mean losses is the mean over all examples)
        full = F.mse_loss(ref(torch.cat([x for x, _ in batches])), torch.cat([y for _, y in batches]))
        full.backward()
        want = full.item()
        got = fn(mine, F.mse_loss, batches)
        on = f"{K} micro-batch(es) of 5 examples, a 3-4-2 MLP, MSE"
        expect_close(got, want, on, what="the returned mean loss")
        for (name, p), q in zip(mine.named_parameters(), ref.parameters()):
            if p.grad is None:
                raise Mismatch(f"on {on}: {name}.grad is None: was backward called?")
            expect_close(p.grad, q.grad, on, what=f"{name}.grad")

    test.__doc__ = doc
    return test


def clip_grad_norm(parameters, max_norm):
    """Global-norm clipping (in place): n = √(Σ over all parameters of Σ g²); if n > max_norm, multiply
    every gradient by max_norm / (n + 1e-6). Returns n as a float (the norm before clipping)."""
    grads = [p.grad for p in parameters if p.grad is not None]
    norm = torch.linalg.vector_norm(torch.stack([torch.linalg.vector_norm(g) for g in grads]))
    coef = max_norm / (norm + 1e-6)
    if coef < 1:
        for g in grads:
            g.mul_(coef)
    return norm.item()


def _clip_test(doc, seed, scale, max_norm):
    def test(fn):
        def params():
            ps = [nn.Parameter(torch.zeros(3, 4)), nn.Parameter(torch.zeros(5)), nn.Parameter(torch.zeros(2, 2))]
            for i, p in enumerate(ps):
                p.grad = scale * randn(seed + i, *p.shape)
            return ps

        mine, ref = params(), params()
        want = clip_grad_norm(ref, max_norm)
        got = fn(mine, max_norm)
        on = f"3 parameters with gradients of global norm {want:.3g}, max_norm={max_norm}"
        expect_close(got, want, on, what="the returned norm")
        for i, (p, q) in enumerate(zip(mine, ref)):
            expect_close(p.grad, q.grad, on, what=f"parameter {i}'s clipped gradient")

    test.__doc__ = doc
    return test


# ---------------------------------------------------------------------------------------------- 08


def last_token_pool(hidden, attention_mask):
    """hidden (B, T, H), attention_mask (B, T) with right padding (1 = real token) -> (B, H): the state of
    each sequence's LAST REAL token, at index Σₜ mask − 1."""
    return finetune.pool_hidden(hidden, attention_mask, "last")


def mean_pool(hidden, attention_mask):
    """(B, T, H), (B, T) -> (B, H): Σₜ mask·h / Σₜ mask, the average over real tokens only."""
    return finetune.pool_hidden(hidden, attention_mask, "mean")


def _right_padded(lengths, T):
    return (torch.arange(T)[None, :] < torch.tensor(lengths)[:, None]).long()


LoRALinear = lora.LoRALinear  # LoRALinear(base: nn.Linear, r: int, alpha: float): base frozen, lora_A, lora_B


def _lora_build(cls, seed, d_in, d_out, r, alpha):
    torch.manual_seed(seed)
    base = nn.Linear(d_in, d_out)
    return base, cls(copy.deepcopy(base), r, alpha)


def _lora_at_init(cls):
    """at initialisation the layer computes exactly base(x) (B starts at zero)"""
    base, layer = _lora_build(cls, 80, 6, 4, 2, 8.0)
    x = randn(81, 3, 6)
    expect_close(layer(x), base(x), "nn.Linear(6, 4), r=2, alpha=8, a fresh layer", what="the output")


def _lora_trainable(cls):
    """only lora_A (r, in) and lora_B (out, r) are trainable; the base weight and bias are frozen"""
    _, layer = _lora_build(cls, 82, 6, 4, 2, 8.0)
    on = "nn.Linear(6, 4), r=2, alpha=8"
    for name in ("lora_A", "lora_B"):
        if not isinstance(getattr(layer, name, None), nn.Parameter):
            raise Mismatch(f"on {on}: expected an nn.Parameter named {name}")
    expect_close(tuple(layer.lora_A.shape), (2, 6), on, what="lora_A's shape")
    expect_close(tuple(layer.lora_B.shape), (4, 2), on, what="lora_B's shape")
    trainable = sorted(n for n, p in layer.named_parameters() if p.requires_grad)
    if trainable != ["lora_A", "lora_B"]:
        raise Mismatch(f"on {on}: expected trainable parameters ['lora_A', 'lora_B'], got {trainable}")


def _lora_forward(cls):
    """with A and B set, output = base(x) + (alpha / r) · x Aᵀ Bᵀ"""
    base, layer = _lora_build(cls, 83, 5, 7, 3, 12.0)
    ref = LoRALinear(copy.deepcopy(base), 3, 12.0)
    with torch.no_grad():
        for m in (layer, ref):
            m.lora_A.copy_(randn(84, 3, 5))
            m.lora_B.copy_(randn(85, 7, 3))
    x = randn(86, 2, 4, 5)
    expect_close(layer(x), ref(x), "nn.Linear(5, 7), r=3, alpha=12, random A and B, x (2, 4, 5)", what="the output")


EXERCISES = [
    Exercise("05.1", "BERT's 80/10/10 masking", "05_mlm_loss", "mask_tokens",
             "mask_tokens(input_ids, vocab_size, mask_token_id, special_ids, generator) -> (inputs, labels)",
             "select 15% (never special tokens); of those 80% [MASK], 10% a random ordinary token, 10% unchanged; "
             "labels keep the original id of EVERY selected token; draw rand, rand, randint in that order",
             mask_tokens,
             (_masking_test("a batch of 4 x 32 tokens, vocabulary 50", 90, (4, 32), 50, (0, 1)),
              _masking_test("one long row, vocabulary 8 (few random candidates)", 92, (1, 400), 8, (0,)))),
    Exercise("05.2", "The MLM loss", "05_mlm_loss", "mlm_loss", "mlm_loss(logits (B, T, V), labels (B, T)) -> scalar Tensor",
             "L = −(1/|M|) Σ_{i∈M} log P(wᵢ | ...): average over the masked positions only (label != -100)", mlm_loss,
             (same_as_reference("logits (2, 10, 7), about 30% labelled", mlm_loss, lambda: (randn(100, 2, 10, 7), _labels(101, (2, 10), 7))),
              same_as_reference("one labelled position", mlm_loss,
                                lambda: (randn(102, 1, 6, 5), torch.tensor([[-100, -100, 3, -100, -100, -100]]))))),
    Exercise("05.3", "Accuracy at the masked positions", "05_mlm_loss", "masked_accuracy",
             "masked_accuracy(logits, labels) -> float",
             "count only positions whose label is not -100: correct / number of labelled positions", masked_accuracy,
             (same_as_reference("logits (3, 20, 4), about 30% labelled", masked_accuracy,
                                lambda: (randn(103, 3, 20, 4), _labels(104, (3, 20), 4))),
              same_as_reference("every position labelled", masked_accuracy,
                                lambda: (randn(105, 2, 5, 3), torch.randint(3, (2, 5), generator=generator(106)))))),
    Exercise("06.1", "GPT's parameter count", "06_gpt_build", "gpt_param_count", "gpt_param_count(V, T, L, d) -> int",
             "N = V·d + T·d + L(12d² + 13d) + 2d: per block attention 4d² + 4d, MLP 8d² + 5d, two LayerNorms 4d; "
             "the output layer is tied to the token embedding", gpt_param_count, (_param_count_test,)),
    Exercise("06.2", "Nucleus (top-p) filtering", "06_gpt_build", "top_p_filter", "top_p_filter(logits (..., V), p) -> (..., V)",
             "sort by probability; keep a token while the mass ranked ABOVE it is < p (so the token that crosses p "
             "stays); set the rest to -inf in the original order", top_p_filter,
             (same_as_reference("probabilities [0.05, 0.5, 0.15, 0.3], p = 0.7", top_p_filter,
                                lambda: (torch.tensor([0.05, 0.5, 0.15, 0.3]).log(), 0.7), what="the filtered logits"),
              same_as_reference("a batch (3, 10), p = 0.9", top_p_filter, lambda: (randn(110, 3, 10) * 2, 0.9),
                                what="the filtered logits"),
              same_as_reference("p = 0.01 (only the most likely token)", top_p_filter, lambda: (randn(111, 2, 6), 0.01),
                                what="the filtered logits"))),
    Exercise("06.3", "One step with a KV cache", "06_gpt_build", "kv_cache_step",
             "kv_cache_step(q, k_new, v_new, cache=None) -> (out, (K, V))",
             "append the new key and value to the cache FIRST (dim 2, time), then attend the new query to all of them",
             kv_cache_step,
             (_kv_cache_test("5 steps must equal causal attention over the 5 positions", 112, 2, 3, 5, 4),
              _kv_cache_test("a single step (empty cache)", 115, 1, 1, 1, 8))),
    Exercise("07.1", "Perplexity and accuracy from logits", "07_pretraining", "perplexity_and_accuracy",
             "perplexity_and_accuracy(logits (B, T, V), targets (B, T)) -> (float, float)",
             "perplexity = exp(mean NLL over all B·T tokens) (exp of the mean, not the mean of exps); "
             "accuracy = mean of argmax == target", perplexity_and_accuracy,
             (same_as_reference("logits (2, 8, 11)", perplexity_and_accuracy,
                                lambda: (randn(120, 2, 8, 11), torch.randint(11, (2, 8), generator=generator(121)))),
              same_as_reference("confident logits (4, 16, 5)", perplexity_and_accuracy,
                                lambda: (5 * randn(122, 4, 16, 5), torch.randint(5, (4, 16), generator=generator(123)))))),
    Exercise("07.2", "Gradient accumulation", "07_pretraining", "accumulate_gradients",
             "accumulate_gradients(model, loss_fn, micro_batches: list[(x, y)]) -> float",
             "zero the gradients first; backpropagate loss / K for each of the K micro-batches, so the sum of the "
             "gradients is the gradient of the mean", accumulate_gradients,
             (_accum_test("4 micro-batches", 130, 4), _accum_test("a single micro-batch (K = 1)", 140, 1))),
    Exercise("07.3", "Gradient clipping by the global norm", "07_pretraining", "clip_grad_norm",
             "clip_grad_norm(parameters: list, max_norm: float) -> float",
             "one norm over ALL gradients together, n = √Σ g²; scale every gradient by max_norm / (n + 1e-6) only "
             "when n > max_norm; return n", clip_grad_norm,
             (_clip_test("large gradients (clipped)", 150, 3.0, 1.0), _clip_test("small gradients (left alone)", 155, 0.01, 1.0))),
    Exercise("08.1", "Last-token pooling with right padding", "08_finetune_classification", "last_token_pool",
             "last_token_pool(hidden (B, T, H), attention_mask (B, T)) -> (B, H)",
             "with right padding the last REAL token is at index Σₜ mask − 1, not at T − 1", last_token_pool,
             (same_as_reference("lengths [5, 2, 3] padded to T = 5", last_token_pool,
                                lambda: (randn(160, 3, 5, 4), _right_padded([5, 2, 3], 5))),
              same_as_reference("a sequence of length 1", last_token_pool, lambda: (randn(161, 2, 4, 3), _right_padded([1, 4], 4))))),
    Exercise("08.2", "A LoRA linear layer", "08_finetune_classification", "LoRALinear",
             "class LoRALinear(nn.Module): __init__(self, base: nn.Linear, r: int, alpha: float); forward(x)",
             "freeze base; lora_A (r, in) random, lora_B (out, r) zeros; forward = base(x) + (α/r)·x Aᵀ Bᵀ",
             LoRALinear, (_lora_at_init, _lora_trainable, _lora_forward), kind="class"),
    Exercise("08.3", "Mean pooling over real tokens", "08_finetune_classification", "mean_pool",
             "mean_pool(hidden (B, T, H), attention_mask (B, T)) -> (B, H)",
             "Σₜ mask·h / Σₜ mask: padding must not enter the sum or the count", mean_pool,
             (same_as_reference("lengths [5, 2, 3] padded to T = 5", mean_pool, lambda: (randn(170, 3, 5, 4), _right_padded([5, 2, 3], 5))),
              same_as_reference("no padding", mean_pool, lambda: (randn(171, 2, 3, 2), _right_padded([3, 3], 3))))),
]
