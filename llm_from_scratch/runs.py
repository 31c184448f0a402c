"""A pretraining run from a preset: the body of ``pretrain`` (``demo`` and the chapters call it too).

A run lives in one folder (``--out``, default ``runs/<preset>``) and is guarded:

- a folder that already holds a run is refused unless ``resume`` (continue it) or ``overwrite``
  (delete it and start again) is given: a finished run is never silently replaced;
- ``resume`` continues the run exactly, and refuses, naming the field, when the data source (the
  text file's path and sha256, or the Shakespeare split), the tokenizer, the model config or the
  training config (``TrainConfig.RUN_FIELDS``: batch, accumulation, learning rate, steps, schedule...)
  differs from what the run started with;
- the cosine's length is recorded when the run starts. A different ``max_steps`` on resume is refused:
  ``extend_to=N`` (``--extend-to N``) extends a run to N steps explicitly, and the added steps
  continue at the final learning rate ``min_lr`` (the cosine is never re-stretched, so the steps
  already taken keep the schedule they were taken with);
- ``stop_at_step=N`` trains on the run's own schedule, saves at step N and returns; ``resume`` later
  gives, at ``max_steps``, the same weights and optimizer state as the uninterrupted run, bit for bit.
"""

from __future__ import annotations

import ast
import os
import shutil
from dataclasses import fields, replace
from pathlib import Path


class UsageError(Exception):
    """A mistake in the command line or its inputs: reported in one line, exit code 2."""


def print_main(*args, **kwargs) -> None:
    """print on rank 0 only (under torchrun every rank runs this file)."""
    if os.environ.get("RANK", "0") == "0":
        print(*args, **kwargs, flush=True)


def checked_device(name):
    """The device called ``name`` (None: the best available), or a UsageError saying why not."""
    from llm_from_scratch.device import select_device

    try:
        return select_device(name)
    except (RuntimeError, ValueError) as e:
        raise UsageError(str(e)) from None


RUN_FILES = ("model.safetensors", "state.pt", "config.json", "tokenizer", "history.jsonl", "loss.png", "best", "COMMIT")


def parse_set(items) -> tuple[dict, dict]:
    """``["model.dropout=0.1", "train.betas=(0.9, 0.99)"]`` -> (model overrides, train overrides).

    A value is read as a Python literal (a number, True/False, None, a tuple) or else kept as a string.
    """
    from llm_from_scratch.gpt import GPTConfig
    from llm_from_scratch.train import TrainConfig

    known = {"model": sorted(f.name for f in fields(GPTConfig) if f.name != "vocab_size"),
             "train": sorted(f.name for f in fields(TrainConfig))}
    out: dict[str, dict] = {"model": {}, "train": {}}
    for item in items or ():
        key, sep, raw = item.partition("=")
        section, dot, name = key.strip().partition(".")
        if not sep or not dot or section not in known:
            raise UsageError(f"--set {item!r}: write KEY=VALUE with KEY model.FIELD or train.FIELD")
        if name not in known[section]:
            raise UsageError(f"--set {item!r}: {section} has no field {name!r}; its fields are: "
                             f"{', '.join(known[section])}")
        try:
            value = ast.literal_eval(raw.strip())
        except (ValueError, SyntaxError):
            value = raw.strip()
        out[section][name] = value
    return out["model"], out["train"]


def holds_a_run(out_dir: Path) -> bool:
    from llm_from_scratch import checkpoint as ckpt

    return ckpt.has_checkpoint(out_dir) or (out_dir / "history.jsonl").exists()


def clear_run(out_dir: Path) -> None:
    """Delete a run's files (``--overwrite``); other files in the folder are left alone."""
    for name in RUN_FILES:
        p = out_dir / name
        if p.is_dir():
            shutil.rmtree(p)
        elif p.exists():
            p.unlink()
    for p in [*out_dir.glob("*.tmp"), *out_dir.glob("*.old")]:
        shutil.rmtree(p) if p.is_dir() else p.unlink()


