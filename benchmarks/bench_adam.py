"""How fast is our AdamW step? A ratio against torch.optim.AdamW(foreach=True), measured in the same run.

    python benchmarks/bench_adam.py                 # GPT-2 small's 124M parameters, CPU (or the GPU if any)
    python benchmarks/bench_adam.py --layers 2      # a smaller model for a quick look

No model is needed: an optimizer step only sees a list of parameters and their gradients, so the
parameters are tensors with GPT-2 small's shapes (token and position embeddings, 12 blocks of
LayerNorm / attention / MLP weights, the final LayerNorm; the LM head is tied to the token
embedding) with random gradients. Timed with benchmarks/timing.py (same warm-up and repeats,
interleaved in alternating order, median and IQR); asserted: every optimizer ends with the same
parameters as torch's after the same steps. The candidates:
    ours/foreach    llm_from_scratch.optim.AdamW (foreach, the default)
    ours/reference  llm_from_scratch.optim.AdamW(foreach=False): the per-parameter loop (--reference)
    torch/foreach   torch.optim.AdamW(foreach=True)
Reported: the median seconds per step and the ratio ours/torch (target: <= 1.5).

    python benchmarks/bench_adam.py --layers 2 --reference --threads 1 --repeats 5
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.timing import compare, machine, row  # noqa: E402
from llm_from_scratch.optim import AdamW  # noqa: E402


def gpt2_shapes(n_layer: int = 12, d: int = 768, vocab: int = 50257, block: int = 1024) -> list[tuple[int, ...]]:
    """Parameter shapes of GPT-2 (small: 124,439,808 parameters), in HF's Conv1D layout."""
    shapes: list[tuple[int, ...]] = [(vocab, d), (block, d)]  # wte (tied LM head), wpe
    for _ in range(n_layer):
        shapes += [(d,), (d,)]  # ln_1
        shapes += [(d, 3 * d), (3 * d,), (d, d), (d,)]  # attn.c_attn, attn.c_proj
        shapes += [(d,), (d,)]  # ln_2
        shapes += [(d, 4 * d), (4 * d,), (4 * d, d), (d,)]  # mlp.c_fc, mlp.c_proj
    shapes += [(d,), (d,)]  # ln_f
    return shapes


def make_params(init: list[torch.Tensor], grads: list[torch.Tensor]) -> list[torch.Tensor]:
    """A fresh copy of the starting parameters, each holding its (shared) gradient."""
    params = []
    for start, grad in zip(init, grads):
        p = start.clone().requires_grad_()
        p.grad = grad  # the same gradient tensors for every optimizer: only the update is timed
        params.append(p)
    return params


def main(argv: list[str] | None = None) -> dict[str, float]:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--layers", type=int, default=12, help="GPT-2 blocks (12: GPT-2 small, 124M)")
    parser.add_argument("--repeats", type=int, default=5, help="timed steps of each optimizer")
    parser.add_argument("--warmup", type=int, default=1)
    parser.add_argument("--reference", action="store_true", help="also time the per-parameter reference loop")
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's)")
    parser.add_argument("--json", help="also write the results here")
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    torch.manual_seed(0)

    shapes = gpt2_shapes(n_layer=args.layers)
    n_params = sum(torch.Size(s).numel() for s in shapes)
    init = [torch.randn(s, device=device).mul_(0.02) for s in shapes]
    grads = [torch.randn(s, device=device) for s in shapes]
    hp = dict(lr=6e-4, betas=(0.9, 0.95), eps=1e-8, weight_decay=0.1)  # GPT-2/3's settings
    candidates = {
        "ours/foreach": AdamW(make_params(init, grads), **hp),
        "torch/foreach": torch.optim.AdamW(make_params(init, grads), foreach=True, **hp),
    }
    if args.reference:
        candidates["ours/reference"] = AdamW(make_params(init, grads), foreach=False, **hp)

    sync = torch.cuda.synchronize if device.type == "cuda" else None
    t = compare({name: opt.step for name, opt in candidates.items()}, warmup=args.warmup, repeats=args.repeats,
                sync=sync)

    # Same gradients, same hyper-parameters, same start, same number of steps: the parameters must agree.
    ref_p = candidates["torch/foreach"].param_groups[0]["params"]
    worst = {name: max((a - b).abs().max().item() for a, b in zip(opt.param_groups[0]["params"], ref_p))
             for name, opt in candidates.items() if name != "torch/foreach"}
    for name, w in worst.items():
        assert w < 1e-5, f"{name} and torch disagree by {w} after the same steps"

    print(f"machine: {machine(args.device)}")
    print(f"AdamW step on {len(shapes)} tensors, {n_params:,} parameters (GPT-2, {args.layers} layers)")
    print(f"{args.warmup} warm-up + {args.repeats} timed steps each, interleaved; "
          + ", ".join(f"max |Δθ| {k} vs torch = {w:.1e}" for k, w in worst.items()) + " (asserted < 1e-5)")
    for name, tm in t.items():
        print(row(name, tm))
    results: dict = {"n_params": n_params, "layers": args.layers, "warmup": args.warmup, "repeats": args.repeats,
                     "max_abs_diff": worst}
    for name, tm in t.items():
        for clock in ("wall", "cpu"):
            results[f"{name} {clock} s"] = getattr(tm, clock).median
            results[f"{name} {clock} iqr s"] = getattr(tm, clock).iqr
            results[f"{name}/torch {clock}"] = getattr(tm, clock).median / getattr(t["torch/foreach"], clock).median
    ratio, cpu_ratio = results["ours/foreach/torch wall"], results["ours/foreach/torch cpu"]
    results.update(ratio=ratio, cpu_ratio=cpu_ratio)
    print(f"ratio ours/torch (time) = {ratio:.2f} wall, {cpu_ratio:.2f} CPU (target <= 1.5)")
    if args.reference:
        print(f"ratio reference loop/torch (time) = {results['ours/reference/torch wall']:.2f} wall, "
              f"{results['ours/reference/torch cpu']:.2f} CPU")
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=1))
    return results


def markdown(r: dict) -> str:
    """The RESULTS.md table for one run's results."""
    def cell(name):
        return (f"{r[name + ' wall s'] * 1e3:.0f} ms wall (IQR {r[name + ' wall iqr s'] * 1e3:.0f}), "
                f"{r[name + ' cpu s'] * 1e3:.0f} ms CPU")
    ref = (f"{r['ours/reference/torch wall']:.2f} wall, {r['ours/reference/torch cpu']:.2f} CPU"
           if "ours/reference wall s" in r else "—")
    return "\n".join([
        "| parameters | `llm_from_scratch.optim.AdamW` (foreach) | `torch.optim.AdamW(foreach=True)` | ours / torch (time) "
        "| reference loop (`foreach=False`) / torch |",
        "|---|---|---|---|---|",
        f"| {r['n_params']:,} ({r['layers']} layers), the same parameters after the steps (asserted) "
        f"| {cell('ours/foreach')} | {cell('torch/foreach')} | {r['ratio']:.2f} wall, {r['cpu_ratio']:.2f} CPU | {ref} |",
    ])


if __name__ == "__main__":
    main(sys.argv[1:])
