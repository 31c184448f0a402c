"""The command line end to end: pretrain (files, resume), sample, eval, and one-line errors."""

from __future__ import annotations

import argparse
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
    assert main(common + ["--max-steps", "4", "--stop-at-step", "3"]) == 2  # the folder holds a run: refused
    assert main(common + ["--resume", "--extend-to", "6"]) == 0
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
    assert main(["eval", "--checkpoint", str(out), "--batch-size", "0"]) == 2
    assert "--batch-size must be a positive integer" in _error_line(capsys)
    assert main(["sample", "--checkpoint", str(text_file)]) == 2  # a file, not a folder
    assert "is a file" in _error_line(capsys)
    short = tmp_path / "short.txt"
    short.write_text("abc", encoding="utf-8")
    assert main(["pretrain", "--preset", "tiny-char", "--text", str(short), "--out", str(tmp_path / "s")]) == 2
    assert "too short" in _error_line(capsys)
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
    assert main(["eval", "--checkpoint", str(out), "--split", "test", "--max-batches", "3"]) == 0
    assert capsys.readouterr().out.startswith("test loss ")


# ------------------------------------------------------------------------------ guards and resume


def _tiny(text_file, out, *extra):
    return ["pretrain", "--preset", "tiny-char", "--text", str(text_file), "--out", str(out), "--no-progress", *extra]


def test_out_refuses_an_existing_run_unless_resume_or_overwrite(text_file, tmp_path, capsys):
    out = tmp_path / "run"
    assert main(_tiny(text_file, out, "--max-steps", "2", "--eval-every", "2")) == 0
    before = (out / "model.safetensors").read_bytes()
    capsys.readouterr()
    assert main(_tiny(text_file, out, "--max-steps", "2")) == 2
    err = _error_line(capsys)
    assert "already holds a run" in err and "--resume" in err and "--overwrite" in err
    assert (out / "model.safetensors").read_bytes() == before  # untouched
    assert main(_tiny(text_file, out, "--max-steps", "2", "--resume", "--overwrite")) == 2
    _error_line(capsys)
    assert main(_tiny(text_file, out, "--max-steps", "2", "--seed", "5", "--overwrite")) == 0
    assert load_config(out)["train"]["seed"] == 5 and (out / "model.safetensors").read_bytes() != before


@pytest.mark.parametrize("extra, field", [
    (["--lr", "0.01"], "train.lr is 0.003 in the checkpoint but 0.01"),
    (["--max-steps", "8"], "train.max_steps is 4 in the checkpoint but 8"),
    (["--batch-size", "4"], "train.batch_size is 8 in the checkpoint but 4"),
    (["--set", "train.warmup_steps=1"], "train.warmup_steps is 5 in the checkpoint but 1"),
    (["--dropout", "0.1"], "model.dropout is 0.0 in the checkpoint but 0.1"),
    (["--seed", "3"], "train.seed is 0 in the checkpoint but 3"),
])
def test_resume_refuses_another_run_naming_the_field(text_file, tmp_path, capsys, extra, field):
    out = tmp_path / "run"
    assert main(_tiny(text_file, out, "--max-steps", "4", "--eval-every", "2")) == 0
    capsys.readouterr()
    assert main(_tiny(text_file, out, "--resume", *extra)) == 2
    err = _error_line(capsys)
    assert field in err
    if "max_steps" in field:
        assert "--extend-to" in err
    assert load_config(out)["step"] == 4  # nothing was trained


def test_resume_refuses_a_changed_text_file_and_a_text_the_tokenizer_cannot_encode(text_file, tmp_path, capsys):
    out = tmp_path / "run"
    copy = tmp_path / "copy.txt"
    copy.write_text(text_file.read_text(encoding="utf-8"), encoding="utf-8")
    assert main(_tiny(copy, out, "--max-steps", "2", "--eval-every", "2")) == 0
    copy.write_text(text_file.read_text(encoding="utf-8").replace("question", "questionable"), encoding="utf-8")
    capsys.readouterr()
    assert main(_tiny(copy, out, "--resume")) == 2
    assert "data.sha256 is" in _error_line(capsys)
    assert main(["eval", "--checkpoint", str(out)]) == 2  # its validation part is no longer the run's
    assert "changed since the run was trained" in _error_line(capsys)
    copy.write_text(text_file.read_text(encoding="utf-8") + "\u00e9t\u00e9\n", encoding="utf-8")
    assert main(_tiny(copy, out, "--resume")) == 2
    assert "not in this CharTokenizer" in _error_line(capsys)