def _data_identity(source: dict) -> dict:
    return {k: v for k, v in source.items() if k in ("kind", "path", "sha256", "split")}


def run_pretrain(preset_name: str, out: str | None = None, *, max_steps=None, batch_size=None, grad_accum=None,
                 seed=None, resume=False, overwrite=False, extend_to=None, stop_at_step=None, keep_best=False,
                 lr=None, min_lr=None, warmup_steps=None, weight_decay=None, dropout=None, sets=(), device=None,
                 precision=None, compile=None, fsdp=None, eval_every=None, text=None, progress=True):
    """Pretrain a preset (see the module docstring). Returns (TrainResult, model, PresetData, out_dir)."""
    import torch

    from llm_from_scratch import checkpoint as ckpt
    from llm_from_scratch.gpt import GPT, GPTConfig
    from llm_from_scratch.lm_data import eval_batches, lm_batches
    from llm_from_scratch.presets import get_preset, prepare_data
    from llm_from_scratch.train import train

    try:
        preset = get_preset(preset_name)
    except ValueError as e:
        raise UsageError(str(e)) from None
    for name, value in (("--max-steps", max_steps), ("--batch-size", batch_size), ("--grad-accum", grad_accum),
                        ("--eval-every", eval_every), ("--extend-to", extend_to), ("--stop-at-step", stop_at_step)):
        if value is not None and value < 1:
            raise UsageError(f"{name} must be a positive integer, got {value}")
    if resume and overwrite:
        raise UsageError("--resume continues the run in --out and --overwrite deletes it: give one of them")
    if extend_to is not None and not resume:
        raise UsageError("--extend-to lengthens an existing run: give it together with --resume")
    if extend_to is not None and max_steps is not None:
        raise UsageError("--extend-to N sets the new number of steps: leave out --max-steps")
    model_set, train_set = parse_set(sets)
    if dropout is not None:
        model_set["dropout"] = dropout
    overrides = dict(max_steps=max_steps, batch_size=batch_size, grad_accum=grad_accum, seed=seed, lr=lr,
                     min_lr=min_lr, warmup_steps=warmup_steps, weight_decay=weight_decay, device=device,
                     precision=precision, compile=compile, fsdp=fsdp, eval_every=eval_every, progress=progress)
    try:
        preset = preset.with_overrides(**{**{k: v for k, v in overrides.items() if v is not None}, **train_set})
        model_fields = {**preset.model, **model_set}
        GPTConfig(vocab_size=1, **model_fields)  # a bad model field fails now, in one line
    except (ValueError, TypeError) as e:
        raise UsageError(str(e)) from None
    cfg = preset.train
    checked_device(cfg.device)  # a bad --device fails now, in one line
    out_dir = Path(out or Path("runs") / preset.name)
    if out_dir.exists() and not out_dir.is_dir():
        raise UsageError(f"--out {out_dir} is a file: give a folder for the run")
    saved_tokenizer, saved = None, None
    if resume:
        if not ckpt.has_checkpoint(out_dir):
            raise UsageError(f"nothing to resume: {out_dir} holds no checkpoint (leave out --resume to start there)")
        saved = ckpt.load_config(out_dir)
        saved_tokenizer = ckpt.load_tokenizer(out_dir)  # the same ids as before, whatever the data
    elif holds_a_run(out_dir):
        if not overwrite:
            raise UsageError(f"{out_dir} already holds a run: pass --resume to continue it, --overwrite to replace "
                             "it, or choose another --out")
        if os.environ.get("RANK", "0") == "0":  # under torchrun, one process deletes
            clear_run(out_dir)
    try:
        data = prepare_data(preset, text_file=text, progress=progress, tokenizer=saved_tokenizer)
    except ValueError as e:
        raise UsageError(str(e)) from None
    if saved is not None:
        explicit = set(train_set) | {k for k, v in overrides.items() if v is not None}
        cfg = _resumed_config(out_dir, saved, cfg, data, extend_to, explicit)
    model_config = GPTConfig(vocab_size=preset.vocab_size(data.tokenizer.vocab_size), **model_fields)
    torch.manual_seed(cfg.seed)
    model = GPT(model_config)
    T = model_config.block_size
    print_main(f"{preset.name}: {model.num_parameters() / 1e6:.2f}M parameters, vocabulary {model_config.vocab_size}, "
           f"{data.train.numel():,} training / {data.val.numel():,} validation tokens -> {out_dir}")
    run_info = {"model": model_config.to_dict(), "tokenizer": data.tokenizer_info, "preset": preset.name,
                "data": {**data.source, "train_tokens": data.train.numel(), "val_tokens": data.val.numel()}}
    try:
        batches = lm_batches(data.train, T, cfg.batch_size, seed=cfg.seed)
        val = eval_batches(data.val, T, cfg.batch_size, preset.eval_batches)
    except ValueError as e:  # a text too short for one window of the model's block size
        raise UsageError(f"{e} (the preset's block size is {T})") from None
    result = train(model, batches, config=cfg, val_batches=val, out_dir=out_dir, resume=resume, run_info=run_info,
                   tokenizer=data.tokenizer, stop_at_step=stop_at_step, keep_best=keep_best)
    return result, model, data, out_dir


