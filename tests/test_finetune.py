"""Heads, pooling with padding, freezing, methods, losses against torch, the fine-tuning loop and the CLI."""

import copy
import json

import pytest
import torch
import torch.nn.functional as F

from llm_from_scratch import finetune as FT
from llm_from_scratch.bert import BertConfig, BertModel
from llm_from_scratch.gpt import GPT, GPTConfig
from llm_from_scratch.lora import LoRALinear
from llm_from_scratch.data import corpus_text
from llm_from_scratch.tasks import TAG_NAMES, TaggedExample, Task, TextExample
from llm_from_scratch.tokenizer import CharTokenizer


def tiny_gpt(seed=0, vocab=30, block=24, n_layer=2):
    torch.manual_seed(seed)
    return GPT(GPTConfig(vocab_size=vocab, block_size=block, n_layer=n_layer, n_head=2, n_embd=16, dropout=0.0))


def tiny_bert(seed=0):
    torch.manual_seed(seed)
    return BertModel(BertConfig(vocab_size=30, hidden_size=16, num_hidden_layers=2, num_attention_heads=2,
                                intermediate_size=32, max_position_embeddings=24, hidden_dropout_prob=0.0,
                                attention_probs_dropout_prob=0.0))


# ---------------------------------------------------------------------------- pooling and padding


def test_last_token_pooling_ignores_right_padding():
    gpt = tiny_gpt().eval()
    clf = FT.SequenceClassifier(gpt, 3).eval()
    a, b = torch.randint(1, 30, (5,)), torch.randint(1, 30, (8,))
    ids, mask = FT.pad([a.tolist(), b.tolist()], pad_value=0)
    batched, _ = clf(ids, mask)
    # each text alone, no padding at all: the reference
    alone = torch.cat([clf(a[None])[0], clf(b[None])[0]])
    torch.testing.assert_close(batched, alone, atol=1e-5, rtol=1e-5)
    # and it is the hidden state of the last real token, read from the backbone directly
    h = gpt.forward_hidden(ids)
    torch.testing.assert_close(FT.pool_hidden(h, mask, "last"), torch.stack([h[0, 4], h[1, 7]]))
    # changing what sits in the pads changes nothing
    ids2 = ids.clone()
    ids2[0, 5:] = 7
    torch.testing.assert_close(clf(ids2, mask)[0], batched, atol=1e-5, rtol=1e-5)


def test_pooling_by_hand_and_errors():
    h = torch.arange(2 * 3 * 2, dtype=torch.float).view(2, 3, 2)
    mask = torch.tensor([[1, 1, 0], [1, 1, 1]])
    assert FT.pool_hidden(h, mask, "cls").tolist() == [[0, 1], [6, 7]]
    assert FT.pool_hidden(h, mask, "last").tolist() == [[2, 3], [10, 11]]
    assert FT.pool_hidden(h, mask, "mean").tolist() == [[1, 2], [8, 9]]
    with pytest.raises(ValueError, match="right-padded"):
        FT.pool_hidden(h, torch.tensor([[1, 0, 1], [1, 1, 1]]), "last")
    with pytest.raises(ValueError, match="pooling must be one of"):
        FT.pool_hidden(h, mask, "max")
    with pytest.raises(ValueError, match="use 'last'"):
        FT.SequenceClassifier(tiny_gpt(), 2, pooling="cls")


def test_bert_cls_and_mean_pooling_with_padding():
    bert = tiny_bert().eval()
    a, b = torch.randint(1, 30, (4,)), torch.randint(1, 30, (7,))
    ids, mask = FT.pad([a.tolist(), b.tolist()], pad_value=0)
    for pooling in ("cls", "mean"):
        clf = FT.SequenceClassifier(bert, 2, pooling=pooling).eval()
        assert clf.pooling == pooling
        torch.testing.assert_close(clf(ids, mask)[0], torch.cat([clf(a[None])[0], clf(b[None])[0]]),
                                   atol=1e-5, rtol=1e-5)
    assert FT.SequenceClassifier(bert, 2).pooling == "cls"


# ---------------------------------------------------------------------------- losses of the heads