def _weights_and_optimizer(out):
    from llm_from_scratch import checkpoint as ckpt

    snap = ckpt.read_checkpoint(out, weights=True, state=True)
    return snap["weights"], snap["state"]["optimizer"], snap["config"]["train"]


def _assert_same_tree(a, b, where="state"):
    if isinstance(a, torch.Tensor):
        assert isinstance(b, torch.Tensor) and a.dtype == b.dtype and torch.equal(a, b), where
    elif isinstance(a, dict):
        assert a.keys() == b.keys(), where
        for k in a:
            _assert_same_tree(a[k], b[k], f"{where}.{k}")
    elif isinstance(a, (list, tuple)):
        assert len(a) == len(b), where
        for i, (x, y) in enumerate(zip(a, b)):
            _assert_same_tree(x, y, f"{where}[{i}]")
    else:
        assert a == b, where


def test_stop_at_step_then_resume_equals_the_uninterrupted_run_bit_for_bit(text_file, tmp_path):
    """Through the command line: stop at step 3 (between two evaluations), resume twice (once with a
    later stop), and the weights and optimizer state at --max-steps equal a straight run's exactly."""
    common = ["--max-steps", "7", "--eval-every", "4", "--dropout", "0.1", "--warmup-steps", "2"]
    assert main(_tiny(text_file, tmp_path / "straight", *common)) == 0
    split = tmp_path / "split"
    assert main(_tiny(text_file, split, *common, "--stop-at-step", "3")) == 0
    assert load_config(split)["step"] == 3
    assert main(_tiny(text_file, split, *common, "--resume", "--stop-at-step", "5")) == 0
    assert load_config(split)["step"] == 5
    assert main(_tiny(text_file, split, *common, "--resume")) == 0
    w1, o1, t1 = _weights_and_optimizer(tmp_path / "straight")
    w2, o2, t2 = _weights_and_optimizer(split)
    _assert_same_tree(w1, w2, "weights")
    _assert_same_tree(o1, o2, "optimizer")
    assert t1 == t2 and t1["lr_decay_steps"] == 7  # the schedule's length was recorded at the start


def test_extend_to_continues_at_the_final_learning_rate(text_file, tmp_path, capsys):
    out = tmp_path / "run"
    assert main(_tiny(text_file, out, "--max-steps", "4", "--eval-every", "2", "--min-lr", "0.0005")) == 0
    assert main(_tiny(text_file, out, "--resume", "--extend-to", "6", "--min-lr", "0.0005")) == 0
    records = [json.loads(line) for line in (out / "history.jsonl").read_text().splitlines()]
    assert [r["step"] for r in records] == [2, 4, 6]
    assert records[-1]["lr"] == pytest.approx(5e-4)  # the cosine ended at step 4; step 6 runs at min_lr
    config = load_config(out)
    assert config["train"]["max_steps"] == 6 and config["train"]["lr_decay_steps"] == 4
    assert main(_tiny(text_file, out, "--resume", "--min-lr", "0.0005")) == 0  # resumes as extended: done already
    capsys.readouterr()
    assert main(_tiny(text_file, out, "--resume", "--extend-to", "3", "--min-lr", "0.0005")) == 2
    assert "must be larger" in _error_line(capsys)


