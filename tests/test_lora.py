"""LoRA: zero update at the start, only LoRA trains, merge equals unmerged, targets."""

import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F

from llm_from_scratch.lora import LoRALinear, apply_lora, lora_parameters, merge_lora


class Block(nn.Module):
    def __init__(self, d):
        super().__init__()
        self.qkv = nn.Linear(d, 3 * d)
        self.out_proj = nn.Linear(d, d)
        self.c_fc = nn.Linear(d, 4 * d)
        self.c_proj = nn.Linear(4 * d, d, bias=False)

    def forward(self, x):
        q, k, v = self.qkv(x).chunk(3, dim=-1)
        x = x + self.out_proj(torch.softmax(q @ k.transpose(-1, -2), -1) @ v)
        return x + self.c_proj(F.gelu(self.c_fc(x)))


class Tiny(nn.Module):
    """Stand-in with a GPT-like layout: embedding, blocks in a ModuleList, a head outside."""

    def __init__(self, d=8, n=2, vocab=11):
        super().__init__()
        self.wte = nn.Embedding(vocab, d)
        self.h = nn.ModuleList(Block(d) for _ in range(n))
        self.head = nn.Linear(d, 3)

    def forward(self, idx):
        x = self.wte(idx)
        for b in self.h:
            x = b(x)
        return self.head(x)


def _perturb_B(model):
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, LoRALinear):
                m.lora_B.normal_(0, 0.5)


def test_default_targets_are_the_block_linears():
    torch.manual_seed(0)
    m = apply_lora(Tiny(), r=2, alpha=4)
    wrapped = sorted(n for n, mod in m.named_modules() if isinstance(mod, LoRALinear))
    assert wrapped == sorted(f"h.{i}.{k}" for i in range(2) for k in ("qkv", "out_proj", "c_fc", "c_proj"))
    assert isinstance(m.head, nn.Linear) and not isinstance(m.head, LoRALinear)


def test_zero_init_leaves_model_unchanged():
    torch.manual_seed(0)
    base = Tiny()
    idx = torch.randint(0, 11, (3, 5))
    before = base(idx)
    after = apply_lora(base, r=4, alpha=8)(idx)
    assert torch.equal(before, after)
    assert all(torch.count_nonzero(m.lora_B) == 0 for m in base.modules() if isinstance(m, LoRALinear))
    assert all(torch.count_nonzero(m.lora_A) > 0 for m in base.modules() if isinstance(m, LoRALinear))


def test_lora_linear_matches_formula():
    torch.manual_seed(0)
    lin = nn.Linear(6, 5)
    lora = LoRALinear(lin, r=3, alpha=6)
    with torch.no_grad():
        lora.lora_B.normal_()
    x = torch.randn(4, 6)
    W = lin.weight + (6 / 3) * lora.lora_B @ lora.lora_A  # W0 + (alpha/r) B A
    torch.testing.assert_close(lora(x), x @ W.T + lin.bias)
    assert sum(p.numel() for p in lora.parameters() if p.requires_grad) == 3 * (6 + 5)


def test_only_lora_params_train():
    torch.manual_seed(0)
    m = apply_lora(Tiny(), r=2, alpha=2)
    trainable = {n for n, p in m.named_parameters() if p.requires_grad}
    assert trainable and all(n.endswith(("lora_A", "lora_B")) for n in trainable)
    assert {id(p) for p in lora_parameters(m)} == {id(p) for p in m.parameters() if p.requires_grad}
    frozen_before = {n: p.detach().clone() for n, p in m.named_parameters() if not p.requires_grad}
    lora_before = {n: p.detach().clone() for n, p in m.named_parameters() if p.requires_grad}
    opt = torch.optim.AdamW([p for p in m.parameters() if p.requires_grad], lr=1e-2)
    idx = torch.randint(0, 11, (4, 6))
    for _ in range(3):
        loss = m(idx).square().mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
    for n, p in m.named_parameters():
        if n in frozen_before:
            assert torch.equal(p, frozen_before[n]), n
    assert any(not torch.equal(p, lora_before[n]) for n, p in m.named_parameters() if n in lora_before)


def test_merge_equals_unmerged():
    torch.manual_seed(0)
    m = apply_lora(Tiny(), r=3, alpha=5)
    _perturb_B(m)
    idx = torch.randint(0, 11, (2, 7))
    unmerged = m(idx)
    merge_lora(m)
    assert not any(isinstance(x, LoRALinear) for x in m.modules())
    assert all(type(m.h[0].get_submodule(k)) is nn.Linear for k in ("qkv", "out_proj", "c_fc", "c_proj"))
    torch.testing.assert_close(m(idx), unmerged, atol=1e-5, rtol=1e-5)
    assert m.h[0].c_proj.bias is None


def test_target_modules_and_errors():
    m = apply_lora(Tiny(), r=2, alpha=2, target_modules=["qkv"])
    assert sorted(n for n, x in m.named_modules() if isinstance(x, LoRALinear)) == ["h.0.qkv", "h.1.qkv"]
    with pytest.raises(ValueError, match="already has LoRA"):
        apply_lora(m, r=2, alpha=2)
    with pytest.raises(ValueError, match="matched no nn.Linear"):
        apply_lora(Tiny(), r=2, alpha=2, target_modules=["nope"])
    with pytest.raises(ValueError, match="no LoRA layers"):
        merge_lora(Tiny())
    with pytest.raises(ValueError, match="r must be >= 1"):
        LoRALinear(nn.Linear(2, 2), r=0, alpha=1)


def test_lora_on_gpt():
    from llm_from_scratch import gpt  # part of the package: a missing module is a failure, not a skip

    torch.manual_seed(0)
    cfg = gpt.GPTConfig(vocab_size=17, block_size=8, n_layer=2, n_head=2, n_embd=16, dropout=0.0)
    model = gpt.GPT(cfg).eval()
    idx = torch.randint(0, 17, (2, 8))
    ref, _ = model(idx)
    apply_lora(model, r=2, alpha=4)
    n_wrapped = sum(isinstance(x, LoRALinear) for x in model.modules())
    assert n_wrapped == 2 * 4  # qkv, out_proj, c_fc, c_proj in each of 2 blocks
    torch.testing.assert_close(model(idx)[0], ref)
    _perturb_B(model)
    changed, _ = model(idx)
    assert not torch.allclose(changed, ref)
    merge_lora(model)
    torch.testing.assert_close(model(idx)[0], changed, atol=1e-5, rtol=1e-5)