def test_classifier_loss_is_cross_entropy():
    clf = FT.SequenceClassifier(tiny_gpt(), 3)
    ids = torch.randint(0, 30, (4, 6))
    y = torch.tensor([0, 2, 1, 2])
    logits, loss = clf(ids, labels=y)
    assert logits.shape == (4, 3)
    # the reference path: the backbone's last hidden state (no padding: the last token), the linear head,
    # then torch's cross entropy; none of it reuses the classifier's own output
    with torch.no_grad():
        ref_logits = clf.head(clf.backbone.forward_hidden(ids)[:, -1])
    torch.testing.assert_close(logits, ref_logits)
    torch.testing.assert_close(loss, F.cross_entropy(ref_logits, y))
    assert clf(ids)[1] is None


def test_regressor_loss_and_scale():
    reg = FT.SequenceRegressor(tiny_gpt(), target_mean=1600.0, target_std=5.0)
    ids = torch.randint(0, 30, (3, 6))
    pred, _ = reg(ids)
    torch.testing.assert_close(pred, torch.full((3,), 1600.0))  # zero-initialised bias: starts at the mean
    with torch.no_grad():
        reg.head.weight.normal_()
    y = torch.tensor([1590.0, 1600.0, 1612.0])
    pred, loss = reg(ids, labels=y)
    # the reference: the head on the backbone's last hidden state, in standardised units, then torch's MSE
    with torch.no_grad():
        z = reg.head(reg.backbone.forward_hidden(ids)[:, -1]).squeeze(-1)
    torch.testing.assert_close(pred, 1600.0 + 5.0 * z)
    torch.testing.assert_close(loss, F.mse_loss(z, (y - 1600) / 5), rtol=1e-4, atol=1e-4)


def test_token_tagger_and_crf_tagger():
    gpt = tiny_gpt()
    ids = torch.randint(0, 30, (2, 10))
    word_index = torch.tensor([[1, 3, 6, 9], [2, 4, 0, 0]])
    word_mask = torch.tensor([[1, 1, 1, 1], [1, 1, 0, 0]]).bool()
    labels = torch.tensor([[0, 1, 2, 0], [3, 4, -100, -100]])
    tagger = FT.TokenTagger(gpt, 5)
    e, loss = tagger(ids, labels=labels, word_index=word_index, word_mask=word_mask)
    assert e.shape == (2, 4, 5)
    h = gpt.forward_hidden(ids)
    torch.testing.assert_close(e[0, 2], tagger.head(h[0, 6]))  # word 2 of sentence 0 is token 6
    # the reference: each word's emissions read by hand at its token, torch's cross entropy over the real words
    words = [(0, 1), (0, 3), (0, 6), (0, 9), (1, 2), (1, 4)]
    ref_e = torch.stack([tagger.head(h[b, t]) for b, t in words])
    ref_y = torch.tensor([0, 1, 2, 0, 3, 4])
    torch.testing.assert_close(loss, F.cross_entropy(ref_e, ref_y))
    preds = tagger.predict(ids, word_index=word_index, word_mask=word_mask)
    assert [len(p) for p in preds] == [4, 2]

    crf_tagger = FT.CRFTagger(copy.deepcopy(gpt), TAG_NAMES)
    e, loss = crf_tagger(ids, labels=labels, word_index=word_index, word_mask=word_mask)
    # brute force: -log P(gold) = log Σ_valid exp score(path) - score(gold), over every BIO-valid path of each
    # sentence, averaged over the 2 sentences (the CRF's own nll is not used)
    from itertools import product

    from llm_from_scratch.crf import bio_violations

    crf = crf_tagger.crf

    def score(row, path):
        s = crf.start_transitions[path[0]] + row[0, path[0]] + crf.end_transitions[path[-1]]
        return s + sum(crf.transitions[a, b] + row[t + 1, b] for t, (a, b) in enumerate(zip(path, path[1:])))

    nlls = []
    for b, n in enumerate(word_mask.sum(1).tolist()):
        row = e[b, :n].detach()
        valid = [p for p in product(range(5), repeat=n) if bio_violations(list(p), TAG_NAMES) == 0]
        log_z = torch.logsumexp(torch.stack([score(row, p) for p in valid]), 0)
        nlls.append(log_z - score(row, labels[b, :n].tolist()))
    torch.testing.assert_close(loss.detach(), torch.stack(nlls).mean(), rtol=1e-5, atol=1e-5)
    paths = crf_tagger.predict(ids, word_index=word_index, word_mask=word_mask)
    assert [len(p) for p in paths] == [4, 2]
    assert all(bio_violations(p, TAG_NAMES) == 0 for p in paths)