def test_set_reads_literals_and_refuses_unknown_fields(text_file, tmp_path, capsys):
    out = tmp_path / "run"
    assert main(_tiny(text_file, out, "--max-steps", "1", "--set", "train.betas=(0.8, 0.9)",
                      "--set", "model.bias=False", "--weight-decay", "0.05", "--lr", "0.002")) == 0
    config = load_config(out)
    assert config["train"]["betas"] == [0.8, 0.9] and config["model"]["bias"] is False
    assert config["train"]["weight_decay"] == 0.05 and config["train"]["lr"] == 0.002
    capsys.readouterr()
    assert main(_tiny(text_file, tmp_path / "x", "--set", "train.nope=1")) == 2
    err = _error_line(capsys)
    assert "train has no field 'nope'" in err and "batch_size" in err and "max_steps" in err
    assert main(_tiny(text_file, tmp_path / "x", "--set", "dropout")) == 2
    assert "KEY=VALUE" in _error_line(capsys)


def test_keep_best_writes_the_lowest_validation_loss_and_sample_reads_it(text_file, tmp_path, capsys):
    out = tmp_path / "run"
    assert main(_tiny(text_file, out, "--max-steps", "6", "--eval-every", "2", "--keep-best")) == 0
    records = [json.loads(line) for line in (out / "history.jsonl").read_text().splitlines()]
    best = min(records, key=lambda r: r["val_loss"])
    config = load_config(out / "best")
    assert config["step"] == best["step"] and config["val_loss"] == pytest.approx(best["val_loss"])
    capsys.readouterr()
    assert main(["sample", "--checkpoint", str(out / "best"), "--prompt", "To", "--max-new-tokens", "5"]) == 0
    assert capsys.readouterr().out.startswith("To")
    assert main(["eval", "--checkpoint", str(out / "best")]) == 0


# ------------------------------------------------------------------------------ bad input, fuzzed


def _bad_inputs(run, text_file, tmp):
    latin1 = tmp / "latin1.txt"
    latin1.write_bytes("caf\u00e9 na\u00efve\n".encode("latin-1"))
    empty = tmp / "empty.txt"
    empty.write_text("", encoding="utf-8")
    r = str(run)
    return [
        (["eval", "--checkpoint", r, "--batch-size", "-3"], "--batch-size must be a positive integer"),
        (["eval", "--checkpoint", r, "--max-batches", "0"], "--max-batches must be a positive integer"),
        (["eval", "--checkpoint", r, "--split", "test"], "no test part"),
        (["eval", "--checkpoint", r, "--device", "tpu9"], "tpu9"),
        (["sample", "--checkpoint", r, "--max-new-tokens", "-1"], "--max-new-tokens must be >= 0"),
        (["sample", "--checkpoint", r, "--num-samples", "0"], "--num-samples must be a positive integer"),
        (["sample", "--checkpoint", r, "--top-p", "1.5"], "--top-p must be in (0, 1]"),
        (["sample", "--checkpoint", r, "--top-k", "0"], "--top-k must be a positive integer"),
        (["sample", "--checkpoint", r, "--temperature", "-1"], "--temperature must be"),
        (["sample", "--checkpoint", r, "--prompt", ""], "the prompt is empty"),
        (["sample", "--checkpoint", r, "--prompt", "Zq\u2603"], "not in this CharTokenizer"),
        (["sample", "--checkpoint", r, "--prompt-file", str(tmp / "missing.txt")], "no such file"),
        (["sample", "--checkpoint", r, "--prompt-file", str(latin1)], "is not UTF-8 text"),
        (["sample", "--checkpoint", r, "--prompt-file", str(tmp)], "is a folder"),
        (["pretrain", "--preset", "tiny-char", "--lr", "-1", "--out", str(tmp / "a")], "lr must be > 0"),
        (["pretrain", "--preset", "tiny-char", "--weight-decay", "-0.1", "--out", str(tmp / "a")], "weight_decay"),
        (["pretrain", "--preset", "tiny-char", "--warmup-steps", "-2", "--out", str(tmp / "a")], "warmup_steps"),
        (["pretrain", "--preset", "tiny-char", "--dropout", "1.5", "--out", str(tmp / "a")], "dropout"),
        (["pretrain", "--preset", "tiny-char", "--set", "model.nope=1", "--out", str(tmp / "a")], "no field 'nope'"),
        (["pretrain", "--preset", "tiny-char", "--text", str(latin1), "--out", str(tmp / "a")], "not UTF-8"),
        (["pretrain", "--preset", "tiny-char", "--text", str(tmp), "--out", str(tmp / "a")], "is a folder"),
        (["pretrain", "--preset", "tiny-char", "--out", str(text_file)], "is a file"),
        (["pretrain", "--preset", "tiny-char", "--extend-to", "9", "--out", str(tmp / "a")], "--extend-to"),
        (["predict", "--checkpoint", r, "--input", "hello"], "not a fine-tuned model"),
        (["predict", "--checkpoint", r, "--input-file", str(empty)], "the input is empty"),
        (["finetune", "--task", "genre", "--checkpoint", r, "--out", str(tmp / "f"), "--steps", "0"],
         "--steps must be a positive integer"),
        (["eval", "--checkpoint", str(tmp)], "holds no checkpoint yet"),
        (["sample"], "--checkpoint"),
    ]