def _resumed_config(out_dir: Path, saved: dict, cfg, data, extend_to, explicit: set):
    """This session's TrainConfig for a resumed run, after checking that it is the same run.

    ``explicit``: the training fields given on the command line; the run's length and schedule, when
    not given, are the run's own (so an extended run resumes as extended)."""
    from llm_from_scratch.checkpoint import first_difference
    from llm_from_scratch.train import TrainConfig

    saved_data = _data_identity(saved.get("data", {}))
    current = {k: v for k, v in _data_identity(data.source).items() if k in saved_data}  # (older runs record less)
    diff = first_difference(saved_data, current, "data")
    if diff:
        raise UsageError(f"--resume: the data differ from the run's: {diff}. Resume on the data the run started "
                         "with, or start a new run in another --out")
    try:
        saved_train = TrainConfig.from_dict(saved["train"])
    except (KeyError, TypeError, ValueError) as e:
        raise UsageError(f"--resume: {out_dir}/config.json records no usable training config ({e})") from None
    if extend_to is not None:
        if extend_to <= saved_train.max_steps:
            raise UsageError(f"--extend-to {extend_to} must be larger than the run's {saved_train.max_steps} steps")
        # The cosine keeps its recorded length: the added steps run at its floor, min_lr.
        cfg = replace(cfg, max_steps=saved_train.max_steps, lr_decay_steps=saved_train.decay_steps)
    elif not explicit & {"max_steps", "lr_decay_steps"}:
        # --max-steps not given: the run's own length and schedule (an extended run keeps its extension)
        cfg = replace(cfg, max_steps=saved_train.max_steps, lr_decay_steps=saved_train.decay_steps)
    elif cfg.lr_decay_steps is None:
        cfg = replace(cfg, lr_decay_steps=cfg.max_steps)
    diff = (first_difference(saved_train.max_steps, cfg.max_steps, "train.max_steps")  # the likeliest first
            or first_difference(saved_train.run_identity(), cfg.run_identity(), "train"))
    if diff:
        hint = ""
        if diff.startswith("train.max_steps") or diff.startswith("train.lr_decay_steps"):
            hint = (f" To train a run longer, use --resume --extend-to N (N > {saved_train.max_steps}): the added "
                    "steps continue at the final learning rate.")
        raise UsageError(f"--resume: this is not the same run: {diff}.{hint} Resume with the settings the run "
                         "started with, or start a new run in another --out")
    if extend_to is not None:
        cfg = replace(cfg, max_steps=extend_to)
    return cfg
