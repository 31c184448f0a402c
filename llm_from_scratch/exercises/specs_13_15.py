"""Exercises of chapters 13-15: the references (the package's own code) and the public tests."""

from __future__ import annotations

from functools import cache

import torch

from llm_from_scratch import attention, dpo, llama, metrics, sft
from llm_from_scratch.attention import MultiHeadAttention
from llm_from_scratch.exercises.core import Exercise, Mismatch, expect_close, generator, randn, same_as_reference
from llm_from_scratch.tokenizer import BPETokenizer

# ---------------------------------------------------------------------------------------------- 13


@torch.no_grad()
def cross_attention(x, memory, src_mask=None):
    """One head of cross-attention with W_Q = W_K = W_V = W_O = I (chapter 13, section 4): queries from the
    decoder states x (B, T, d), keys and values from the encoder output memory (B, S, d), src_mask (B, S)
    bool, True = a real source token. weights = softmax(x Mᵀ/√d, padded keys −∞) (B, T, S);
    out = weights M (B, T, d). Returns (out, weights) (MultiHeadAttention(cross=True))."""
    d = x.shape[-1]
    attn = MultiHeadAttention(d, 1, bias=False, cross=True)
    eye = torch.eye(d, dtype=x.dtype)
    attn.to(x.dtype)
    attn.q_proj.weight.copy_(eye)
    attn.kv_proj.weight.copy_(torch.cat([eye, eye]))
    attn.out_proj.weight.copy_(eye)
    out = attn(x, mask=None if src_mask is None else src_mask.bool(), context=memory, need_weights=True)
    return out, attn.last_attn_weights[:, 0]


def _cross_args(seed, B, T, S, d, real=None):
    g = generator(seed)
    x, m = torch.randn(B, T, d, generator=g), torch.randn(B, S, d, generator=g)
    mask = None if real is None else torch.arange(S)[None, :] < torch.tensor(real)[:, None]
    return x, m, mask


def character_error_rate(predictions, references):
    """CER = Σₙ d(predₙ, refₙ) / Σₙ |refₙ| with d the edit distance (Levenshtein):
    d[i][j] = min(d[i−1][j] + 1, d[i][j−1] + 1, d[i−1][j−1] + [aᵢ ≠ bⱼ]) (metrics.character_error_rate)."""
    return metrics.character_error_rate(predictions, references)


def beam_step(scores, logp, beam_size):
    """One step of beam search (seq2seq.beam_search): scores (K,) the summed log-probabilities of the K
    live prefixes (−∞ for an empty beam), logp (K, V) the log-probabilities of each next token.
    Every extension gets scores[k] + logp[k, v]; keep the beam_size best of all K·V of them, best first.
    Returns (new_scores (beam_size,), beam (beam_size,) which prefix, token (beam_size,) which token)."""
    K, V = logp.shape
    top, idx = (scores[:, None] + logp).reshape(K * V).topk(beam_size)
    return top, idx // V, idx % V


def _beam_args(seed, K, V, first=False):
    logp = torch.log_softmax(randn(seed, K, V), dim=-1)
    scores = torch.full((K,), float("-inf")) if first else -5 * torch.rand(K, generator=generator(seed + 1))
    if first:
        scores[0] = 0.0
    return scores, logp


def _beam_test(doc, seed, K, V, beam_size, first=False):
    def test(fn):
        scores, logp = _beam_args(seed, K, V, first)
        want = beam_step(scores.clone(), logp.clone(), beam_size)
        got = fn(scores.clone(), logp.clone(), beam_size)
        on = f"{doc}: K = {K} prefixes, V = {V} tokens, beam_size = {beam_size}"
        if not isinstance(got, (tuple, list)) or len(got) != 3:
            raise Mismatch(f"on {on}: expected (new_scores, beam, token), got {type(got).__name__}")
        expect_close(got[0], want[0], on, what="the new scores")
        expect_close(torch.as_tensor(got[1]).long(), want[1], on, what="the beam (which prefix)")
        expect_close(torch.as_tensor(got[2]).long(), want[2], on, what="the token")

    test.__doc__ = doc
    return test


# ---------------------------------------------------------------------------------------------- 14


@torch.no_grad()
def rms_norm(x, weight, eps=1e-6):
    """RMSNorm(x) = γ ⊙ x / √(mean(x²) + ε) over the last dim, the statistic in float32, then cast back
    to x's dtype: x (..., d), weight γ (d,) -> (..., d) (llama.RMSNorm)."""
    norm = llama.RMSNorm(x.shape[-1], eps).to(weight.dtype)
    norm.weight.copy_(weight)
    return norm(x)


