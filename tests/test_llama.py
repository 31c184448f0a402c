"""llm_from_scratch.llama against hand-worked numbers, torch's own ops and `transformers`
(LlamaForCausalLM, Qwen3ForCausalLM and their modules), on tiny random models saved with save_pretrained."""

from __future__ import annotations

import json
import math

import pytest
import torch

from llm_from_scratch.generate import generate
from llm_from_scratch.llama import (
    Llama,
    LlamaAttention,
    LlamaConfig,
    RMSNorm,
    SwiGLU,
    apply_rope,
    kv_cache_bytes_per_token,
    llama_parameter_count,
)

transformers = pytest.importorskip("transformers")
from transformers.models.llama import modeling_llama as hf_llama  # noqa: E402

transformers.logging.set_verbosity_error()
ATOL = 1e-5


def _hf_llama(tie=False, kv=2, seed=0, **over):
    torch.manual_seed(seed)
    cfg = dict(vocab_size=97, hidden_size=32, intermediate_size=56, num_hidden_layers=2, num_attention_heads=4,
               num_key_value_heads=kv, max_position_embeddings=64, rms_norm_eps=1e-5, rope_theta=500.0,
               tie_word_embeddings=tie, bos_token_id=None, eos_token_id=None, pad_token_id=None)
    cfg.update(over)
    model = transformers.LlamaForCausalLM(transformers.LlamaConfig(**cfg)).eval()
    _randomize_norms(model)
    return model


def _hf_qwen3(tie=True, seed=1):
    torch.manual_seed(seed)
    cfg = transformers.Qwen3Config(vocab_size=101, hidden_size=32, intermediate_size=48, num_hidden_layers=2,
                                   num_attention_heads=4, num_key_value_heads=2, head_dim=16,  # 4·16 != 32
                                   max_position_embeddings=64, rms_norm_eps=1e-6, rope_theta=1000.0,
                                   tie_word_embeddings=tie, bos_token_id=None, eos_token_id=None, pad_token_id=None)
    model = transformers.Qwen3ForCausalLM(cfg).eval()
    _randomize_norms(model)
    return model


def _randomize_norms(model):
    # RMSNorm weights start at 1: random ones make a swapped or missing γ show in the logits.
    with torch.no_grad():
        for name, p in model.named_parameters():
            if "norm" in name:
                p.uniform_(0.5, 1.5)


@pytest.fixture(scope="module")
def saved(tmp_path_factory):
    """Tiny random models written with save_pretrained: {name: (folder, the transformers model)}."""
    models = {"llama_gqa": _hf_llama(tie=False, kv=2), "llama_tied_mha": _hf_llama(tie=True, kv=4, seed=2),
              "llama_mqa": _hf_llama(tie=False, kv=1, seed=3),
              "llama_bias": _hf_llama(tie=False, kv=2, seed=6, attention_bias=True, mlp_bias=True),
              "qwen3_tied": _hf_qwen3(tie=True),
              "qwen3_untied": _hf_qwen3(tie=False, seed=4)}
    out = {}
    for name, model in models.items():
        folder = tmp_path_factory.mktemp(name)
        model.save_pretrained(folder)
        out[name] = (folder, model)
    return out


IDS = torch.tensor([[3, 14, 15, 92, 65, 35, 89, 79, 32, 38, 46, 26],
                    [2, 71, 82, 81, 82, 84, 59, 4, 52, 35, 36, 0]])


# ---- RMSNorm --------------------------------------------------------------------------------
def test_rmsnorm_hand_worked():
    # x = (3, 4): mean(x²) = (9 + 16) / 2 = 12.5, so RMSNorm(x) = x / √12.5 = (0.8485, 1.1314).
    norm = RMSNorm(2, eps=0.0)
    out = norm(torch.tensor([[3.0, 4.0]]))
    assert torch.allclose(out, torch.tensor([[3 / math.sqrt(12.5), 4 / math.sqrt(12.5)]]))


def test_rmsnorm_equals_torch_and_transformers():
    torch.manual_seed(0)
    x = torch.randn(2, 5, 16) * 3 + 1
    ours = RMSNorm(16, eps=1e-5)
    with torch.no_grad():
        ours.weight.uniform_(0.5, 2.0)
    theirs = hf_llama.LlamaRMSNorm(16, eps=1e-5)
    theirs.weight.data.copy_(ours.weight.data)
    assert torch.allclose(ours(x), theirs(x), atol=1e-6)
    if hasattr(torch.nn, "RMSNorm"):  # torch >= 2.4
        torch_norm = torch.nn.RMSNorm(16, eps=1e-5)
        torch_norm.weight.data.copy_(ours.weight.data)
        assert torch.allclose(ours(x), torch_norm(x), atol=1e-6)
    # fp16 input: computed in float32 and cast back, as transformers does
    assert ours(x.half()).dtype == torch.float32  # γ is float32: the product promotes
    assert torch.allclose(ours(x.half()), theirs(x.half()), atol=1e-3)


