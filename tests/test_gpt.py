"""GPT: the model against transformers' GPT2LMHeadModel (weights in and out), the parameter-count
formula, GPT-2's initialisation, causality, and clear errors."""

from __future__ import annotations

import json
import math

import pytest
import torch
import torch.nn.functional as F

import huggingface_hub  # declared through transformers and datasets: a missing one fails, not skips
import transformers
from transformers import GPT2Config, GPT2LMHeadModel

from llm_from_scratch.gpt import (
    GPT,
    DocumentsGPT,
    GPTConfig,
    gpt_parameter_count,
)

transformers.logging.set_verbosity_error()


TINY = dict(n_layer=2, n_head=2, n_embd=32, vocab_size=100, n_positions=64)


def tiny_hf_gpt2(seed: int = 0) -> GPT2LMHeadModel:
    torch.manual_seed(seed)
    cfg = GPT2Config(**TINY, activation_function="gelu_new", bos_token_id=None, eos_token_id=None)
    return GPT2LMHeadModel(cfg).eval()


@pytest.fixture(scope="module")
def hf_dir(tmp_path_factory):
    hf = tiny_hf_gpt2()
    path = tmp_path_factory.mktemp("hf_gpt2")
    hf.save_pretrained(path)
    return hf, path


def tokens(B=3, T=20, V=100, seed=1):
    return torch.randint(0, V, (B, T), generator=torch.Generator().manual_seed(seed))


def test_from_hf_folder_gives_transformers_logits_and_loss(hf_dir):
    hf, path = hf_dir
    model = GPT.from_hf_gpt2(path).eval()
    assert model.config == GPTConfig(vocab_size=100, block_size=64, n_layer=2, n_head=2, n_embd=32)
    idx = tokens()
    with torch.no_grad():
        ref = hf(idx, labels=idx)
        # transformers shifts labels inside; we take explicit next-token targets, -100 at the end.
        targets = torch.cat([idx[:, 1:], torch.full_like(idx[:, :1], -100)], dim=1)
        logits, loss = model(idx, targets)
    torch.testing.assert_close(logits, ref.logits, atol=1e-5, rtol=0)
    torch.testing.assert_close(loss, ref.loss, atol=1e-5, rtol=0)


def test_forward_hidden_is_transformers_last_hidden_state(hf_dir):
    hf, path = hf_dir
    model = GPT.from_hf_gpt2(path).eval()
    idx = tokens(B=2, T=9)
    with torch.no_grad():
        ref = hf.transformer(idx).last_hidden_state  # after ln_f
        hidden = model.forward_hidden(idx)
    assert hidden.shape == (2, 9, 32)
    torch.testing.assert_close(hidden, ref, atol=1e-5, rtol=0)


def test_from_prefixless_state_dict_module_and_inferred_config(hf_dir):
    hf, _ = hf_dir
    idx = tokens(B=2, T=11)
    with torch.no_grad():
        ref = hf(idx).logits
    # GPT2Model's names ("h.0.attn...", as on the hub) with the mask buffers old checkpoints carry.
    sd = {k: v.clone() for k, v in hf.transformer.state_dict().items()}
    sd["h.0.attn.bias"] = torch.ones(1, 1, 64, 64).tril()
    sd["h.0.attn.masked_bias"] = torch.tensor(-1e4)
    cfg = GPTConfig(vocab_size=100, block_size=64, n_layer=2, n_head=2, n_embd=32)
    from_sd = GPT.from_hf_gpt2(sd, config=cfg).eval()
    from_module = GPT.from_hf_gpt2(hf).eval()  # a transformers model: its state dict and config
    with torch.no_grad():
        torch.testing.assert_close(from_sd(idx)[0], ref, atol=1e-5, rtol=0)
        torch.testing.assert_close(from_module(idx)[0], ref, atol=1e-5, rtol=0)
    # Without a config the head count is inferred as n_embd / 64 (GPT-2's head size): 32 cannot be.
    with pytest.raises(ValueError, match="n_head"):
        GPT.from_hf_gpt2(sd)


