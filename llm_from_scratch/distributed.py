"""Several processes, one run: the process group, sharding the batches, and FSDP.

Launched with ``torchrun``, every process runs the same script; the environment tells each its
``RANK`` (0..W-1 over all machines), ``LOCAL_RANK`` (its GPU on this machine) and ``WORLD_SIZE`` (W).

- :func:`setup_distributed` joins the process group (gloo on the CPU, NCCL on GPUs).
- :func:`micro_batch_index` shards a global batch: the batches are addressed by index, so rank r
  reads index ``(s·K + m)·W + r`` at micro-step m of step s, and W ranks with K micro-steps read
  exactly the batches that one rank with K·W micro-steps reads.
- :func:`transformer_blocks` says which modules are "the blocks" (the rule is written here once):
  the unit FSDP shards, gradient checkpointing wraps, and ``finetune.unfreeze_last`` counts.
- :func:`shard_model` wraps each block, then the root, with ``fully_shard`` (FSDP2): parameters,
  gradients and optimizer state are split across ranks and gathered one block at a time.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import torch
import torch.distributed as dist
import torch.nn as nn

__all__ = ["DistInfo", "setup_distributed", "dist_ready", "micro_batch_index", "transformer_blocks", "shard_model"]


@dataclass(frozen=True)
class DistInfo:
    """Where this process stands: its rank, its GPU on this machine, and how many processes run."""

    rank: int = 0
    local_rank: int = 0
    world_size: int = 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def enabled(self) -> bool:
        return self.world_size > 1


def dist_ready() -> bool:
    """True inside an initialised process group of more than one process."""
    return dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1


def setup_distributed(device: str | None = None) -> DistInfo:
    """Join the process group that ``torchrun`` describes (RANK, LOCAL_RANK, WORLD_SIZE), if any.

    gloo on the CPU, NCCL on GPUs. Without torchrun (WORLD_SIZE unset or 1): a single process.
    """
    if dist.is_available() and dist.is_initialized():
        return DistInfo(dist.get_rank(), int(os.environ.get("LOCAL_RANK", dist.get_rank())), dist.get_world_size())
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return DistInfo()
    rank, local_rank = int(os.environ["RANK"]), int(os.environ.get("LOCAL_RANK", "0"))
    use_cuda = torch.cuda.is_available() and (device is None or str(device).startswith("cuda"))
    if use_cuda:
        torch.cuda.set_device(local_rank)
    dist.init_process_group(backend="nccl" if use_cuda else "gloo")
    return DistInfo(rank, local_rank, world)


def micro_batch_index(first_index: int, micro: int, rank: int, world_size: int) -> int:
    """Which micro-batch of the run rank ``rank`` reads at micro-step ``micro`` of a step whose first
    micro-batch (over all ranks) is ``first_index``. From step 0 with K micro-steps and W ranks,
    ``first_index = s·K·W``, so the index is ``(s·K + m)·W + r``: W ranks with one micro-step each read
    exactly the batches that one rank with W micro-steps reads."""
    return first_index + micro * world_size + rank


def transformer_blocks(model: nn.Module) -> list[nn.Module]:
    """The repeated blocks of a model: its longest non-empty ``nn.ModuleList`` (GPT's ``transformer.h``,
    BERT's ``layers``, also inside a fine-tuning head); ``[]`` if it has none. The unit that FSDP
    shards, gradient checkpointing wraps and ``finetune.unfreeze_last`` counts from the end."""
    lists = [m for m in model.modules() if isinstance(m, nn.ModuleList) and len(m) > 0]
    return list(max(lists, key=len)) if lists else []


def shard_model(model: nn.Module) -> nn.Module:
    """FSDP2: ``fully_shard`` every block (see :func:`transformer_blocks`), then the whole model."""
    try:
        from torch.distributed.fsdp import fully_shard
    except ImportError:  # torch < 2.6
        from torch.distributed._composable.fsdp import fully_shard
    for block in transformer_blocks(model):
        fully_shard(block)
    fully_shard(model)
    return model
