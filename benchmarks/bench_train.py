"""How fast is our training loop on the CPU, and how long does ``shakespeare-char-cpu`` take to reach its target?

    python benchmarks/bench_train.py                    # 1. ours vs transformers, tokens/s (a minute)
    python benchmarks/bench_train.py --time-to-target   # 2. also the demo preset end to end (~5 minutes)

1. Tokens/s of a full training step (fetch a batch, forward, cross entropy, backward, clip the
   gradient norm, AdamW step, zero the gradients, read the loss) of
   - ours: ``llm_from_scratch.train.train`` on ``gpt.GPT`` (its ``tokens_per_s``, evaluation excluded),
   - the reference: the same loop written by hand around ``transformers.GPT2LMHeadModel`` (SDPA
     attention, same shapes, same batches, same ``torch.optim.AdamW`` with the same parameter groups,
     same clipping), fp32, in the same process.
   Each timed call runs ``--steps`` steps with a fresh optimizer, for both; benchmarks/timing.py
   gives both the same warm-up and repeats, interleaved in alternating order, median and IQR.
   Shapes default to the ``shakespeare-char-cpu`` preset (4 layers, 4 heads, d=128, T=64, batch 12).
2. ``--time-to-target``: ``pretrain --preset shakespeare-char-cpu`` as ``make demo`` runs it, with
   torch on ``--threads`` threads: the wall time at which the validation loss first reaches the
   target (1.9 nats/char), and the final validation loss.

Reported: medians (wall and CPU time; on an otherwise idle machine, e.g. under ``taskset -c 0,1``
for 2 dedicated cores, the wall time is the figure to quote), and the ratio ours / transformers
(throughput: above 1, ours is faster).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import torch
import torch.nn.functional as F

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.timing import compare, machine, row  # noqa: E402
from llm_from_scratch.gpt import GPT, GPTConfig  # noqa: E402
from llm_from_scratch.train import TrainConfig, configure_optimizer, lm_batches, train  # noqa: E402


def _hf_steps(model, batches, first: int, steps: int, config: TrainConfig) -> int:
    """The reference loop: ``steps`` training steps of transformers' GPT-2; returns the tokens seen."""
    opt = configure_optimizer(model, config, torch.device("cpu"))  # the same AdamW and groups as ours
    model.train()
    tokens = 0
    for i in range(first, first + steps):
        x, y = batches(i)
        logits = model(input_ids=x).logits
        loss = F.cross_entropy(logits.reshape(-1, logits.size(-1)).float(), y.reshape(-1))
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), config.grad_clip)
        opt.step()
        opt.zero_grad(set_to_none=True)
        loss.item()
        tokens += x.numel()
    return tokens


def compare_loops(args) -> dict:
    """Each call: a fresh optimizer and ``args.steps`` steps on batches 0.. of the same stream, for both."""
    from transformers import GPT2Config, GPT2LMHeadModel

    V, T, L, H, D, B = args.vocab, args.block, args.layers, args.heads, args.d_model, args.batch
    tokens = torch.randint(0, V, (200_000,), generator=torch.Generator().manual_seed(0))
    batches = lm_batches(tokens, T, B, seed=1)
    hf_config = GPT2Config(vocab_size=V, n_positions=T, n_embd=D, n_layer=L, n_head=H, resid_pdrop=0.0,
                           embd_pdrop=0.0, attn_pdrop=0.0, activation_function="gelu_new", tie_word_embeddings=True,
                           bos_token_id=None, eos_token_id=None)
    # no validation batches and no out_dir: train() runs the steps only (no evaluation, no checkpoint)
    config = TrainConfig(max_steps=args.steps, batch_size=B, lr=1e-3, warmup_steps=10, eval_every=args.steps,
                         progress=False, device="cpu", precision="fp32", betas=(0.9, 0.99))
    torch.manual_seed(0)
    ours = GPT(GPTConfig(vocab_size=V, block_size=T, n_layer=L, n_head=H, n_embd=D, dropout=0.0))
    torch.manual_seed(0)
    ref = GPT2LMHeadModel(hf_config)
    assert ref.config._attn_implementation == "sdpa", ref.config._attn_implementation
    t = compare({"ours (train)": lambda: train(ours, batches, config=config),
                 "transformers (by hand)": lambda: _hf_steps(ref, batches, 0, args.steps, config)},
                warmup=args.warmup, repeats=args.rounds)
    n = args.steps * B * T
    print(f"\n{args.steps} training steps a call ({n:,} tokens), fp32; {args.warmup} warm-up + {args.rounds} timed "
          "calls each, interleaved")
    for name, tm in t.items():
        print(row(name, tm, unit="s") + f"   {n / tm.wall.median:9,.0f} tokens/s wall")
    out = {"steps": args.steps, "rounds": args.rounds, "warmup": args.warmup, "tokens_per_call": n,
           "layers": L, "heads": H, "d_model": D, "block": T, "batch": B, "vocab": V}
    for key, name in (("ours", "ours (train)"), ("transformers", "transformers (by hand)")):
        out[f"{key}_tokens_per_s"] = n / t[name].wall.median
        out[f"{key}_tokens_per_cpu_s"] = n / t[name].cpu.median
        out[f"{key}_wall_iqr_s"] = t[name].wall.iqr
    out["ratio"] = out["ours_tokens_per_s"] / out["transformers_tokens_per_s"]
    out["ratio_cpu"] = out["ours_tokens_per_cpu_s"] / out["transformers_tokens_per_cpu_s"]
    return out