# ---- RoPE -----------------------------------------------------------------------------------
def test_rope_hand_worked_rotation():
    # D = 2: one pair, θ_0 = 1. Position m turns (1, 0) by m radians: (cos m, sin m).
    x = torch.tensor([1.0, 0.0]).view(1, 1, 1, 2).expand(1, 1, 3, 2)
    out = apply_rope(x, torch.arange(3), theta=10000.0)
    expected = torch.tensor([[math.cos(m), math.sin(m)] for m in range(3)])
    assert torch.allclose(out[0, 0], expected, atol=1e-6)
    # a rotation keeps lengths
    y = torch.randn(2, 3, 7, 8)
    assert torch.allclose(apply_rope(y, torch.arange(7), 100.0).norm(dim=-1), y.norm(dim=-1), atol=1e-5)


def test_rope_dot_product_depends_only_on_the_offset():
    torch.manual_seed(0)
    q, k = torch.randn(1, 1, 1, 16), torch.randn(1, 1, 1, 16)

    def score(m, n):
        return (apply_rope(q, torch.tensor([m]), 10000.0) * apply_rope(k, torch.tensor([n]), 10000.0)).sum().item()

    for offset in (0, 1, 5, 17):
        scores = [score(n + offset, n) for n in (0, 3, 40, 250)]
        assert max(scores) - min(scores) < 1e-4, (offset, scores)
    assert abs(score(5, 0) - score(0, 0)) > 1e-2  # ... and does depend on it


def test_rope_equals_transformers_rotary_code():
    torch.manual_seed(0)
    cfg = transformers.LlamaConfig(hidden_size=64, num_attention_heads=4, max_position_embeddings=128, rope_theta=500.0)
    rotary = hf_llama.LlamaRotaryEmbedding(cfg)
    q, k = torch.randn(2, 4, 9, 16), torch.randn(2, 4, 9, 16)
    positions = torch.tensor([list(range(3, 12)), list(range(40, 49))])  # (B, T): per-row offsets
    cos, sin = rotary(q, positions)
    q_ref, k_ref = hf_llama.apply_rotary_pos_emb(q, k, cos, sin)
    assert torch.allclose(apply_rope(q, positions, 500.0), q_ref, atol=1e-6)
    assert torch.allclose(apply_rope(k, positions, 500.0), k_ref, atol=1e-6)
    cos1, sin1 = rotary(q, torch.arange(9)[None])
    q_ref1, _ = hf_llama.apply_rotary_pos_emb(q, k, cos1, sin1)
    assert torch.allclose(apply_rope(q, torch.arange(9), 500.0), q_ref1, atol=1e-6)  # positions (T,)


def test_rope_refuses_bad_shapes():
    with pytest.raises(ValueError, match="positions must be"):
        apply_rope(torch.randn(1, 2, 5, 8), torch.arange(4), 10000.0)
    with pytest.raises(ValueError, match="even D"):
        apply_rope(torch.randn(1, 2, 5, 7), torch.arange(5), 10000.0)


# ---- SwiGLU ---------------------------------------------------------------------------------
def test_swiglu_equals_formula_and_transformers_mlp():
    torch.manual_seed(0)
    ours = SwiGLU(16, 40)
    x = torch.randn(2, 3, 16)
    w1, w2, w3 = ours.w1.weight, ours.w2.weight, ours.w3.weight
    by_hand = ((x @ w1.T) * torch.sigmoid(x @ w1.T) * (x @ w3.T)) @ w2.T  # SiLU(z) = z σ(z)
    assert torch.allclose(ours(x), by_hand, atol=1e-6)
    theirs = hf_llama.LlamaMLP(transformers.LlamaConfig(hidden_size=16, intermediate_size=40, num_attention_heads=2))
    theirs.gate_proj.weight.data.copy_(w1.data)
    theirs.up_proj.weight.data.copy_(w3.data)
    theirs.down_proj.weight.data.copy_(w2.data)
    assert torch.allclose(ours(x), theirs(x), atol=1e-6)


