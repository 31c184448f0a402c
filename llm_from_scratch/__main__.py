"""The command line: ``python -m llm_from_scratch COMMAND ...`` (or ``llm-from-scratch COMMAND``).

    pretrain --preset NAME [--out DIR] [--max-steps N] [--batch-size B] [--grad-accum K] [--seed S]
             [--resume] [--device D] [--compile] [--precision P] [--fsdp] [--text FILE]
    sample   --checkpoint DIR --prompt TEXT [--max-new-tokens N] [--temperature T] [--top-k K]
    eval     --checkpoint DIR [--max-batches N]
    demo     (what ``make demo`` runs: corpus and BPE statistics, then pretrain shakespeare-char-cpu and sample)
    presets  (list the presets)

Several GPUs or processes: ``torchrun --standalone --nproc_per_node 2 -m llm_from_scratch pretrain ...``.

Each command is a pair of functions, ``add_<name>(subparsers)`` and ``cmd_<name>(args) -> exit code``,
listed in ``COMMANDS``: a new command is one more pair and one more entry. Expected failures (a bad
preset, a missing or corrupt checkpoint, bad arguments) print one line and exit with code 2; a run
whose loss diverges exits with code 1.
"""

from __future__ import annotations

import argparse
import math
import sys
import time
from pathlib import Path


class UsageError(Exception):
    """A mistake in the command line or its inputs: reported in one line, exit code 2."""


class _Parser(argparse.ArgumentParser):
    def error(self, message: str):  # one line instead of argparse's usage block
        raise UsageError(f"{message} (see {self.prog} --help)")


def _print(*args, **kwargs) -> None:
    """print on rank 0 only (under torchrun every rank runs this file)."""
    import os

    if os.environ.get("RANK", "0") == "0":
        print(*args, **kwargs, flush=True)


def _device(name):
    from llm_from_scratch.device import select_device

    try:
        return select_device(name)
    except (RuntimeError, ValueError) as e:
        raise UsageError(str(e)) from None


# ----------------------------------------------------------------------------------------------
# pretrain