def apply_rope(x, positions, theta=10000.0):
    """x' = x cos(mθᵢ) + rotate_half(x) sin(mθᵢ) with θᵢ = theta^(−2i/D), feature i paired with i + D/2:
    x (B, H, T, D), positions (T,) or (B, T) -> (B, H, T, D) (llama.apply_rope)."""
    return llama.apply_rope(x, positions, theta)


def repeat_kv(x, n_rep):
    """(B, K, S, D) -> (B, K·n_rep, S, D), each key/value head n_rep times in a row: query head h reads
    key/value head h // n_rep (attention.repeat_kv)."""
    return attention.repeat_kv(x, n_rep)


# ---------------------------------------------------------------------------------------------- 15

_TEXT = ("Iago: I am not what I am.\nRoderigo: What a full fortune does the thick-lips owe!\n"
         "Who speaks the second line? Answer briefly.\n") * 4


@cache
def chat_tokenizer() -> BPETokenizer:
    """A small byte-level BPE (300 tokens) with the four chat tokens appended: what the tests encode with."""
    return sft.add_chat_tokens(BPETokenizer.train_fast([_TEXT], 300))


def encode_conversation(tokenizer, messages):
    """(input_ids (T,), labels (T,)): each turn is <|role|> "\\n" content <|end|> "\\n", each piece encoded on
    its own (contents with special tokens disallowed); labels = the ids on an assistant's content and its
    <|end|>, IGNORE_INDEX (−100) everywhere else (sft.encode_conversation)."""
    return sft.encode_conversation(tokenizer, messages)


def _conversation_test(doc, messages):
    def test(fn):
        tok = chat_tokenizer()
        want = encode_conversation(tok, messages)
        got = fn(tok, [dict(m) for m in messages])
        on = f"{doc} ({len(messages)} messages)"
        if not isinstance(got, (tuple, list)) or len(got) != 2:
            raise Mismatch(f"on {on}: expected (input_ids, labels), got {type(got).__name__}")
        expect_close(torch.as_tensor(got[0]).long(), want[0], on, what="input_ids")
        expect_close(torch.as_tensor(got[1]).long(), want[1], on, what="labels")

    test.__doc__ = doc
    return test


_QA = [{"role": "user", "content": "Who speaks the second line?"}, {"role": "assistant", "content": "Roderigo"}]
_LONG = [{"role": "system", "content": "Answer briefly."}, *_QA,
         {"role": "user", "content": "And the first?"}, {"role": "assistant", "content": "Iago"}]
_TRICK = [{"role": "user", "content": "Say <|end|> please."}, {"role": "assistant", "content": "I say <|end|>"}]


def sequence_logprobs(logits, labels):
    """log π(y|x) per sequence: Σ_t log softmax(logits[t])[labels[t+1]] over the t whose label[t+1] is not
    −100 (position t scores token t + 1). logits (B, T, V), labels (B, T) -> (B,) (dpo.sequence_logprobs)."""
    return dpo.sequence_logprobs(lambda _ids: logits, labels.clone(), labels)


def _logprob_args(seed, B, T, V, answer_from):
    g = generator(seed)
    logits = torch.randn(B, T, V, generator=g) * 2
    labels = torch.randint(V, (B, T), generator=g)
    for b, a in enumerate(answer_from):  # the prompt is masked, the answer kept; row b may end in padding
        labels[b, :a[0]] = -100
        labels[b, a[1]:] = -100
    return logits, labels


def dpo_loss(policy_chosen_logps, policy_rejected_logps, ref_chosen_logps, ref_rejected_logps, beta=0.1):
    """r_w = β(log π(y_w|x) − log π_ref(y_w|x)), r_l likewise (N,); L = mean(−log σ(r_w − r_l)), computed
    stably as softplus(−(r_w − r_l)). Returns (loss, r_w, r_l) (dpo.dpo_loss)."""
    return dpo.dpo_loss(policy_chosen_logps, policy_rejected_logps, ref_chosen_logps, ref_rejected_logps, beta)


def _dpo_args(seed, N, scale=1.0):
    g = generator(seed)
    return tuple(-20 + scale * torch.randn(N, generator=g) for _ in range(4))