# ---------------------------------------------------------------------------- freezing and methods


def test_tagging_metrics_count_invalid_positions_and_sentences():
    gold = [["B-PER", "I-PER", "O"], ["B-LOC", "O", "O"], ["O", "O"]]
    pred = [["B-PER", "I-PER", "O"],  # right, valid
            ["I-LOC", "O", "I-PER"],  # two orphan I- tags in one sentence
            ["O", "I-LOC"]]  # one
    m = FT.tagging_metrics(gold, pred, TAG_NAMES)
    assert (m["bio_violations"], m["invalid_sequences"]) == (3, 2)
    # by hand: gold spans PER(0,2), LOC(0,1); predicted PER(0,2), LOC(0,1), PER(2,3), LOC(1,2) (CoNLL reads
    # an orphan I-X as a start): 2 correct of 4 predicted, 2 of 2 gold
    assert (m["precision"], m["recall"]) == (0.5, 1.0) and m["f1"] == pytest.approx(2 / 3)


def test_freeze_unfreeze_last_and_count():
    gpt = tiny_gpt(n_layer=3)
    total = sum(p.numel() for p in gpt.parameters())
    assert FT.count_trainable_parameters(gpt) == total == gpt.num_parameters()
    FT.freeze(gpt)
    assert FT.count_trainable_parameters(gpt) == 0
    FT.unfreeze_last(gpt, 1)
    trainable = {n for n, p in gpt.named_parameters() if p.requires_grad}
    assert trainable == {n for n, _ in gpt.named_parameters() if n.startswith(("transformer.h.2.", "transformer.ln_f."))}
    block = sum(p.numel() for p in gpt.transformer.h[2].parameters())
    ln_f = sum(p.numel() for p in gpt.transformer.ln_f.parameters())
    assert FT.count_trainable_parameters(gpt) == block + ln_f
    with pytest.raises(ValueError, match=r"n_layers must be an integer in \[0, 3\]"):
        FT.unfreeze_last(gpt, 4)


@pytest.mark.parametrize("method", FT.METHODS)
def test_setup_method_trains_what_it_says(method):
    clf = FT.setup_method(FT.SequenceClassifier(tiny_gpt(), 3), method, n_layers=1, lora_r=2)
    head = {"head.weight", "head.bias"}
    trainable = {n for n, p in clf.named_parameters() if p.requires_grad}
    assert head <= trainable
    if method == "full":
        assert trainable == {n for n, _ in clf.named_parameters()}
    elif method == "frozen":
        assert trainable == head
    elif method == "last-n":
        assert trainable - head == {n for n, _ in clf.named_parameters()
                                    if n.startswith(("backbone.transformer.h.1.", "backbone.transformer.ln_f."))}
    else:
        assert all(n.endswith(("lora_A", "lora_B")) for n in trainable - head)
        assert sum(isinstance(m, LoRALinear) for m in clf.modules()) == 8
    # one step of training changes exactly the trainable parameters
    before = {n: p.detach().clone() for n, p in clf.named_parameters()}
    opt = torch.optim.SGD([p for p in clf.parameters() if p.requires_grad], lr=0.5)
    ids = torch.randint(0, 30, (4, 6))
    if method == "lora":  # B = 0 at the start, so A gets no gradient in step 1: take two steps
        for _ in range(2):
            opt.zero_grad()
            clf(ids, labels=torch.tensor([0, 1, 2, 0]))[1].backward()
            opt.step()
    else:
        clf(ids, labels=torch.tensor([0, 1, 2, 0]))[1].backward()
        opt.step()
    changed = {n for n, p in clf.named_parameters() if not torch.equal(p, before[n])}
    assert changed <= trainable
    assert "head.weight" in changed


def test_frozen_on_a_bare_lm_is_an_error():
    with pytest.raises(ValueError, match="trains only a task head"):
        FT.setup_method(tiny_gpt(), "frozen")
    with pytest.raises(ValueError, match="method must be one of"):
        FT.setup_method(tiny_gpt(), "half")


# ---------------------------------------------------------------------------- encoding