def time_to_target(args) -> dict:
    """The demo preset end to end; the time at which validation first reaches the target."""
    from llm_from_scratch.runs import run_pretrain
    from llm_from_scratch.train import eval_batches, evaluate_lm

    start_cpu, start = time.process_time(), time.perf_counter()
    result, model, data, out_dir = run_pretrain("shakespeare-char-cpu", args.out, overwrite=True, progress=False)
    total = time.perf_counter() - start
    reached = [r for r in result.history if r["val_loss"] is not None and r["val_loss"] <= args.target]
    final = evaluate_lm(model, eval_batches(data.val, model.config.block_size, 32, 100))
    return {
        "history": [(r["step"], round(r["train_loss"], 4), round(r["val_loss"], 4), round(r["elapsed_s"], 1))
                    for r in result.history if r["train_loss"] is not None and r["val_loss"] is not None],
        "target": args.target,
        "first_step_at_target": reached[0]["step"] if reached else None,
        "seconds_to_target": reached[0]["elapsed_s"] if reached else None,
        "final_val_loss_100_batches": final["loss"],
        "train_seconds": result.history[-1]["elapsed_s"],
        "total_seconds_with_data": total,
        "cpu_seconds": time.process_time() - start_cpu,
    }


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--threads", type=int, default=2, help="torch threads (CI has 2 cores)")
    parser.add_argument("--vocab", type=int, default=84)
    parser.add_argument("--block", type=int, default=64)
    parser.add_argument("--layers", type=int, default=4)
    parser.add_argument("--heads", type=int, default=4)
    parser.add_argument("--d-model", type=int, default=128)
    parser.add_argument("--batch", type=int, default=12)
    parser.add_argument("--steps", type=int, default=30, help="training steps per timed call")
    parser.add_argument("--warmup", type=int, default=1, help="untimed calls of each loop first")
    parser.add_argument("--rounds", type=int, default=5, help="timed calls of each loop")
    parser.add_argument("--time-to-target", action="store_true")
    parser.add_argument("--no-compare", action="store_true", help="skip part 1 (with --time-to-target)")
    parser.add_argument("--target", type=float, default=1.9)
    parser.add_argument("--out", default="benchmarks/out/shakespeare-char-cpu")
    parser.add_argument("--json", help="also write the results here")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    print(f"machine: {machine()}")
    results = {}
    if not args.no_compare:
        c = results["compare"] = compare_loops(args)
        print(f"training step, tokens/s (wall medians): ours {c['ours_tokens_per_s']:,.0f}, transformers "
              f"{c['transformers_tokens_per_s']:,.0f} -> ours/transformers {c['ratio']:.2f}x wall, "
              f"{c['ratio_cpu']:.2f}x CPU")
    if args.time_to_target:
        t = results["time_to_target"] = time_to_target(args)
        print(json.dumps(t, indent=1))
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=1))
    return results


if __name__ == "__main__":
    main()


def markdown(results: dict) -> str:
    """The RESULTS.md table for one run's results."""
    c = results.get("compare")
    lines = [] if c is None else [
        "| tokens/s of a training step | ours (`train`) | transformers (loop by hand) | ours / transformers (throughput) |",
        "|---|---|---|---|",
        f"| {c['layers']} layers, d={c['d_model']}, T={c['block']}, batch {c['batch']}, {c['steps']} steps a call "
        f"| {c['ours_tokens_per_s']:,.0f} wall, {c['ours_tokens_per_cpu_s']:,.0f} per CPU-s "
        f"| {c['transformers_tokens_per_s']:,.0f} wall, {c['transformers_tokens_per_cpu_s']:,.0f} per CPU-s "
        f"| **{c['ratio']:.2f}x wall, {c['ratio_cpu']:.2f}x CPU** |",
    ]
    t = results.get("time_to_target")
    if t:
        lines += ([""] if lines else []) + ["| step | " + " | ".join(str(h[0]) for h in t["history"]) + " |",
                  "|---|" + "---|" * len(t["history"]),
                  "| validation loss | " + " | ".join(f"{h[2]:.3f}" for h in t["history"]) + " |",
                  "| seconds of training | " + " | ".join(f"{h[3]:.0f}" for h in t["history"]) + " |", "",
                  f"Target {t['target']} nats/char first reached at step {t['first_step_at_target']} after "
                  f"{t['seconds_to_target']:.0f} s of training; final validation loss on 100 batches of 32: "
                  f"{t['final_val_loss_100_batches']:.3f}; {t['total_seconds_with_data']:.0f} s in all."]
    return "\n".join(lines)