def test_every_bad_input_is_one_line_and_exit_2(run_dir, text_file, tmp_path, capsys):
    out, _ = run_dir
    for argv, expected in _bad_inputs(out, text_file, tmp_path):
        capsys.readouterr()
        assert main(argv) == 2, argv
        err = _error_line(capsys)
        assert expected in err, (argv, err)


def test_help_lists_every_command_and_every_flag_with_a_help_text(capsys):
    from llm_from_scratch.cli import build_parser

    with pytest.raises(SystemExit) as e:
        main(["--help"])
    assert e.value.code == 0
    text = capsys.readouterr().out
    for command in ("pretrain", "sample", "eval", "finetune", "predict", "demo", "presets"):
        assert command in text
    assert "Exit status: 0 success; 1" in " ".join(text.split())
    parser = build_parser()
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    for name, p in sub.choices.items():
        formatter = p._get_formatter()
        for action in p._actions:
            if action.option_strings and action.dest != "help":
                assert action.help, f"{name} {action.option_strings} has no help text"
                if action.default not in (None, False, [], argparse.SUPPRESS) and not action.required:
                    shown = formatter._get_help_string(action) % {"default": action.default}
                    assert f"default: {action.default}" in shown or "default" in action.help, (name, shown)
        assert "--help" in p.format_help()


# ------------------------------------------------------------------------------ sampling a padded vocabulary


def test_sample_never_emits_the_padding_ids_of_a_padded_vocabulary(tmp_path, capsys):
    """A vocabulary padded to a multiple of 64 has rows no token owns. Make them by far the most likely
    (ln_f outputs a constant b; the padding rows of the tied embedding point along b): sampling
    must still pick real tokens only."""
    from llm_from_scratch import checkpoint as ckpt
    from llm_from_scratch.gpt import GPT, GPTConfig
    from llm_from_scratch.tokenizer import CharTokenizer

    tok = CharTokenizer.fit("abcdefgh \n")
    config = GPTConfig(vocab_size=64, block_size=16, n_layer=1, n_head=2, n_embd=16)
    torch.manual_seed(0)
    model = GPT(config)
    with torch.no_grad():
        model.transformer.ln_f.weight.zero_()
        model.transformer.ln_f.bias.copy_(torch.linspace(-1, 1, 16))
        model.transformer.wte.weight[tok.vocab_size:] = 10 * torch.linspace(-1, 1, 16)
    from llm_from_scratch.generate import generate

    idx = torch.tensor([tok.encode("ab")])
    assert (generate(model, idx, 20, temperature=1.0) >= tok.vocab_size).any()  # unmasked: padding wins
    ckpt.save_checkpoint(tmp_path, weights=model, tokenizer=tok, state={"step": 0},
                         config={"model": config.to_dict(), "tokenizer": {"type": "char"}})
    assert main(["sample", "--checkpoint", str(tmp_path), "--prompt", "ab", "--max-new-tokens", "30",
                 "--temperature", "1.0", "--num-samples", "3", "--top-p", "0.9"]) == 0
    out = capsys.readouterr().out
    assert out.count("--- sample") == 3
    samples = [chunk.split("\n", 1)[1] for chunk in out.split("--- sample")[1:]]
    assert all(s.startswith("ab") and set(s) <= set("abcdefgh \n-") for s in samples)
