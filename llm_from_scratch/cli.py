"""The command line: ``python -m llm_from_scratch COMMAND ...`` (or ``llm-from-scratch COMMAND``).

Commands (``python -m llm_from_scratch COMMAND --help`` lists each one's flags and defaults):

    pretrain  train a GPT from a preset into a run folder (--resume, --stop-at-step, --extend-to, --keep-best)
    sample    generate text from a run folder (or its best/ subfolder, or a fine-tuned poems model)
    eval      loss and perplexity of a run on its validation or test text
    finetune  fine-tune a run on a Shakespeare task (genre, year, names, poems) and save the model
    predict   what a fine-tuned model predicts for a text or for each line of a file
    demo      what `make demo` runs: corpus and tokenizer statistics, then pretrain and sample
    presets   list the presets
    grade     (instructors) run submitted notebooks and grade their exercises into a CSV

Several GPUs or processes: ``torchrun --standalone --nproc_per_node 2 -m llm_from_scratch pretrain ...``.

Exit status: 0 success; 1 the training loss diverged (NaN or infinite; the message names the last good
checkpoint); 2 a bad input (a wrong flag or value, a missing or unreadable file, a folder that is not a
checkpoint), reported in one line on stderr that says what is wrong and what to do.
"""

from __future__ import annotations

import argparse
import math
import sys
import time
from pathlib import Path

from llm_from_scratch.runs import UsageError, checked_device, print_main, run_pretrain  # noqa: F401


class HelpFormatter(argparse.RawDescriptionHelpFormatter):
    """Every flag's help ends with its default, unless the text already says it or there is none."""

    def _get_help_string(self, action):
        text = action.help or ""
        if "default" not in text and action.default not in (None, False, [], argparse.SUPPRESS) \
                and action.option_strings and not action.required:
            text += " (default: %(default)s)"
        return text


class _Parser(argparse.ArgumentParser):
    def __init__(self, *args, **kwargs):
        kwargs.setdefault("formatter_class", HelpFormatter)
        super().__init__(*args, **kwargs)

    def error(self, message: str):  # one line instead of argparse's usage block
        raise UsageError(f"{message} (see {self.prog} --help)")


def positive(flag: str, value) -> None:
    if value is not None and value < 1:
        raise UsageError(f"{flag} must be a positive integer, got {value}")


def read_text(path: str, flag: str) -> str:
    p = Path(path)
    if not p.exists():
        raise UsageError(f"{flag} {path}: no such file")
    if p.is_dir():
        raise UsageError(f"{flag} {path} is a folder: give a UTF-8 text file")
    try:
        return p.read_text(encoding="utf-8")
    except UnicodeDecodeError as e:
        raise UsageError(f"{flag} {path} is not UTF-8 text ({e.reason} at byte {e.start}): save it as UTF-8") from None
    except OSError as e:
        raise UsageError(f"{flag} {path} cannot be read ({e.strerror}): check its permissions") from None


def run_folder(path: str) -> Path:
    """A checkpoint folder given as --checkpoint (a run folder or its best/ subfolder)."""
    p = Path(path)
    if p.is_file():
        raise UsageError(f"--checkpoint {path} is a file; give the folder that pretrain or finetune wrote "
                         "(it holds model.safetensors and config.json)")
    if not p.exists():
        raise UsageError(f"--checkpoint {path}: no such folder (pretrain writes runs/<preset> unless --out says otherwise)")
    return p


def load_lm(path: str, device, command: str):
    """(GPT, tokenizer, config) of a pretraining run or a fine-tuned language model; a fine-tuned
    classifier, regressor or tagger is refused in one line that names the command that fits."""
    from llm_from_scratch.checkpoint import load_config, load_gpt_checkpoint

    folder = run_folder(path)
    info = load_config(folder).get("finetune")
    if isinstance(info, dict) and info.get("kind", "language_modeling") != "language_modeling":
        raise UsageError(f"{path} holds a fine-tuned {info.get('task')} {info.get('kind')} model, not a language "
                         f"model, so `{command}` does not apply: use `python -m llm_from_scratch predict "
                         f"--checkpoint {path} --input TEXT`")
    return load_gpt_checkpoint(folder, device=device)


