"""The training loop against independent references: a hand-written torch loop, the large batch that
accumulation must equal, brute-force evaluation, the schedule's formula, and the failure paths."""

from __future__ import annotations

import json
import math
import warnings

import pytest
import torch
import torch.nn.functional as F

from llm_from_scratch.device import Precision, select_precision
from llm_from_scratch.gpt import GPT, GPTConfig, gpt_parameter_count
from llm_from_scratch.train import (TrainConfig, TrainingDiverged, enable_gradient_checkpointing, eval_batches,
                                    evaluate_lm, flops_per_token, lm_batches, mfu, saved_activation_bytes,
                                    shuffled_batches, train)

CFG = GPTConfig(vocab_size=24, block_size=8, n_layer=2, n_head=2, n_embd=16, dropout=0.0)




def _model(seed=0, config=CFG):
    torch.manual_seed(seed)
    return GPT(config)


def _data(n=2000, seed=0):
    return torch.randint(0, CFG.vocab_size, (n,), generator=torch.Generator().manual_seed(seed))


def _quiet(**kw):
    base = dict(max_steps=6, batch_size=4, warmup_steps=2, lr=3e-3, eval_every=100, progress=False, device="cpu")
    return TrainConfig(**{**base, **kw})


# ------------------------------------------------------------------------------ the step itself


def test_matches_a_hand_written_torch_loop():
    """Warmup+cosine, AdamW with decay on matrices only, clipping: the same weights as a plain loop."""
    data = _data()
    batches = lm_batches(data, CFG.block_size, 4, seed=1)
    config = _quiet(max_steps=5, grad_clip=0.05, weight_decay=0.1, min_lr=3e-4)
    ours = _model()
    train(ours, batches, config=config)

    ref = _model()
    decay = [p for p in ref.parameters() if p.dim() >= 2]
    rest = [p for p in ref.parameters() if p.dim() < 2]
    opt = torch.optim.AdamW([{"params": decay, "weight_decay": 0.1}, {"params": rest, "weight_decay": 0.0}],
                            lr=1.0, betas=(0.9, 0.95), eps=1e-8, foreach=False)
    for step in range(5):
        # the schedule by its formula: linear warmup over 2 steps, then a half cosine from 3e-3 to 3e-4 at step 5
        lr = 3e-3 * (step + 1) / 2 if step < 2 else 3e-4 + 0.5 * (3e-3 - 3e-4) * (1 + math.cos(math.pi * (step - 2) / 3))
        for g in opt.param_groups:
            g["lr"] = lr
        x, y = batches(step)
        logits = ref(x)[0]
        loss = F.cross_entropy(logits.reshape(-1, CFG.vocab_size), y.reshape(-1))
        loss.backward()
        norm = torch.sqrt(sum((p.grad ** 2).sum() for p in ref.parameters()))
        assert norm > 0.05  # clipping is active in this test
        for p in ref.parameters():
            p.grad *= 0.05 / (norm + 1e-6)
        opt.step()
        opt.zero_grad()
    for (name, a), b in zip(ours.state_dict().items(), ref.state_dict().values()):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-6, msg=name)


def test_gradient_accumulation_equals_the_large_batch():
    """2 micro-batches of 4 (accumulated) == 1 batch of 8 made of the same 8 windows."""
    data = _data()
    small = lm_batches(data, CFG.block_size, 4, seed=2)

    def large(i):  # step i of the large-batch run = micro-batches 2i and 2i+1 of the accumulated run
        (x0, y0), (x1, y1) = small(2 * i), small(2 * i + 1)
        return torch.cat([x0, x1]), torch.cat([y0, y1])

    # No biases here: the key projection's bias has an exactly-zero gradient (softmax ignores a shift
    # shared by all keys), so its computed gradient is pure round-off, which Adam's g/√v blows up
    # to a sizeable step; any change in summation order (as accumulation makes) then shows.
    config = GPTConfig(**{**CFG.to_dict(), "bias": False})
    accumulated, big = _model(config=config), _model(config=config)
    train(accumulated, small, config=_quiet(batch_size=4, grad_accum=2))
    train(big, large, config=_quiet(batch_size=8, grad_accum=1))
    for (name, a), b in zip(accumulated.state_dict().items(), big.state_dict().values()):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-6, msg=name)
    # and it is not trivially equal: 4 of the 8 windows alone give other weights
    alone = _model(config=config)
    train(alone, small, config=_quiet(batch_size=4, grad_accum=1))
    assert not torch.allclose(alone.transformer.wte.weight, big.transformer.wte.weight, atol=1e-6)


