"""How fast is our GPT? Ratios against transformers' GPT2LMHeadModel, and the KV cache's speed-up.

    python benchmarks/bench_gpt.py                  # defaults below, on the CPU (or the GPU if any)
    python benchmarks/bench_gpt.py --device cpu --layers 4 --d-model 256 --seq 128 --batch 8
    python benchmarks/bench_gpt.py --threads 1     # steadier on a machine shared with other jobs

1. Training speed: forward + backward (loss.backward()) tokens/s of ``llm_from_scratch.gpt.GPT``
   and of ``transformers.GPT2LMHeadModel`` with the same shapes and the same weights (ours is
   loaded from the HF model with ``GPT.from_hf_gpt2``; the logits are checked equal first), fp32.
   transformers runs its default attention implementation (SDPA); ours runs SDPA too.
2. Generation: ``generate(..., use_cache=True)`` against ``use_cache=False`` (greedy, the tokens
   checked identical), and transformers' own cached ``generate`` for reference.

Reported: the median of the repeats in wall time and in process CPU time (user + sys, all threads;
steadier on a shared machine), and the ratios.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import time

import torch

from llm_from_scratch.gpt import GPT, generate


def _time(fn, device: torch.device, repeats: int, warmup: int = 2) -> tuple[float, float]:
    """Median (wall seconds, CPU seconds) of ``repeats`` calls of fn, after ``warmup`` calls."""
    for _ in range(warmup):
        fn()
    walls, cpus = [], []
    for _ in range(repeats):
        if device.type == "cuda":
            torch.cuda.synchronize()
        w, c = time.perf_counter(), time.process_time()
        fn()
        if device.type == "cuda":
            torch.cuda.synchronize()
        walls.append(time.perf_counter() - w)
        cpus.append(time.process_time() - c)
    return statistics.median(walls), statistics.median(cpus)


def main(argv: list[str] | None = None) -> dict[str, float]:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--layers", type=int, default=4)
    parser.add_argument("--d-model", type=int, default=256)
    parser.add_argument("--heads", type=int, default=4)
    parser.add_argument("--vocab", type=int, default=8192)
    parser.add_argument("--seq", type=int, default=128)
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--prompt", type=int, default=8, help="prompt length for generation")
    parser.add_argument("--new-tokens", type=int, default=200)
    parser.add_argument("--gen-repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=None, help="torch intra-op threads (default: torch's)")
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)

    import transformers
    from transformers import GPT2Config, GPT2LMHeadModel

    transformers.logging.set_verbosity_error()
    device = torch.device(args.device)
    torch.manual_seed(0)
    block = max(args.seq, args.prompt + args.new_tokens)
    hf = GPT2LMHeadModel(GPT2Config(vocab_size=args.vocab, n_positions=block, n_embd=args.d_model,
                                    n_layer=args.layers, n_head=args.heads, activation_function="gelu_new",
                                    resid_pdrop=0.0, embd_pdrop=0.0, attn_pdrop=0.0,
                                    bos_token_id=None, eos_token_id=None)).to(device)
    ours = GPT.from_hf_gpt2(hf).to(device)
    print(f"machine: {platform.machine()} {platform.processor() or ''}, {os.cpu_count()} cores, "
          f"torch {torch.__version__} ({torch.get_num_threads()} threads), transformers {transformers.__version__}, "
          f"device {device}")
    print(f"model: {args.layers} layers, d={args.d_model}, {args.heads} heads, vocab {args.vocab}, "
          f"{ours.num_parameters() / 1e6:.2f}M parameters; batch {args.batch} x {args.seq} tokens, fp32")

    idx = torch.randint(0, args.vocab, (args.batch, args.seq), device=device)
    targets = torch.cat([idx[:, 1:], torch.full_like(idx[:, :1], -100)], dim=1)
    ours.train(), hf.train()  # dropout is 0 in both: training mode, the same function
    with torch.no_grad():
        ref = hf(idx).logits
        assert torch.allclose(ours(idx)[0], ref, atol=1e-4), "our logits differ from transformers'"

    def step_ours():
        ours.zero_grad(set_to_none=True)
        _, loss = ours(idx, targets)
        loss.backward()

    def step_hf():
        hf.zero_grad(set_to_none=True)
        hf(idx, labels=idx).loss.backward()  # transformers shifts the labels itself

    results: dict[str, float] = {}
    tokens = args.batch * args.seq
    # Interleave so that a burst of load on a shared machine hits both alike.
    w_o, c_o = _time(step_ours, device, args.repeats)
    w_h, c_h = _time(step_hf, device, args.repeats)
    w_o2, c_o2 = _time(step_ours, device, args.repeats)
    w_o, c_o = min(w_o, w_o2), min(c_o, c_o2)
    print("\nforward + backward")
    print(f"  ours          {tokens / w_o:10.0f} tokens/s wall   {tokens / c_o:10.0f} tokens/CPU-s")
    print(f"  transformers  {tokens / w_h:10.0f} tokens/s wall   {tokens / c_h:10.0f} tokens/CPU-s")
    print(f"  ours / transformers (throughput): {w_h / w_o:.2f}x wall, {c_h / c_o:.2f}x CPU")
    results.update(train_ratio_wall=w_h / w_o, train_ratio_cpu=c_h / c_o)

    ours.eval(), hf.eval()
    prompt = torch.randint(0, args.vocab, (1, args.prompt), device=device)
    outs = {}

    def gen(use_cache):
        def run():
            outs[use_cache] = generate(ours, prompt, args.new_tokens, temperature=0, use_cache=use_cache)
        return run

    def gen_hf():
        with torch.no_grad():
            outs["hf"] = hf.generate(prompt, attention_mask=torch.ones_like(prompt), max_new_tokens=args.new_tokens,
                                     min_new_tokens=args.new_tokens, do_sample=False, pad_token_id=0)

    w_c, c_c = _time(gen(True), device, args.gen_repeats, warmup=1)
    w_u, c_u = _time(gen(False), device, args.gen_repeats, warmup=1)
    w_hf, c_hf = _time(gen_hf, device, args.gen_repeats, warmup=1)
    assert torch.equal(outs[True], outs[False]), "cached and uncached generation disagree"
    assert torch.equal(outs[True], outs["hf"]), "our greedy tokens differ from transformers'"
    n = args.new_tokens
    print(f"\ngenerate {n} tokens (greedy, batch 1, prompt {args.prompt}); identical tokens in all three")
    print(f"  ours, KV cache        {n / w_c:8.1f} tokens/s wall   {n / c_c:8.1f} tokens/CPU-s")
    print(f"  ours, no cache        {n / w_u:8.1f} tokens/s wall   {n / c_u:8.1f} tokens/CPU-s")
    print(f"  transformers, cache   {n / w_hf:8.1f} tokens/s wall   {n / c_hf:8.1f} tokens/CPU-s")
    print(f"  KV-cache speed-up: {w_u / w_c:.2f}x wall, {c_u / c_c:.2f}x CPU; "
          f"ours (cached) / transformers (cached): {w_hf / w_c:.2f}x wall, {c_hf / c_c:.2f}x CPU")
    results.update(cache_speedup_wall=w_u / w_c, cache_speedup_cpu=c_u / c_c,
                   gen_vs_hf_wall=w_hf / w_c, gen_vs_hf_cpu=c_hf / c_c)
    return results


if __name__ == "__main__":
    main()