EXERCISES = [
    Exercise("13.1", "Cross-attention with a source padding mask", "13_encoder_decoder", "cross_attention",
             "cross_attention(x (B, T, d), memory (B, S, d), src_mask=None (B, S) bool) -> (out (B, T, d), weights (B, T, S))",
             "queries from the decoder (x), keys and values from the encoder (memory): weights = softmax(x Mᵀ/√d) "
             "with the PADDED SOURCE KEYS (columns, src_mask False) set to −∞ before the softmax; out = weights M",
             cross_attention,
             (same_as_reference("no padding (src_mask=None), B = 2, T = 3, S = 4, d = 8", cross_attention,
                                lambda: _cross_args(230, 2, 3, 4, 8)[:2]),
              same_as_reference("sources of 5 and 2 real tokens padded to 5", cross_attention,
                                lambda: _cross_args(231, 2, 4, 5, 6, real=[5, 2])),
              same_as_reference("a target longer than its source (T = 6, S = 3, one real token)", cross_attention,
                                lambda: _cross_args(232, 1, 6, 3, 4, real=[1])))),
    Exercise("13.2", "The character error rate", "13_encoder_decoder", "character_error_rate",
             "character_error_rate(predictions: list[str], references: list[str]) -> float",
             "CER = Σ edit_distance(pred, ref) / Σ len(ref) over ALL lines (not a mean of per-line rates); "
             "d[i][j] = min(d[i−1][j] + 1, d[i][j−1] + 1, d[i−1][j−1] + [aᵢ ≠ bⱼ])", character_error_rate,
             (same_as_reference("one substitution: 'Haue you had' for 'Have you had'", character_error_rate,
                                lambda: (["Haue you had"], ["Have you had"]), atol=1e-9, rtol=1e-9),
              same_as_reference("a deletion and an insertion: 'Guard' for 'Gard', 'quiet' for 'quiett'",
                                character_error_rate, lambda: (["Gard", "quiett"], ["Guard", "quiet"]),
                                atol=1e-9, rtol=1e-9),
              same_as_reference("lines of different lengths (the corpus rate weighs long lines more)",
                                character_error_rate,
                                lambda: (["I", "Haue you had quiet Guard?", "Nay anſwer me"],
                                         ["Ay", "Have you had quiet guard?", "Nay, answer me"]), atol=1e-9, rtol=1e-9),
              same_as_reference("an empty prediction, and one longer than its reference", character_error_rate,
                                lambda: (["", "Stand, and vnfold your ſelfe"], ["Stand", "unfold"]),
                                atol=1e-9, rtol=1e-9))),
    Exercise("13.3", "One step of beam search", "13_encoder_decoder", "beam_step",
             "beam_step(scores (K,), logp (K, V), beam_size) -> (new_scores, beam, token), each (beam_size,)",
             "score every extension by scores[k] + logp[k, v] (log-probabilities ADD along a prefix), take the "
             "beam_size best of all K·V at once (not per prefix); flat index j -> beam j // V, token j % V",
             beam_step,
             (_beam_test("the first step: one live prefix (scores 0, −inf, −inf)", 240, 3, 7, 3, first=True),
              _beam_test("4 live prefixes of different scores", 241, 4, 6, 4),
              _beam_test("a wide vocabulary, beam_size larger than K", 242, 2, 50, 5))),
    Exercise("14.1", "RMSNorm", "14_modern_decoder", "rms_norm", "rms_norm(x (..., d), weight (d,), eps=1e-6) -> Tensor (..., d)",
             "γ ⊙ x / √(mean(x²) + ε) over the last dim: no mean subtracted, no β; square and average in float32 "
             "(x.float()), then cast back to x.dtype before multiplying by γ", rms_norm,
             (same_as_reference("x (2, 3, 8), a random weight", rms_norm, lambda: (randn(250, 2, 3, 8), randn(251, 8))),
              same_as_reference("x with a large mean (LayerNorm would subtract it), eps = 0.5", rms_norm,
                                lambda: (3 + 0.1 * randn(252, 4, 6), randn(253, 6), 0.5)),
              same_as_reference("float16 x of size about 300 (x² overflows float16)", rms_norm,
                                lambda: ((300 * randn(254, 3, 16)).half(), torch.ones(16, dtype=torch.float16)),
                                atol=2e-3, rtol=2e-3))),
    Exercise("14.2", "Rotary position embeddings (rotate-half)", "14_modern_decoder", "apply_rope",
             "apply_rope(x (B, H, T, D), positions (T,) or (B, T), theta=10000.0) -> Tensor (B, H, T, D)",
             "θᵢ = theta^(−2i/D), i < D/2; feature i pairs with feature i + D/2 (not i + 1); "
             "x' = x cos(mθ) + rotate_half(x) sin(mθ) with rotate_half(x₁, x₂) = (−x₂, x₁), both halves sharing "
             "the angle", apply_rope,
             (same_as_reference("positions 0..5, B = 2, H = 3, D = 8", apply_rope,
                                lambda: (randn(260, 2, 3, 6, 8), torch.arange(6))),
              same_as_reference("positions (B, T) that differ per row (a KV cache at offsets 7 and 20), theta 500",
                                apply_rope, lambda: (randn(261, 2, 2, 3, 4), torch.tensor([[7, 8, 9], [20, 21, 22]]), 500.0)),
              same_as_reference("large positions (up to 4096), D = 16", apply_rope,
                                lambda: (randn(262, 1, 1, 4, 16), torch.tensor([0, 1, 1000, 4096])), atol=1e-3))),
    Exercise("14.3", "Sharing key/value heads (grouped-query attention)", "14_modern_decoder", "repeat_kv",
             "repeat_kv(x (B, K, S, D), n_rep) -> Tensor (B, K·n_rep, S, D)",
             "query head h reads key/value head h // n_rep: each head repeated n_rep times IN A ROW "
             "(k0 k0 k1 k1), not the whole stack tiled (k0 k1 k0 k1)", repeat_kv,
             (same_as_reference("K = 2 heads, n_rep = 3", repeat_kv, lambda: (randn(270, 2, 2, 5, 4), 3)),
              same_as_reference("K = 3 heads, n_rep = 2", repeat_kv, lambda: (torch.arange(3 * 2 * 2.0).view(1, 3, 2, 2), 2)),
              same_as_reference("n_rep = 1 (plain multi-head attention)", repeat_kv, lambda: (randn(271, 1, 4, 3, 2), 1)))),
    Exercise("15.1", "The chat template and the SFT labels", "15_instruction_tuning", "encode_conversation",
             "encode_conversation(tokenizer, messages) -> (input_ids (T,), labels (T,))",
             "per turn: <|role|>, encode('\\n'), encode(content, allowed_special='none'), <|end|>, encode('\\n'), "
             "each piece encoded on its own; labels = the ids on an ASSISTANT's content and its <|end|>, −100 "
             "everywhere else (markers, newlines, system, user)", encode_conversation,
             (_conversation_test("one question, one answer", _QA),
              _conversation_test("a system prompt and two answers", _LONG),
              _conversation_test("contents that type '<|end|>' as text", _TRICK))),
    Exercise("15.2", "The log-probability of an answer", "15_instruction_tuning", "sequence_logprobs",
             "sequence_logprobs(logits (B, T, V), labels (B, T)) -> Tensor (B,)",
             "shift by one: logits[:, t] score labels[:, t + 1]; log_softmax, pick the label's entry, SUM (not mean) "
             "over the positions whose label is not −100", sequence_logprobs,
             (same_as_reference("B = 2, T = 8, V = 11, answers at positions 5..7 and 3..5", sequence_logprobs,
                                lambda: _logprob_args(280, 2, 8, 11, [(5, 8), (3, 6)])),
              same_as_reference("a one-token answer, then padding", sequence_logprobs,
                                lambda: _logprob_args(281, 1, 6, 5, [(2, 3)])))),
    Exercise("15.3", "The DPO loss and its rewards", "15_instruction_tuning", "dpo_loss",
             "dpo_loss(policy_chosen_logps, policy_rejected_logps, ref_chosen_logps, ref_rejected_logps, beta=0.1)"
             " -> (loss, chosen_rewards (N,), rejected_rewards (N,))",
             "r_w = β(log π(y_w|x) − log π_ref(y_w|x)), r_l = β(log π(y_l|x) − log π_ref(y_l|x)); "
             "loss = mean(−log σ(r_w − r_l)) = mean(softplus(r_l − r_w)): β inside σ, stable for large margins",
             dpo_loss,
             (same_as_reference("4 pairs, beta 0.1", dpo_loss, lambda: _dpo_args(290, 4)),
              same_as_reference("3 pairs, beta 0.5", dpo_loss, lambda: _dpo_args(291, 3), kwargs={"beta": 0.5}),
              same_as_reference("margins of hundreds of nats, beta 5 (−log σ(x) of a very negative x)", dpo_loss,
                                lambda: _dpo_args(292, 3, scale=200.0), kwargs={"beta": 5.0}))),
]
