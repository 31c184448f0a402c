"""Distributed training on the CPU: 2 processes launched with ``torchrun`` (gloo) must give the same
weights as 1 process that accumulates the same 2 micro-batches per step.

This file is also the worker: ``torchrun --nproc_per_node 2 tests/test_distributed.py OUT``.
FSDP (``fully_shard``) runs on gloo too, so the same check covers it.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

ROOT = Path(__file__).resolve().parents[1]
STEPS, MICRO_BATCH = 6, 4


def _setup(mode: str = "ddp"):
    from llm_from_scratch.gpt import GPT, GPTConfig
    from llm_from_scratch.train import TrainConfig, lm_batches

    # bias=False: see test_train.py::test_gradient_accumulation_equals_the_large_batch (the key bias's
    # gradient is pure round-off, which Adam would amplify into differences between summation orders).
    config = GPTConfig(vocab_size=24, block_size=8, n_layer=2, n_head=2, n_embd=16, dropout=0.0, bias=False)
    torch.manual_seed(0)
    model = GPT(config)
    tokens = torch.randint(0, 24, (3000,), generator=torch.Generator().manual_seed(1))
    batches = lm_batches(tokens, config.block_size, MICRO_BATCH, seed=2)
    val = [batches(10_000 + i) for i in range(3)]
    train_config = TrainConfig(max_steps=STEPS, batch_size=MICRO_BATCH, warmup_steps=2, lr=3e-3, eval_every=3,
                               progress=False, device="cpu", fsdp=(mode == "fsdp"))
    return model, batches, val, train_config, config


def worker(out: str) -> None:
    """Under torchrun: train with grad_accum=1 on each rank, with DDP and then with FSDP; rank 0
    writes the weights each gave. (One launch for both: starting processes is the expensive part.)"""
    import torch.distributed as dist
    from torch.distributed.checkpoint.state_dict import StateDictOptions, get_model_state_dict

    from llm_from_scratch.train import train

    results = {}
    for mode in ("ddp", "fsdp"):
        model, batches, val, train_config, config = _setup(mode)
        result = train(model, batches, config=train_config, val_batches=val, out_dir=Path(out) / mode,
                       run_info={"model": config.to_dict()})
        if mode == "fsdp":  # the parameters are sharded DTensors: gather the full tensors
            weights = get_model_state_dict(model, options=StateDictOptions(full_state_dict=True, cpu_offload=True))
        else:
            weights = model.state_dict()
        results[mode] = {"weights": {k: v.detach().clone() for k, v in weights.items()}, "history": result.history}
    if dist.get_rank() == 0:
        torch.save({**results, "world": dist.get_world_size()}, Path(out) / "ranks.pt")
    dist.destroy_process_group()


def _torchrun(tmp_path: Path) -> dict:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
           str(Path(__file__).resolve()), str(tmp_path)]
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=240)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    return torch.load(tmp_path / "ranks.pt", weights_only=True)


def _single_process_reference():
    """1 process, micro-batch b, 2 accumulation steps: the same micro-batch indices as the 2 ranks."""
    from llm_from_scratch.train import train

    model, batches, val, train_config, _ = _setup()
    train_config.grad_accum = 2
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        result = train(model, batches, config=train_config, val_batches=val)
    finally:
        torch.set_num_threads(threads)
    return model, result


@pytest.fixture(scope="module")
def two_ranks(tmp_path_factory):
    """What 2 gloo processes launched with torchrun produced (DDP and FSDP runs)."""
    tmp = tmp_path_factory.mktemp("torchrun")
    return tmp, _torchrun(tmp)


@pytest.fixture(scope="module")
def reference():
    return _single_process_reference()


@pytest.mark.slow
@pytest.mark.parametrize("mode", ["ddp", "fsdp"])
def test_two_processes_equal_one_process_with_accumulation(two_ranks, reference, mode):
    tmp, got = two_ranks
    ref_model, ref_result = reference
    assert got["world"] == 2
    for name, tensor in ref_model.state_dict().items():
        torch.testing.assert_close(got[mode]["weights"][name], tensor, rtol=1e-5, atol=1e-5, msg=name)
    # the logged losses agree too (the training loss is averaged over ranks; evaluation is sharded)
    assert [r["step"] for r in got[mode]["history"]] == [r["step"] for r in ref_result.history] == [3, 6]
    for a, b in zip(got[mode]["history"], ref_result.history):
        assert a["train_loss"] == pytest.approx(b["train_loss"], rel=1e-5)
        assert a["val_loss"] == pytest.approx(b["val_loss"], rel=1e-5)
    # rank 0 alone wrote the run directory, and its checkpoint loads into a plain, unsharded model
    from llm_from_scratch.checkpoint import load_into

    run = tmp / mode
    assert sorted(p.name for p in run.iterdir()) == ["config.json", "history.jsonl", "loss.png", "model.safetensors",
                                                      "state.pt"]
    assert len((run / "history.jsonl").read_text().splitlines()) == 2  # written once, not once per rank
    model, *_ = _setup()
    assert load_into(model, run)["step"] == STEPS
    for name, tensor in ref_model.state_dict().items():
        torch.testing.assert_close(model.state_dict()[name], tensor, rtol=1e-5, atol=1e-5, msg=name)


if __name__ == "__main__":
    worker(sys.argv[1])
