"""How fast is our MultiHeadAttention? Ratios against torch.nn.MultiheadAttention, measured in the same run.

    python benchmarks/bench_attention.py            # CPU (or the GPU if there is one)
    python benchmarks/bench_attention.py --device cpu --batch 4 --seq 256

Causal (GPT) and bidirectional (BERT) self-attention, forward + backward, the same weights, three ways:
    ours/fast      MultiHeadAttention, the fast path (F.scaled_dot_product_attention; flash on a GPU)
    ours/explicit  MultiHeadAttention(need_weights=True): softmax(QKᵀ/√d)V written out, weights kept
    torch          torch.nn.MultiheadAttention(batch_first=True) (causal: attn_mask + is_causal=True)
Reported: the median time of each, and the ratios ours/torch (target: <= ~1.1 for the fast path)
and explicit/fast (what materialising the (B, H, T, T) weights costs).
"""

from __future__ import annotations

import argparse
import platform
import statistics
import time

import torch
import torch.nn as nn

from llm_from_scratch.attention import MultiHeadAttention, causal_mask


def _time_interleaved(fns: dict, device: torch.device, repeats: int, warmup: int = 3) -> dict[str, float]:
    """Median seconds of each fn. The variants take turns (A, B, C, A, B, C, ...) so that a change
    in the machine's load during the run hits all of them alike."""
    for _ in range(warmup):
        for fn in fns.values():
            fn()
    times: dict[str, list[float]] = {name: [] for name in fns}
    for _ in range(repeats):
        for name, fn in fns.items():
            if device.type == "cuda":
                torch.cuda.synchronize()
            start = time.perf_counter()
            fn()
            if device.type == "cuda":
                torch.cuda.synchronize()
            times[name].append(time.perf_counter() - start)
    return {name: statistics.median(t) for name, t in times.items()}


def main(argv: list[str] | None = None) -> dict[str, float]:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--seq", type=int, default=256)
    parser.add_argument("--d-model", type=int, default=384)
    parser.add_argument("--heads", type=int, default=6)
    parser.add_argument("--repeats", type=int, default=15)
    args = parser.parse_args(argv)
    device = torch.device(args.device)
    torch.manual_seed(0)

    results: dict[str, float] = {}
    for causal in (True, False):
        results.update(_bench(causal, args, device))
    return results


def _bench(causal: bool, args, device: torch.device) -> dict[str, float]:
    kind = "causal (GPT)" if causal else "bidirectional (BERT)"
    ours = MultiHeadAttention(args.d_model, args.heads, causal=causal).to(device)
    ref = nn.MultiheadAttention(args.d_model, args.heads, batch_first=True).to(device)
    with torch.no_grad():
        ref.in_proj_weight.copy_(ours.qkv.weight)
        ref.in_proj_bias.copy_(ours.qkv.bias)
        ref.out_proj.weight.copy_(ours.out_proj.weight)
        ref.out_proj.bias.copy_(ours.out_proj.bias)
    x = torch.randn(args.batch, args.seq, args.d_model, device=device, requires_grad=True)
    # torch's attn_mask says True = NOT allowed; it needs the mask even with is_causal=True
    not_allowed = ~causal_mask(args.seq, device=device) if causal else None

    def reference():
        return ref(x, x, x, attn_mask=not_allowed, need_weights=False, is_causal=causal)[0]

    # The three agree before we time them.
    ref_out = reference()
    assert torch.allclose(ours(x), ref_out, atol=1e-4)
    assert torch.allclose(ours(x, need_weights=True), ref_out, atol=1e-4)

    def step(forward):
        def run():
            forward().sum().backward()
        return run

    results = _time_interleaved({
        "ours/fast": step(lambda: ours(x)),
        "ours/explicit": step(lambda: ours(x, need_weights=True)),
        "torch": step(reference),
    }, device, args.repeats)
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else f"{platform.processor() or platform.machine()}, {torch.get_num_threads()} threads"
    print(f"\n{kind} self-attention fwd+bwd, B={args.batch} T={args.seq} d={args.d_model} H={args.heads}, "
          f"torch {torch.__version__}, {device.type} ({name})")
    print("| variant | median ms | ratio to torch |")
    print("|---|---|---|")
    for k, t in results.items():
        print(f"| {k} | {t * 1e3:.2f} | {t / results['torch']:.2f} |")
    print(f"explicit / fast = {results['ours/explicit'] / results['ours/fast']:.2f}")
    return {f"{kind} {k}": t for k, t in results.items()}


if __name__ == "__main__":
    main()
