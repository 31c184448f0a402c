"""Checkpoints: round trip, exact resume, atomic saves (crash and SIGKILL), refusal of mismatched,
corrupt and malicious files."""

from __future__ import annotations

import json
import os
import pickle
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
import torch

from llm_from_scratch import checkpoint as ckpt
from llm_from_scratch.checkpoint import CheckpointError
from llm_from_scratch.gpt import GPT, GPTConfig
from llm_from_scratch.tokenizer import CharTokenizer
from llm_from_scratch.train import TrainConfig, eval_batches, lm_batches, read_history, train

ROOT = Path(__file__).resolve().parents[1]
TINY = GPTConfig(vocab_size=20, block_size=8, n_layer=1, n_head=2, n_embd=16, dropout=0.1)




def _tokens(n=4000, vocab=20, seed=0):
    return torch.randint(0, vocab, (n,), generator=torch.Generator().manual_seed(seed))


def _run(out_dir, max_steps, *, resume=False, decay=12, config=TINY, grad_accum=1, eval_every=4):
    torch.manual_seed(0)
    model = GPT(config)
    tokens = _tokens(vocab=config.vocab_size)
    cfg = TrainConfig(max_steps=max_steps, lr_decay_steps=decay, warmup_steps=2, batch_size=4, grad_accum=grad_accum,
                      eval_every=eval_every, lr=3e-3, progress=False, device="cpu")
    result = train(model, lm_batches(tokens, config.block_size, 4, seed=3), config=cfg,
                   val_batches=eval_batches(tokens[:400], config.block_size, 8, max_batches=2), out_dir=out_dir,
                   resume=resume, run_info={"model": config.to_dict(), "tokenizer": {"type": "test", "vocab_size": 20}})
    return model, result


def _save_simple(directory, step, model=None):
    model = model or GPT(TINY)
    ckpt.save_checkpoint(directory, weights=model, config={"model": TINY.to_dict(), "step": step},
                         state={"step": step, "blob": torch.arange(5)})
    return model


# ------------------------------------------------------------------------------ round trip


def test_round_trip_weights_state_config_and_tied_weights(tmp_path):
    torch.manual_seed(1)
    model = GPT(TINY)
    tok = CharTokenizer.fit("abcdefg hij\n")
    ckpt.save_checkpoint(tmp_path, weights=model, config={"model": TINY.to_dict()},
                         state={"step": 7, "t": torch.ones(3), "nested": {"a": [1, 2.5, "x", None, (1, 2)]}},
                         tokenizer=tok)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["config.json", "model.safetensors", "state.pt", "tokenizer"]
    clone = GPT(TINY)
    config = ckpt.load_into(clone, tmp_path)
    for (name, a), b in zip(model.state_dict().items(), clone.state_dict().values()):
        assert torch.equal(a, b), name
    # the tie survives: one tensor, not two copies
    assert clone.lm_head.weight.data_ptr() == clone.transformer.wte.weight.data_ptr()
    state = ckpt.load_state(tmp_path)
    assert state["step"] == 7 and torch.equal(state["t"], torch.ones(3))
    assert state["nested"] == {"a": [1, 2.5, "x", None, (1, 2)]}
    assert config["model"] == TINY.to_dict() and state["checkpoint_id"] == config["checkpoint_id"]
    assert ckpt.load_tokenizer(tmp_path).chars == tok.chars
    # the weights file is plain safetensors, readable by the reference library
    from safetensors.torch import load_file

    raw = load_file(tmp_path / "model.safetensors")
    assert torch.equal(raw["transformer.wte.weight"], model.transformer.wte.weight)
    assert "lm_head.weight" not in raw  # stored once, recorded as an alias


# ------------------------------------------------------------------------------ exact resume


def test_resume_continues_exactly(tmp_path):
    """N steps, then resume and M more == N + M steps straight (dropout on: RNG state restored too)."""
    straight, r_straight = _run(tmp_path / "straight", 12)
    _run(tmp_path / "split", 8)  # N = 8 (the schedule still spans 12 steps: lr_decay_steps=12)
    resumed, r_resumed = _run(tmp_path / "split", 12, resume=True)
    for (name, a), b in zip(straight.state_dict().items(), resumed.state_dict().values()):
        assert torch.equal(a, b), f"{name} differs after resume"
    # the history reads the same too (except timing)
    def strip(h):
        return [{k: v for k, v in r.items() if k not in ("tokens_per_s", "elapsed_s")} for r in h]

    assert strip(read_history(tmp_path / "split")) == strip(read_history(tmp_path / "straight"))
    assert [r["step"] for r in read_history(tmp_path / "split")] == [4, 8, 12]
    assert r_resumed.tokens_seen == r_straight.tokens_seen == 12 * 4 * 8


