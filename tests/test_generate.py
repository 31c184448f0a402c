"""generate(): greedy against transformers, top-k / top-p against transformers' logits processors,
sampling frequencies against softmax(z / T), the KV cache against the uncached path, eos handling."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F

import transformers
from transformers import GPT2Config, GPT2LMHeadModel
from transformers.generation import TopKLogitsWarper, TopPLogitsWarper

from llm_from_scratch.generate import sample_next_token, top_k_filter, top_p_filter
from llm_from_scratch.gpt import GPT, GPTConfig, generate

transformers.logging.set_verbosity_error()




@pytest.fixture(scope="module")
def models(tmp_path_factory):
    torch.manual_seed(0)
    cfg = GPT2Config(n_layer=2, n_head=2, n_embd=32, vocab_size=100, n_positions=64,
                     activation_function="gelu_new", bos_token_id=None, eos_token_id=None)
    hf = GPT2LMHeadModel(cfg).eval()
    path = tmp_path_factory.mktemp("gen_gpt2")
    hf.save_pretrained(path)
    return hf, GPT.from_hf_gpt2(path).eval()


def prompt(B=3, T=5, V=100, seed=1):
    return torch.randint(0, V, (B, T), generator=torch.Generator().manual_seed(seed))


def test_greedy_equals_transformers_generate(models):
    hf, ours = models
    idx = prompt()
    ref = hf.generate(idx, attention_mask=torch.ones_like(idx), max_new_tokens=30, do_sample=False,
                      pad_token_id=0)
    for use_cache in (True, False):
        out = generate(ours, idx, 30, temperature=0, use_cache=use_cache)
        assert torch.equal(out, ref)


def test_cache_gives_the_uncached_tokens_greedy_and_sampled(models):
    _, ours = models
    idx = prompt(B=2, T=7)
    # 7 + 70 > block_size 64: the cached run must also cross the context limit identically.
    for kwargs in (dict(temperature=0.0), dict(temperature=1.3), dict(temperature=0.8, top_k=10, top_p=0.9)):
        runs = []
        for use_cache in (True, False):
            g = torch.Generator().manual_seed(42)
            runs.append(generate(ours, idx, 70, use_cache=use_cache, generator=g, **kwargs))
        assert runs[0].shape == (2, 77)
        assert torch.equal(runs[0], runs[1]), kwargs
    # A prompt longer than block_size is cropped to its last block_size tokens in both paths.
    long = prompt(B=1, T=80)
    a = generate(ours, long, 5, temperature=0, use_cache=True)
    b = generate(ours, long, 5, temperature=0, use_cache=False)
    assert torch.equal(a, b) and torch.equal(a[:, :80], long)


def test_top_k_and_top_p_filters_match_transformers():
    torch.manual_seed(0)
    logits = torch.randn(6, 50) * 3
    ids = torch.zeros(6, 1, dtype=torch.long)
    for k in (1, 5, 49, 50, 80):
        assert torch.equal(top_k_filter(logits, k), TopKLogitsWarper(top_k=k)(ids, logits.clone()))
    for p in (0.05, 0.3, 0.9, 0.999, 1.0):
        ours = top_p_filter(logits, p)
        ref = TopPLogitsWarper(top_p=p)(ids, logits.clone())
        assert torch.equal(torch.isinf(ours), torch.isinf(ref)), p


def test_top_p_by_hand():
    # p = [0.5, 0.3, 0.15, 0.05]: top_p=0.7 needs the first two (0.5 < 0.7 <= 0.8).
    logits = torch.log(torch.tensor([[0.5, 0.3, 0.15, 0.05]]))
    kept = torch.isfinite(top_p_filter(logits, 0.7))
    assert kept.tolist() == [[True, True, False, False]]
    assert torch.isfinite(top_p_filter(logits, 0.8)).sum() == 2  # exactly reached: no third token
    assert torch.isfinite(top_p_filter(logits, 1e-6)).tolist() == [[True, False, False, False]]


def test_sampling_frequencies_follow_softmax_over_temperature():
    logits = torch.tensor([2.0, 1.0, 0.0, -1.0])
    n = 40_000
    g = torch.Generator().manual_seed(0)
    for T in (0.5, 1.0, 2.0):
        draws = sample_next_token(logits.expand(n, 4), temperature=T, generator=g)
        freq = torch.bincount(draws, minlength=4).float() / n
        expected = F.softmax(logits / T, dim=-1)
        assert torch.allclose(freq, expected, atol=0.01), (T, freq, expected)
    # top_k=2 renormalises over the two best tokens.
    draws = sample_next_token(logits.expand(n, 4), temperature=1.0, top_k=2, generator=g)
    freq = torch.bincount(draws, minlength=4).float() / n
    assert torch.allclose(freq, torch.tensor([1 / (1 + math.e**-1), 1 - 1 / (1 + math.e**-1), 0, 0]), atol=0.01)


def test_degenerate_settings_are_greedy(models):
    _, ours = models
    idx = prompt(B=2)
    greedy = generate(ours, idx, 12, temperature=0)
    g = torch.Generator().manual_seed(0)
    assert torch.equal(generate(ours, idx, 12, top_k=1, generator=g), greedy)
    assert torch.equal(generate(ours, idx, 12, top_p=1e-9, generator=g), greedy)
    assert torch.equal(generate(ours, idx, 0), idx)


class CountingLM(nn.Module):
    """A model whose next token is always (last token + 1) mod V: generation is predictable by hand."""

    def __init__(self, V=10):
        super().__init__()
        self.V = V
        self.block_size = 4

    def forward(self, idx):
        return F.one_hot((idx + 1) % self.V, self.V).float() * 10


def test_eos_stops_each_row_and_pads_with_eos():
    lm = CountingLM()
    idx = torch.tensor([[0], [5], [8]])
    out = generate(lm, idx, 10, temperature=0, eos_id=7, use_cache=False)
    # Row 1 reaches 7 after 2 new tokens, row 0 after 7, row 2 after 9: generation stops after 9
    # steps (not 10), and the rows that finished earlier are padded with eos.
    assert out.tolist() == [[0, 1, 2, 3, 4, 5, 6, 7, 7, 7],
                            [5, 6, 7, 7, 7, 7, 7, 7, 7, 7],
                            [8, 9, 0, 1, 2, 3, 4, 5, 6, 7]]
    full = generate(lm, torch.tensor([[0], [5]]), 10, temperature=0, eos_id=7, use_cache=False)
    assert full.tolist() == [[0, 1, 2, 3, 4, 5, 6, 7], [5, 6, 7, 7, 7, 7, 7, 7]]  # stopped early
    without = generate(lm, torch.tensor([[0]]), 10, temperature=0, use_cache=False)
    assert without.tolist() == [[0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 0]]


def test_eos_with_the_cache_matches_uncached(models):
    _, ours = models
    idx = prompt(B=4, T=3)
    free = generate(ours, idx, 20, temperature=0)
    eos = int(free[0, 8])  # a token row 0 produces: that row must stop there
    a = generate(ours, idx, 20, temperature=0, eos_id=eos)
    b = generate(ours, idx, 20, temperature=0, eos_id=eos, use_cache=False)
    assert torch.equal(a, b)
    first = (a[0, 3:] == eos).nonzero()[0].item() + 3
    assert (a[0, first:] == eos).all() and torch.equal(a[0, :first], free[0, :first])


def test_invalid_arguments_are_clear_errors(models):
    _, ours = models
    idx = prompt()
    with pytest.raises(ValueError, match="temperature"):
        generate(ours, idx, 5, temperature=-0.1)
    for p in (0.0, 1.5, -1.0):
        with pytest.raises(ValueError, match="top_p"):
            generate(ours, idx, 5, top_p=p)
    with pytest.raises(ValueError, match="top_k"):
        generate(ours, idx, 5, top_k=0)
    with pytest.raises(ValueError, match="max_new_tokens"):
        generate(ours, idx, -1)
    with pytest.raises(ValueError, match=r"idx\[None\]"):
        generate(ours, idx[0], 5)
    with pytest.raises(TypeError, match="use_cache=False"):
        generate(CountingLM(), torch.tensor([[0]]), 3)


def test_training_mode_is_restored():
    model = GPT(GPTConfig(vocab_size=20, block_size=16, n_layer=1, n_head=2, n_embd=16, dropout=0.5))
    model.train()
    g = torch.Generator().manual_seed(0)
    a = generate(model, torch.zeros(1, 2, dtype=torch.long), 8, generator=g)
    g = torch.Generator().manual_seed(0)
    b = generate(model, torch.zeros(1, 2, dtype=torch.long), 8, generator=g)
    assert torch.equal(a, b)  # dropout was off while generating
    assert model.training