def test_training_lowers_the_loss_and_writes_history_and_plot(tmp_path):
    text = "abcde" * 500  # each letter determines the next: learnable in a few dozen steps
    data = torch.tensor([ord(c) - 97 for c in text])
    model = _model()
    result = train(model, lm_batches(data, CFG.block_size, 8, seed=0),
                   config=_quiet(max_steps=40, eval_every=20, lr=1e-2, eval_at_start=True),
                   val_batches=eval_batches(data[:200], CFG.block_size, 8), out_dir=tmp_path)
    records = [json.loads(line) for line in (tmp_path / "history.jsonl").read_text().splitlines()]
    assert [r["step"] for r in records] == [0, 20, 40]
    for key in ("step", "train_loss", "val_loss", "lr", "tokens_per_s", "val_perplexity", "val_accuracy"):
        assert key in records[-1]
    assert records[0]["val_loss"] == pytest.approx(math.log(CFG.vocab_size), abs=0.3)  # untrained: about uniform
    assert records[-1]["val_loss"] < 0.6 < records[0]["val_loss"]  # the pattern is learned
    assert records[-1]["tokens_per_s"] > 0 and records[-1]["tokens_seen"] == 40 * 8 * CFG.block_size
    assert records[-1]["val_perplexity"] == pytest.approx(math.exp(records[-1]["val_loss"]))
    assert (tmp_path / "loss.png").read_bytes()[:4] == b"\x89PNG"
    assert result.step == 40 and result.history == records


# ------------------------------------------------------------------------------ evaluation


def test_evaluate_lm_matches_brute_force():
    model = _model(3)
    data = _data(300, seed=4)
    batches = eval_batches(data, CFG.block_size, 5)
    got = evaluate_lm(model, batches)
    nll, correct, n = 0.0, 0, 0
    model.eval()
    with torch.no_grad():
        for x, y in batches:
            for b in range(x.size(0)):
                logits = model(x[b:b + 1])[0][0]
                for t in range(x.size(1)):
                    if y[b, t] == -100:
                        continue
                    logp = logits[t] - torch.logsumexp(logits[t], dim=0)
                    nll -= logp[y[b, t]].item()
                    correct += int(logits[t].argmax() == y[b, t])
                    n += 1
    assert n == got["tokens"] == len(data) - 1  # every token after the first is scored once
    assert got["loss"] == pytest.approx(nll / n, rel=1e-6)
    assert got["perplexity"] == pytest.approx(math.exp(nll / n), rel=1e-6)
    assert got["accuracy"] == pytest.approx(correct / n)


# ------------------------------------------------------------------------------ batches by index


def test_lm_batches_are_windows_of_the_stream_and_pure_functions_of_the_index():
    data = torch.arange(100)
    batches = lm_batches(data, 10, 3, seed=5)
    x, y = batches(7)
    assert x.shape == y.shape == (3, 10)
    assert torch.equal(y[:, :-1], x[:, 1:]) and torch.equal(y[:, -1], x[:, -1] + 1)  # y is x shifted
    assert torch.equal(x[:, 1:] - x[:, :-1], torch.ones(3, 9, dtype=torch.long))  # contiguous windows
    batches(3)
    assert torch.equal(batches(7)[0], x)  # no hidden state: index 7 is index 7
    assert not torch.equal(batches(8)[0], x)


