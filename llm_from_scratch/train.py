"""One training loop for every chapter, the command line and multi-GPU runs.

The API (chapters 07 and 12 walk through it)::

    from llm_from_scratch.train import TrainConfig, train

    result = train(model, train_batches, config=TrainConfig(max_steps=2000, batch_size=12),
                   val_batches=val, out_dir="runs/x")

- ``train_batches(i) -> batch``: the i-th micro-batch of the whole run, a pure function of ``i``
  (e.g. :func:`lm_batches`, :func:`shuffled_batches`). Because the data is addressed by index,
  resuming is exact (step s starts at micro-batch ``s * grad_accum * world_size``) and a global
  batch is sharded across ranks deterministically: on rank r, micro-step m of step s reads index
  ``(s * grad_accum + m) * world_size + r``. So 2 processes with 1 micro-step each see the same
  data as 1 process with 2 micro-steps (``tests/test_distributed.py`` checks the weights agree).
- ``loss_fn(model, batch) -> scalar loss`` (default :func:`lm_loss`: ``model(x, targets=y)[1]``).
  The fine-tuning chapters pass their own.
- ``val_batches``: a list of batches for the default evaluation :func:`evaluate_lm` (mean next-token
  NLL, perplexity = exp(NLL), accuracy), or ``eval_fn(model) -> {"loss": ..., ...}`` for anything else.
- ``out_dir``: where ``history.jsonl`` (one JSON record per evaluation: step, train_loss, val_loss,
  lr, tokens_per_s, ...), ``loss.png`` and the checkpoint (see :mod:`llm_from_scratch.checkpoint`)
  go. ``resume=True`` continues from the checkpoint there, bit for bit; ``stop_at_step=N`` saves at
  step N and returns (a later ``resume=True`` continues); ``keep_best=True`` also keeps the checkpoint
  with the lowest validation loss in ``out_dir/best/``. A new run records its schedule's length
  (``lr_decay_steps``) in config.json.

What each piece of the step is for:

- **Mixed precision** (``precision``): matmuls in bf16/fp16 run on tensor cores, several times the
  fp32 rate, and halve activation memory. bf16 (compute capability >= 8.0) keeps fp32's exponent
  range; fp16 (a T4) does not, so its loss is multiplied by a ``GradScaler`` before backward to keep
  small gradients from underflowing to 0, and the gradients are divided back before the update.
  The weights and the optimizer stay in fp32. CPU: fp32 unless asked.
- **torch.compile** (``compile=True``): fuses the elementwise ops between matmuls into a few
  kernels (less memory traffic). Off by default (compiling costs a minute; on a CPU it rarely pays).
  If it fails, the loop warns and runs eager.
- **Gradient accumulation** (``grad_accum``): K micro-batches of b examples, each loss divided by K,
  give the gradient of one batch of K·b: a large batch in little memory.
- **Gradient clipping** (``grad_clip``): if ‖g‖ > c, scale g by c/‖g‖. One bad batch cannot throw
  the weights far.
- **Warmup + cosine** (``lr``, ``warmup_steps``, ``lr_decay_steps``, ``min_lr``): Adam's second-moment
  estimate is noisy in the first steps, so the lr ramps up linearly, then decays along a half cosine.
- **Optimizer**: ``torch.optim.AdamW`` (decay on matrices only, not on biases / LayerNorm gains),
  ``fused=True`` on CUDA: one kernel for all parameters. Chapter 04 builds the same update from
  scratch (``llm_from_scratch.optim.AdamW``) and checks it against torch's; here we use torch's for
  its fused CUDA kernel, which the from-scratch version does not have.
- **TF32** on CUDA: fp32 matmuls that remain (outside autocast) use tensor cores with a 10-bit mantissa.
- **Distributed** (launched with ``torchrun``): DDP (gloo on the CPU, NCCL on GPUs) averages the
  gradients across ranks during backward; ``fsdp=True`` shards parameters, gradients and optimizer
  state with ``torch.distributed.fsdp.fully_shard`` instead (each transformer block, then the root),
  for models that do not fit one GPU. Only rank 0 prints, writes history and checkpoints.
- **Divergence**: a NaN or infinite loss stops the run (:class:`TrainingDiverged`) before the update,
  naming the step and the last good checkpoint.
- **Memory** (chapter 12): ``grad_checkpointing=True`` recomputes each block's activations during
  backward (``scaling.enable_gradient_checkpointing``).
- **Speed**: on CUDA, batches are copied from pinned memory so the copy does not wait for the GPU
  (``scaling.flops_per_token`` and ``scaling.mfu`` say how close a run comes to the hardware).

Where the pieces live: the batch samplers in :mod:`llm_from_scratch.lm_data`, the process group and
FSDP in :mod:`llm_from_scratch.distributed`, memory and FLOPs in :mod:`llm_from_scratch.scaling`, the
checkpoint files in :mod:`llm_from_scratch.checkpoint`.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import time
import warnings
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any, ClassVar

import torch
import torch.distributed as dist
import torch.nn as nn
import torch.nn.functional as F

from llm_from_scratch import checkpoint as ckpt
from llm_from_scratch.device import Precision, select_device, select_precision
from llm_from_scratch.distributed import (DistInfo, dist_ready, micro_batch_index, setup_distributed, shard_model,
                                          transformer_blocks)
from llm_from_scratch.optim import set_lr, warmup_cosine
from llm_from_scratch.scaling import enable_gradient_checkpointing
from llm_from_scratch.utils import config_from_dict, seed_everything

# Names that earlier issues placed here and that now live in their own modules (kept importable):
from llm_from_scratch.checkpoint import load_gpt_checkpoint  # noqa: E402,F401
from llm_from_scratch.history import plot_history, read_history  # noqa: E402,F401
from llm_from_scratch.lm_data import eval_batches, lm_batches, shuffled_batches  # noqa: E402,F401
from llm_from_scratch.scaling import (H100_BF16_PEAK_FLOPS, flops_per_token, mfu,  # noqa: E402,F401
                                      saved_activation_bytes)

__all__ = [
    "TrainConfig", "TrainResult", "TrainingDiverged", "train", "lm_loss", "evaluate_lm", "configure_optimizer",
    "learning_rate", "autocast", "plot_history", "read_history", "move_to_device",
    # re-exported from lm_data, distributed, scaling, checkpoint:
    "lm_batches", "eval_batches", "shuffled_batches", "DistInfo", "setup_distributed", "micro_batch_index",
    "transformer_blocks", "saved_activation_bytes", "enable_gradient_checkpointing", "flops_per_token", "mfu",
    "H100_BF16_PEAK_FLOPS", "load_gpt_checkpoint",
]


@dataclass
class TrainConfig:
    """Everything that says how to train (the model's shape lives in its own config).

    ``RUN_FIELDS`` are the run's identity: a resumed run must have the same (``pretrain --resume``
    refuses otherwise, naming the field). The others say how to run it (device, precision,
    compilation, logging) and may change between sessions.
    """

    RUN_FIELDS: ClassVar[tuple[str, ...]] = ("max_steps", "batch_size", "grad_accum", "lr", "min_lr", "warmup_steps",
                                             "lr_decay_steps", "weight_decay", "betas", "eps", "grad_clip", "seed")

    max_steps: int = 1000  # optimizer steps to run (the run stops here)
    batch_size: int = 12  # micro-batch size per process
    grad_accum: int = 1  # micro-batches per optimizer step (per process)
    lr: float = 1e-3  # peak learning rate, reached at the end of warmup
    min_lr: float | None = None  # floor of the cosine; None: lr / 10
    warmup_steps: int = 100
    lr_decay_steps: int | None = None  # where the cosine reaches min_lr; None: max_steps
    weight_decay: float = 0.1
    betas: tuple[float, float] = (0.9, 0.95)
    eps: float = 1e-8
    grad_clip: float | None = 1.0  # max global gradient norm; None or 0: no clipping
    eval_every: int = 250  # evaluate, log and checkpoint every N steps (and after the last)
    eval_at_start: bool = False  # also evaluate before the first step (a step-0 point on the curves)
    seed: int = 0
    device: str | None = None  # None: cuda -> mps -> cpu
    precision: str | None = None  # None: by the hardware (bf16 >= 8.0, fp16 below, fp32 on CPU)
    compile: bool = False
    compile_mode: str | None = None  # torch.compile's mode: None (default), "max-autotune-no-cudagraphs", ...
    fsdp: bool = False  # under torchrun: shard with fully_shard instead of DDP
    grad_checkpointing: bool = False  # recompute block activations in backward (less memory, ~1/3 more compute)
    progress: bool = True  # tqdm progress bar (rank 0 only)
    log_every: int = 10  # refresh the progress bar every N steps

    def __post_init__(self) -> None:
        for name in ("max_steps", "batch_size", "grad_accum", "eval_every", "log_every"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"TrainConfig.{name} must be a positive integer, got {value!r}")
        if not isinstance(self.warmup_steps, int) or self.warmup_steps < 0:
            raise ValueError(f"TrainConfig.warmup_steps must be an integer >= 0, got {self.warmup_steps!r}")
        if not self.lr > 0:
            raise ValueError(f"TrainConfig.lr must be > 0, got {self.lr!r}")
        if self.min_lr is not None and not 0 <= self.min_lr <= self.lr:
            raise ValueError(f"TrainConfig.min_lr must be between 0 and lr={self.lr}, got {self.min_lr!r}")
        if not self.weight_decay >= 0:
            raise ValueError(f"TrainConfig.weight_decay must be >= 0, got {self.weight_decay!r}")
        if self.grad_clip is not None and not self.grad_clip >= 0:
            raise ValueError(f"TrainConfig.grad_clip must be >= 0 or None, got {self.grad_clip!r}")
        if self.lr_decay_steps is not None and (not isinstance(self.lr_decay_steps, int) or self.lr_decay_steps < 1):
            raise ValueError(f"TrainConfig.lr_decay_steps must be a positive integer or None, got {self.lr_decay_steps!r}")
        self.betas = tuple(self.betas)

    @property
    def decay_steps(self) -> int:
        return self.lr_decay_steps if self.lr_decay_steps is not None else self.max_steps

    def to_dict(self) -> dict:
        d = asdict(self)
        d["betas"] = list(self.betas)
        return d

    @classmethod
    def from_dict(cls, d: dict) -> TrainConfig:
        return config_from_dict(cls, d)

    def run_identity(self) -> dict:
        """The RUN_FIELDS, with the schedule length resolved (what a resumed run must match)."""
        d = {name: getattr(self, name) for name in self.RUN_FIELDS}
        d["lr_decay_steps"], d["betas"] = self.decay_steps, list(self.betas)
        return d


class TrainingDiverged(RuntimeError):
    """The loss became NaN or infinite; the message names the step and the last good checkpoint."""


@dataclass
class TrainResult:
    step: int  # optimizer steps done
    history: list[dict]  # one record per evaluation (as in history.jsonl)
    tokens_seen: int
    out_dir: Path | None = None

    @property
    def last(self) -> dict:
        return self.history[-1] if self.history else {}


def move_to_device(batch: Any, device: torch.device) -> Any:
    """A batch (a tensor, or lists / tuples / dicts of them) on ``device``."""
    if isinstance(batch, torch.Tensor):
        if device.type == "cuda" and batch.device.type == "cpu":
            # A copy from ordinary (pageable) memory waits until the GPU has finished all queued
            # work; from pinned memory it is queued like a kernel, so the CPU can prepare the
            # next micro-batch while the GPU still runs this one.
            batch = batch.pin_memory()
        return batch.to(device, non_blocking=True)
    if isinstance(batch, (list, tuple)):
        return type(batch)(move_to_device(b, device) for b in batch)
    if isinstance(batch, dict):
        return {k: move_to_device(v, device) for k, v in batch.items()}
    return batch


def _tokens_in(batch: Any) -> int:
    """Tokens in a batch: the size of its first tensor (x of (x, y), or input_ids)."""
    if isinstance(batch, torch.Tensor):
        return batch.numel()
    if isinstance(batch, (list, tuple)) and batch:
        return _tokens_in(batch[0])
    if isinstance(batch, dict) and batch:
        return _tokens_in(batch.get("input_ids", next(iter(batch.values()))))
    return 0


# ----------------------------------------------------------------------------------------------
# Loss, evaluation, optimizer, schedule, precision


def lm_loss(model: nn.Module, batch: tuple[torch.Tensor, torch.Tensor]) -> torch.Tensor:
    """Mean next-token cross entropy of ``model(x, targets=y)``: −(1/N) Σ log p(y_t | x_≤t)."""
    x, y = batch
    _, loss = model(x, targets=y)
    return loss


def autocast(device: torch.device | str, precision: str) -> contextlib.AbstractContextManager:
    """``torch.autocast`` for bf16/fp16, a no-op for fp32."""
    dtype = Precision(precision).autocast_dtype
    device = torch.device(device)
    if dtype is None:
        return contextlib.nullcontext()
    return torch.autocast(device_type=device.type, dtype=dtype)


@torch.no_grad()
def evaluate_lm(model: nn.Module, batches: Sequence[tuple], *, device: torch.device | str = "cpu",
                precision: str = "fp32", shard: bool = True) -> dict[str, float]:
    """Next-token metrics over ``batches`` of (x, y), every token weighted equally:

        loss = −(1/N) Σ log p(y_t | x_≤t)      (mean NLL, nats per token)
        perplexity = exp(loss)
        accuracy = (1/N) Σ [argmax p(· | x_≤t) = y_t]

    Under torchrun (``shard=True``) the batches are split across ranks and the sums added up
    (every rank gets the same numbers). Targets of -100 are skipped.
    """
    device = torch.device(device)
    rank, world = (dist.get_rank(), dist.get_world_size()) if shard and dist_ready() else (0, 1)
    was_training = model.training
    model.eval()
    sums = torch.zeros(3, dtype=torch.float64, device=device)  # NLL sum, correct, tokens
    for i, batch in enumerate(batches):
        if i % world != rank:
            continue
        x, y = move_to_device(batch, device)
        with autocast(device, precision):
            logits, _ = model(x, targets=y)
        logits = logits.float()
        valid = y != -100
        nll = F.cross_entropy(logits.reshape(-1, logits.size(-1)), y.reshape(-1), ignore_index=-100, reduction="sum")
        sums[0] += nll.double()
        sums[1] += ((logits.argmax(-1) == y) & valid).sum()
        sums[2] += valid.sum()
    if world > 1:
        dist.all_reduce(sums)
    model.train(was_training)
    nll, correct, n = sums.tolist()
    if n == 0:
        raise ValueError("evaluate_lm got no tokens to evaluate (empty batches?)")
    loss = nll / n
    return {"loss": loss, "perplexity": math.exp(min(loss, 700.0)), "accuracy": correct / n, "tokens": int(n)}


def learning_rate(step: int, config: TrainConfig) -> float:
    """Warmup + cosine (``llm_from_scratch.optim.warmup_cosine``) for the optimizer step ``step`` (0-based).

    A schedule shorter than its warmup (a smoke run of 3 steps of a preset with 100 warmup steps)
    warms up over all but its last step instead.
    """
    min_lr = config.min_lr if config.min_lr is not None else config.lr / 10
    warmup = min(config.warmup_steps, config.decay_steps - 1)
    return warmup_cosine(step, max_lr=config.lr, warmup_steps=warmup, total_steps=config.decay_steps, min_lr=min_lr)


def configure_optimizer(model: nn.Module, config: TrainConfig, device: torch.device) -> torch.optim.AdamW:
    """AdamW with weight decay on matrices (dim >= 2) only: decaying biases and LayerNorm gains
    toward 0 only hurts. Fused (one CUDA kernel for every tensor) on CUDA."""
    params = [p for p in model.parameters() if p.requires_grad]
    decay = [p for p in params if p.dim() >= 2]
    no_decay = [p for p in params if p.dim() < 2]
    groups = [{"params": decay, "weight_decay": config.weight_decay}, {"params": no_decay, "weight_decay": 0.0}]
    extra = {"fused": True} if device.type == "cuda" else {"foreach": True}
    return torch.optim.AdamW(groups, lr=config.lr, betas=config.betas, eps=config.eps, **extra)



# ----------------------------------------------------------------------------------------------
# The loop


def _unwrap(model: nn.Module) -> nn.Module:
    return getattr(model, "module", model)


def _save(out_dir: Path, model: nn.Module, optimizer, scaler, config: TrainConfig, run_info: dict,
          tokenizer, step: int, next_index: int, tokens_seen: int, elapsed_s: float, device: torch.device,
          info: DistInfo) -> None:
    """Write the checkpoint (rank 0 writes; with FSDP every rank helps gather the full state)."""
    rng = ckpt.rng_state(device)
    if info.enabled:  # every rank's RNG (dropout masks differ per rank), gathered on rank 0
        all_rng = [None] * info.world_size
        dist.all_gather_object(all_rng, rng)
    else:
        all_rng = [rng]
    if config.fsdp and info.enabled:
        from torch.distributed.checkpoint.state_dict import StateDictOptions, get_state_dict

        weights, optim_state = get_state_dict(model, optimizer,
                                              options=StateDictOptions(full_state_dict=True, cpu_offload=True))
    else:
        weights, optim_state = _unwrap(model).state_dict(), optimizer.state_dict()
    if info.is_main:
        ckpt.save_checkpoint(
            out_dir, weights=weights, tokenizer=tokenizer,
            config={**run_info, "train": config.to_dict(), "step": step},
            state={"step": step, "next_batch_index": next_index, "tokens_seen": tokens_seen, "elapsed_s": elapsed_s,
                   "optimizer": optim_state,
                   "scaler": scaler.state_dict() if scaler is not None else None,
                   "rng": all_rng, "world_size": info.world_size})
    if info.enabled:
        dist.barrier()


def _load(out_dir: Path, model: nn.Module, optimizer, scaler, config: TrainConfig, run_info: dict,
          device: torch.device, info: DistInfo) -> tuple[int, int, int, float]:
    snap = ckpt.read_checkpoint(out_dir, weights=True, state=True)
    saved, state = snap["config"], snap["state"]
    ckpt.check_compatible(out_dir, saved, model=run_info.get("model"), tokenizer=run_info.get("tokenizer"))
    if config.fsdp and info.enabled:
        from torch.distributed.checkpoint.state_dict import StateDictOptions, set_state_dict

        set_state_dict(model, optimizer, model_state_dict=snap["weights"], optim_state_dict=state["optimizer"],
                       options=StateDictOptions(full_state_dict=True))
    else:
        ckpt.load_into(_unwrap(model), out_dir, snap)
        optimizer.load_state_dict(state["optimizer"])
    if scaler is not None and state.get("scaler"):
        scaler.load_state_dict(state["scaler"])
    rngs = state["rng"]
    if len(rngs) == info.world_size:
        ckpt.set_rng_state(rngs[info.rank], device)
    else:  # resumed on another number of processes: the data is exact, dropout masks are not
        ckpt.set_rng_state(rngs[0], device)
        torch.manual_seed(config.seed + 7919 * state["step"] + info.rank)
    return (int(state["step"]), int(state["next_batch_index"]), int(state.get("tokens_seen", 0)),
            float(state.get("elapsed_s", 0.0)))


def train(model: nn.Module, train_batches: Callable[[int], Any], *, config: TrainConfig,
          val_batches: Sequence | None = None, loss_fn: Callable[[nn.Module, Any], torch.Tensor] | None = None,
          eval_fn: Callable[[nn.Module], dict] | None = None, out_dir: str | os.PathLike | None = None,
          resume: bool = False, run_info: dict | None = None, tokenizer: Any = None,
          on_eval: Callable[[dict], None] | None = None, stop_at_step: int | None = None,
          keep_best: bool = False) -> TrainResult:
    """Train ``model`` for ``config.max_steps`` optimizer steps (see the module docstring).

    run_info: what config.json records besides the training config: ``{"model": model_config_dict,
      "tokenizer": {...}, ...}``; on resume, ``model`` and ``tokenizer`` must equal the saved ones.
    tokenizer: saved beside the checkpoint (anything with ``save(dir)``).
    on_eval: called with each history record (e.g. to print or plot live).
    stop_at_step: train on the run's own schedule, save at this step and return (a session with a
      time limit); ``resume=True`` later continues as if nothing had happened.
    keep_best: also keep the checkpoint with the lowest validation loss in ``out_dir/best/``.
    Returns a :class:`TrainResult`; the model is trained in place.
    """
    loss_fn = loss_fn or lm_loss
    if not resume:  # the schedule's length is fixed when a run starts and recorded in config.json
        config = replace(config, lr_decay_steps=config.decay_steps)
    if stop_at_step is not None and (isinstance(stop_at_step, bool) or not isinstance(stop_at_step, int)
                                     or stop_at_step < 1):
        raise ValueError(f"stop_at_step must be a positive integer, got {stop_at_step!r}")
    run_info = dict(run_info or {})
    out_dir = Path(out_dir) if out_dir is not None else None
    info = setup_distributed(config.device)
    if info.enabled and torch.cuda.is_available() and (config.device is None or config.device.startswith("cuda")):
        device = torch.device("cuda", info.local_rank)
    else:
        device = select_device(config.device)
    precision = select_precision(device, config.precision)
    seed_everything(config.seed + info.rank)  # dropout masks differ per rank, reproducibly

    if device.type == "cuda":
        torch.set_float32_matmul_precision("high")  # TF32: fp32 matmuls on tensor cores, 10-bit mantissa
        torch.backends.cudnn.allow_tf32 = True
    model.to(device)
    model.train()
    if config.grad_checkpointing:
        enable_gradient_checkpointing(model)

    # Wrap for distribution, then (optionally) compile. The optimizer must see the wrapped
    # parameters (FSDP replaces them with sharded DTensors).
    wrapped: nn.Module = model  # what the forward pass calls: the model, or DDP around it
    ddp = info.enabled and not config.fsdp
    if info.enabled and config.fsdp:
        shard_model(model)
    elif ddp:
        from torch.nn.parallel import DistributedDataParallel as DDP

        wrapped = DDP(model, device_ids=[device.index] if device.type == "cuda" else None)
    compiled = None
    if config.compile:
        try:
            compiled = torch.compile(wrapped, mode=config.compile_mode)
        except Exception as e:  # noqa: BLE001 - any failure means: run eager
            warnings.warn(f"torch.compile failed ({type(e).__name__}: {e}); training eager instead", stacklevel=2)

    optimizer = configure_optimizer(model, config, device)
    scaler = torch.amp.GradScaler(device.type) if Precision(precision).needs_grad_scaler else None

    per_step = config.grad_accum * info.world_size  # micro-batches per optimizer step, all ranks
    step, next_index, tokens_seen, elapsed_before = 0, 0, 0, 0.0
    history: list[dict] = []
    if out_dir is not None and resume:
        if info.is_main:
            ckpt.recover(out_dir)  # the writer finishes (or discards) its own interrupted save
        if info.enabled:
            dist.barrier()
        if not ckpt.has_checkpoint(out_dir):
            raise ckpt.CheckpointError(f"nothing to resume: {out_dir} holds no checkpoint "
                                       "(run without --resume to start a new run there)")
        step, next_index, tokens_seen, elapsed_before = _load(out_dir, model, optimizer, scaler, config, run_info,
                                                              device, info)
        history = [r for r in read_history(out_dir) if r["step"] <= step]
    last_good = f"{out_dir} (step {step})" if out_dir is not None and resume else None
    best_loss = math.inf
    if keep_best and out_dir is not None and ckpt.has_checkpoint(out_dir / "best"):
        best_loss = ckpt.load_config(out_dir / "best").get("val_loss", math.inf)
    if out_dir is not None and info.is_main:
        out_dir.mkdir(parents=True, exist_ok=True)
        with open(out_dir / "history.jsonl", "w") as f:  # rewritten: drops records past a resumed step
            f.writelines(json.dumps(r) + "\n" for r in history)

    def evaluate() -> dict:
        if eval_fn is not None:
            return eval_fn(model)
        if val_batches is not None:
            # FSDP's forward is collective: every rank must run every batch, so no sharding there.
            return evaluate_lm(model, val_batches, device=device, precision=precision, shard=not config.fsdp)
        return {}

    def record(step_done: int, train_loss: float | None, lr: float, tok_s: float | None, extra: dict) -> dict:
        metrics = evaluate()
        rec = {"step": step_done, "train_loss": train_loss, "val_loss": metrics.get("loss"), "lr": lr,
               "tokens_per_s": tok_s, **{f"val_{k}": v for k, v in metrics.items() if k != "loss"}, **extra}
        history.append(rec)
        if info.is_main and out_dir is not None:
            with open(out_dir / "history.jsonl", "a") as f:
                f.write(json.dumps(rec) + "\n")
        if on_eval is not None and info.is_main:
            on_eval(rec)
        return rec

    if config.eval_at_start and step == 0 and not history:
        record(0, None, learning_rate(0, config), None, {})

    from tqdm.auto import tqdm

    bar = tqdm(total=config.max_steps, initial=step, disable=not (config.progress and info.is_main),
               desc="train", dynamic_ncols=True, mininterval=1.0)
    first_step = step
    run_start = time.perf_counter()
    window_loss, window_steps, window_tokens, window_time = 0.0, 0, 0, 0.0
    grad_norm = None  # a tensor: read on the host only when a record is written
    last_saved = step
    end = config.max_steps if stop_at_step is None else min(config.max_steps, stop_at_step)
    try:
        while step < end:
            t0 = time.perf_counter()
            lr = set_lr(optimizer, learning_rate(step, config))
            step_loss = torch.zeros((), device=device)
            step_tokens = 0
            for micro in range(config.grad_accum):
                index = micro_batch_index(next_index, micro, info.rank, info.world_size)
                batch = move_to_device(train_batches(index), device)
                step_tokens += _tokens_in(batch) * info.world_size
                last_micro = micro == config.grad_accum - 1
                # Only the last micro-batch's backward needs to average gradients across ranks.
                sync = wrapped.no_sync() if ddp and not last_micro else contextlib.nullcontext()
                if info.enabled and config.fsdp:
                    model.set_requires_gradient_sync(last_micro)
                with sync:
                    with autocast(device, precision):
                        try:
                            loss = loss_fn(compiled if compiled is not None else wrapped, batch)
                        except Exception as e:  # noqa: BLE001
                            if compiled is None or step > first_step or micro > 0:
                                raise
                            # torch.compile compiles lazily, at the first call: fall back here.
                            warnings.warn(f"torch.compile failed at the first step ({type(e).__name__}: "
                                          f"{str(e)[:200]}); training eager instead", stacklevel=2)
                            compiled = None
                            loss = loss_fn(wrapped, batch)
                    # Divide by K so the K backward passes add up to the gradient of the mean.
                    scaled = loss / config.grad_accum
                    (scaler.scale(scaled) if scaler is not None else scaled).backward()
                step_loss += loss.detach().float()
            step_loss /= config.grad_accum
            if info.enabled:
                dist.all_reduce(step_loss)
                step_loss /= info.world_size
            loss_value = step_loss.item()  # the step's one host synchronisation (the NaN stop needs it)
            if not math.isfinite(loss_value):
                if last_good:
                    where = f"The last good checkpoint is {last_good}: resume from it"
                else:
                    where = "No checkpoint was saved yet" + ("" if out_dir else " (no out_dir was given)")
                raise TrainingDiverged(
                    f"the training loss became {loss_value} at step {step + 1}; stopped before the update. "
                    f"{where}. Try a lower learning rate, a longer warmup or gradient clipping.")
            if config.grad_clip:
                if scaler is not None:
                    scaler.unscale_(optimizer)  # clip the true gradients, not the scaled ones
                norm = torch.nn.utils.clip_grad_norm_(model.parameters(), config.grad_clip)
                grad_norm = norm.full_tensor() if hasattr(norm, "full_tensor") else norm
            if scaler is not None:
                scaler.step(optimizer)  # skips the update if the gradients overflowed
                scaler.update()
            else:
                optimizer.step()
            optimizer.zero_grad(set_to_none=True)
            step += 1
            next_index += per_step
            tokens_seen += step_tokens
            dt = time.perf_counter() - t0
            window_loss += loss_value
            window_steps += 1
            window_tokens += step_tokens
            window_time += dt
            if step % config.log_every == 0 or step == config.max_steps:
                bar.set_postfix(loss=f"{loss_value:.4f}", lr=f"{lr:.2e}", tok_s=f"{step_tokens / dt:,.0f}", refresh=False)
            bar.update(1)
            if step % config.eval_every == 0 or step == config.max_steps:
                tok_s = window_tokens / window_time if window_time > 0 else None
                extra = {"grad_norm": None if grad_norm is None else float(grad_norm), "tokens_seen": tokens_seen,
                         "precision": precision,
                         "elapsed_s": elapsed_before + time.perf_counter() - run_start}
                rec = record(step, window_loss / window_steps, lr, tok_s, extra)
                window_loss, window_steps, window_tokens, window_time = 0.0, 0, 0, 0.0
                if out_dir is not None:
                    _save(out_dir, model, optimizer, scaler, config, run_info, tokenizer, step, next_index, tokens_seen,
                          rec["elapsed_s"], device, info)
                    last_good, last_saved = f"{out_dir} (step {step})", step
                    if info.is_main:
                        plot_history(history, out_dir / "loss.png")
                    val_loss = rec.get("val_loss")
                    if keep_best and val_loss is not None and val_loss < best_loss:
                        best_loss = val_loss
                        _save(out_dir / "best", model, optimizer, scaler, config, {**run_info, "val_loss": val_loss},
                              tokenizer, step, next_index, tokens_seen, rec["elapsed_s"], device, info)
        if out_dir is not None and step > last_saved:  # stopped at stop_at_step between two evaluations
            _save(out_dir, model, optimizer, scaler, config, run_info, tokenizer, step, next_index, tokens_seen,
                  elapsed_before + time.perf_counter() - run_start, device, info)
    finally:
        bar.close()
    return TrainResult(step=step, history=history, tokens_seen=tokens_seen, out_dir=out_dir)
