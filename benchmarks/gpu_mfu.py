"""Tokens/s and MFU of the ``gpt2-124m`` preset on a GPU, through the course's own training loop.

    python benchmarks/gpu_mfu.py                          # batch 16, 8 micro-steps per step, compiled
    python benchmarks/gpu_mfu.py --batch 16,32 --no-compile

What runs: ``llm_from_scratch.train.train`` on ``gpt.GPT`` with GPT-2 small's shape (12 layers,
12 heads, d=768, T=1024, vocabulary padded to 50304), bf16 autocast (by the GPU's capability),
``torch.compile``, fused AdamW, TF32, and attention through ``F.scaled_dot_product_attention``
(the profiler below checks that a flash-attention kernel runs). The data are random token ids
(throughput does not depend on them). The first history window (compilation, warm-up) is dropped.

MFU (PaLM, appendix B): achieved FLOP/s / peak FLOP/s, with training FLOPs per token
≈ 6N + 12·L·H·Q·T (N: parameters without the position embeddings; L layers, H heads, head size Q,
sequence length T), and the dense tensor-core peak of the GPU it runs on, in the precision it trains
in (llm_from_scratch/scaling.py: H100 SXM/PCIe, H200, A100, L4, A10G, T4; ``--peak-tflops`` for another).
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from llm_from_scratch.scaling import gpu_peak  # noqa: E402
from benchmarks.timing import machine  # noqa: E402
from llm_from_scratch.gpt import GPT, GPTConfig  # noqa: E402
from llm_from_scratch.presets import get_preset  # noqa: E402
from llm_from_scratch.train import autocast, flops_per_token, lm_batches, mfu, train  # noqa: E402


def attention_kernels(model: GPT, batch: int, precision: str) -> list[str]:
    """Names of the CUDA kernels that one forward + backward runs for attention (flash or not)."""
    from torch.profiler import ProfilerActivity, profile

    x = torch.randint(0, model.config.vocab_size, (batch, model.config.block_size), device="cuda")
    with profile(activities=[ProfilerActivity.CUDA]) as prof:
        with autocast("cuda", precision):
            loss = model(x, targets=x)[1]
        loss.backward()
        torch.cuda.synchronize()
    model.zero_grad(set_to_none=True)
    names = {e.key for e in prof.key_averages()}
    return sorted(n for n in names if any(s in n.lower() for s in ("flash", "fmha", "attention", "sdpa")))[:6]


def run(batch: int, grad_accum: int, steps: int, compile: bool, window: int, peak_flops: float,
        compile_mode: str | None = None) -> dict:
    preset = get_preset("gpt2-124m")
    config = GPTConfig(vocab_size=preset.vocab_size(50257), **preset.model)
    train_config = preset.with_overrides(max_steps=steps, batch_size=batch, grad_accum=grad_accum,
                                         eval_every=window, compile=compile, compile_mode=compile_mode,
                                         progress=False).train
    torch.manual_seed(0)
    model = GPT(config)
    n_params = model.num_parameters(non_embedding=True)
    tokens = torch.randint(0, 50257, (20_000_000,), generator=torch.Generator().manual_seed(0))
    torch.cuda.reset_peak_memory_stats()
    start = time.perf_counter()
    result = train(model, lm_batches(tokens, config.block_size, batch, seed=0), config=train_config)
    total = time.perf_counter() - start
    steady = [r["tokens_per_s"] for r in result.history[1:]]
    tok_s = statistics.median(steady)
    fpt = flops_per_token(n_params, config.n_layer, config.n_head, config.n_embd // config.n_head, config.block_size)
    return {
        "batch": batch, "grad_accum": grad_accum, "tokens_per_step": batch * grad_accum * config.block_size,
        "compile": compile, "compile_mode": compile_mode, "precision": result.last["precision"], "steps": steps,
        "tokens_per_s_windows": [round(r["tokens_per_s"]) for r in result.history],
        "tokens_per_s": tok_s, "flops_per_token": fpt, "n_params_non_embedding": n_params,
        "mfu": mfu(tok_s, fpt, peak_flops), "peak_flops": peak_flops, "peak_memory_gib": torch.cuda.max_memory_allocated() / 2**30,
        "wall_s_including_compile": total, "final_train_loss": result.last["train_loss"],
        "attention_kernels": attention_kernels(model, 2, result.last["precision"]),
    }


def _fail(message: str) -> None:
    """Bad input or machine: one line on stderr, exit status 2."""
    print(f"error: {message}", file=sys.stderr)
    raise SystemExit(2)


def main(argv=None) -> list[dict]:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--batch", default="16", help="micro-batch sizes to try, comma-separated")
    parser.add_argument("--grad-accum", type=int, default=8)
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--window", type=int, default=5, help="steps per tokens/s window (the first is dropped)")
    parser.add_argument("--no-compile", action="store_true")
    parser.add_argument("--compile-mode", default=None, help="e.g. max-autotune-no-cudagraphs")
    parser.add_argument("--peak-tflops", type=float, default=None,
                        help="the GPU's dense peak in TFLOP/s (default: from llm_from_scratch/scaling.py by its name)")
    parser.add_argument("--json", help="write the results here")
    args = parser.parse_args(argv)
    if not torch.cuda.is_available():
        _fail("gpu_mfu.py needs a CUDA GPU: run it on a GPU machine (torch sees none here)")
    name = torch.cuda.get_device_name()
    known = gpu_peak(name)
    if args.peak_tflops is not None:
        peak, peak_source = args.peak_tflops * 1e12, "--peak-tflops"
    elif known is not None:
        peak, peak_source = known[1], f"{known[0]} dense {known[2]}, llm_from_scratch/scaling.py"
    else:
        _fail(f"no peak FLOP/s known for {name!r}: pass its dense tensor-core peak from its datasheet "
              "(without sparsity) with --peak-tflops")
    print(f"machine: {machine('cuda')}")
    print(f"GPU: {name} (capability {torch.cuda.get_device_capability()}), "
          f"peak {peak / 1e12:.0f} TFLOP/s ({peak_source})", flush=True)
    results = []
    for b in (int(x) for x in args.batch.split(",")):
        r = run(b, args.grad_accum, args.steps, not args.no_compile, args.window, peak, args.compile_mode)
        r["gpu"] = name
        results.append(r)
        print(f"batch {b} x {args.grad_accum} accum x 1024 (compile mode {args.compile_mode}): {r['tokens_per_s']:,.0f} tokens/s, MFU {r['mfu']:.1%}, "
              f"peak memory {r['peak_memory_gib']:.1f} GiB, windows {r['tokens_per_s_windows']}, "
              f"attention kernels {r['attention_kernels']}", flush=True)
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=1))
    return results


if __name__ == "__main__":
    main()
