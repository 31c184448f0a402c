"""How fast is our AdamW step? A ratio against torch.optim.AdamW(foreach=True), measured in the same run.

    python benchmarks/bench_adam.py                 # GPT-2 small's 124M parameters, CPU (or the GPU if any)
    python benchmarks/bench_adam.py --layers 2      # a smaller model for a quick look

No model is needed: an optimizer step only sees a list of parameters and their gradients, so the
parameters are tensors with GPT-2 small's shapes (token and position embeddings, 12 blocks of
LayerNorm / attention / MLP weights, the final LayerNorm; the LM head is tied to the token
embedding) with random gradients. Timed, interleaved so both see the same machine load:
    ours/foreach    llm_from_scratch.optim.AdamW (foreach, the default)
    ours/reference  llm_from_scratch.optim.AdamW(foreach=False): the per-parameter loop (--reference)
    torch/foreach   torch.optim.AdamW(foreach=True)
Reported: the median seconds per step and the ratio ours/torch (target: <= 1.5).
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import time

import torch

from llm_from_scratch.optim import AdamW


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


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


def main(argv: list[str] | None = None) -> dict[str, float]:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--layers", type=int, default=12, help="GPT-2 blocks (12: GPT-2 small, 124M)")
    parser.add_argument("--repeats", type=int, default=5, help="timed steps of each optimizer")
    parser.add_argument("--warmup", type=int, default=1)
    parser.add_argument("--reference", action="store_true", help="also time the per-parameter reference loop")
    args = parser.parse_args(argv)
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

    # Wall time, and CPU time of this process (all its threads): on a busy shared machine the
    # wall clock also counts waiting for a core, the CPU time does not.
    times: dict[str, list[float]] = {name: [] for name in candidates}
    cpu_times: dict[str, list[float]] = {name: [] for name in candidates}
    for i in range(args.warmup + args.repeats):
        for name, opt in candidates.items():  # interleaved: a burst of load hits both alike
            _sync(device)
            start, cpu_start = time.perf_counter(), time.process_time()
            opt.step()
            _sync(device)
            if i >= args.warmup:
                times[name].append(time.perf_counter() - start)
                cpu_times[name].append(time.process_time() - cpu_start)

    # Same gradients, same hyper-parameters, same start: the parameters must agree after the steps.
    ours_p = candidates["ours/foreach"].param_groups[0]["params"]
    ref_p = candidates["torch/foreach"].param_groups[0]["params"]
    worst = max((a - b).abs().max().item() for a, b in zip(ours_p, ref_p))
    assert worst < 1e-5, f"ours and torch disagree by {worst}"

    medians = {name: statistics.median(ts) for name, ts in times.items()}
    cpu_medians = {name: statistics.median(ts) for name, ts in cpu_times.items()}
    ratio = medians["ours/foreach"] / medians["torch/foreach"]
    cpu_ratio = cpu_medians["ours/foreach"] / cpu_medians["torch/foreach"]
    machine = (
        f"{device.type}: {torch.cuda.get_device_name(device) if device.type == 'cuda' else platform.processor() or platform.machine()}"
        f", {os.cpu_count()} cores, torch {torch.__version__} ({torch.get_num_threads()} threads)"
    )
    print(f"AdamW step on {len(shapes)} tensors, {n_params:,} parameters (GPT-2, {args.layers} layers); {machine}")
    print(f"median of {args.repeats} steps each (after {args.warmup} warm-up), max |Δθ| ours vs torch = {worst:.1e}")
    for name, t in medians.items():
        c = cpu_medians[name]
        print(f"  {name:15s} wall {t * 1e3:9.1f} ms/step (ratio {t / medians['torch/foreach']:.2f})"
              f"   cpu {c * 1e3:9.1f} ms/step (ratio {c / cpu_medians['torch/foreach']:.2f})")
    print(f"ratio ours/torch = {ratio:.2f} wall, {cpu_ratio:.2f} cpu (target <= 1.5): "
          f"{'OK' if ratio <= 1.5 else 'SLOWER THAN TARGET'}")
    return {
        "n_params": float(n_params),
        "ratio": ratio,
        "cpu_ratio": cpu_ratio,
        **{f"{k} s": v for k, v in medians.items()},
        **{f"{k} cpu s": v for k, v in cpu_medians.items()},
    }


if __name__ == "__main__":
    main(sys.argv[1:])