# ---- grouped-query attention ----------------------------------------------------------------
def test_gqa_equals_multi_head_attention_with_repeated_kv_heads():
    # GQA = full multi-head attention whose key/value heads are copies: query head h reads kv head h // 2.
    torch.manual_seed(0)
    cfg = LlamaConfig(n_embd=32, n_head=4, n_kv_head=2, rope_theta=100.0, block_size=32)
    gqa = LlamaAttention(cfg)
    full = LlamaAttention(LlamaConfig(n_embd=32, n_head=4, n_kv_head=4, rope_theta=100.0, block_size=32))
    D = 8
    wq, wk, wv = gqa.qkv.weight.split([32, 16, 16])
    rep = lambda w: w.view(2, D, 32).repeat_interleave(2, dim=0).reshape(32, 32)  # noqa: E731
    with torch.no_grad():
        full.qkv.weight.copy_(torch.cat([wq, rep(wk), rep(wv)]))
        full.out_proj.weight.copy_(gqa.out_proj.weight)
    x = torch.randn(2, 7, 32)
    assert torch.allclose(gqa(x), full(x), atol=1e-6)


def test_gqa_cache_keeps_kv_heads_and_equals_uncached():
    torch.manual_seed(0)
    cfg = LlamaConfig(n_embd=32, n_head=4, n_kv_head=2, block_size=32, qk_norm=True)
    attn = LlamaAttention(cfg)
    x = torch.randn(2, 9, 32)
    full = attn(x)
    out, cache = attn(x[:, :5], use_cache=True)
    parts = [out]
    for t in range(5, 9):
        out, cache = attn(x[:, t:t + 1], past_kv=cache, use_cache=True)
        parts.append(out)
    assert cache[0].shape == (2, 2, 9, 8)  # (B, n_kv_head, S, head_dim): 2 heads, not 4
    assert torch.allclose(torch.cat(parts, dim=1), full, atol=1e-5)


def test_kv_cache_bytes_per_token():
    # GPT-2 small: 12 layers x 12 heads x 64, fp16: 2·12·12·64·2 = 36,864 bytes; Llama-3-8B: 2·32·8·128·2.
    assert kv_cache_bytes_per_token(12, 12, 64) == 36_864
    assert kv_cache_bytes_per_token(32, 8, 128) == 131_072


def test_config_refuses_bad_shapes():
    with pytest.raises(ValueError, match="must divide n_head"):
        LlamaConfig(n_head=6, n_kv_head=4)
    with pytest.raises(ValueError, match="even"):
        LlamaConfig(n_embd=36, n_head=4)  # head_dim 9
    assert LlamaConfig.from_dict(LlamaConfig(n_layer=3).to_dict()) == LlamaConfig(n_layer=3)


# ---- whole models against transformers ------------------------------------------------------
@pytest.mark.parametrize("name", ["llama_gqa", "llama_tied_mha", "llama_mqa", "llama_bias", "qwen3_tied",
                                  "qwen3_untied"])
def test_logits_and_loss_equal_transformers(saved, name):
    folder, hf = saved[name]
    ours = Llama.from_hf(folder).eval()
    c = ours.config
    assert c.qk_norm == name.startswith("qwen3") and c.tie_embeddings == ("tied" in name and "untied" not in name)
    assert c.n_kv_head == hf.config.num_key_value_heads and c.head_dim == hf.config.head_dim
    assert ours.num_parameters() == hf.num_parameters() == llama_parameter_count(c)
    ids = IDS % c.vocab_size
    logits, loss = ours(ids, torch.cat([ids[:, 1:], torch.full_like(ids[:, :1], -100)], 1))
    with torch.no_grad():
        ref = hf(ids, labels=ids)
    assert torch.allclose(logits, ref.logits, atol=ATOL), (logits - ref.logits).abs().max()
    assert torch.allclose(loss, ref.loss, atol=ATOL)
    # from the in-memory transformers model as well as from the folder
    assert torch.allclose(Llama.from_hf(hf).eval()(ids)[0], ref.logits, atol=ATOL)


@pytest.mark.parametrize("name", ["llama_gqa", "qwen3_tied"])
def test_greedy_generation_identical_to_transformers(saved, name):
    folder, hf = saved[name]
    ours = Llama.from_hf(folder)
    prompt = IDS[:1, :4] % ours.config.vocab_size
    cached = generate(ours, prompt, 20, temperature=0)
    uncached = generate(ours, prompt, 20, temperature=0, use_cache=False)
    with torch.no_grad():
        ref = hf.generate(prompt, attention_mask=torch.ones_like(prompt), max_new_tokens=20, min_new_tokens=20,
                          do_sample=False, pad_token_id=0)
    assert torch.equal(cached, uncached)
    assert torch.equal(cached, ref)