def test_encode_words_positions():
    tok = CharTokenizer.fit("abc ABC.")
    ids, pos = FT.encode_words(tok, ["ab", "C", "."], max_len=20)
    assert tok.decode(ids) == "ab C ."
    assert pos == [1, 3, 5]  # the last character of each word
    _, first = FT.encode_words(tok, ["ab", "C", "."], max_len=20, word_position="first")
    assert first == [0, 2, 4]  # the first token of each word (the space before a word belongs to it)
    ids, pos = FT.encode_words(tok, ["ab", "C", "."], max_len=4)
    assert tok.decode(ids) == "ab C" and len(pos) == 2
    # a character the tokenizer does not know is an error that names it (never dropped silently)
    with pytest.raises(ValueError, match=r"cannot encode 2 character\(s\) of this text: '\?Z'"):
        FT.safe_encode(tok, "a?bZ")
    with pytest.raises(ValueError, match="cannot encode"):
        FT.encode_examples([TextExample("ab?", 0)], tok, "classification", max_len=8)


def test_encoded_examples_collate():
    tok = CharTokenizer.fit("abcdefgh ")
    ex = [TaggedExample(("ab", "c"), ("B-PER", "I-PER")), TaggedExample(("d",), ("O",))]
    data = FT.encode_examples(ex, tok, "tagging", max_len=16, label_names=TAG_NAMES)
    batch = data.collate([0, 1])
    assert batch["input_ids"].shape == (2, 4)
    assert batch["word_index"].tolist() == [[1, 3], [0, 0]]
    assert batch["labels"].tolist() == [[1, 2], [0, -100]]
    assert batch["word_mask"].tolist() == [[True, True], [True, False]]
    with pytest.raises(ValueError, match="not in label_names"):
        FT.encode_examples([TaggedExample(("a",), ("B-ORG",))], tok, "tagging", 16, TAG_NAMES)


# ---------------------------------------------------------------------------- the loop on a toy task


def _toy_task():
    """Texts of a's (class 0) or b's (class 1): any working head learns it in a few steps."""
    import random

    rng = random.Random(0)

    def ex(n):
        out = []
        for _ in range(n):
            y = rng.randint(0, 1)
            out.append(TextExample(("a" if y == 0 else "b") * rng.randint(3, 10), y))
        return out

    return Task("toy", "classification", ex(64), ex(8), ex(32), ("a", "b"))


def test_finetune_task_learns_a_toy_task():
    task = _toy_task()
    tok = CharTokenizer.fit("ab")
    res = FT.finetune_task(task, tiny_gpt(vocab=2), tok, FT.FinetuneConfig(method="full", steps=40, batch_size=16,
                                                                            lr=3e-3, warmup_steps=2, dropout=0.0))
    assert res.baseline["accuracy"] <= 0.7
    assert res.metrics["accuracy"] == 1.0
    assert res.trainable_parameters == sum(p.numel() for p in res.model.parameters())  # "full": everything trains
    # keep_best: the validation plays were scored 5 times (every 8 steps) while training
    assert [r["step"] for r in res.history] == [8, 16, 24, 32, 40]
    assert all(0 <= r["val_macro_f1"] <= 1 for r in res.history)


def test_keep_best_restores_the_best_validation_weights():
    task = _toy_task()
    tok = CharTokenizer.fit("ab")
    cfg = FT.FinetuneConfig(method="full", steps=10, batch_size=16, lr=3e-3, warmup_steps=2, dropout=0.0, evals=10)
    res = FT.finetune_task(task, tiny_gpt(vocab=2), tok, cfg)
    val = FT.encode_examples(task.validation, tok, "classification", 24)
    best_seen = max(r["val_macro_f1"] for r in res.history)
    final = FT.task_metrics(task, val, FT.predict(res.model, val))["macro_f1"]
    assert final == pytest.approx(best_seen)  # the model returned is the one that scored best


