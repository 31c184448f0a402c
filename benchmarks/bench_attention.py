"""How fast is our MultiHeadAttention? Ratios against torch.nn.MultiheadAttention, measured in the same run.

    python benchmarks/bench_attention.py            # CPU (or the GPU if there is one)
    python benchmarks/bench_attention.py --device cpu --batch 4 --seq 256 --threads 1

Causal (GPT) and bidirectional (BERT) self-attention, forward + backward, the same weights, three ways:
    ours/fast      MultiHeadAttention, the fast path (F.scaled_dot_product_attention; flash on a GPU)
    ours/explicit  MultiHeadAttention(need_weights=True): softmax(QKᵀ/√d)V written out, weights kept
    torch          torch.nn.MultiheadAttention(batch_first=True) (causal: attn_mask + is_causal=True)
Asserted before timing: the three give the same output. Timing: benchmarks/timing.py (same warm-up
and repeats, interleaved in alternating order, median and IQR). Reported: the ratios ours/torch and
explicit/fast (what materialising the (B, H, T, T) weights costs).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import torch
import torch.nn as nn

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.timing import compare, machine, row  # noqa: E402
from llm_from_scratch.attention import MultiHeadAttention, causal_mask  # noqa: E402


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--seq", type=int, default=256)
    parser.add_argument("--d-model", type=int, default=384)
    parser.add_argument("--heads", type=int, default=6)
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--repeats", type=int, default=15)
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's)")
    parser.add_argument("--json", help="also write the results here")
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    torch.manual_seed(0)
    print(f"machine: {machine(args.device)}")
    results = {"batch": args.batch, "seq": args.seq, "d_model": args.d_model, "heads": args.heads,
               "warmup": args.warmup, "repeats": args.repeats, "rows": []}
    for causal in (True, False):
        results["rows"].append(_bench(causal, args, device))
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=1))
    return results


def _bench(causal: bool, args, device: torch.device) -> dict:
    kind = "causal (GPT)" if causal else "none (BERT)"
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

    ref_out = reference()
    assert torch.allclose(ours(x), ref_out, atol=1e-4), "fast path differs from torch"
    assert torch.allclose(ours(x, need_weights=True), ref_out, atol=1e-4), "explicit path differs from torch"

    def step(forward):
        def run():
            forward().sum().backward()
        return run

    sync = torch.cuda.synchronize if device.type == "cuda" else None
    t = compare({"ours/fast": step(lambda: ours(x)),
                 "ours/explicit": step(lambda: ours(x, need_weights=True)),
                 "torch": step(reference)}, warmup=args.warmup, repeats=args.repeats, sync=sync)
    print(f"\n{kind} self-attention fwd+bwd, B={args.batch} T={args.seq} d={args.d_model} H={args.heads}; "
          f"outputs equal (asserted); {args.warmup} warm-up + {args.repeats} timed, interleaved")
    for name, tm in t.items():
        print(row(name, tm))
    out = {"mask": kind}
    for clock in ("wall", "cpu"):
        med = {k: getattr(v, clock).median for k, v in t.items()}
        out.update({f"{k} ms {clock}": v * 1e3 for k, v in med.items()})
        out[f"fast/torch {clock}"] = med["ours/fast"] / med["torch"]
        out[f"explicit/torch {clock}"] = med["ours/explicit"] / med["torch"]
        out[f"explicit/fast {clock}"] = med["ours/explicit"] / med["ours/fast"]
        print(f"ratios (time, {clock} medians): ours/fast ÷ torch {out[f'fast/torch {clock}']:.2f}, "
              f"ours/explicit ÷ torch {out[f'explicit/torch {clock}']:.2f}, "
              f"explicit ÷ fast {out[f'explicit/fast {clock}']:.2f}")
    return out


def markdown(runs: list[dict]) -> str:
    """The RESULTS.md table for one or more runs (shapes)."""
    lines = ["| shape | mask | ours/fast ÷ torch | ours/explicit ÷ torch | explicit ÷ fast |", "|---|---|---|---|---|"]
    for r in runs:
        for x in r["rows"]:
            cells = [f"{x[k + ' wall']:.2f} wall, {x[k + ' cpu']:.2f} CPU"
                     for k in ("fast/torch", "explicit/torch", "explicit/fast")]
            lines.append(f"| B={r['batch']}, T={r['seq']} | {x['mask']} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


if __name__ == "__main__":
    main()