def test_forward_cached_equals_forward(saved):
    ours = Llama.from_hf(saved["qwen3_untied"][0]).eval()
    ids = IDS % ours.config.vocab_size
    full, _ = ours(ids)
    logits, cache = ours.forward_cached(ids[:, :7])
    step, cache = ours.forward_cached(ids[:, 7:], cache)
    assert len(cache) == ours.config.n_layer and cache[0][0].shape == (2, 2, 12, 16)
    assert torch.allclose(torch.cat([logits, step], 1), full, atol=ATOL)


@pytest.mark.parametrize("name", ["llama_gqa", "llama_tied_mha", "llama_bias", "qwen3_tied", "qwen3_untied"])
def test_export_round_trip(saved, tmp_path, name):
    folder, hf = saved[name]
    ours = Llama.from_hf(folder)
    written = ours.to_hf(tmp_path / "export")
    assert written == tmp_path / "export" and sorted(p.name for p in written.iterdir()) == ["config.json",
                                                                                            "model.safetensors"]
    back = transformers.AutoModelForCausalLM.from_pretrained(written).eval()
    assert type(back).__name__ == type(hf).__name__
    ids = IDS % ours.config.vocab_size
    with torch.no_grad():
        assert torch.allclose(back(ids).logits, hf(ids).logits, atol=ATOL)
    again = Llama.from_hf(written)
    assert again.config == ours.config
    for (k, a), (k2, b) in zip(ours.state_dict().items(), again.state_dict().items()):
        assert k == k2 and torch.equal(a, b), k


def test_from_pretrained_reads_a_local_folder(saved):
    folder, hf = saved["llama_gqa"]
    ids = IDS % 97
    with torch.no_grad():
        assert torch.allclose(Llama.from_pretrained(str(folder))(ids)[0], hf(ids).logits, atol=ATOL)


def test_checkpoint_of_another_shape_is_refused_naming_the_key(saved):
    folder, _ = saved["llama_gqa"]
    cfg = Llama.from_hf(folder).config
    wrong = LlamaConfig(**{**cfg.to_dict(), "n_kv_head": 4})
    with pytest.raises(ValueError, match=r"model\.layers\.0\.self_attn\.k_proj\.weight \(16, 32\) \(expected \(32, 32\)\)"):
        Llama.from_hf(folder, config=wrong)
    fewer = LlamaConfig(**{**cfg.to_dict(), "n_layer": 1})
    with pytest.raises(ValueError, match=r"not used by this model: model\.layers\.1\."):
        Llama.from_hf(folder, config=fewer)


def test_rope_settings_from_both_config_styles():
    from llm_from_scratch.llama import _config_from_hf  # noqa: PLC2701  (the test reads the private mapping)

    base = dict(model_type="llama", vocab_size=10, hidden_size=8, intermediate_size=16, num_hidden_layers=1,
                num_attention_heads=2, num_key_value_heads=1)
    assert _config_from_hf({**base, "rope_theta": 123.0}).rope_theta == 123.0  # transformers 4.x
    assert _config_from_hf({**base, "rope_parameters": {"rope_type": "default", "rope_theta": 77.0}}).rope_theta == 77.0
    # the real transformers 5 config of a Llama 3.1 (rope scaling "llama3") is refused in one line naming it
    c31 = transformers.LlamaConfig(hidden_size=8, num_attention_heads=2, intermediate_size=16, vocab_size=10,
                                   max_position_embeddings=16384,
                                   rope_parameters={"rope_type": "llama3", "rope_theta": 5e5, "factor": 8.0,
                                                    "low_freq_factor": 1.0, "high_freq_factor": 4.0,
                                                    "original_max_position_embeddings": 8192})
    with pytest.raises(ValueError, match="'llama3'.*not implemented") as err:
        Llama.from_hf(transformers.LlamaForCausalLM(c31))
    assert "\n" not in str(err.value)
    with pytest.raises(ValueError, match="'llama3'"):
        _config_from_hf({**base, "rope_theta": 5e5, "rope_scaling": {"rope_type": "llama3", "factor": 8.0}})


def test_loading_does_not_change_the_checkpoint(saved):
    folder, _ = saved["qwen3_tied"]
    before = {p.name: p.read_bytes() for p in folder.iterdir()}
    Llama.from_hf(folder)
    assert {p.name: p.read_bytes() for p in folder.iterdir()} == before


