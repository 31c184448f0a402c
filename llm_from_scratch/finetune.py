"""Fine-tuning a pretrained backbone: freezing, LoRA, the fine-tuning procedure, and loading the result.

The task heads (``SequenceClassifier``, ``SequenceRegressor``, ``TokenTagger``, ``CRFTagger``) and
pooling live in :mod:`llm_from_scratch.heads` (re-exported here). This module chooses what trains,
encodes a task's examples, trains with the course's loop, and scores the result beside a baseline.

Which parameters train (``setup_method``):

=========  ====================================================  =====================================
method     trains                                                 cost
=========  ====================================================  =====================================
full       everything                                             all gradients and Adam states
frozen     the head only (the backbone is a fixed feature         cheapest; the features must already
           extractor)                                             carry the task
last-n     the head + the last n blocks (+ the final LayerNorm)   in between
lora       the head + low-rank updates of every attention and     r·(in+out) per layer (``lora.py``)
           MLP matrix
=========  ====================================================  =====================================

Saving and loading: ``finetune --out DIR`` (``python -m llm_from_scratch finetune``) writes a
checkpoint folder (``model.safetensors``, ``config.json``, ``tokenizer/``) whose config records the
task, the method and what the head predicts; :func:`load_finetuned` reads it back.

Text the tokenizer cannot encode (a character a character-level tokenizer never saw) is an error that
names the characters: fine-tuning never drops characters silently.
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import torch
import torch.nn as nn

from llm_from_scratch import metrics as M
from llm_from_scratch.crf import bio_violations
from llm_from_scratch.distributed import transformer_blocks
from llm_from_scratch.heads import (POOLINGS, CRFTagger, SequenceClassifier, SequenceRegressor,  # noqa: F401
                                    TaskHead, TokenTagger, backbone_hidden, default_pooling, gather_words,
                                    hidden_size, is_causal, pool_hidden)
from llm_from_scratch.backbones import course_backbone, pretrain_small_gpt  # noqa: F401 (re-exported)
from llm_from_scratch.encoding import (EncodedExamples, encode_examples, encode_text,  # noqa: F401 (re-exported)
                                       encode_words, pad, safe_encode)
from llm_from_scratch.lora import apply_lora

METHODS = ("full", "frozen", "last-n", "lora")


# ------------------------------------------------------------------------------------------------
# Freezing.
# ------------------------------------------------------------------------------------------------


def freeze(model: nn.Module) -> nn.Module:
    """Stop every parameter of ``model`` from training (``requires_grad = False``); returns it."""
    for p in model.parameters():
        p.requires_grad_(False)
    return model


def unfreeze(model: nn.Module) -> nn.Module:
    """Let every parameter of ``model`` train again; returns it."""
    for p in model.parameters():
        p.requires_grad_(True)
    return model


def _final_norm(model: nn.Module) -> nn.Module | None:
    """The LayerNorm after the last block (GPT's ``transformer.ln_f``), if the model has one."""
    for name, m in model.named_modules():
        if name == "transformer.ln_f" or name.endswith(".transformer.ln_f"):
            return m
    return None


def unfreeze_last(model: nn.Module, n_layers: int) -> nn.Module:
    """Let the last ``n_layers`` transformer blocks train, and the final LayerNorm that follows them
    (GPT's ``ln_f``: it rescales what those blocks output). Other parameters are left as they are:
    call ``freeze`` first to train only those. ``n_layers=0`` unfreezes the final LayerNorm only."""
    blocks = transformer_blocks(model)
    if not blocks:
        raise ValueError(f"{type(model).__name__} has no nn.ModuleList of transformer blocks to unfreeze")
    if isinstance(n_layers, bool) or not isinstance(n_layers, int) or not 0 <= n_layers <= len(blocks):
        raise ValueError(f"n_layers must be an integer in [0, {len(blocks)}] (the model has {len(blocks)} blocks), "
                         f"got {n_layers!r}")
    for block in blocks[len(blocks) - n_layers:]:
        unfreeze(block)
    norm = _final_norm(model)
    if norm is not None:
        unfreeze(norm)
    return model


def count_trainable_parameters(model: nn.Module) -> int:
    """Parameters that will train (``requires_grad``), each tensor counted once (tied weights share one)."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad)  # .parameters() yields a tied tensor once


def count_parameters(model: nn.Module) -> int:
    """All parameters, each tensor counted once."""
    return sum(p.numel() for p in model.parameters())



def setup_method(model: nn.Module, method: str, n_layers: int = 1, lora_r: int = 8, lora_alpha: float = 16.0) -> nn.Module:
    """Choose what trains (see the module docstring's table), in place; returns the model.

    ``model``: a head (its ``backbone`` is adapted, the head always trains) or a bare GPT for
    language modelling (there "frozen" would train nothing and is an error).
    """
    if method not in METHODS:
        raise ValueError(f"method must be one of {METHODS}, got {method!r}")
    backbone = getattr(model, "backbone", model)
    head_params = model.head_parameters() if isinstance(model, TaskHead) else []
    if method == "frozen" and not head_params:
        raise ValueError("method 'frozen' trains only a task head, and this model has none (language modelling): "
                         "use 'full', 'last-n' or 'lora'")
    if method == "full":
        unfreeze(model)
        return model
    freeze(backbone)
    if method == "last-n":
        unfreeze_last(backbone, n_layers)
    elif method == "lora":
        apply_lora(backbone, r=lora_r, alpha=lora_alpha)
    for p in head_params:
        p.requires_grad_(True)
    return model



# ------------------------------------------------------------------------------------------------
# Training and evaluation.
# ------------------------------------------------------------------------------------------------


@dataclass
class FinetuneConfig:
    """How to fine-tune. ``lr=None`` picks by method: 3e-4 for full / last-n, 2e-3 for frozen / lora
    (a fresh head or fresh LoRA matrices can move faster than pretrained weights should)."""

    method: str = "full"
    n_layers: int = 1  # for last-n
    lora_r: int = 8
    lora_alpha: float = 16.0
    steps: int = 300
    batch_size: int = 16
    lr: float | None = None
    warmup_steps: int = 20
    weight_decay: float = 0.01  # lighter than pretraining's 0.1: a few hundred steps from pretrained weights
    max_len: int = 128  # tokens per example (cut to the backbone's block size)
    dropout: float = 0.1
    seed: int = 0
    device: str | None = None
    progress: bool = False
    keep_best: bool = True  # evaluate on task.validation during training and keep the best weights
    evals: int = 5  # how many times (evenly spaced) to evaluate on validation when keep_best
    # Sequence heads (genre, year). None: "mean" on a GPT, "cls" on BERT. A character GPT's last state
    # mostly encodes the next character; the mean over the passage carried the genre and year signal
    # (benchmarks/RESULTS.md, "Fine-tuning"). "last" is the head classes' own default on a GPT.
    pooling: str | None = None

    def __post_init__(self):
        if self.method not in METHODS:
            raise ValueError(f"method must be one of {METHODS}, got {self.method!r}")

    @property
    def learning_rate(self) -> float:
        if self.lr is not None:
            return self.lr
        return 2e-3 if self.method in ("frozen", "lora") else 3e-4


def _head_loss(model: nn.Module, batch: dict) -> torch.Tensor:
    return model(**batch)[1]


def fit(model: nn.Module, train_data: EncodedExamples, config: FinetuneConfig, pad_id: int = 0,
        loss_fn: Callable | None = None, eval_fn: Callable[[nn.Module], dict] | None = None):
    """Train ``model`` (whose trainable parameters ``setup_method`` chose) on ``train_data`` with the
    course's training loop (``train.train``: AdamW, warmup + cosine, clipping). ``eval_fn(model) -> dict``
    runs ``config.evals`` times, evenly spaced (and after the last step). Returns the TrainResult."""
    from llm_from_scratch.lm_data import shuffled_batches
    from llm_from_scratch.train import TrainConfig, train

    batch_size = min(config.batch_size, len(train_data))
    batches = shuffled_batches(len(train_data), batch_size, lambda idx: train_data.collate(idx, pad_id),
                               seed=config.seed)
    tc = TrainConfig(max_steps=config.steps, batch_size=batch_size, lr=config.learning_rate,
                     warmup_steps=min(config.warmup_steps, config.steps - 1), weight_decay=config.weight_decay,
                     eval_every=max(1, config.steps // max(1, config.evals)) if eval_fn else config.steps,
                     seed=config.seed, device=config.device, precision=None, progress=config.progress)
    if count_trainable_parameters(model) == 0:
        raise ValueError("the model has no trainable parameters: call setup_method(model, method) first")
    return train(model, batches, config=tc, loss_fn=loss_fn or _head_loss, eval_fn=eval_fn)


def selection_score(kind: str, metrics: dict) -> float:
    """The validation number to keep the best weights by (higher is better): macro-F1 for
    classification, −RMSE for regression, entity F1 for tagging."""
    return {"classification": lambda m: m["macro_f1"], "regression": lambda m: -m["rmse"],
            "tagging": lambda m: m["f1"]}[kind](metrics)


@torch.no_grad()
def predict(model: nn.Module, data: EncodedExamples, batch_size: int = 64, pad_id: int = 0) -> list:
    """The model's predictions for every example, in order (class ids, numbers or tag-id lists)."""
    was_training = model.training
    model.eval()
    device = next(model.parameters()).device
    out = []
    for batch in data.batches(batch_size, pad_id):
        out += model.predict(**{k: v.to(device) for k, v in batch.items() if k != "labels"})
    model.train(was_training)
    return out


def classification_metrics(y_true, y_pred, num_classes: int) -> dict:
    return {"accuracy": M.accuracy(y_true, y_pred), "macro_f1": M.macro_f1(y_true, y_pred, num_classes)}


def regression_metrics(y_true, y_pred) -> dict:
    try:
        r = M.pearson_r(y_true, y_pred)
    except ValueError:  # constant predictions (the mean baseline): r is undefined
        r = float("nan")
    return {"rmse": M.rmse(y_true, y_pred), "pearson_r": r}


def tagging_metrics(gold: Sequence[Sequence[str]], pred: Sequence[Sequence[str]], tag_names: Sequence[str]) -> dict:
    """Entity-level P/R/F1, plus how often ``pred`` breaks BIO: ``bio_violations`` counts the
    offending positions (an ``I-X`` after neither ``B-X`` nor ``I-X``), ``invalid_sequences`` the
    sentences with at least one."""
    s = M.entity_scores(gold, pred)
    per_sequence = [bio_violations(p, tag_names) for p in pred]
    return {"precision": s.precision, "recall": s.recall, "f1": s.f1,
            "bio_violations": sum(per_sequence), "invalid_sequences": sum(v > 0 for v in per_sequence)}


def task_metrics(task, data: EncodedExamples, predictions: list) -> dict:
    """The task's test metrics for ``predictions`` of the encoded examples ``data``."""
    if task.kind == "classification":
        return classification_metrics(data.labels, predictions, task.num_labels)
    if task.kind == "regression":
        return regression_metrics(data.labels, predictions)
    if task.kind == "tagging":
        names = task.label_names
        gold = [[names[i] for i in g] for g in data.labels]
        pred = [[names[i] for i in p] for p in predictions]
        return tagging_metrics(gold, pred, task.label_names)
    raise ValueError(f"no metrics for task kind {task.kind!r}")


def baseline_metrics(task, data: EncodedExamples | None = None) -> dict:
    """The baseline on the test split: majority class, training mean, or the gazetteer tagger."""
    from llm_from_scratch.tasks import GazetteerTagger, majority_class, mean_label

    if task.kind == "classification":
        y = [e.label for e in task.test] if data is None else data.labels
        return classification_metrics(y, [majority_class(task)] * len(y), task.num_labels)
    if task.kind == "regression":
        y = [e.label for e in task.test] if data is None else data.labels
        return regression_metrics(y, [mean_label(task)] * len(y))
    if task.kind == "tagging":
        gaz = GazetteerTagger(task.train)
        if data is None:
            gold = [list(e.tags) for e in task.test]
            pred = [gaz.tag(e.tokens) for e in task.test]
        else:  # the same (possibly truncated) words the model saw
            names = task.label_names
            gold = [[names[i] for i in g] for g in data.labels]
            pred = [gaz.tag(task.test[k].tokens[:len(g)]) for k, g in zip(data.kept, gold)]
        return tagging_metrics(gold, pred, task.label_names)
    raise ValueError(f"no baseline for task kind {task.kind!r}")


# ------------------------------------------------------------------------------------------------
# One call: a task, a backbone, a method -> metrics beside the baseline's.
# ------------------------------------------------------------------------------------------------


@dataclass
class FinetuneResult:
    task: str
    method: str
    metrics: dict
    baseline: dict
    trainable_parameters: int
    total_parameters: int
    seconds: float
    model: nn.Module = field(repr=False)
    history: list = field(default_factory=list, repr=False)

    def row(self) -> dict:
        """A flat dict for a results table."""
        return {"method": self.method, **self.metrics, "trainable": self.trainable_parameters,
                "seconds": round(self.seconds, 1)}


def sequence_pooling(backbone: nn.Module, config: FinetuneConfig) -> str:
    """The pooling ``build_model`` gives a sequence head: ``config.pooling``, else mean on a GPT, [CLS] on BERT."""
    return config.pooling or default_pooling(backbone, pipeline=True)


def build_model(task, backbone: nn.Module, config: FinetuneConfig, crf: bool = True) -> nn.Module:
    """The head the task needs on ``backbone`` (tagging: a CRFTagger, or a softmax TokenTagger)."""
    if task.kind == "classification":
        return SequenceClassifier(backbone, task.num_labels, pooling=sequence_pooling(backbone, config),
                                  dropout=config.dropout)
    if task.kind == "regression":
        ys = torch.tensor([float(e.label) for e in task.train])
        std = float(ys.std()) if len(ys) > 1 and float(ys.std()) > 0 else 1.0
        return SequenceRegressor(backbone, pooling=sequence_pooling(backbone, config), dropout=config.dropout,
                                 target_mean=float(ys.mean()), target_std=std)
    if task.kind == "tagging":
        if crf:
            return CRFTagger(backbone, task.label_names, dropout=config.dropout)
        return TokenTagger(backbone, task.num_labels, dropout=config.dropout)
    raise ValueError(f"build_model: no head for task kind {task.kind!r} (poems: fine-tune the GPT itself)")


def block_size_of(backbone: nn.Module) -> int:
    cfg = backbone.config
    return int(getattr(cfg, "block_size", None) or getattr(cfg, "max_position_embeddings"))


def finetune_task(task, backbone: nn.Module, tokenizer, config: FinetuneConfig, crf: bool = True,
                  pad_id: int = 0) -> FinetuneResult:
    """Put the task's head on ``backbone`` (changed in place: pass a copy to keep the original), set up
    ``config.method``, train on ``task.train`` and evaluate on ``task.test`` beside the baseline."""
    if task.kind == "language_modeling":
        return adapt_lm(task, backbone, tokenizer, config)
    max_len = min(config.max_len, block_size_of(backbone))
    word_position = "last" if is_causal(backbone) else "first"
    train_data = encode_examples(task.train, tokenizer, task.kind, max_len, task.label_names, word_position)
    test_data = encode_examples(task.test, tokenizer, task.kind, max_len, task.label_names, word_position)
    model = setup_method(build_model(task, backbone, config, crf), config.method, config.n_layers,
                         config.lora_r, config.lora_alpha)
    eval_fn, best = None, {"score": -math.inf, "state": None}
    if config.keep_best and task.validation:
        # Fine-tuning data is small and a few hundred steps can overfit the training plays: evaluate on
        # the validation plays as we go and keep the weights that did best there (early stopping).
        val_data = encode_examples(task.validation, tokenizer, task.kind, max_len, task.label_names, word_position)

        def eval_fn(m: nn.Module) -> dict:
            scores = task_metrics(task, val_data, predict(m, val_data, pad_id=pad_id))
            score = selection_score(task.kind, scores)
            if score > best["score"]:
                best.update(score=score, state={k: v.detach().clone() for k, v in m.state_dict().items()})
            return scores

    t0 = time.perf_counter()
    result = fit(model, train_data, config, pad_id, eval_fn=eval_fn)
    if best["state"] is not None:
        model.load_state_dict(best["state"])
    seconds = time.perf_counter() - t0
    preds = predict(model, test_data, pad_id=pad_id)
    return FinetuneResult(task.name, config.method, task_metrics(task, test_data, preds),
                          baseline_metrics(task, test_data), count_trainable_parameters(model),
                          count_parameters(model), seconds, model, result.history)



# ------------------------------------------------------------------------------------------------
# Domain adaptation: a GPT pretrained on the plays, fine-tuned on the Sonnets.
# ------------------------------------------------------------------------------------------------


def lm_token_stream(examples: Sequence, tokenizer, separator: str = "\n\n") -> torch.Tensor:
    """The texts of ``examples`` joined by ``separator``, as one token stream (``lm_data.encode_works``)."""
    from llm_from_scratch.lm_data import encode_works

    return encode_works([separator.join(e.text for e in examples)], tokenizer)


@torch.no_grad()
def perplexity(model: nn.Module, tokens: torch.Tensor, block_size: int | None = None, batch_size: int = 16) -> float:
    """exp(mean next-token NLL) of a GPT over a token stream, in non-overlapping windows."""
    from llm_from_scratch.lm_data import eval_batches
    from llm_from_scratch.train import evaluate_lm

    block_size = block_size or model.config.block_size
    block_size = min(block_size, tokens.numel() - 1)
    device = next(model.parameters()).device
    return evaluate_lm(model, eval_batches(tokens, block_size, batch_size), device=device)["perplexity"]


def adapt_lm(task, gpt: nn.Module, tokenizer, config: FinetuneConfig) -> FinetuneResult:
    """Fine-tune a GPT language model on ``task.train`` (the poems); perplexity on ``task.test``
    before (the baseline) and after."""
    from llm_from_scratch.lm_data import lm_batches
    from llm_from_scratch.train import TrainConfig, train

    block = min(config.max_len, gpt.config.block_size)
    train_tokens = lm_token_stream(task.train, tokenizer)
    test_tokens = lm_token_stream(task.test, tokenizer)
    before = perplexity(gpt, test_tokens, block)
    setup_method(gpt, config.method, config.n_layers, config.lora_r, config.lora_alpha)
    tc = TrainConfig(max_steps=config.steps, batch_size=config.batch_size, lr=config.learning_rate,
                     warmup_steps=min(config.warmup_steps, config.steps - 1), weight_decay=config.weight_decay,
                     eval_every=config.steps, seed=config.seed, device=config.device, progress=config.progress)
    t0 = time.perf_counter()
    result = train(gpt, lm_batches(train_tokens, block, config.batch_size, seed=config.seed), config=tc)
    seconds = time.perf_counter() - t0
    after = perplexity(gpt, test_tokens, block)
    return FinetuneResult(task.name, config.method, {"perplexity": after}, {"perplexity": before},
                          count_trainable_parameters(gpt), count_parameters(gpt), seconds, gpt, result.history)



def _fmt(v) -> str:
    if isinstance(v, float):
        return "—" if math.isnan(v) else f"{v:.4f}"
    return str(v)


def format_comparison(result: FinetuneResult) -> str:
    """The test metrics beside the baseline's, as a small table."""
    baseline_name = {"genre": "majority class", "year": "training mean", "names": "gazetteer",
                     "poems": "before fine-tuning"}.get(result.task, "baseline")
    lines = [f"task {result.task}, method {result.method}: {result.trainable_parameters:,} of "
             f"{result.total_parameters:,} parameters trained, {result.seconds:.1f} s",
             f"{'metric':<16}{baseline_name:>20}{'fine-tuned':>14}"]
    for k, v in result.metrics.items():
        lines.append(f"{k:<16}{_fmt(result.baseline.get(k, float('nan'))):>20}{_fmt(v):>14}")
    return "\n".join(lines)



# ------------------------------------------------------------------------------------------------
# Saving a fine-tuned model and loading it back.
# ------------------------------------------------------------------------------------------------

HEAD_KINDS = {"classification": "classifier", "regression": "regressor", "tagging": "tagger",
              "language_modeling": "language_model"}


def head_info(task, model: nn.Module, config: FinetuneConfig) -> dict:
    """What config.json records about a fine-tuned model: the task, the method, and what the head
    predicts (``labels``; ``target_mean`` and ``target_std``; ``tag_names`` and whether a CRF decodes)."""
    info = {"task": task.name, "kind": task.kind, "method": config.method, "backbone": "gpt",
            "max_len": config.max_len, "lora_merged": config.method == "lora"}
    if task.kind == "classification":
        info.update(labels=list(task.label_names), pooling=model.pooling)
    elif task.kind == "regression":
        info.update(target_mean=float(model.target_mean), target_std=float(model.target_std), pooling=model.pooling)
    elif task.kind == "tagging":
        info.update(tag_names=list(task.label_names), crf=isinstance(model, CRFTagger))
    return info


def save_finetuned(directory: str | Path, model: nn.Module, tokenizer, info: dict, summary: dict | None = None) -> Path:
    """Write a fine-tuned model as a checkpoint folder (``checkpoint.save_checkpoint``): LoRA merged
    (W = W0 + (alpha/r)·BA, a plain model), the tokenizer, and ``config.json`` with ``finetune: info``."""
    from llm_from_scratch import checkpoint as ckpt
    from llm_from_scratch.lora import LoRALinear, merge_lora
    from llm_from_scratch.tokenizer import tokenizer_info

    if any(isinstance(m, LoRALinear) for m in model.modules()):
        merge_lora(model)
    backbone = getattr(model, "backbone", model)
    config = {"model": backbone.config.to_dict(), "tokenizer": tokenizer_info(tokenizer),
              "finetune": json.loads(json.dumps({**info, **({"summary": summary} if summary else {})}, default=str))}
    return ckpt.save_checkpoint(directory, weights=model.cpu().state_dict(), tokenizer=tokenizer,
                                state={"step": int((summary or {}).get("steps", 0))}, config=config)


def load_finetuned(directory: str | Path, device: str | torch.device = "cpu"):
    """``(model, tokenizer, info)`` from a folder written by ``finetune --out DIR`` (:func:`save_finetuned`).

    ``model``: the backbone with its head (LoRA merged, as saved), in eval mode on ``device``;
    ``info``: ``task``, ``method``, ``kind`` and what the head predicts: ``labels`` (classification),
    ``target_mean`` and ``target_std`` (regression), ``tag_names`` (tagging). For the poems task
    (language modelling) the model is the fine-tuned GPT itself. Errors are ``CheckpointError``.
    """
    from llm_from_scratch import checkpoint as ckpt
    from llm_from_scratch.gpt import GPT, GPTConfig

    snap = ckpt.read_checkpoint(directory, tokenizer=True)
    config = snap["config"]
    info = config.get("finetune")
    if not isinstance(info, dict) or "kind" not in info:
        raise ckpt.CheckpointError(f"{directory} is not a fine-tuned model (its config.json has no 'finetune' "
                                   "record); a pretraining run loads with checkpoint.load_gpt_checkpoint")
    try:
        backbone = GPT(GPTConfig.from_dict(config["model"]))
        kind = info["kind"]
        if kind == "classification":
            model = SequenceClassifier(backbone, len(info["labels"]), pooling=info["pooling"])
        elif kind == "regression":
            model = SequenceRegressor(backbone, pooling=info["pooling"], target_mean=info["target_mean"],
                                      target_std=info["target_std"])
        elif kind == "tagging":
            model = (CRFTagger(backbone, info["tag_names"]) if info.get("crf")
                     else TokenTagger(backbone, len(info["tag_names"])))
        elif kind == "language_modeling":
            model = backbone
        else:
            raise ValueError(f"unknown kind {kind!r}")
    except (KeyError, TypeError, ValueError) as e:
        raise ckpt.CheckpointError(f"{directory}/config.json has an unusable fine-tuning record ({e})") from None
    ckpt.load_into(model, directory, snap)
    return model.to(device).eval(), snap["tokenizer"], info


@torch.no_grad()
def predict_texts(model: nn.Module, tokenizer, info: dict, texts: Sequence[str]) -> list[dict]:
    """What a model from :func:`load_finetuned` predicts for each text, as a dict:
    ``{"label", "probability"}`` (classification), ``{"value"}`` (regression), ``{"words", "tags"}``
    (tagging; words as ``tasks.word_tokenize`` splits them)."""
    kind = info["kind"]
    max_len = min(int(info.get("max_len", FinetuneConfig.max_len)), block_size_of(getattr(model, "backbone", model)))
    device = next(model.parameters()).device
    out = []
    for text in texts:
        if kind == "classification":
            ids = torch.tensor([encode_text(tokenizer, text, max_len=max_len)], device=device)
            p = torch.softmax(model(ids)[0][0].float(), dim=-1)
            out.append({"label": info["labels"][int(p.argmax())], "probability": float(p.max())})
        elif kind == "regression":
            ids = torch.tensor([encode_text(tokenizer, text, max_len=max_len)], device=device)
            out.append({"value": float(model(ids)[0][0])})
        elif kind == "tagging":
            from llm_from_scratch.tasks import word_tokenize

            words = word_tokenize(text)
            ids, positions = encode_words(tokenizer, words, max_len, "last")
            if not positions:
                raise ValueError(f"the text {text[:40]!r} holds no word to tag")
            tags = model.predict(torch.tensor([ids], device=device),
                                 word_index=torch.tensor([positions], device=device))[0]
            out.append({"words": words[:len(tags)], "tags": [info["tag_names"][t] for t in tags]})
        else:
            raise ValueError(f"a {kind} model predicts no label: generate text with the sample command")
    return out
