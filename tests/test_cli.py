"""The command line end to end: pretrain (files, resume), sample, eval, and one-line errors."""

from __future__ import annotations

import json
import math
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from llm_from_scratch.__main__ import main
from llm_from_scratch.checkpoint import load_config

ROOT = Path(__file__).resolve().parents[1]
LINES = [
    "To be, or not to be, that is the question:",
    "Whether 'tis nobler in the mind to suffer",
    "The slings and arrows of outrageous fortune,",
    "Or to take arms against a sea of troubles",
    "And by opposing end them. To die, to sleep;",
]




@pytest.fixture(scope="module")
def text_file(tmp_path_factory):
    path = tmp_path_factory.mktemp("text") / "hamlet.txt"
    path.write_text("\n".join(LINES * 12) + "\n", encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def run_dir(text_file, tmp_path_factory):
    """A tiny-char run of 4 steps, then resumed to 6."""
    out = tmp_path_factory.mktemp("run") / "tiny"
    common = ["pretrain", "--preset", "tiny-char", "--text", str(text_file), "--out", str(out), "--eval-every", "2",
              "--no-progress"]
    assert main(common + ["--max-steps", "4"]) == 0
    first = (out / "history.jsonl").read_text().splitlines()
    assert main(common + ["--max-steps", "6", "--resume"]) == 0
    return out, first


def _error_line(capsys) -> str:
    err = capsys.readouterr().err.strip()
    assert "Traceback" not in err
    assert len(err.splitlines()) == 1, err
    assert err.startswith("error: ")
    return err


def test_pretrain_writes_the_files_and_resume_continues(run_dir):
    out, first = run_dir
    for name in ("model.safetensors", "state.pt", "config.json", "history.jsonl", "loss.png"):
        assert (out / name).is_file(), name
    records = [json.loads(line) for line in (out / "history.jsonl").read_text().splitlines()]
    assert [r["step"] for r in records] == [2, 4, 6]
    assert (out / "history.jsonl").read_text().splitlines()[:2] == first  # the resumed run kept what was there
    for r in records:
        assert {"step", "train_loss", "val_loss", "lr", "tokens_per_s"} <= set(r)
    config = load_config(out)
    assert config["step"] == 6 and config["preset"] == "tiny-char"
    assert config["model"]["n_layer"] == 2 and config["tokenizer"]["type"] == "char"
    assert config["tokenizer"]["vocab_size"] == len(set("\n".join(LINES) + "\n"))


def test_sample_decodes_text_from_the_checkpoint(run_dir, capsys):
    out, _ = run_dir
    assert main(["sample", "--checkpoint", str(out), "--prompt", "To be", "--max-new-tokens", "40",
                 "--temperature", "1.0", "--top-k", "5"]) == 0
    text = capsys.readouterr().out.rstrip("\n")
    assert text.startswith("To be") and len(text) == len("To be") + 40  # one character per token
    assert set(text) <= set("\n".join(LINES) + "\n")
    # reproducible for a seed
    assert main(["sample", "--checkpoint", str(out), "--prompt", "To be", "--max-new-tokens", "40",
                 "--temperature", "1.0", "--top-k", "5"]) == 0
    assert capsys.readouterr().out.rstrip("\n") == text


def test_eval_prints_loss_and_perplexity(run_dir, capsys):
    out, _ = run_dir
    assert main(["eval", "--checkpoint", str(out)]) == 0
    line = capsys.readouterr().out
    loss = float(re.search(r"validation loss ([\d.]+)", line).group(1))
    ppl = float(re.search(r"perplexity ([\d.]+)", line).group(1))
    assert ppl == pytest.approx(math.exp(loss), rel=1e-3)
    # the same validation text the run evaluated on (all of it fits the run's evaluation batches)
    last = json.loads((out / "history.jsonl").read_text().splitlines()[-1])
    assert loss == pytest.approx(last["val_loss"], abs=1e-4)


def test_errors_are_one_line_with_exit_code_2(run_dir, text_file, tmp_path, capsys):
    out, _ = run_dir
    assert main(["pretrain", "--preset", "no-such-preset"]) == 2
    err = _error_line(capsys)
    assert "unknown preset 'no-such-preset'" in err and "shakespeare-char-cpu" in err  # lists the known ones
    assert main(["sample", "--checkpoint", str(tmp_path / "missing"), "--prompt", "x"]) == 2
    assert "no such folder" in _error_line(capsys)
    assert main(["pretrain", "--preset", "tiny-char", "--text", str(text_file), "--out", str(tmp_path / "new"),
                 "--resume"]) == 2
    assert "nothing to resume" in _error_line(capsys)
    assert main(["pretrain", "--preset", "tiny-char", "--max-steps", "0"]) == 2
    assert "--max-steps must be a positive integer" in _error_line(capsys)
    assert main(["pretrain", "--preset", "tiny-char", "--text", str(tmp_path / "nope.txt")]) == 2
    assert "no such file" in _error_line(capsys)
    assert main(["sample", "--checkpoint", str(out), "--prompt", "\u4e2d"]) == 2  # not in the vocabulary
    assert "not in this CharTokenizer" in _error_line(capsys)
    assert main([]) == 2
    assert "no command" in _error_line(capsys)
    assert main(["pretrain", "--bogus"]) == 2
    _error_line(capsys)
    # a corrupt checkpoint
    broken = tmp_path / "broken"
    broken.mkdir()
    for f in out.iterdir():
        if f.is_file():
            (broken / f.name).write_bytes(f.read_bytes())
    (broken / "tokenizer").mkdir()
    (broken / "model.safetensors").write_bytes(b"\x00" * 10)
    assert main(["eval", "--checkpoint", str(broken)]) == 2
    assert "corrupt" in _error_line(capsys)


def test_python_dash_m_entry_point_exits_2_without_traceback(tmp_path):
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.run([sys.executable, "-m", "llm_from_scratch", "eval", "--checkpoint", str(tmp_path / "x")],
                          capture_output=True, text=True, env=env, timeout=120)
    assert proc.returncode == 2
    assert "Traceback" not in proc.stderr and proc.stderr.startswith("error: --checkpoint ") and "no such folder" in proc.stderr


def test_pretrain_on_the_shakespeare_corpus(shakespeare, tmp_path, capsys):
    """The demo's preset on the real corpus, for 2 steps: split by work, a character vocabulary."""
    out = tmp_path / "char"
    assert main(["pretrain", "--preset", "shakespeare-char-cpu", "--out", str(out), "--max-steps", "2",
                 "--no-progress"]) == 0
    config = load_config(out)
    text = "".join(w.text for w in shakespeare)
    assert config["tokenizer"]["vocab_size"] == len(set(text))
    assert config["data"]["kind"] == "shakespeare" and config["model"]["block_size"] == 64
    from llm_from_scratch.data import split_works

    train_chars = sum(len(w.text) for w in split_works(shakespeare)["train"])
    assert config["data"]["train_tokens"] == train_chars  # one token per character, works concatenated
    record = json.loads((out / "history.jsonl").read_text())
    # two steps from a uniform start (log V nats): somewhat below it, nowhere near a trained model
    assert record["step"] == 2 and 3.0 < record["val_loss"] < math.log(config["model"]["vocab_size"]) + 0.05
    assert "validation loss" in capsys.readouterr().out