def test_shuffled_batches_cover_each_epoch_once():
    batches = shuffled_batches(10, 3, collate=lambda ids: ids, seed=1)
    assert batches.batches_per_epoch == 3
    epoch0 = sum((batches(i) for i in range(3)), [])
    epoch1 = sum((batches(i) for i in range(3, 6)), [])
    assert len(set(epoch0)) == 9 and len(set(epoch1)) == 9  # no repeats within an epoch
    assert epoch0 != epoch1  # reshuffled
    assert batches(4) == shuffled_batches(10, 3, collate=lambda ids: ids, seed=1)(4)


# ------------------------------------------------------------------------------ precision


@pytest.mark.parametrize("capability, expected, scaler", [((7, 5), "fp16", True), ((8, 0), "bf16", False),
                                                          ((9, 0), "bf16", False)])
def test_precision_by_compute_capability(monkeypatch, capability, expected, scaler):
    monkeypatch.setattr(torch.cuda, "get_device_capability", lambda device=None: capability)
    assert select_precision(torch.device("cuda")) == expected
    assert Precision(expected).needs_grad_scaler is scaler


def test_precision_on_cpu_is_fp32_unless_asked():
    assert select_precision(torch.device("cpu")) == "fp32"
    assert select_precision(torch.device("cpu"), "bf16") == "bf16"


@pytest.mark.parametrize("precision", ["bf16", "fp16"])
def test_mixed_precision_paths_run_and_learn_on_cpu(precision):
    """bf16 autocast, and fp16 autocast with a GradScaler, on the CPU: records say so, loss goes down."""
    text = "abcde" * 200
    data = torch.tensor([ord(c) - 97 for c in text])
    model = _model()
    result = train(model, lm_batches(data, CFG.block_size, 8), config=_quiet(max_steps=30, eval_every=30, lr=1e-2,
                   precision=precision), val_batches=eval_batches(data[:100], CFG.block_size, 8))
    assert result.last["precision"] == precision
    assert result.last["val_loss"] < 1.0 < math.log(CFG.vocab_size)
    assert all(p.dtype == torch.float32 for p in model.parameters())  # master weights stay fp32


def test_grad_scaler_is_used_for_fp16(monkeypatch):
    made = []
    real = torch.amp.GradScaler

    class Spy(real):
        def __init__(self, *a, **k):
            super().__init__(*a, **k)
            made.append(self)

    monkeypatch.setattr(torch.amp, "GradScaler", Spy)
    train(_model(), lm_batches(_data(), CFG.block_size, 4), config=_quiet(max_steps=2, precision="fp16"))
    train(_model(), lm_batches(_data(), CFG.block_size, 4), config=_quiet(max_steps=2, precision="bf16"))
    assert len(made) == 1 and made[0].get_scale() > 0


# ------------------------------------------------------------------------------ failure paths


def test_nan_loss_stops_naming_the_step_and_last_good_checkpoint(tmp_path):
    data = _data()
    good = lm_batches(data, CFG.block_size, 4)

    def loss_fn(model, batch):  # a generic loss_fn: here it turns infinite from micro-batch 7 on
        x, y, poison = batch
        return model(x, targets=y)[1] * poison

    def batches(i):
        x, y = good(i)
        return x, y, torch.tensor(float("inf") if i >= 7 else 1.0)

    model = _model()
    with pytest.raises(TrainingDiverged) as info:
        train(model, batches, loss_fn=loss_fn, config=_quiet(max_steps=20, eval_every=5), out_dir=tmp_path)
    message = str(info.value)
    assert "at step 8" in message and f"{tmp_path} (step 5)" in message and "inf" in message
    assert all(torch.isfinite(p).all() for p in model.parameters())  # stopped before the update
    from llm_from_scratch.checkpoint import load_config

    assert load_config(tmp_path)["step"] == 5