def add_pretrain(sub) -> None:
    from llm_from_scratch.presets import PRESETS

    p = sub.add_parser("pretrain", help="pretrain a GPT from a preset", description="Pretrain a GPT from a preset.")
    p.add_argument("--preset", required=True, help=f"one of: {', '.join(PRESETS)}")
    p.add_argument("--out", help="output directory (default runs/<preset>)")
    p.add_argument("--max-steps", type=int, help="optimizer steps (default: the preset's)")
    p.add_argument("--batch-size", type=int, help="micro-batch size per process")
    p.add_argument("--grad-accum", type=int, help="micro-batches per optimizer step")
    p.add_argument("--seed", type=int)
    p.add_argument("--resume", action="store_true", help="continue the checkpoint in --out exactly")
    p.add_argument("--device", help="cpu, cuda, cuda:1, mps (default: the best available)")
    p.add_argument("--precision", choices=["auto", "fp32", "bf16", "fp16"], help="default: by the hardware")
    p.add_argument("--compile", action="store_true", default=None, help="torch.compile the model")
    p.add_argument("--fsdp", action="store_true", default=None, help="under torchrun: shard with FSDP instead of DDP")
    p.add_argument("--eval-every", type=int, help="evaluate and checkpoint every N steps")
    p.add_argument("--text", help="train on this text file instead of Shakespeare (90%% train / 10%% validation)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.set_defaults(func=cmd_pretrain)


def run_pretrain(preset_name: str, out: str | None = None, *, max_steps=None, batch_size=None, grad_accum=None,
                 seed=None, resume=False, device=None, precision=None, compile=None, fsdp=None, eval_every=None,
                 text=None, progress=True):
    """Pretrain a preset (the body of ``pretrain``; ``demo`` and the chapters call it too).

    Returns (TrainResult, model, PresetData, out_dir).
    """
    import torch

    from llm_from_scratch import checkpoint as ckpt
    from llm_from_scratch.gpt import GPT, GPTConfig
    from llm_from_scratch.presets import get_preset, prepare_data
    from llm_from_scratch.train import eval_batches, lm_batches, train

    try:
        preset = get_preset(preset_name)
    except ValueError as e:
        raise UsageError(str(e)) from None
    for name, value in (("--max-steps", max_steps), ("--batch-size", batch_size), ("--grad-accum", grad_accum),
                        ("--eval-every", eval_every)):
        if value is not None and value < 1:
            raise UsageError(f"{name} must be a positive integer, got {value}")
    try:
        preset = preset.with_overrides(max_steps=max_steps, batch_size=batch_size, grad_accum=grad_accum, seed=seed,
                                       device=device, precision=precision, compile=compile, fsdp=fsdp,
                                       eval_every=eval_every, progress=progress)
    except ValueError as e:
        raise UsageError(str(e)) from None
    cfg = preset.train
    _device(cfg.device)  # a bad --device fails now, in one line
    out_dir = Path(out or Path("runs") / preset.name)
    saved_tokenizer = None
    if resume:
        if not ckpt.has_checkpoint(out_dir):
            raise UsageError(f"nothing to resume: {out_dir} holds no checkpoint (leave out --resume to start there)")
        saved_tokenizer = ckpt.load_tokenizer(out_dir)  # the same ids as before, whatever the data
    data = prepare_data(preset, text_file=text, progress=progress, tokenizer=saved_tokenizer)
    model_config = GPTConfig(vocab_size=preset.vocab_size(data.tokenizer.vocab_size), **preset.model)
    torch.manual_seed(cfg.seed)
    model = GPT(model_config)
    T = model_config.block_size
    _print(f"{preset.name}: {model.num_parameters() / 1e6:.2f}M parameters, vocabulary {model_config.vocab_size}, "
           f"{data.train.numel():,} training / {data.val.numel():,} validation tokens -> {out_dir}")
    run_info = {"model": model_config.to_dict(), "tokenizer": data.tokenizer_info, "preset": preset.name,
                "data": {**data.source, "train_tokens": data.train.numel(), "val_tokens": data.val.numel()}}
    result = train(model, lm_batches(data.train, T, cfg.batch_size, seed=cfg.seed), config=cfg,
                   val_batches=eval_batches(data.val, T, cfg.batch_size, preset.eval_batches),
                   out_dir=out_dir, resume=resume, run_info=run_info, tokenizer=data.tokenizer)
    return result, model, data, out_dir


def cmd_pretrain(args) -> int:
    start = time.perf_counter()
    result, _, _, out_dir = run_pretrain(
        args.preset, args.out, max_steps=args.max_steps, batch_size=args.batch_size, grad_accum=args.grad_accum,
        seed=args.seed, resume=args.resume, device=args.device, precision=args.precision, compile=args.compile,
        fsdp=args.fsdp, eval_every=args.eval_every, text=args.text, progress=not args.no_progress)
    last = result.last
    if last.get("val_loss") is not None:
        _print(f"step {result.step}: train loss {last['train_loss']:.4f}, validation loss {last['val_loss']:.4f} "
               f"(perplexity {math.exp(last['val_loss']):.2f}), {time.perf_counter() - start:.0f} s")
    _print(f"saved {out_dir}/model.safetensors, state.pt, config.json, history.jsonl, loss.png")
    return 0


# ----------------------------------------------------------------------------------------------
# sample


def add_sample(sub) -> None:
    p = sub.add_parser("sample", help="generate text from a checkpoint")
    p.add_argument("--checkpoint", required=True, help="a directory written by pretrain")
    p.add_argument("--prompt", default="\n", help="the text to continue (default: a newline)")
    p.add_argument("--max-new-tokens", type=int, default=300)
    p.add_argument("--temperature", type=float, default=0.8)
    p.add_argument("--top-k", type=int, default=None)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--device", default="cpu")
    p.set_defaults(func=cmd_sample)


def sample_text(model, tokenizer, prompt: str, max_new_tokens: int = 300, temperature: float = 0.8,
                top_k: int | None = None, seed: int = 0) -> str:
    """The prompt and its continuation, as text (reproducible for a seed)."""
    import torch

    from llm_from_scratch.generate import generate

    ids = tokenizer.encode(prompt)
    if not ids:
        raise UsageError("the prompt encodes to no tokens: give at least one character")
    device = next(model.parameters()).device
    idx = torch.tensor([ids], dtype=torch.long, device=device)
    generator = torch.Generator(device=device).manual_seed(seed)
    out = generate(model, idx, max_new_tokens, temperature=temperature, top_k=top_k, generator=generator)
    return tokenizer.decode(out[0].tolist())


def cmd_sample(args) -> int:
    from llm_from_scratch.train import load_gpt_checkpoint

    if args.max_new_tokens < 0:
        raise UsageError(f"--max-new-tokens must be >= 0, got {args.max_new_tokens}")
    model, tokenizer, _ = load_gpt_checkpoint(args.checkpoint, device=_device(args.device))
    try:
        text = sample_text(model, tokenizer, args.prompt, args.max_new_tokens, args.temperature, args.top_k, args.seed)
    except ValueError as e:  # e.g. a prompt character outside a char tokenizer's vocabulary
        raise UsageError(str(e)) from None
    print(text)
    return 0


# ----------------------------------------------------------------------------------------------
# eval


def add_eval(sub) -> None:
    p = sub.add_parser("eval", help="validation loss and perplexity of a checkpoint")
    p.add_argument("--checkpoint", required=True)
    p.add_argument("--max-batches", type=int, default=None, help="evaluate this many batches (default: all)")
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--device", default=None)
    p.set_defaults(func=cmd_eval)


def evaluate_checkpoint(directory, max_batches: int | None = None, batch_size: int = 32, device=None) -> dict:
    """Validation metrics of a checkpoint on the validation text it was trained against."""
    from llm_from_scratch.device import select_device
    from llm_from_scratch.presets import _texts, encode_texts
    from llm_from_scratch.train import eval_batches, evaluate_lm, load_gpt_checkpoint

    device = _device(device)
    model, tokenizer, config = load_gpt_checkpoint(directory, device=device)
    source = config.get("data") or {"kind": "shakespeare"}
    _, val_texts = _texts(source, progress=False)
    val = encode_texts(tokenizer, val_texts)
    batches = eval_batches(val, model.config.block_size, batch_size, max_batches)
    return evaluate_lm(model, batches, device=device)


def cmd_eval(args) -> int:
    if args.max_batches is not None and args.max_batches < 1:
        raise UsageError(f"--max-batches must be a positive integer, got {args.max_batches}")
    m = evaluate_checkpoint(args.checkpoint, args.max_batches, args.batch_size, args.device)
    print(f"validation loss {m['loss']:.4f} nats/token, perplexity {m['perplexity']:.2f}, "
          f"accuracy {m['accuracy']:.3f} ({m['tokens']:,} tokens)")
    return 0


# ----------------------------------------------------------------------------------------------
# demo (make demo)


def add_demo(sub) -> None:
    p = sub.add_parser("demo", help="corpus + tokenizer statistics, then pretrain shakespeare-char-cpu and sample")
    p.add_argument("--out", default="runs/shakespeare-char-cpu")
    p.add_argument("--max-steps", type=int, default=None, help="default: the preset's")
    p.add_argument("--eval-batches", type=int, default=200, help="validation batches for the final evaluation")
    p.add_argument("--bpe-vocab-size", type=int, default=4096)
    p.set_defaults(func=cmd_demo)


def cmd_demo(args) -> int:
    from llm_from_scratch.data import corpus_stats, corpus_text, load_shakespeare, split_works
    from llm_from_scratch.tokenizer import BPETokenizer
    from llm_from_scratch.train import eval_batches, evaluate_lm

    t0 = time.perf_counter()
    print("== 1. The corpus: Shakespeare's complete works ==")
    works = load_shakespeare(progress=True)
    print(corpus_stats(works))
    splits = split_works(works)
    for name, part in splits.items():
        print(f"  {name:>10}: {corpus_stats(part)}")

    print(f"\n== 2. A byte-level BPE tokenizer ({args.bpe_vocab_size} tokens, trained with the fast path) ==")
    t = time.perf_counter()
    bpe = BPETokenizer.train_fast(corpus_text(splits["train"]), args.bpe_vocab_size)
    print(f"trained in {time.perf_counter() - t:.1f} s: {bpe}")
    fast = bpe.to_hf()
    for name, part in splits.items():
        text = corpus_text(part)
        n = sum(len(e.ids) for e in fast.encode_batch([w.text for w in part]))
        print(f"  {name:>10}: {n:,} tokens, {len(text) / max(n, 1):.2f} characters per token")
    example = "To be, or not to be, that is the question:"
    pieces = [bpe.decode([i]) for i in bpe.encode(example)]
    print(f"  {example!r} -> {len(pieces)} tokens: {pieces}")

    print("\n== 3. Pretraining shakespeare-char-cpu (a 4-layer character-level GPT) ==")
    t = time.perf_counter()
    result, model, data, out_dir = run_pretrain("shakespeare-char-cpu", args.out, max_steps=args.max_steps)
    train_time = time.perf_counter() - t
    m = evaluate_lm(model, eval_batches(data.val, model.config.block_size, 32, args.eval_batches),
                    device=next(model.parameters()).device)
    print(f"trained {result.step} steps in {train_time:.0f} s; validation loss {m['loss']:.4f} nats/char, "
          f"perplexity {m['perplexity']:.2f}, next-character accuracy {m['accuracy']:.3f} "
          f"({m['tokens']:,} held-out characters)")
    print(f"checkpoint: {out_dir}/ (model.safetensors, state.pt, config.json, history.jsonl, loss.png)")

    print("\n== 4. A 300-character sample ==")
    print(sample_text(model.cpu(), data.tokenizer, "\n", max_new_tokens=300, temperature=0.8, seed=0))
    print(f"\n(done in {time.perf_counter() - t0:.0f} s; try: python -m llm_from_scratch sample "
          f"--checkpoint {out_dir} --prompt 'ROMEO:')")
    return 0


# ----------------------------------------------------------------------------------------------
# presets


def add_presets(sub) -> None:
    p = sub.add_parser("presets", help="list the presets")
    p.set_defaults(func=cmd_presets)


def cmd_presets(args) -> int:
    from llm_from_scratch.presets import PRESETS

    for p in PRESETS.values():
        print(f"{p.name:<24} {p.description}")
    return 0


# ----------------------------------------------------------------------------------------------
# finetune (the parser and the body live in llm_from_scratch.finetune)


def add_finetune(sub) -> None:
    from llm_from_scratch.finetune import add_finetune_parser

    add_finetune_parser(sub).set_defaults(func=cmd_finetune)


def cmd_finetune(args) -> int:
    from llm_from_scratch.finetune import main_finetune

    try:
        return main_finetune(args)
    except ValueError as e:  # bad settings for the task or the checkpoint: one line, exit code 2
        raise UsageError(str(e)) from None


# ----------------------------------------------------------------------------------------------

COMMANDS = [add_pretrain, add_sample, add_eval, add_demo, add_presets, add_finetune]


def add_grade(sub) -> None:  # grade (instructors): its body is llm_from_scratch/grade.py
    from llm_from_scratch.grade import add_parser

    add_parser(sub)


COMMANDS.append(add_grade)


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="python -m llm_from_scratch", description=__doc__,
                     formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    for add in COMMANDS:
        add(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    from llm_from_scratch.checkpoint import CheckpointError

    try:
        args = build_parser().parse_args(argv)
        if not getattr(args, "func", None):
            raise UsageError("no command given: choose one of pretrain, sample, eval, demo, presets "
                             "(see python -m llm_from_scratch --help)")
        return args.func(args)
    except (UsageError, CheckpointError, FileNotFoundError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except Exception as e:  # noqa: BLE001
        from llm_from_scratch.data import CorpusError
        from llm_from_scratch.train import TrainingDiverged

        if isinstance(e, TrainingDiverged):
            print(f"error: {e}", file=sys.stderr)
            return 1
        if isinstance(e, CorpusError):
            print(f"error: {e}", file=sys.stderr)
            return 2
        raise
    finally:
        import torch.distributed as dist

        if dist.is_available() and dist.is_initialized():
            dist.destroy_process_group()


if __name__ == "__main__":
    sys.exit(main())
