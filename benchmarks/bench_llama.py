"""How fast is our Llama-style training step? A ratio against transformers' LlamaForCausalLM on the CPU.

    python benchmarks/bench_llama.py                 # defaults below
    python benchmarks/bench_llama.py --threads 1     # steadier on a machine shared with other jobs
    python benchmarks/bench_llama.py --layers 4 --d-model 256 --heads 8 --kv-heads 2 --seq 128 --batch 8

One training step = zero_grad, forward, next-token cross entropy, backward, AdamW step, for
``llm_from_scratch.llama.Llama`` and ``transformers.LlamaForCausalLM`` with the same shapes (grouped-query
attention, SwiGLU, RMSNorm, RoPE, untied output layer, fp32) and the same starting weights (ours is
loaded from the HF model with ``Llama.from_hf``; the script asserts equal logits and an equal first
loss), each with its own ``torch.optim.AdamW`` of the same hyperparameters. transformers runs its
default attention implementation (SDPA); ours runs SDPA too.

Timing: the same warm-up steps for both, then ``repeats`` rounds that each time one step of ours and
one of transformers, alternating which goes first (interleaved, so a burst of load on a shared machine
hits both alike). Reported: the median over the rounds, in wall time and in process CPU time
(user + sys, all threads), and the ratio transformers / ours (> 1: ours is faster).
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import time

import torch

from llm_from_scratch.llama import Llama


def _clock(fn, device: torch.device) -> tuple[float, float]:
    if device.type == "cuda":
        torch.cuda.synchronize()
    w, c = time.perf_counter(), time.process_time()
    fn()
    if device.type == "cuda":
        torch.cuda.synchronize()
    return time.perf_counter() - w, time.process_time() - c


def main(argv: list[str] | None = None) -> dict[str, float]:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--layers", type=int, default=4)
    parser.add_argument("--d-model", type=int, default=256)
    parser.add_argument("--heads", type=int, default=8)
    parser.add_argument("--kv-heads", type=int, default=2)
    parser.add_argument("--ffn", type=int, default=688, help="SwiGLU width (about 8/3 of d-model)")
    parser.add_argument("--vocab", type=int, default=8192)
    parser.add_argument("--seq", type=int, default=128)
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--repeats", type=int, default=15)
    parser.add_argument("--threads", type=int, default=None, help="torch intra-op threads (default: torch's)")
    args = parser.parse_args(argv)
    for name in ("layers", "d_model", "heads", "kv_heads", "ffn", "vocab", "seq", "batch", "repeats"):
        if getattr(args, name) < 1:
            parser.exit(2, f"bench_llama: --{name.replace('_', '-')} must be >= 1, got {getattr(args, name)}\n")
    if args.heads % args.kv_heads or args.d_model % args.heads or (args.d_model // args.heads) % 2:
        parser.exit(2, f"bench_llama: --kv-heads ({args.kv_heads}) must divide --heads ({args.heads}), and "
                       f"--d-model ({args.d_model}) / --heads must be an even integer\n")
    if args.threads:
        torch.set_num_threads(args.threads)

    import transformers
    from transformers import LlamaConfig, LlamaForCausalLM

    transformers.logging.set_verbosity_error()
    device = torch.device(args.device)
    torch.manual_seed(0)
    hf = LlamaForCausalLM(LlamaConfig(
        vocab_size=args.vocab, hidden_size=args.d_model, intermediate_size=args.ffn, num_hidden_layers=args.layers,
        num_attention_heads=args.heads, num_key_value_heads=args.kv_heads, max_position_embeddings=args.seq,
        rope_theta=10000.0, rms_norm_eps=1e-5, tie_word_embeddings=False, attention_dropout=0.0,
        bos_token_id=None, eos_token_id=None, pad_token_id=None)).to(device)
    ours = Llama.from_hf(hf).to(device)
    n_ours, n_hf = ours.num_parameters(), hf.num_parameters()
    assert n_ours == n_hf, f"parameter counts differ: {n_ours} vs {n_hf}"
    print(f"machine: {platform.machine()} {platform.processor() or ''}, {os.cpu_count()} cores, "
          f"torch {torch.__version__} ({torch.get_num_threads()} threads), transformers {transformers.__version__}, "
          f"device {device}, python {sys.version.split()[0]}")
    print(f"model: {args.layers} layers, d={args.d_model}, {args.heads} query heads / {args.kv_heads} kv heads, "
          f"SwiGLU {args.ffn}, vocab {args.vocab}, {n_ours / 1e6:.2f}M parameters; "
          f"batch {args.batch} x {args.seq} tokens, fp32, AdamW")

    idx = torch.randint(0, args.vocab, (args.batch, args.seq), device=device)
    targets = torch.cat([idx[:, 1:], torch.full_like(idx[:, :1], -100)], dim=1)
    ours.train(), hf.train()  # no dropout in either: training mode is the same function
    with torch.no_grad():
        ref = hf(idx, labels=idx)
        logits, loss = ours(idx, targets)
        assert torch.allclose(logits, ref.logits, atol=1e-4), "our logits differ from transformers'"
        assert torch.allclose(loss, ref.loss, atol=1e-5), "our loss differs from transformers'"

    opt_kwargs = dict(lr=1e-4, betas=(0.9, 0.95), weight_decay=0.1, eps=1e-8)
    opt_ours, opt_hf = torch.optim.AdamW(ours.parameters(), **opt_kwargs), torch.optim.AdamW(hf.parameters(), **opt_kwargs)

    def step_ours():
        opt_ours.zero_grad(set_to_none=True)
        _, loss = ours(idx, targets)
        loss.backward()
        opt_ours.step()

    def step_hf():
        opt_hf.zero_grad(set_to_none=True)
        hf(idx, labels=idx).loss.backward()  # transformers shifts the labels itself
        opt_hf.step()

    for _ in range(args.warmup):
        step_ours()
        step_hf()
    times: dict[str, list[tuple[float, float]]] = {"ours": [], "hf": []}
    for r in range(args.repeats):
        order = (("ours", step_ours), ("hf", step_hf)) if r % 2 == 0 else (("hf", step_hf), ("ours", step_ours))
        for name, fn in order:
            times[name].append(_clock(fn, device))
    assert len(times["ours"]) == len(times["hf"]) == args.repeats
    w_o, c_o = (statistics.median(t[i] for t in times["ours"]) for i in (0, 1))
    w_h, c_h = (statistics.median(t[i] for t in times["hf"]) for i in (0, 1))
    tokens = args.batch * args.seq
    print(f"\ntraining step (forward + backward + AdamW), median of {args.repeats} interleaved rounds "
          f"after {args.warmup} warm-up steps each")
    print(f"  ours          {tokens / w_o:10.0f} tokens/s wall   {tokens / c_o:10.0f} tokens/CPU-s   "
          f"({w_o * 1e3:.1f} ms wall)")
    print(f"  transformers  {tokens / w_h:10.0f} tokens/s wall   {tokens / c_h:10.0f} tokens/CPU-s   "
          f"({w_h * 1e3:.1f} ms wall)")
    print(f"  ours / transformers (throughput): {w_h / w_o:.2f}x wall, {c_h / c_o:.2f}x CPU")
    return {"train_ratio_wall": w_h / w_o, "train_ratio_cpu": c_h / c_o}


if __name__ == "__main__":
    main()