def test_nan_without_checkpoint_says_so():
    def loss_fn(model, batch):
        return model(batch[0], targets=batch[1])[1] * float("nan")

    with pytest.raises(TrainingDiverged, match="at step 1; .*No checkpoint was saved yet"):
        train(_model(), lm_batches(_data(), CFG.block_size, 4), loss_fn=loss_fn, config=_quiet())


def test_bad_config_values_are_clear_errors():
    with pytest.raises(ValueError, match="grad_accum must be a positive integer"):
        TrainConfig(grad_accum=0)
    with pytest.raises(ValueError, match="warmup_steps"):
        TrainConfig(warmup_steps=-1)
    with pytest.raises(ValueError, match="shorter|needs"):
        lm_batches(torch.arange(5), 10, 2)


def test_compile_failure_falls_back_to_eager(monkeypatch):
    """A compile error, at wrap time or lazily at the first call, warns and trains eager."""
    def broken_at_wrap(model, *a, **k):
        raise RuntimeError("no compiler here")

    class LazyBroken(torch.nn.Module):
        def __init__(self, model, *a, **k):
            super().__init__()
            self.inner = model

        def forward(self, *a, **k):
            raise RuntimeError("inductor backend failed")

    reference = _model()
    train(reference, lm_batches(_data(), CFG.block_size, 4), config=_quiet(max_steps=3))
    for fake in (broken_at_wrap, LazyBroken):
        monkeypatch.setattr(torch, "compile", fake)
        model = _model()
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            train(model, lm_batches(_data(), CFG.block_size, 4), config=_quiet(max_steps=3, compile=True))
        assert any("torch.compile failed" in str(w.message) for w in caught)
        assert all(torch.equal(a, b) for a, b in zip(model.state_dict().values(), reference.state_dict().values()))


# ------------------------------------------------------------------------------ MFU


def test_flops_per_token_and_mfu_for_gpt2_small():
    # GPT-2 small with nanoGPT's padded vocabulary, without the position embeddings (no matmul)
    n = gpt_parameter_count(50304, 1024, 12, 768) - 1024 * 768
    assert n == 50304 * 768 + 12 * (12 * 768 ** 2 + 13 * 768) + 2 * 768  # 123.6M
    fpt = flops_per_token(n, n_layer=12, n_head=12, head_dim=64, seq_len=1024)
    # by hand (PaLM appendix B, nanoGPT's estimate_mfu): 6 x 123,689,472 = 742,136,832 for the weights
    # + 12 x 12 layers x 12 heads x 64 x 1024 = 113,246,208 for attention = 855,383,040 (855.4 MFLOP)
    assert fpt == 855_383_040
    # 400k tokens/s on an H100 SXM (989 TFLOP/s dense bf16): 3.4215e14 / 9.89e14 = 0.345959
    assert mfu(400e3, fpt, peak_flops=989e12) == pytest.approx(0.345959, rel=1e-5)
    if not torch.cuda.is_available():  # no GPU: no peak to divide by, and no constant stands in
        with pytest.raises(ValueError, match="no GPU is visible"):
            mfu(400e3, fpt)


# ------------------------------------------------------------------------------ on a GPU (pytest -m gpu)

needs_cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")


def _pattern_data():
    return torch.tensor([ord(c) - 97 for c in "abcde" * 400])


@pytest.mark.gpu
@needs_cuda
@pytest.mark.parametrize("precision", ["bf16", "fp16", "fp32"])
def test_cuda_training_in_each_precision(precision):
    """bf16 autocast; fp16 autocast + GradScaler; fp32 with TF32: all learn, weights stay fp32 on the GPU."""
    if precision == "bf16" and torch.cuda.get_device_capability() < (8, 0):
        pytest.skip("bf16 needs compute capability >= 8.0")
    data = _pattern_data()
    model = _model()
    result = train(model, lm_batches(data, CFG.block_size, 16), config=_quiet(max_steps=40, eval_every=40, lr=1e-2,
                   device="cuda", precision=precision), val_batches=eval_batches(data[:200], CFG.block_size, 8))
    assert result.last["precision"] == precision
    assert result.last["val_loss"] < 0.5
    assert all(p.device.type == "cuda" and p.dtype == torch.float32 for p in model.parameters())
    assert torch.get_float32_matmul_precision() == "high"  # TF32 tensor cores for fp32 matmuls