def test_mismatched_checkpoints_are_reported_by_name(hf_dir):
    hf, path = hf_dir
    sd = dict(hf.state_dict())
    missing = dict(sd)
    del missing["transformer.h.1.mlp.c_fc.bias"]
    cfg = GPTConfig(vocab_size=100, block_size=64, n_layer=2, n_head=2, n_embd=32)
    with pytest.raises(ValueError, match=r"missing.*transformer\.h\.1\.mlp\.c_fc\.bias"):
        GPT.from_hf_gpt2(missing, config=cfg)
    with pytest.raises(ValueError, match=r"transformer\.h\.2\.ln_1\.weight"):  # the model has a 3rd layer
        GPT.from_hf_gpt2(sd, config=GPTConfig(vocab_size=100, block_size=64, n_layer=3, n_head=2, n_embd=32))
    with pytest.raises(ValueError, match=r"shape mismatch.*wte\.weight \(100, 32\)"):
        GPT.from_hf_gpt2(sd, config=GPTConfig(vocab_size=120, block_size=64, n_layer=2, n_head=2, n_embd=32))
    extra = dict(sd, **{"transformer.h.0.attn.rotary.weight": torch.zeros(3)})
    with pytest.raises(ValueError, match=r"not used.*h\.0\.attn\.rotary\.weight"):
        GPT.from_hf_gpt2(extra, config=cfg)
    with pytest.raises(FileNotFoundError):
        GPT.from_hf_gpt2(path / "no_such_folder")


def test_export_round_trip_opens_in_transformers(tmp_path):
    for bias in (True, False):  # GPT-2 always has biases: bias=False exports zeros
        torch.manual_seed(3)
        model = GPT(GPTConfig(vocab_size=50, block_size=16, n_layer=2, n_head=4, n_embd=32, bias=bias)).eval()
        with torch.no_grad():  # random LayerNorm parameters, so the test sees them mapped
            for name, p in model.named_parameters():
                if ".ln_" in name or "ln_f" in name:
                    p.add_(0.1 * torch.randn_like(p))
        out = model.to_hf_gpt2(tmp_path / f"bias{bias}")
        hf = GPT2LMHeadModel.from_pretrained(out).eval()
        idx = tokens(B=2, T=16, V=50)
        with torch.no_grad():
            torch.testing.assert_close(hf(idx).logits, model(idx)[0], atol=1e-5, rtol=0)
        # ... and back into ours.
        again = GPT.from_hf_gpt2(out).eval()
        with torch.no_grad():
            torch.testing.assert_close(again(idx)[0], model(idx)[0], atol=1e-6, rtol=0)
    assert json.loads((tmp_path / "biasTrue" / "config.json").read_text())["model_type"] == "gpt2"


def test_parameter_count_formula_and_transformers_count():
    for bias in (True, False):
        V, T, L, d = 97, 40, 3, 48
        model = GPT(GPTConfig(vocab_size=V, block_size=T, n_layer=L, n_head=4, n_embd=d, bias=bias))
        counted = sum(p.numel() for p in model.parameters())  # brute force; the tied head is one tensor
        assert model.num_parameters() == counted
        assert gpt_parameter_count(V, T, L, d, bias=bias) == counted
        assert model.num_parameters(non_embedding=True) == counted - model.transformer.wpe.weight.numel()
    # GPT-2 small: the familiar 124M, the same count transformers gives.
    assert gpt_parameter_count(50257, 1024, 12, 768) == 124_439_808
    hf = tiny_hf_gpt2()
    ours = GPT.from_hf_gpt2(hf)
    assert ours.num_parameters() == sum(p.numel() for p in hf.parameters())


def test_weight_tying_and_gpt2_initialisation():
    torch.manual_seed(0)
    L = 6
    model = GPT(GPTConfig(vocab_size=256, block_size=32, n_layer=L, n_head=4, n_embd=128))
    assert model.lm_head.weight is model.transformer.wte.weight
    block = model.transformer.h[0]
    assert block.attn.causal
    std = lambda t: t.detach().std().item()  # noqa: E731
    assert abs(std(block.attn.qkv.weight) - 0.02) < 0.001
    assert abs(std(model.transformer.wte.weight) - 0.02) < 0.001
    scaled = 0.02 / math.sqrt(2 * L)
    for p in (block.attn.out_proj.weight, block.mlp.c_proj.weight):
        assert abs(std(p) - scaled) < 0.05 * scaled
    assert torch.count_nonzero(block.mlp.c_fc.bias) == 0
    # GPT-2 uses the tanh approximation of GELU.
    x = torch.linspace(-4, 4, 101)
    torch.testing.assert_close(block.mlp.gelu(x), F.gelu(x, approximate="tanh"))


def test_causal_no_token_sees_the_future():
    torch.manual_seed(0)
    model = GPT(GPTConfig(vocab_size=30, block_size=16, n_layer=2, n_head=2, n_embd=16)).eval()
    idx = tokens(B=1, T=12, V=30)
    changed = idx.clone()
    changed[0, 7:] = (changed[0, 7:] + 1) % 30
    with torch.no_grad():
        a, b = model(idx)[0], model(changed)[0]
    torch.testing.assert_close(a[:, :7], b[:, :7])
    assert not torch.allclose(a[:, 7:], b[:, 7:])