# ----------------------------------------------------------------------------------------------
# pretrain


def add_pretrain(sub) -> None:
    from llm_from_scratch.presets import PRESETS

    p = sub.add_parser("pretrain", help="pretrain a GPT from a preset",
                       description="Pretrain a GPT from a preset. Flags left out take the preset's value "
                                   "(`presets` lists them); see llm_from_scratch/runs.py for the guards.")
    p.add_argument("--preset", required=True, help=f"one of: {', '.join(PRESETS)}")
    p.add_argument("--out", help="the run's folder (default: runs/<preset>)")
    p.add_argument("--resume", action="store_true", help="continue the run in --out exactly (refused if the data, "
                   "tokenizer, model or training settings differ)")
    p.add_argument("--overwrite", action="store_true", help="delete the run in --out and start again")
    p.add_argument("--extend-to", type=int, metavar="N", help="with --resume: train the run to N steps; the "
                   "added steps continue at the final learning rate (default: none)")
    p.add_argument("--stop-at-step", type=int, metavar="N", help="save at step N and stop; --resume continues "
                   "(for sessions with a time limit; default: none)")
    p.add_argument("--keep-best", action="store_true", help="also keep the checkpoint with the lowest validation "
                   "loss in --out/best/")
    p.add_argument("--max-steps", type=int, help="optimizer steps, also the cosine's length (default: the preset's)")
    p.add_argument("--batch-size", type=int, help="micro-batch size per process (default: the preset's)")
    p.add_argument("--grad-accum", type=int, help="micro-batches per optimizer step (default: the preset's)")
    p.add_argument("--lr", type=float, help="peak learning rate (default: the preset's)")
    p.add_argument("--min-lr", type=float, help="the cosine's floor (default: the preset's, else lr/10)")
    p.add_argument("--warmup-steps", type=int, help="linear warmup steps (default: the preset's)")
    p.add_argument("--weight-decay", type=float, help="AdamW weight decay on matrices (default: the preset's)")
    p.add_argument("--dropout", type=float, help="the model's dropout probability (default: the preset's)")
    p.add_argument("--eval-every", type=int, help="evaluate and checkpoint every N steps (default: the preset's)")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", dest="sets",
                   help="any other field: model.FIELD=VALUE or train.FIELD=VALUE, VALUE a Python literal or "
                        "a string; repeatable (default: none)")
    p.add_argument("--seed", type=int, help="random seed (default: the preset's)")
    p.add_argument("--device", help="cpu, cuda, cuda:1, mps (default: the best available)")
    p.add_argument("--precision", choices=["auto", "fp32", "bf16", "fp16"], help="default: by the hardware")
    p.add_argument("--compile", action="store_true", default=None, help="torch.compile the model (default: the preset's)")
    p.add_argument("--fsdp", action="store_true", default=None, help="under torchrun: shard with FSDP instead of DDP")
    p.add_argument("--text", help="train on this UTF-8 text file instead of Shakespeare (first 90%% trains, "
                   "last 10%% validates; default: Shakespeare)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.set_defaults(func=cmd_pretrain)


def cmd_pretrain(args) -> int:
    start = time.perf_counter()
    result, _, _, out_dir = run_pretrain(
        args.preset, args.out, max_steps=args.max_steps, batch_size=args.batch_size, grad_accum=args.grad_accum,
        seed=args.seed, resume=args.resume, overwrite=args.overwrite, extend_to=args.extend_to,
        stop_at_step=args.stop_at_step, keep_best=args.keep_best, lr=args.lr, min_lr=args.min_lr,
        warmup_steps=args.warmup_steps, weight_decay=args.weight_decay, dropout=args.dropout, sets=args.sets,
        device=args.device, precision=args.precision, compile=args.compile, fsdp=args.fsdp,
        eval_every=args.eval_every, text=args.text, progress=not args.no_progress)
    last = result.last
    if last.get("val_loss") is not None:
        print_main(f"step {result.step}: train loss {last['train_loss']:.4f}, validation loss {last['val_loss']:.4f} "
                   f"(perplexity {math.exp(last['val_loss']):.2f}), {time.perf_counter() - start:.0f} s")
    print_main(f"saved {out_dir}/model.safetensors, state.pt, config.json, history.jsonl, loss.png (step {result.step})")
    return 0


# ----------------------------------------------------------------------------------------------
# sample


def add_sample(sub) -> None:
    p = sub.add_parser("sample", help="generate text from a checkpoint",
                       description="Continue a prompt with a pretrained GPT (a run folder, its best/ subfolder, "
                                   "or a model fine-tuned on the poems).")
    p.add_argument("--checkpoint", required=True, help="a folder written by pretrain (or finetune --task poems)")
    src = p.add_mutually_exclusive_group()
    src.add_argument("--prompt", default="\n", help="the text to continue (default: a newline)")
    src.add_argument("--prompt-file", help="read the prompt from this UTF-8 text file (default: none)")
    p.add_argument("--max-new-tokens", type=int, default=300, help="tokens to generate (default: 300)")
    p.add_argument("--temperature", type=float, default=0.8, help="softmax temperature; 0: greedy (default: 0.8)")
    p.add_argument("--top-k", type=int, default=None, help="sample among the k most likely tokens (default: all)")
    p.add_argument("--top-p", type=float, default=None, help="nucleus sampling: the smallest set of tokens whose "
                   "probability reaches p, 0 < p <= 1 (default: off)")
    p.add_argument("--num-samples", type=int, default=1, help="how many continuations to print (default: 1)")
    p.add_argument("--seed", type=int, default=0, help="random seed: the same seed gives the same text (default: 0)")
    p.add_argument("--device", default=None, help="cpu, cuda, mps (default: the best available)")
    p.set_defaults(func=cmd_sample)


def sample_text(model, tokenizer, prompt: str, max_new_tokens: int = 300, temperature: float = 0.8,
                top_k: int | None = None, seed: int = 0, top_p: float | None = None) -> str:
    """The prompt and its continuation, as text (reproducible for a seed). Only ids the tokenizer has
    are sampled: a vocabulary padded for speed (``pad_vocab_to``) never emits its padding rows."""
    import torch

    from llm_from_scratch.generate import generate

    ids = tokenizer.encode(prompt)
    if not ids:
        raise UsageError("the prompt encodes to no tokens: give at least one character")
    device = next(model.parameters()).device
    idx = torch.tensor([ids], dtype=torch.long, device=device)
    generator = torch.Generator(device=device).manual_seed(seed)
    out = generate(model, idx, max_new_tokens, temperature=temperature, top_k=top_k, top_p=top_p,
                   generator=generator, vocab_size=tokenizer.vocab_size)
    return tokenizer.decode(out[0].tolist())


def cmd_sample(args) -> int:
    if args.max_new_tokens < 0:
        raise UsageError(f"--max-new-tokens must be >= 0, got {args.max_new_tokens}")
    positive("--num-samples", args.num_samples)
    if args.top_k is not None:
        positive("--top-k", args.top_k)
    if args.top_p is not None and not 0 < args.top_p <= 1:
        raise UsageError(f"--top-p must be in (0, 1], got {args.top_p}")
    if not args.temperature >= 0 or math.isinf(args.temperature):
        raise UsageError(f"--temperature must be a finite number >= 0 (0: greedy), got {args.temperature}")
    prompt = args.prompt if args.prompt_file is None else read_text(args.prompt_file, "--prompt-file")
    if not prompt:
        raise UsageError("the prompt is empty: give at least one character (the default is a newline)")
    model, tokenizer, _ = load_lm(args.checkpoint, checked_device(args.device), "sample")
    try:
        tokenizer.encode(prompt)
    except ValueError as e:  # e.g. a prompt character outside a char tokenizer's vocabulary
        raise UsageError(f"the prompt cannot be encoded: {e}") from None
    for k in range(args.num_samples):
        if args.num_samples > 1:
            print(f"--- sample {k + 1} of {args.num_samples} (seed {args.seed + k}) ---")
        print(sample_text(model, tokenizer, prompt, args.max_new_tokens, args.temperature, args.top_k,
                          args.seed + k, args.top_p))
    return 0


# ----------------------------------------------------------------------------------------------
# eval


def add_eval(sub) -> None:
    p = sub.add_parser("eval", help="loss and perplexity of a checkpoint on its validation or test text",
                       description="Mean next-token loss (nats per token), perplexity and accuracy of a run on "
                                   "the text it was trained against: the validation plays (which chose the "
                                   "recipe) or the test plays (the headline figure). A --text run has "
                                   "validation text only.")
    p.add_argument("--checkpoint", required=True, help="a folder written by pretrain (or its best/ subfolder)")
    p.add_argument("--split", default="validation", choices=["validation", "test"],
                   help="which held-out text (default: validation)")
    p.add_argument("--max-batches", type=int, default=None, help="evaluate this many batches (default: all)")
    p.add_argument("--batch-size", type=int, default=32, help="windows per batch (default: 32)")
    p.add_argument("--device", default=None, help="cpu, cuda, mps (default: the best available)")
    p.set_defaults(func=cmd_eval)


def evaluate_checkpoint(directory, max_batches: int | None = None, batch_size: int = 32, device=None,
                        split: str = "validation") -> dict:
    """Metrics of a checkpoint on the validation (or test) text of the data it was trained on."""
    from llm_from_scratch.lm_data import eval_batches
    from llm_from_scratch.presets import encode_texts, source_texts
    from llm_from_scratch.train import evaluate_lm

    device = checked_device(device)
    model, tokenizer, config = load_lm(directory, device, "eval")
    source = config.get("data") or {"kind": "shakespeare"}
    if split == "test" and source.get("kind") == "text":
        raise UsageError(f"{directory} was trained on the text file {source.get('path')}, which has no test part "
                         "(90% train / 10% validation): use --split validation")
    texts = source_texts(source, progress=False, split=split)
    try:
        tokens = encode_texts(tokenizer, texts)
        batches = eval_batches(tokens, model.config.block_size, batch_size, max_batches)
    except ValueError as e:
        raise UsageError(f"cannot evaluate {directory} on its {split} text: {e}") from None
    return evaluate_lm(model, batches, device=device)


def cmd_eval(args) -> int:
    positive("--batch-size", args.batch_size)
    positive("--max-batches", args.max_batches)
    m = evaluate_checkpoint(args.checkpoint, args.max_batches, args.batch_size, args.device, args.split)
    print(f"{args.split} loss {m['loss']:.4f} nats/token, perplexity {m['perplexity']:.2f}, "
          f"accuracy {m['accuracy']:.3f} ({m['tokens']:,} tokens)")
    return 0


# ----------------------------------------------------------------------------------------------
# demo (make demo)


def add_demo(sub) -> None:
    p = sub.add_parser("demo", help="corpus + tokenizer statistics, then pretrain shakespeare-char-cpu and sample")
    p.add_argument("--out", default="runs/shakespeare-char-cpu", help="the run's folder")
    p.add_argument("--max-steps", type=int, default=None, help="optimizer steps (default: the preset's)")
    p.add_argument("--eval-batches", type=int, default=200, help="validation batches for the final evaluation")
    p.add_argument("--bpe-vocab-size", type=int, default=4096, help="BPE vocabulary for the statistics")
    p.add_argument("--overwrite", action="store_true", help="replace the run already in --out")
    p.set_defaults(func=cmd_demo)


def cmd_demo(args) -> int:
    from llm_from_scratch.data import corpus_stats, corpus_text, load_shakespeare, split_works
    from llm_from_scratch.tokenizer import BPETokenizer
    from llm_from_scratch.lm_data import eval_batches
    from llm_from_scratch.train import evaluate_lm

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
    result, model, data, out_dir = run_pretrain("shakespeare-char-cpu", args.out, max_steps=args.max_steps,
                                                overwrite=args.overwrite)
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
# finetune and predict


def add_finetune(sub) -> None:
    from llm_from_scratch.finetune import METHODS, FinetuneConfig

    d = FinetuneConfig()
    p = sub.add_parser(
        "finetune", help="fine-tune a pretrained GPT on a Shakespeare task and compare with the baseline",
        description="Fine-tune a pretrained GPT checkpoint on a task made from the Shakespeare corpus "
                    "(genre: classification, year: regression, names: CRF tagging, poems: language "
                    "modelling on the Sonnets), print the test metrics beside the baseline's, and save "
                    "the model to --out (load it with `predict`, or finetune.load_finetuned).")
    p.add_argument("--task", required=True, choices=["genre", "year", "names", "poems"], help="the task")
    p.add_argument("--checkpoint", required=True, help="a folder written by `pretrain` (its best/ subfolder works too)")
    p.add_argument("--method", default=d.method, choices=list(METHODS), help="what trains")
    p.add_argument("--out", required=True, help="folder for the fine-tuned model and metrics.json")
    p.add_argument("--n-layers", type=int, default=d.n_layers, help="blocks to train with --method last-n")
    p.add_argument("--lora-r", type=int, default=d.lora_r, help="rank of the LoRA matrices")
    p.add_argument("--lora-alpha", type=float, default=d.lora_alpha, help="LoRA scale alpha (update = alpha/r * BA)")
    p.add_argument("--steps", type=int, default=d.steps, help="optimizer steps")
    p.add_argument("--batch-size", type=int, default=d.batch_size, help="examples per step")
    p.add_argument("--lr", type=float, default=None, help="peak learning rate (default: 3e-4 for full / last-n, "
                   "2e-3 for frozen / lora)")
    p.add_argument("--max-len", type=int, default=d.max_len, help="tokens per example (at most the block size)")
    p.add_argument("--max-per-work", type=int, default=None, help="examples per play at most (a quick run; default: all)")
    p.add_argument("--softmax", action="store_true", help="names: a softmax tagger instead of the CRF")
    p.add_argument("--device", default=d.device, help="cpu, cuda, mps (default: the best available)")
    p.add_argument("--seed", type=int, default=d.seed, help="random seed")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.set_defaults(func=cmd_finetune)


def cmd_finetune(args) -> int:
    import json

    from llm_from_scratch.checkpoint import load_gpt_checkpoint
    from llm_from_scratch.finetune import FinetuneConfig, finetune_task, format_comparison, head_info, save_finetuned
    from llm_from_scratch.tasks import load_task

    for name in ("steps", "batch_size", "max_len", "lora_r"):
        positive(f"--{name.replace('_', '-')}", getattr(args, name))
    if args.max_per_work is not None:
        positive("--max-per-work", args.max_per_work)
    if args.lr is not None and not args.lr > 0:
        raise UsageError(f"--lr must be > 0, got {args.lr}")
    checked_device(args.device)
    gpt, tokenizer, _ = load_gpt_checkpoint(run_folder(args.checkpoint), device="cpu")
    gpt.train()
    kwargs = {} if args.task == "poems" else {"max_per_work": args.max_per_work}
    try:
        task = load_task(args.task, **kwargs)
        config = FinetuneConfig(method=args.method, n_layers=args.n_layers, lora_r=args.lora_r,
                                lora_alpha=args.lora_alpha, steps=args.steps, batch_size=args.batch_size, lr=args.lr,
                                max_len=args.max_len, seed=args.seed, device=args.device,
                                progress=not args.no_progress)
        result = finetune_task(task, gpt, tokenizer, config, crf=not args.softmax)
    except ValueError as e:  # bad settings for the task or the checkpoint
        raise UsageError(str(e)) from None
    print(format_comparison(result))
    out = Path(args.out)
    summary = {"task": task.name, "method": config.method, "metrics": result.metrics, "baseline": result.baseline,
               "trainable_parameters": result.trainable_parameters, "seconds": result.seconds, "steps": config.steps,
               "finetune": {k: v for k, v in vars(config).items()}, "checkpoint": str(args.checkpoint)}
    save_finetuned(out, result.model, tokenizer, head_info(task, result.model, config), summary)
    (out / "metrics.json").write_text(json.dumps(summary, indent=2, default=str) + "\n")
    print(f"saved the fine-tuned model and metrics.json to {out}")
    return 0


def add_predict(sub) -> None:
    p = sub.add_parser("predict", help="predict with a fine-tuned model (genre, year, names)",
                       description="Print what a model saved by `finetune --out DIR` predicts for each input "
                                   "line: a genre with its probability, a year, or the words with their tags.")
    p.add_argument("--checkpoint", required=True, help="a folder written by `finetune --out`")
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument("--input", help="one text to predict for")
    src.add_argument("--input-file", help="a UTF-8 text file: one prediction per non-empty line")
    p.add_argument("--device", default=None, help="cpu, cuda, mps (default: the best available)")
    p.set_defaults(func=cmd_predict)


def cmd_predict(args) -> int:
    from llm_from_scratch.finetune import load_finetuned, predict_texts

    if args.input is not None:
        texts = [args.input]
    else:
        texts = [line for line in read_text(args.input_file, "--input-file").splitlines() if line.strip()]
    if not texts or not any(t.strip() for t in texts):
        raise UsageError("the input is empty: give at least one non-empty line of text")
    model, tokenizer, info = load_finetuned(run_folder(args.checkpoint), device=checked_device(args.device))
    if info["kind"] == "language_modeling":
        raise UsageError(f"{args.checkpoint} holds a fine-tuned language model ({info['task']}), which predicts no "
                         f"label: generate text with `python -m llm_from_scratch sample --checkpoint {args.checkpoint}`")
    try:
        predictions = predict_texts(model, tokenizer, info, texts)
    except ValueError as e:
        raise UsageError(str(e)) from None
    for text, p in zip(texts, predictions):
        if "label" in p:
            print(f"{p['label']} ({p['probability']:.1%})\t{text}")
        elif "value" in p:
            print(f"{p['value']:.1f}\t{text}")
        else:
            print(" ".join(w if t == "O" else f"{w}/{t}" for w, t in zip(p["words"], p["tags"])))
    return 0


# ----------------------------------------------------------------------------------------------

def add_grade(sub) -> None:  # grade (instructors): its body is llm_from_scratch/grade.py
    from llm_from_scratch.grade import add_parser

    add_parser(sub)


# Each command is a pair of functions, add_<name>(subparsers) and cmd_<name>(args) -> exit code.
COMMANDS = [add_pretrain, add_sample, add_eval, add_finetune, add_predict, add_demo, add_presets, add_grade]


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="python -m llm_from_scratch", description=__doc__.replace("``", ""))
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    for add in COMMANDS:
        add(sub)
    return parser


def _one_line(e: BaseException) -> str:
    return " ".join(str(e).split()) or type(e).__name__


def main(argv: list[str] | None = None) -> int:
    """Run one command; return its exit status (0 success, 1 diverged, 2 bad input)."""
    from llm_from_scratch.checkpoint import CheckpointError
    from llm_from_scratch.data import CorpusError
    from llm_from_scratch.train import TrainingDiverged

    try:
        args = build_parser().parse_args(argv)
        if not getattr(args, "func", None):
            raise UsageError("no command given: choose one of pretrain, sample, eval, finetune, predict, demo, "
                             "presets, grade (see python -m llm_from_scratch --help)")
        return args.func(args)
    except TrainingDiverged as e:
        print(f"error: {_one_line(e)}", file=sys.stderr)
        return 1
    except (UsageError, CheckpointError, CorpusError, FileNotFoundError, ValueError) as e:
        # ValueError: the package's own checks of a bad value (they say what is wrong and what to do)
        print(f"error: {_one_line(e)}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    finally:
        import torch.distributed as dist

        if dist.is_available() and dist.is_initialized():
            dist.destroy_process_group()


if __name__ == "__main__":
    sys.exit(main())