def test_training_step_lowers_the_loss():
    torch.manual_seed(0)
    model = Llama(LlamaConfig(vocab_size=50, block_size=16, n_layer=2, n_head=4, n_kv_head=2, n_embd=32,
                              intermediate_size=64))
    ids = torch.randint(0, 50, (4, 16))
    targets = torch.cat([ids[:, 1:], torch.full_like(ids[:, :1], -100)], 1)
    opt = torch.optim.AdamW(model.parameters(), lr=1e-2)
    first = model(ids, targets)[1].item()
    assert abs(first - math.log(50)) < 0.2  # small init: near-uniform predictions
    for _ in range(20):
        opt.zero_grad()
        model(ids, targets)[1].backward()
        opt.step()
    assert model(ids, targets)[1].item() < first - 1.0


# ---- parameter count ------------------------------------------------------------------------
@pytest.mark.parametrize("cfg", [LlamaConfig(vocab_size=97, n_layer=2, n_head=4, n_kv_head=2, n_embd=32,
                                             intermediate_size=56),
                                 LlamaConfig(vocab_size=101, n_layer=3, n_head=4, n_kv_head=1, n_embd=32, head_dim=16,
                                             intermediate_size=48, qk_norm=True, tie_embeddings=True),
                                 LlamaConfig(vocab_size=64, n_layer=1, n_head=2, n_kv_head=2, n_embd=16,
                                             intermediate_size=40, bias=True)])
def test_parameter_formula_equals_counted(cfg):
    assert llama_parameter_count(cfg) == sum(p.numel() for p in Llama(cfg).parameters())


def test_parameter_formula_against_published_sizes():
    # The numbers of the models' config.json files.
    llama3_8b = LlamaConfig(vocab_size=128256, n_layer=32, n_head=32, n_kv_head=8, n_embd=4096,
                            intermediate_size=14336, rope_theta=500000.0, tie_embeddings=False)
    assert llama_parameter_count(llama3_8b) == 8_030_261_248  # "8.03B" on the hub
    smollm2 = LlamaConfig(vocab_size=49152, n_layer=30, n_head=9, n_kv_head=3, n_embd=576,
                          intermediate_size=1536, rope_theta=100000.0, tie_embeddings=True)
    assert round(llama_parameter_count(smollm2) / 1e6) == 135  # SmolLM2-135M
    qwen3_06b = LlamaConfig(vocab_size=151936, n_layer=28, n_head=16, n_kv_head=8, n_embd=1024, head_dim=128,
                            intermediate_size=3072, qk_norm=True, tie_embeddings=True)
    n = llama_parameter_count(qwen3_06b)
    assert round(n / 1e9, 1) == 0.6 and round((n - 151936 * 1024) / 1e9, 2) == 0.44  # card: 0.6B, 0.44B non-embedding


def test_to_hf_writes_a_config_transformers_reads(tmp_path):
    model = Llama(LlamaConfig(vocab_size=40, block_size=32, n_layer=1, n_head=2, n_kv_head=1, n_embd=16,
                              intermediate_size=32, rope_theta=321.0))
    cfg = json.loads((model.to_hf(tmp_path) / "config.json").read_text())
    hf_cfg = transformers.AutoConfig.from_pretrained(tmp_path)
    assert cfg["model_type"] == "llama" and hf_cfg.num_key_value_heads == 1
    assert hf_cfg.rope_parameters["rope_theta"] == 321.0
    assert not list(tmp_path.glob("*.tmp"))


def test_bfloat16_checkpoint_loads_into_float32(tmp_path):
    # Hub checkpoints are stored in bfloat16: from_pretrained gives a float32 model with those values.
    hf = _hf_llama(seed=5).to(torch.bfloat16)
    hf.save_pretrained(tmp_path)
    ours = Llama.from_pretrained(str(tmp_path))
    assert ours.transformer.wte.weight.dtype == torch.float32
    hf32 = hf.float().eval()
    ids = IDS % 97
    with torch.no_grad():
        assert torch.allclose(ours(ids)[0], hf32(ids).logits, atol=ATOL)


def test_another_architecture_is_refused_in_one_line():
    gpt2 = transformers.GPT2LMHeadModel(transformers.GPT2Config(n_layer=1, n_embd=16, n_head=2, vocab_size=50))
    with pytest.raises(ValueError, match="'gpt2' model; Llama.from_hf reads 'llama' and 'qwen3'"):
        Llama.from_hf(gpt2)


def test_a_bare_state_dict_needs_a_config(saved):
    _, hf = saved["llama_gqa"]
    with pytest.raises(ValueError, match="pass config=LlamaConfig"):
        Llama.from_hf(hf.state_dict())
    cfg = Llama.from_hf(hf).config
    ids = IDS % 97
    with torch.no_grad():
        assert torch.allclose(Llama.from_hf(hf.state_dict(), config=cfg)(ids)[0], hf(ids).logits, atol=ATOL)
