"""How fast is our training loop on the CPU, and how long does ``shakespeare-char-cpu`` take to reach its target?

    python benchmarks/bench_train.py                    # 1. ours vs transformers, tokens/s (a minute)
    python benchmarks/bench_train.py --time-to-target   # 2. also the demo preset end to end (~5 minutes)

1. Tokens/s of a full training step (fetch a batch, forward, cross entropy, backward, clip the
   gradient norm, AdamW step, zero the gradients, read the loss) of
   - ours: ``llm_from_scratch.train.train`` on ``gpt.GPT`` (its ``tokens_per_s``, evaluation excluded),
   - the reference: the same loop written by hand around ``transformers.GPT2LMHeadModel`` (SDPA
     attention, same shapes, same batches, same ``torch.optim.AdamW`` with the same parameter groups,
     same clipping), fp32, in the same process, rounds interleaved so that a busy machine slows both.
   Shapes default to the ``shakespeare-char-cpu`` preset (4 layers, 4 heads, d=128, T=64, batch 12).
2. ``--time-to-target``: ``pretrain --preset shakespeare-char-cpu`` as ``make demo`` runs it, with
   torch on ``--threads`` threads: the wall time at which the validation loss first reaches the
   target (1.9 nats/char), and the final validation loss.

Reported: medians of the rounds (wall time; run it on an otherwise idle machine, e.g. under
``taskset -c 0,1`` for 2 dedicated cores), and the ratio ours / transformers (above 1: ours is faster).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import time
from pathlib import Path

import torch
import torch.nn.functional as F

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from llm_from_scratch.gpt import GPT, GPTConfig  # noqa: E402
from llm_from_scratch.train import TrainConfig, configure_optimizer, lm_batches, train  # noqa: E402


def _hf_steps(model, batches, first: int, steps: int, config: TrainConfig) -> tuple[float, float, int]:
    """The reference loop: (wall s, CPU s, tokens) for ``steps`` steps of transformers' GPT-2."""
    opt = configure_optimizer(model, config, torch.device("cpu"))  # the same AdamW and groups as ours
    tokens = 0
    wall, cpu = 0.0, 0.0
    for i in range(first, first + steps):
        w, c = time.perf_counter(), time.process_time()
        x, y = batches(i)
        logits = model(input_ids=x).logits
        loss = F.cross_entropy(logits.reshape(-1, logits.size(-1)).float(), y.reshape(-1))
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), config.grad_clip)
        opt.step()
        opt.zero_grad(set_to_none=True)
        loss.item()
        wall += time.perf_counter() - w
        cpu += time.process_time() - c
        tokens += x.numel()
    return wall, cpu, tokens


def compare(args) -> dict:
    from transformers import GPT2Config, GPT2LMHeadModel

    V, T, L, H, D, B = args.vocab, args.block, args.layers, args.heads, args.d_model, args.batch
    tokens = torch.randint(0, V, (200_000,), generator=torch.Generator().manual_seed(0))
    batches = lm_batches(tokens, T, B, seed=1)
    hf_config = GPT2Config(vocab_size=V, n_positions=T, n_embd=D, n_layer=L, n_head=H, resid_pdrop=0.0,
                           embd_pdrop=0.0, attn_pdrop=0.0, activation_function="gelu_new", tie_word_embeddings=True,
                           bos_token_id=None, eos_token_id=None)
    warm = 3  # steps before timing starts (first-call allocations), for both
    config = TrainConfig(max_steps=warm + args.steps, batch_size=B, lr=1e-3, warmup_steps=10, eval_every=warm,
                         progress=False, device="cpu", precision="fp32", betas=(0.9, 0.99))
    ours_tok_s, ref_tok_s = [], []
    for r in range(args.rounds):
        torch.manual_seed(r)
        ours = GPT(GPTConfig(vocab_size=V, block_size=T, n_layer=L, n_head=H, n_embd=D, dropout=0.0))
        result = train(ours, batches, config=config)
        # one history record every `warm` steps, each with the tokens/s of its window (evaluation
        # excluded); the first window is the warm-up
        timed = result.history[1:]
        n_tokens = sum(warm * B * T for _ in timed)
        ours_tok_s.append(n_tokens / sum(warm * B * T / rec["tokens_per_s"] for rec in timed))

        torch.manual_seed(r)
        ref = GPT2LMHeadModel(hf_config).train()
        assert ref.config._attn_implementation == "sdpa", ref.config._attn_implementation
        _hf_steps(ref, batches, 10_000, warm, config)
        wall, cpu, n = _hf_steps(ref, batches, 0, args.steps, config)
        ref_tok_s.append(n / wall)
    out = {
        "ours_tokens_per_s": statistics.median(ours_tok_s),
        "transformers_tokens_per_s": statistics.median(ref_tok_s),
        "rounds": {"ours": ours_tok_s, "transformers": ref_tok_s},
    }
    out["ratio"] = out["ours_tokens_per_s"] / out["transformers_tokens_per_s"]
    return out


def time_to_target(args) -> dict:
    """The demo preset end to end; the time at which validation first reaches the target."""
    from llm_from_scratch.__main__ import run_pretrain
    from llm_from_scratch.train import eval_batches, evaluate_lm

    start_cpu, start = time.process_time(), time.perf_counter()
    result, model, data, out_dir = run_pretrain("shakespeare-char-cpu", args.out, progress=False)
    total = time.perf_counter() - start
    reached = [r for r in result.history if r["val_loss"] is not None and r["val_loss"] <= args.target]
    final = evaluate_lm(model, eval_batches(data.val, model.config.block_size, 32, 100))
    return {
        "history": [(r["step"], round(r["train_loss"], 4), round(r["val_loss"], 4), round(r["elapsed_s"], 1))
                    for r in result.history],
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
    parser.add_argument("--steps", type=int, default=30, help="timed steps per round (a multiple of 3)")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--time-to-target", action="store_true")
    parser.add_argument("--target", type=float, default=1.9)
    parser.add_argument("--out", default="benchmarks/out/shakespeare-char-cpu")
    parser.add_argument("--json", help="also write the results here")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    print(f"machine: {platform.machine()} {platform.processor() or ''}, {os.cpu_count()} CPUs, "
          f"torch {torch.__version__} on {args.threads} threads")
    results = {"compare": compare(args)}
    c = results["compare"]
    print(f"training step, tokens/s: ours {c['ours_tokens_per_s']:,.0f}, transformers "
          f"{c['transformers_tokens_per_s']:,.0f} -> ours/transformers {c['ratio']:.2f}x "
          f"(medians of {args.rounds} interleaved rounds of {args.steps} steps)")
    if args.time_to_target:
        t = results["time_to_target"] = time_to_target(args)
        print(json.dumps(t, indent=1))
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=1))
    return results


if __name__ == "__main__":
    main()
