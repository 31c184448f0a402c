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

Timing: benchmarks/timing.py, the same for every side (same warm-up and repeats, interleaved in
alternating order, median and IQR of wall and process CPU seconds). Asserted before any number is
printed: the logits equal, and the greedy tokens identical in all three generation paths.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.timing import compare, machine, row  # noqa: E402
from llm_from_scratch.gpt import GPT, generate  # noqa: E402


def main(argv: list[str] | None = None) -> dict[str, float]:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--layers", type=int, default=4)
    parser.add_argument("--d-model", type=int, default=256)
    parser.add_argument("--heads", type=int, default=4)
    parser.add_argument("--vocab", type=int, default=8192)
    parser.add_argument("--seq", type=int, default=128)
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--prompt", type=int, default=8, help="prompt length for generation")
    parser.add_argument("--new-tokens", type=int, default=200)
    parser.add_argument("--gen-repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=None, help="torch intra-op threads (default: torch's)")
    parser.add_argument("--json", help="also write the results here")
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
    print(f"machine: {machine(args.device)}; transformers {transformers.__version__}")
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

    sync = torch.cuda.synchronize if device.type == "cuda" else None
    tokens = args.batch * args.seq
    step = compare({"ours": step_ours, "transformers": step_hf}, warmup=args.warmup, repeats=args.repeats, sync=sync)
    w_o, c_o = step["ours"].wall.median, step["ours"].cpu.median
    w_h, c_h = step["transformers"].wall.median, step["transformers"].cpu.median
    print(f"\nforward + backward, {tokens} tokens a call; {args.warmup} warm-up + {args.repeats} timed, interleaved")
    for name, t in step.items():
        print(row(name, t))
    print(f"  ours / transformers (throughput): {w_h / w_o:.2f}x wall, {c_h / c_o:.2f}x CPU")
    results: dict = {"layers": args.layers, "d_model": args.d_model, "heads": args.heads, "vocab": args.vocab,
                     "params": ours.num_parameters(), "batch": args.batch, "seq": args.seq,
                     "warmup": args.warmup, "repeats": args.repeats, "new_tokens": args.new_tokens,
                     "prompt": args.prompt, "gen_repeats": args.gen_repeats,
                     "train_tok_s_ours_wall": tokens / w_o, "train_tok_s_ours_cpu": tokens / c_o,
                     "train_tok_s_hf_wall": tokens / w_h, "train_tok_s_hf_cpu": tokens / c_h,
                     "train_ratio_wall": w_h / w_o, "train_ratio_cpu": c_h / c_o}

    ours.eval(), hf.eval()
    prompt = torch.randint(0, args.vocab, (1, args.prompt), device=device)

    def gen(use_cache):
        return lambda: generate(ours, prompt, args.new_tokens, temperature=0, use_cache=use_cache)

    def gen_hf():
        with torch.no_grad():
            return hf.generate(prompt, attention_mask=torch.ones_like(prompt), max_new_tokens=args.new_tokens,
                               min_new_tokens=args.new_tokens, do_sample=False, pad_token_id=0)

    g = compare({"ours, KV cache": gen(True), "ours, no cache": gen(False), "transformers, cache": gen_hf},
                warmup=1, repeats=args.gen_repeats, sync=sync)
    cached = g["ours, KV cache"].result
    assert torch.equal(cached, g["ours, no cache"].result), "cached and uncached generation disagree"
    assert torch.equal(cached, g["transformers, cache"].result), "our greedy tokens differ from transformers'"
    n = args.new_tokens
    print(f"\ngenerate {n} tokens (greedy, batch 1, prompt {args.prompt}); identical tokens in all three (asserted); "
          f"1 warm-up + {args.gen_repeats} timed, interleaved")
    for name, t in g.items():
        print(row(name, t, unit="s") + f"   {n / t.wall.median:8.1f} tokens/s wall")
    med = {k: (v.wall.median, v.cpu.median) for k, v in g.items()}
    (w_c, c_c), (w_u, c_u), (w_hf, c_hf) = med["ours, KV cache"], med["ours, no cache"], med["transformers, cache"]
    print(f"  KV-cache speed-up: {w_u / w_c:.2f}x wall, {c_u / c_c:.2f}x CPU; "
          f"ours (cached) / transformers (cached), throughput: {w_hf / w_c:.2f}x wall, {c_hf / c_c:.2f}x CPU")
    results.update(gen_tok_s_cached_wall=n / w_c, gen_tok_s_cached_cpu=n / c_c,
                   gen_tok_s_uncached_wall=n / w_u, gen_tok_s_uncached_cpu=n / c_u,
                   gen_tok_s_hf_wall=n / w_hf, gen_tok_s_hf_cpu=n / c_hf,
                   cache_speedup_wall=w_u / w_c, cache_speedup_cpu=c_u / c_c,
                   gen_vs_hf_wall=w_hf / w_c, gen_vs_hf_cpu=c_hf / c_c)
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=1))
    return results


def markdown(r: dict) -> str:
    """The RESULTS.md table for one run's results."""
    def tp(key):
        return f"{r[key + '_wall']:,.1f} wall, {r[key + '_cpu']:,.1f} per CPU-s"
    return "\n".join([
        "| tokens/s | ours | reference | ratio (throughput, ours / reference) |",
        "|---|---|---|---|",
        f"| forward + backward, batch {r['batch']} x {r['seq']} (logits equal, asserted) | {tp('train_tok_s_ours')} "
        f"| transformers: {tp('train_tok_s_hf')} | **{r['train_ratio_wall']:.2f}x wall, {r['train_ratio_cpu']:.2f}x CPU** |",
        f"| generate {r['new_tokens']} tokens with the KV cache vs without (same tokens, asserted) "
        f"| {tp('gen_tok_s_cached')} | ours uncached: {tp('gen_tok_s_uncached')} "
        f"| **KV-cache speed-up {r['cache_speedup_wall']:.2f}x wall, {r['cache_speedup_cpu']:.2f}x CPU** |",
        f"| generate with the cache, ours vs transformers' `generate` (same tokens, asserted) "
        f"| {tp('gen_tok_s_cached')} | transformers cached: {tp('gen_tok_s_hf')} "
        f"| {r['gen_vs_hf_wall']:.2f}x wall, {r['gen_vs_hf_cpu']:.2f}x CPU |",
    ])


if __name__ == "__main__":
    main()