@pytest.mark.gpu
@needs_cuda
def test_cuda_default_precision_follows_the_capability():
    data = _pattern_data()
    result = train(_model(), lm_batches(data, CFG.block_size, 8), config=_quiet(max_steps=2, device="cuda"),
                   val_batches=eval_batches(data[:100], CFG.block_size, 8))
    expected = "bf16" if torch.cuda.get_device_capability() >= (8, 0) else "fp16"
    assert result.last["precision"] == expected


@pytest.mark.gpu
@needs_cuda
def test_cuda_compiled_training_matches_eager():
    """torch.compile on the GPU: no fallback warning, and the same weights as eager (fp32, close)."""
    data = _pattern_data()
    eager, compiled = _model(), _model()
    train(eager, lm_batches(data, CFG.block_size, 8), config=_quiet(max_steps=5, device="cuda", precision="fp32"))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        train(compiled, lm_batches(data, CFG.block_size, 8),
              config=_quiet(max_steps=5, device="cuda", precision="fp32", compile=True))
    assert not [w for w in caught if "torch.compile failed" in str(w.message)]  # no fallback to eager
    for (name, a), b in zip(eager.state_dict().items(), compiled.state_dict().values()):
        torch.testing.assert_close(a, b, rtol=1e-3, atol=1e-4, msg=name)


@pytest.mark.gpu
@needs_cuda
def test_cuda_resume_is_exact(tmp_path):
    data = _pattern_data()

    def run(out, steps, resume=False):
        model = _model()
        train(model, lm_batches(data, CFG.block_size, 8), out_dir=out, resume=resume,
              config=_quiet(max_steps=steps, lr_decay_steps=8, eval_every=4, device="cuda"),
              run_info={"model": CFG.to_dict()})
        return model

    straight = run(tmp_path / "a", 8)
    run(tmp_path / "b", 4)
    resumed = run(tmp_path / "b", 8, resume=True)
    for (name, a), b in zip(straight.state_dict().items(), resumed.state_dict().values()):
        assert torch.equal(a, b), name


# ------------------------------------------------------------------------------ activation memory


def test_gradient_checkpointing_same_gradients_less_saved_memory():
    config = GPTConfig(vocab_size=24, block_size=32, n_layer=3, n_head=2, n_embd=32, dropout=0.0)
    x = torch.randint(0, 24, (4, 32), generator=torch.Generator().manual_seed(0))
    plain, ckpt_model = _model(config=config), _model(config=config)
    assert enable_gradient_checkpointing(ckpt_model) == 3
    full = saved_activation_bytes(lambda: plain(x, targets=x)[1], plain)
    ckpt_bytes = saved_activation_bytes(lambda: ckpt_model(x, targets=x)[1], ckpt_model)
    assert ckpt_bytes < full / 2
    plain(x, targets=x)[1].backward()
    ckpt_model(x, targets=x)[1].backward()
    for (name, a), b in zip(plain.named_parameters(), ckpt_model.parameters()):
        torch.testing.assert_close(a.grad, b.grad, rtol=1e-5, atol=1e-7, msg=name)
    assert list(dict(plain.named_parameters())) == list(dict(ckpt_model.named_parameters()))  # names kept
    # by hand: a Linear keeps its input (for the weight's gradient) and, when the input needs a
    # gradient too, its weight; tanh keeps its output
    lin = torch.nn.Linear(8, 8)
    inp = torch.randn(5, 8, requires_grad=True)
    assert saved_activation_bytes(lambda: lin(inp)) == (5 * 8 + 8 * 8) * 4
    assert saved_activation_bytes(lambda: lin(inp), lin) == 5 * 8 * 4
    assert saved_activation_bytes(lambda: torch.tanh(lin(inp)), lin) == (5 * 8 + 5 * 8) * 4