def test_resume_with_nothing_to_resume_is_a_clear_error(tmp_path):
    with pytest.raises(CheckpointError, match="nothing to resume"):
        _run(tmp_path / "empty", 4, resume=True)


# ------------------------------------------------------------------------------ atomic saves


def test_crash_while_writing_leaves_previous_checkpoint(tmp_path, monkeypatch):
    first = _save_simple(tmp_path, step=1)
    real_write = ckpt._write_bytes

    def half_then_crash(path, data):
        if path.name.startswith("state.pt"):
            with open(path, "wb") as f:
                f.write(data[: len(data) // 2])
            raise OSError("simulated crash: disk full")
        real_write(path, data)

    monkeypatch.setattr(ckpt, "_write_bytes", half_then_crash)
    torch.manual_seed(5)
    with pytest.raises(OSError, match="simulated crash"):
        _save_simple(tmp_path, step=2)
    monkeypatch.setattr(ckpt, "_write_bytes", real_write)

    assert (tmp_path / "state.pt.tmp").exists()  # the half-written temporary is there...
    model = GPT(TINY)
    config = ckpt.load_into(model, tmp_path)  # ...and ignored: the previous checkpoint loads
    assert config["step"] == 1 and ckpt.load_state(tmp_path)["step"] == 1
    assert all(torch.equal(a, b) for a, b in zip(first.state_dict().values(), model.state_dict().values()))
    assert (tmp_path / "state.pt.tmp").exists()  # loading is read-only: it cleans nothing up...
    _save_simple(tmp_path, step=3)  # ...the writer's next save does, and works
    assert ckpt.load_config(tmp_path)["step"] == 3
    assert not (tmp_path / "state.pt.tmp").exists()


KILL_SCRIPT = textwrap.dedent("""
    import os, signal, sys
    import torch
    from llm_from_scratch import checkpoint as ckpt
    from llm_from_scratch.gpt import GPT, GPTConfig

    directory, phase = sys.argv[1], sys.argv[2]
    config = GPTConfig(vocab_size=20, block_size=8, n_layer=1, n_head=2, n_embd=16)

    def save(step):
        torch.manual_seed(step)
        ckpt.save_checkpoint(directory, weights=GPT(config), config={"model": config.to_dict(), "step": step},
                             state={"step": step})

    save(1)
    real_write, real_replace = ckpt._write_bytes, os.replace
    def kill():
        os.kill(os.getpid(), signal.SIGKILL)
    def write(path, data):
        if phase == "temp" and path.name == "model.safetensors.tmp":
            with open(path, "wb") as f:
                f.write(data[: len(data) // 2]); f.flush(); os.fsync(f.fileno())
            kill()
        real_write(path, data)
    moved = []
    def replace(src, dst):
        real_replace(src, dst)
        moved.append(dst)
        if phase == "apply" and str(dst).endswith("model.safetensors"):
            kill()  # after the commit point, between the renames of the new files
    ckpt._write_bytes = write
    ckpt.os.replace = replace
    save(2)
""")


@pytest.mark.parametrize("phase, expected_step", [("temp", 1), ("apply", 2)])
def test_sigkill_during_save_leaves_a_loadable_checkpoint(tmp_path, phase, expected_step):
    """A process killed half-way through writing (before the commit) leaves the previous checkpoint;
    one killed after the commit, half-way through the renames, is read whole from its temporaries.
    Loading changes no file; the writer's recover() (run by a resumed run) completes or cleans up."""
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}
    proc = subprocess.run([sys.executable, "-c", KILL_SCRIPT, str(tmp_path), phase], env=env,
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == -signal.SIGKILL, proc.stderr
    leftovers = sorted(p.name for p in tmp_path.iterdir())
    assert any(name.endswith(".tmp") for name in leftovers) or "COMMIT" in leftovers, leftovers
    before = {p.name: p.read_bytes() for p in tmp_path.iterdir()}
    model = GPT(GPTConfig(vocab_size=20, block_size=8, n_layer=1, n_head=2, n_embd=16))
    config = ckpt.load_into(model, tmp_path)
    assert config["step"] == expected_step
    assert ckpt.load_state(tmp_path)["step"] == expected_step
    torch.manual_seed(expected_step)  # the weights are exactly the ones saved at that step
    reference = GPT(GPTConfig(vocab_size=20, block_size=8, n_layer=1, n_head=2, n_embd=16))
    assert all(torch.equal(a, b) for a, b in zip(reference.state_dict().values(), model.state_dict().values()))
    assert {p.name: p.read_bytes() for p in tmp_path.iterdir()} == before  # the reads changed nothing
    ckpt.recover(tmp_path)  # the writer's own recovery
    assert sorted(p.name for p in tmp_path.iterdir()) == ["config.json", "model.safetensors", "state.pt"]
    assert ckpt.load_config(tmp_path)["step"] == expected_step


def test_files_from_two_saves_are_refused(tmp_path):
    _save_simple(tmp_path / "a", 1)
    _save_simple(tmp_path / "b", 2)
    (tmp_path / "a" / "model.safetensors").write_bytes((tmp_path / "b" / "model.safetensors").read_bytes())
    with pytest.raises(CheckpointError, match="different saves"):
        ckpt.load_into(GPT(TINY), tmp_path / "a")


# ------------------------------------------------------------------------------ refusing mismatches


def test_checkpoint_of_another_configuration_is_refused_naming_the_field(tmp_path):
    _run(tmp_path, 4)
    bigger = GPTConfig(**{**TINY.to_dict(), "n_embd": 32})
    with pytest.raises(CheckpointError, match=r"model\.n_embd is 16 in the checkpoint but 32 in this run"):
        _run(tmp_path, 8, resume=True, config=bigger)


def test_checkpoint_of_another_vocabulary_is_refused_naming_the_field(tmp_path):
    _run(tmp_path, 4)
    saved = ckpt.load_config(tmp_path)
    with pytest.raises(CheckpointError, match=r"tokenizer\.vocab_size is 20 in the checkpoint but 30"):
        ckpt.check_compatible(tmp_path, saved, tokenizer={"type": "test", "vocab_size": 30})
    # and a model whose shapes differ cannot take the weights even without a config check
    with pytest.raises(CheckpointError, match="shape"):
        ckpt.load_into(GPT(GPTConfig(**{**TINY.to_dict(), "vocab_size": 30})), tmp_path)


# ------------------------------------------------------------------------------ corrupt files


@pytest.mark.parametrize("name, damage", [
    ("model.safetensors", "truncate"), ("model.safetensors", "garbage"),
    ("state.pt", "truncate"), ("state.pt", "garbage"), ("state.pt", "empty"),
    ("config.json", "truncate"), ("config.json", "garbage"),
])
def test_corrupt_or_truncated_files_raise_checkpoint_error(tmp_path, name, damage):
    _save_simple(tmp_path, 1)
    path = tmp_path / name
    data = path.read_bytes()
    path.write_bytes({"truncate": data[: len(data) // 2], "garbage": os.urandom(len(data)), "empty": b""}[damage])
    with pytest.raises(CheckpointError) as info:
        if name == "state.pt":
            ckpt.load_state(tmp_path)
        else:
            ckpt.load_into(GPT(TINY), tmp_path)
    message = str(info.value)
    assert name in message and ("corrupt" in message or "truncated" in message)
    assert info.value.__cause__ is None and info.value.__suppress_context__  # no chained pickle traceback


def test_missing_file_and_missing_directory(tmp_path):
    with pytest.raises(CheckpointError, match="no checkpoint directory"):
        ckpt.load_config(tmp_path / "nope")
    (tmp_path / "run").mkdir()
    with pytest.raises(CheckpointError, match="holds no checkpoint yet"):
        ckpt.load_config(tmp_path / "run")
    (tmp_path / "file.txt").write_text("x")
    with pytest.raises(CheckpointError, match="is a file, not a checkpoint folder"):
        ckpt.load_config(tmp_path / "file.txt")
    _save_simple(tmp_path, 1)
    (tmp_path / "state.pt").unlink()
    with pytest.raises(CheckpointError, match="state.pt is missing"):
        ckpt.load_state(tmp_path)


class _Evil:
    """Unpickling this calls open(marker, "w"): a stand-in for os.system(...)."""

    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return (open, (self.marker, "w"))


@pytest.mark.filterwarnings("ignore:Detected pickle protocol")
@pytest.mark.parametrize("writer", ["torch.save", "pickle.dump"])
def test_state_file_that_runs_code_when_unpickled_is_refused(tmp_path, writer):
    _save_simple(tmp_path, 1)
    marker = tmp_path / "pwned"
    payload = {"step": 1, "optimizer": _Evil(marker)}
    with open(tmp_path / "state.pt", "wb") as f:
        torch.save(payload, f) if writer == "torch.save" else pickle.dump(payload, f)
    with pytest.raises(CheckpointError, match="refused to load"):
        ckpt.load_state(tmp_path)
    assert not marker.exists()
    # The payload is live: a plain unpickle (what weights_only=True prevents) runs it. Shown with
    # pickle alone, so that nothing in the course ever calls torch.load without weights_only=True.
    with open(tmp_path / "live.pkl", "wb") as f:
        pickle.dump(payload, f)
    with open(tmp_path / "live.pkl", "rb") as f:
        pickle.load(f)
    assert marker.exists()


def test_atomic_write_bytes_replaces_whole_file(tmp_path):
    target = tmp_path / "f.json"
    ckpt.atomic_write_bytes(target, b'{"a": 1}')
    ckpt.atomic_write_bytes(target, b'{"a": 2}')
    assert json.loads(target.read_text()) == {"a": 2}
    assert sorted(p.name for p in tmp_path.iterdir()) == ["f.json"]


# ------------------------------------------------------------------------------ concurrent reader


def _writer(directory, saves, ready, seen, wait_at):
    torch.set_num_threads(1)
    tok = CharTokenizer.fit("abcdefghij")
    for k in range(1, saves + 1):
        # every part says which save wrote it: the weights are filled with k, the step is k
        weights = {"w": torch.full((64, 64), float(k)), "b": torch.full((64,), float(k))}
        ckpt.save_checkpoint(directory, weights=weights, config={"step": k}, state={"step": k, "t": torch.tensor(k)},
                             tokenizer=tok)
        ready.set()
        if k in wait_at:
            # a handshake, not a timing guess: the reader must have loaded save k before save k+1
            # starts, so the test sees reads between saves however slow or busy the machine is
            deadline = time.monotonic() + 60
            while seen.value != k:
                if time.monotonic() > deadline:
                    raise TimeoutError(f"the reader never loaded save {k}")
                time.sleep(0.001)


def test_a_reader_during_many_saves_always_gets_one_whole_save(tmp_path):
    """One process saves 60 times while this one loads in a loop: no error on either side, and every
    load is complete and consistent (weights, state, config and tokenizer of one save)."""
    import multiprocessing as mp

    ctx = mp.get_context("fork")
    ready, seen, wait_at = ctx.Event(), ctx.Value("i", 0), (15, 30, 45)
    directory = tmp_path / "run"
    directory.mkdir()
    with pytest.raises(CheckpointError, match="no checkpoint yet"):  # before the first save: one clear line
        ckpt.load_config(directory)
    writer = ctx.Process(target=_writer, args=(directory, 60, ready, seen, wait_at))
    writer.start()
    assert ready.wait(60)
    loads, steps = 0, set()
    while writer.is_alive() or loads == 0:
        snap = ckpt.read_checkpoint(directory, weights=True, state=True, tokenizer=True)
        k = snap["config"]["step"]
        assert snap["state"]["step"] == k and int(snap["state"]["t"]) == k
        assert torch.equal(snap["weights"]["w"], torch.full((64, 64), float(k)))
        assert torch.equal(snap["weights"]["b"], torch.full((64,), float(k)))
        assert snap["tokenizer"].chars == list("abcdefghij")
        loads += 1
        steps.add(k)
        seen.value = k
    writer.join(60)
    assert writer.exitcode == 0  # the writer never failed either
    assert ckpt.load_state(directory)["step"] == 60
    # the reader really ran between saves: it loaded each save the writer waited at
    assert set(wait_at) <= steps and loads >= len(wait_at), (loads, steps)


def test_weights_metadata_read_from_the_bytes_equals_safetensors(tmp_path):
    """The reader takes the metadata from the bytes it read once (a save may rename the file away right
    after): it must be what safetensors' own reader gives."""
    from safetensors import safe_open

    model = GPT(GPTConfig(vocab_size=11, block_size=8, n_layer=1, n_head=2, n_embd=8))
    ckpt.save_checkpoint(tmp_path / "run", weights=model, config={"model": model.config.to_dict()}, state={})
    _, metadata = ckpt.load_weights(tmp_path / "run")
    with safe_open(str(tmp_path / "run" / ckpt.MODEL_FILE), framework="pt") as f:
        assert metadata == f.metadata()
    assert metadata["format"] == ckpt.FORMAT and len(metadata["checkpoint_id"]) == 32