def test_forward_cached_equals_full_forward(hf_dir):
    _, path = hf_dir
    model = GPT.from_hf_gpt2(path).eval()
    idx = tokens(B=2, T=15)
    with torch.no_grad():
        full = model(idx)[0]
        first, cache = model.forward_cached(idx[:, :6])  # prefill six tokens
        pieces = [first]
        for t in range(6, 15):
            step, cache = model.forward_cached(idx[:, t : t + 1], cache)
            pieces.append(step)
    assert cache[0][0].shape == (2, 2, 15, 16)  # (B, heads, cached positions, head size)
    torch.testing.assert_close(torch.cat(pieces, dim=1), full, atol=1e-5, rtol=0)


def test_clear_errors():
    model = GPT(GPTConfig(vocab_size=30, block_size=8, n_layer=1, n_head=2, n_embd=16))
    with pytest.raises(ValueError, match="block_size=8"):
        model(torch.zeros(1, 9, dtype=torch.long))
    with pytest.raises(ValueError, match=r"\(batch, time\)"):
        model(torch.zeros(9, dtype=torch.long))
    with pytest.raises(ValueError, match="targets"):
        model(torch.zeros(1, 4, dtype=torch.long), torch.zeros(1, 5, dtype=torch.long))
    _, cache = model.forward_cached(torch.zeros(1, 8, dtype=torch.long))
    with pytest.raises(ValueError, match="cached"):
        model.forward_cached(torch.zeros(1, 1, dtype=torch.long), cache)
    with pytest.raises(ValueError, match="divisible"):
        GPTConfig(n_embd=30, n_head=4)
    with pytest.raises(ValueError, match="dropout"):
        GPTConfig(dropout=1.0)


def test_config_dict_round_trip():
    cfg = GPTConfig(vocab_size=65, block_size=256, n_layer=6, n_head=6, n_embd=384, dropout=0.2, bias=False)
    assert GPTConfig.from_dict(json.loads(json.dumps(cfg.to_dict()))) == cfg
    with pytest.raises(ValueError, match="n_positions"):
        GPTConfig.from_dict({**cfg.to_dict(), "n_positions": 256})


def test_autocast_and_compile_match_fp32():
    torch.manual_seed(0)
    model = GPT(GPTConfig(vocab_size=64, block_size=32, n_layer=2, n_head=2, n_embd=32)).eval()
    idx = tokens(B=2, T=16, V=64)
    ref, ref_loss = model(idx, idx)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        logits, loss = model(idx, idx)
    assert logits.dtype == torch.bfloat16 and loss.dtype == torch.float32
    torch.testing.assert_close(logits.float(), ref, atol=0.05, rtol=0.05)
    # fullgraph=True fails on any graph break; the eager backend keeps the test quick on a CPU.
    compiled = torch.compile(model, backend="eager", fullgraph=True)
    torch.testing.assert_close(compiled(idx, idx)[0], ref)


def test_documents_gpt_shapes_and_causality():
    torch.manual_seed(0)
    model = DocumentsGPT(vocab_size=50, d_model=32, n_heads=4, n_layers=2, d_ff=64, max_len=128).eval()
    x = torch.randint(0, 50, (64, 128))
    with torch.no_grad():
        out = model(x)
    assert out.shape == (64, 128, 50)
    changed = x[:2].clone()
    changed[:, 100:] = (changed[:, 100:] + 1) % 50
    with torch.no_grad():
        a, b = model(x[:2]), model(changed)
    torch.testing.assert_close(a[:, :100], b[:, :100], atol=1e-5, rtol=0)
    assert not torch.allclose(a[:, 100:], b[:, 100:])
    with pytest.raises(ValueError, match="max_len=128"):
        model(torch.zeros(1, 129, dtype=torch.long))


def test_a_hub_name_is_resolved_with_snapshot_download(hf_dir, monkeypatch):
    # No network in tests: a stand-in snapshot_download "downloads" the tiny checkpoint folder.
    hf, path = hf_dir
    calls = []

    def fake_snapshot_download(repo_id, allow_patterns=None, **kwargs):
        calls.append((repo_id, tuple(allow_patterns or ())))
        return str(path)

    monkeypatch.setattr(huggingface_hub, "snapshot_download", fake_snapshot_download)
    model = GPT.from_hf_gpt2("gpt2").eval()
    assert calls and calls[0][0] == "gpt2" and "model.safetensors" in calls[0][1]
    idx = tokens(B=1, T=6)
    with torch.no_grad():
        torch.testing.assert_close(model(idx)[0], hf(idx).logits, atol=1e-5, rtol=0)

    def offline(repo_id, **kwargs):
        raise OSError("no network")

    monkeypatch.setattr(huggingface_hub, "snapshot_download", offline)
    with pytest.raises(FileNotFoundError, match="not a local path.*no network"):
        GPT.from_hf_gpt2("gpt2")