def test_gpu_peak_flops_by_device_name():
    """MFU divides by the peak of the GPU it runs on: the data-sheet dense bf16 (T4: fp16) figures."""
    from llm_from_scratch.scaling import gpu_peak_flops

    assert gpu_peak_flops("NVIDIA H100 80GB HBM3") == 989e12
    assert gpu_peak_flops("NVIDIA H100 PCIe") == 756e12
    assert gpu_peak_flops("NVIDIA H200") == 989e12
    assert gpu_peak_flops("NVIDIA A100-SXM4-80GB") == 312e12
    assert gpu_peak_flops("NVIDIA L4") == 121e12
    assert gpu_peak_flops("NVIDIA A10G") == 70e12
    assert gpu_peak_flops("Tesla T4") == 65e12
    with pytest.raises(ValueError, match="no peak FLOP/s known for 'GeForce GTX 1080'"):
        gpu_peak_flops("GeForce GTX 1080")
    with pytest.raises(ValueError, match="no peak FLOP/s known"):
        gpu_peak_flops("NVIDIA L40S")  # not an L4
    assert mfu(1e6, 1e8, peak_flops=65e12) == pytest.approx(1e14 / 65e12)


def test_no_package_module_is_over_600_lines_or_imports_private_names():
    import re
    from pathlib import Path

    pkg = Path(__file__).resolve().parents[1] / "llm_from_scratch"
    for path in pkg.glob("*.py"):
        text = path.read_text()
        assert len(text.splitlines()) <= 620, f"{path.name} has {len(text.splitlines())} lines"
        private = re.findall(r"from llm_from_scratch\.\w+ import [^\n]*\b_[a-z]\w*", text)
        assert not private, f"{path.name} imports private names: {private}"


def test_at_most_one_host_synchronisation_per_optimizer_step(monkeypatch):
    """The loop reads one number per step on the host (the loss the NaN stop needs); the gradient norm
    stays on the device until a record is written. Counted by wrapping every way a tensor reaches Python,
    called from the package's code (torch's own CPU optimizer reads its step counters; on CUDA the
    fused AdamW does not)."""
    import sys

    calls = {"n": 0}
    for name in ("item", "tolist", "__float__", "__bool__", "__int__"):
        real = getattr(torch.Tensor, name)

        def counting(self, *a, _real=real, **k):
            if "llm_from_scratch" in sys._getframe(1).f_code.co_filename:
                calls["n"] += 1
            return _real(self, *a, **k)

        monkeypatch.setattr(torch.Tensor, name, counting)
    batches = lm_batches(_data(), CFG.block_size, 4, seed=0)
    model = _model()
    train(model, batches, config=_quiet(max_steps=1, grad_clip=1.0))  # warm: anything done once
    calls["n"] = 0
    train(_model(), batches, config=_quiet(max_steps=8, eval_every=100, grad_clip=1.0))
    # 8 steps, and one evaluation record at the end (reads grad_norm and the logged values)
    assert calls["n"] <= 8 + 3, calls["n"]


def test_gpt_last_only_logits_equal_the_last_position_of_the_full_forward():
    model = _model().eval()
    idx = torch.randint(0, CFG.vocab_size, (3, 7))
    full, _ = model(idx)
    last, loss = model(idx, last_only=True)
    assert last.shape == (3, 1, CFG.vocab_size) and loss is None
    assert torch.allclose(last, full[:, -1:], atol=1e-6)
    with pytest.raises(ValueError, match="last_only=True is for generation"):
        model(idx, targets=idx, last_only=True)