def test_build_model_pooling_mean_on_a_gpt_unless_asked():
    """The fine-tuning pipeline pools a GPT by the mean over real tokens (config.pooling=None), BERT by [CLS];
    the mean is checked by hand, with right padding, on the built classifier."""
    task = _toy_task()
    gpt = tiny_gpt(vocab=2)
    clf = FT.build_model(task, gpt, FT.FinetuneConfig(dropout=0.0)).eval()
    assert clf.pooling == "mean"
    assert FT.build_model(task, gpt, FT.FinetuneConfig(pooling="last")).pooling == "last"
    assert FT.build_model(task, tiny_bert(), FT.FinetuneConfig()).pooling == "cls"
    reg_task = Task("toy-reg", "regression", [TextExample("ab", 1.0), TextExample("ba", 3.0)], [], [], ())
    assert FT.build_model(reg_task, gpt, FT.FinetuneConfig()).pooling == "mean"
    ids = torch.tensor([[0, 1, 1, 0, 0], [1, 0, 1, 1, 0]])
    mask = torch.tensor([[1, 1, 1, 0, 0], [1, 1, 1, 1, 1]])
    with torch.no_grad():
        logits, _ = clf(ids, mask)
        h = gpt.forward_hidden(ids)
        by_hand = torch.stack([h[0, :3].mean(0), h[1].mean(0)])  # padded positions 3, 4 of row 0 left out
        assert torch.allclose(logits, clf.head(by_hand), atol=1e-5)


def test_cli_end_to_end_reload_and_predict(tmp_path, shakespeare, capsys):
    """`finetune` on a checkpoint written like `pretrain` prints metrics beside the baseline and writes a
    folder that `load_finetuned` reads back to the same predictions, and that `predict` uses."""
    from llm_from_scratch import checkpoint as ckpt
    from llm_from_scratch.__main__ import main
    from llm_from_scratch.tasks import genre_task

    tok = CharTokenizer.fit(corpus_text(shakespeare))
    gpt = tiny_gpt(vocab=tok.vocab_size, block=32, n_layer=1)
    ckpt.save_checkpoint(tmp_path / "pre", weights=gpt, tokenizer=tok, state={"step": 0},
                         config={"model": gpt.config.to_dict(), "tokenizer": {"type": "char"}})
    args = ["finetune", "--task", "genre", "--checkpoint", str(tmp_path / "pre"), "--method", "lora",
            "--out", str(tmp_path / "ft"), "--steps", "3", "--batch-size", "4", "--max-per-work", "2",
            "--max-len", "32", "--no-progress"]
    assert main(args) == 0
    out = capsys.readouterr().out
    assert "majority class" in out and "accuracy" in out
    summary = json.loads((tmp_path / "ft" / "metrics.json").read_text())
    assert summary["method"] == "lora" and 0 <= summary["metrics"]["accuracy"] <= 1
    weights, _ = ckpt.load_weights(tmp_path / "ft")
    assert not any("lora" in k for k in weights)  # merged before saving
    assert "head.weight" in weights

    model, tok2, info = FT.load_finetuned(tmp_path / "ft")
    assert info["task"] == "genre" and info["method"] == "lora" and info["labels"] == ["comedy", "history", "tragedy"]
    assert tok2.chars == tok.chars
    # the reloaded model predicts what the metrics were computed from: same test accuracy
    task = genre_task(shakespeare, max_per_work=2)
    data = FT.encode_examples(task.test, tok2, "classification", max_len=32)
    preds = FT.predict(model, data)
    assert FT.task_metrics(task, data, preds)["accuracy"] == pytest.approx(summary["metrics"]["accuracy"])
    texts = [e.text for e in task.test[:3]]
    by_api = FT.predict_texts(model, tok2, info, texts)
    assert [info["labels"].index(p["label"]) for p in by_api] == preds[:3]

    (tmp_path / "in.txt").write_text("\n".join(t.replace("\n", " ") for t in texts) + "\n", encoding="utf-8")
    assert main(["predict", "--checkpoint", str(tmp_path / "ft"), "--input-file", str(tmp_path / "in.txt")]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert len(lines) == 3
    expected = FT.predict_texts(model, tok2, info, [t.replace("\n", " ") for t in texts])
    for line, p in zip(lines, expected):
        assert line.startswith(f"{p['label']} ({p['probability']:.1%})")
    # sample on a classifier folder: one line that names the command that fits, exit 2
    assert main(["sample", "--checkpoint", str(tmp_path / "ft")]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "predict" in err and "classification" in err


def test_poems_finetune_folder_works_with_sample_eval_and_load_finetuned(tmp_path, shakespeare, capsys):
    """The poems task fine-tunes the GPT itself: its folder is a language model that `sample` and
    `eval` read; `predict` says in one line that it predicts no label."""
    from llm_from_scratch import checkpoint as ckpt
    from llm_from_scratch.__main__ import main

    tok = CharTokenizer.fit(corpus_text(shakespeare))
    gpt = tiny_gpt(vocab=tok.vocab_size, block=32, n_layer=1)
    ckpt.save_checkpoint(tmp_path / "pre", weights=gpt, tokenizer=tok, state={"step": 0},
                         config={"model": gpt.config.to_dict(), "tokenizer": {"type": "char"}})
    assert main(["finetune", "--task", "poems", "--checkpoint", str(tmp_path / "pre"), "--out", str(tmp_path / "ft"),
                 "--steps", "2", "--batch-size", "2", "--max-len", "32", "--no-progress"]) == 0
    model, tok2, info = FT.load_finetuned(tmp_path / "ft")
    assert info["task"] == "poems" and info["kind"] == "language_modeling" and isinstance(model, GPT)
    capsys.readouterr()
    assert main(["sample", "--checkpoint", str(tmp_path / "ft"), "--prompt", "Shall I", "--max-new-tokens", "8"]) == 0
    assert capsys.readouterr().out.startswith("Shall I")
    assert main(["eval", "--checkpoint", str(tmp_path / "ft"), "--max-batches", "2"]) == 0
    assert "validation loss" in capsys.readouterr().out
    assert main(["predict", "--checkpoint", str(tmp_path / "ft"), "--input", "x"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "sample" in err


@pytest.mark.parametrize("kind", ["regression", "tagging-crf", "tagging-softmax"])
def test_save_and_load_finetuned_regressor_and_taggers_predict_the_same(tmp_path, kind, capsys):
    """A regressor (its target mean and std) and both taggers (tag names, CRF transitions) come back
    from their folder predicting exactly what they predicted before saving; `predict` prints them."""
    from llm_from_scratch.__main__ import main

    tok = CharTokenizer.fit("abcdefgh ABCDEFGH.,")
    gpt = tiny_gpt(vocab=tok.vocab_size, block=24, n_layer=1)
    if kind == "regression":
        task = Task("year", "regression", [TextExample("abc", 1600.0), TextExample("def", 1610.0)], [], [])
        model = FT.SequenceRegressor(gpt, pooling="mean", target_mean=1605.0, target_std=4.0)
        torch.nn.init.normal_(model.head.weight, std=0.5)
    else:
        task = Task("names", "tagging", [TaggedExample(("Abc", "de"), ("B-PER", "O"))], [], [], TAG_NAMES)
        model = FT.CRFTagger(gpt, TAG_NAMES) if kind == "tagging-crf" else FT.TokenTagger(gpt, len(TAG_NAMES))
        torch.nn.init.normal_(model.head.weight, std=0.5)
    model.eval()
    config = FT.FinetuneConfig(max_len=20)
    info = FT.head_info(task, model, config)
    texts = ["Abc def gh.", "H ab, cd"]
    before = FT.predict_texts(model, tok, info, texts)
    FT.save_finetuned(tmp_path / "ft", model, tok, info)
    loaded, tok2, info2 = FT.load_finetuned(tmp_path / "ft")
    assert info2["task"] == task.name and info2["kind"] == task.kind
    after = FT.predict_texts(loaded, tok2, info2, texts)
    assert after == before
    if kind == "regression":
        assert info2["target_mean"] == 1605.0 and info2["target_std"] == 4.0
        assert all(isinstance(p["value"], float) for p in after)
    else:
        assert info2["tag_names"] == list(TAG_NAMES) and info2["crf"] == (kind == "tagging-crf")
        assert after[0]["words"] == ["Abc", "def", "gh", "."]
    capsys.readouterr()
    assert main(["predict", "--checkpoint", str(tmp_path / "ft"), "--input", texts[0]]) == 0
    line = capsys.readouterr().out.strip()
    if kind == "regression":
        assert line == f"{before[0]['value']:.1f}\t{texts[0]}"
    else:
        expected = " ".join(w if t == "O" else f"{w}/{t}" for w, t in zip(before[0]["words"], before[0]["tags"]))
        assert line == expected
