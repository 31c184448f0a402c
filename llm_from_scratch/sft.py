"""Supervised fine-tuning (SFT) on conversations: the chat template, loss masking, batches, the loss.

A base model continues text. To make it *answer*, we show it conversations written in a fixed
**chat template** and train it to produce only the assistant's turns. The course's template uses
four special tokens (added after the existing vocabulary by :func:`add_chat_tokens`)::

    <|system|>\\n{system content}<|end|>\\n        (optional)
    <|user|>\\n{user content}<|end|>\\n
    <|assistant|>\\n{assistant content}<|end|>\\n

``<|end|>`` is the end-of-turn token: a model that has learned the template stops by producing it.
``format_chat(messages, add_generation_prompt=True)`` ends with ``<|assistant|>\\n``, the cue to answer.

**Loss masking.** ``encode_conversation`` returns ``(input_ids, labels)``, two 1-D LongTensors of
length T, aligned (not shifted): ``labels[t] = input_ids[t]`` where token t is the assistant's
content or its ``<|end|>``, and ``IGNORE_INDEX`` (-100) everywhere else (system, user, the markers,
the newlines of the template). The loss shifts, as ``transformers`` does: the logits at position t
score token t + 1, so

    L_SFT = −(1/N) Σ_{t : labels[t+1] ≠ −100} log p(input_ids[t+1] | input_ids[≤t])

which is the classification loss L_cls of chapter 08 with one example per answer token.

Message contents are encoded with special tokens *disallowed*: a user who types ``<|end|>`` gets
the seven characters as text, never the control token. The markers are never produced by
byte-level merges either (:func:`add_chat_tokens` checks that no regular token spells them).

For a ``transformers`` tokenizer with its own chat template (real models, Colab),
:func:`encode_hf_conversation` renders with ``apply_chat_template`` and applies the same rule.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Sequence

import torch
import torch.nn as nn

from llm_from_scratch.losses import IGNORE_INDEX, cross_entropy
from llm_from_scratch.tokenizer import BPETokenizer

__all__ = [
    "SYSTEM", "USER", "ASSISTANT", "END", "CHAT_TOKENS", "ROLES", "add_chat_tokens", "format_chat",
    "encode_conversation", "encode_prompt", "truncate", "pad_batch", "sft_batches", "sft_loss",
    "resize_token_embeddings", "encode_hf_conversation", "check_messages",
]

SYSTEM, USER, ASSISTANT, END = "<|system|>", "<|user|>", "<|assistant|>", "<|end|>"
CHAT_TOKENS = (SYSTEM, USER, ASSISTANT, END)
ROLES = {"system": SYSTEM, "user": USER, "assistant": ASSISTANT}


def add_chat_tokens(tokenizer: BPETokenizer) -> BPETokenizer:
    """A copy of ``tokenizer`` with the template's special tokens appended after its vocabulary.

    Every existing id is unchanged; the new ids are ``vocab_size, vocab_size + 1, ...`` in the
    order of ``CHAT_TOKENS``. Idempotent: a tokenizer that has them all is returned as it is.
    """
    if not isinstance(tokenizer, BPETokenizer):
        raise TypeError(f"add_chat_tokens takes a course BPETokenizer, got {type(tokenizer).__name__}; "
                        "for a transformers tokenizer use its own chat template (encode_hf_conversation)")
    missing = [t for t in CHAT_TOKENS if t not in tokenizer.special_tokens]
    if not missing:
        return tokenizer
    clash = [t for t in missing if t in tokenizer.vocab]
    if clash:
        raise ValueError(f"{clash} are regular tokens of this vocabulary, so they cannot become control "
                         "tokens; train the tokenizer with them as special tokens")
    # BPETokenizer gives a special token missing from the vocab the next free id, in order.
    return BPETokenizer(tokenizer.vocab, tokenizer.merges, list(tokenizer.special_tokens) + missing)


def check_messages(messages: Sequence[dict]) -> None:
    """One clear error for a malformed conversation (a list of {"role", "content"} dicts)."""
    if not isinstance(messages, (list, tuple)) or not messages:
        raise ValueError("messages must be a non-empty list of {'role': ..., 'content': ...} dicts")
    for i, m in enumerate(messages):
        if not isinstance(m, dict) or set(m) - {"role", "content"} or "role" not in m or "content" not in m:
            raise ValueError(f"message {i} must be a dict with exactly 'role' and 'content', got {m!r}")
        if m["role"] not in ROLES:
            raise ValueError(f"message {i} has role {m['role']!r}; use one of {sorted(ROLES)}")
        if not isinstance(m["content"], str):
            raise ValueError(f"message {i}: content must be a str, got {type(m['content']).__name__}")
        if m["role"] == "system" and i != 0:
            raise ValueError(f"message {i}: a system message may only come first")


def _pieces(messages: Sequence[dict], add_generation_prompt: bool) -> list[tuple[str, str]]:
    """The template as (kind, text) pieces: kind "marker" (special token or template newline),
    or the message's role for its content. format_chat joins the texts; encode_conversation
    encodes each piece on its own, so a content can never merge with a marker."""
    out: list[tuple[str, str]] = []
    for m in messages:
        out += [("marker", ROLES[m["role"]]), ("marker", "\n"), (m["role"], m["content"]),
                ("end_" + m["role"], END), ("marker", "\n")]
    if add_generation_prompt:
        out += [("marker", ASSISTANT), ("marker", "\n")]
    return out


def format_chat(messages: Sequence[dict], add_generation_prompt: bool = False) -> str:
    """The conversation as the text the model sees (see the module docstring for the template)."""
    check_messages(messages)
    return "".join(text for _, text in _pieces(messages, add_generation_prompt))


def _encode_pieces(tokenizer: BPETokenizer, pieces) -> tuple[list[int], list[int]]:
    missing = [t for t in CHAT_TOKENS if t not in tokenizer.special_tokens]
    if missing:
        raise ValueError(f"the tokenizer lacks the chat tokens {missing}: call add_chat_tokens(tokenizer) first")
    ids: list[int] = []
    labels: list[int] = []
    for kind, text in pieces:
        if text in CHAT_TOKENS:
            piece = [tokenizer.vocab[text]]
        else:  # contents and the template's newlines: plain text, special tokens disallowed
            piece = tokenizer.encode(text, allowed_special="none")
        ids += piece
        learn = kind in ("assistant", "end_assistant")
        labels += piece if learn else [IGNORE_INDEX] * len(piece)
    return ids, labels


def encode_conversation(tokenizer: BPETokenizer, messages: Sequence[dict]) -> tuple[torch.Tensor, torch.Tensor]:
    """``(input_ids, labels)``: two 1-D LongTensors of the same length T.

    labels[t] = input_ids[t] on the assistant's content and its ``<|end|>``, ``IGNORE_INDEX``
    elsewhere. Not shifted: :func:`sft_loss` shifts.
    """
    check_messages(messages)
    ids, labels = _encode_pieces(tokenizer, _pieces(messages, False))
    return torch.tensor(ids, dtype=torch.long), torch.tensor(labels, dtype=torch.long)


def encode_prompt(tokenizer: BPETokenizer, messages: Sequence[dict]) -> torch.Tensor:
    """The ids of ``format_chat(messages, add_generation_prompt=True)``: what a model answers from."""
    check_messages(messages)
    ids, _ = _encode_pieces(tokenizer, _pieces(messages, True))
    return torch.tensor(ids, dtype=torch.long)


def truncate(input_ids: torch.Tensor, labels: torch.Tensor, max_len: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Cut a conversation to ``max_len`` tokens, only where no answer token is lost.

    The tail may be cut when every label there is ``IGNORE_INDEX`` (a trailing user turn or template
    newline). A cut that would drop an answer token is a ValueError that says where: a silently
    shortened answer would teach the model to stop in the middle of a sentence.
    """
    if len(input_ids) <= max_len:
        return input_ids, labels
    lost = (labels[max_len:] != IGNORE_INDEX).nonzero()
    if len(lost):
        raise ValueError(f"truncating this conversation of {len(input_ids)} tokens to {max_len} would cut "
                         f"an assistant answer at token {max_len + int(lost[0])}; raise max_len, shorten the "
                         "user turns, or drop the example")
    return input_ids[:max_len], labels[:max_len]


def pad_batch(examples: Sequence[tuple[torch.Tensor, torch.Tensor]], pad_id: int,
              length: int | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """Right-pad conversations of different lengths into ``(input_ids, labels)`` of shape (B, T).

    Padding positions get ``pad_id`` as input and ``IGNORE_INDEX`` as label, so they add nothing to
    the loss; right padding keeps every real token at its own position (causal attention never
    looks right, so the pads do not change the logits of the real tokens).
    """
    if not examples:
        raise ValueError("pad_batch needs at least one example")
    T = max(len(x) for x, _ in examples) if length is None else length
    ids = torch.full((len(examples), T), pad_id, dtype=torch.long)
    lab = torch.full((len(examples), T), IGNORE_INDEX, dtype=torch.long)
    for i, (x, y) in enumerate(examples):
        if len(x) > T:
            raise ValueError(f"example {i} has {len(x)} tokens, more than the batch length {T}")
        ids[i, :len(x)] = x
        lab[i, :len(y)] = y
    return ids, lab


def sft_batches(encoded: Sequence[tuple[torch.Tensor, torch.Tensor]], batch_size: int, pad_id: int,
                max_len: int | None = None, seed: int = 0) -> Callable[[int], tuple[torch.Tensor, torch.Tensor]]:
    """``i -> (input_ids, labels)`` for ``train.train``: shuffled epochs of padded conversations.

    With ``max_len``, conversations that cannot be truncated without losing answer tokens are
    dropped, with a warning that counts them.
    """
    from llm_from_scratch.train import shuffled_batches

    kept = []
    for x, y in encoded:
        if max_len is None:
            kept.append((x, y))
            continue
        try:
            kept.append(truncate(x, y, max_len))
        except ValueError:
            pass
    if len(kept) < len(encoded):
        warnings.warn(f"sft_batches: dropped {len(encoded) - len(kept)} of {len(encoded)} conversations whose "
                      f"answers do not fit in {max_len} tokens", stacklevel=2)
    return shuffled_batches(len(kept), batch_size, lambda idx: pad_batch([kept[i] for i in idx], pad_id), seed=seed)


def _logits(output) -> torch.Tensor:
    return output[0] if isinstance(output, (tuple, list)) else getattr(output, "logits", output)


def sft_loss(model: nn.Module, batch: tuple[torch.Tensor, torch.Tensor]) -> torch.Tensor:
    """L_SFT for ``train.train(loss_fn=sft_loss)``: input_ids, labels (B, T) -> scalar.

    Shift by one: logits[:, t] score labels[:, t + 1]; the mean runs over the answer tokens only
    (``losses.cross_entropy`` skips ``IGNORE_INDEX``).
    """
    input_ids, labels = batch
    logits = _logits(model(input_ids))  # (B, T, V)
    V = logits.size(-1)
    return cross_entropy(logits[:, :-1].reshape(-1, V).float(), labels[:, 1:].reshape(-1))


@torch.no_grad()
def resize_token_embeddings(model: nn.Module, new_vocab_size: int, old_vocab_size: int,
                            pad_vocab_to: int = 1) -> nn.Module:
    """Give a GPT rows for new tokens: ids ``old_vocab_size .. new_vocab_size - 1``.

    - new rows = the mean of the ``old_vocab_size`` real rows. Tied to the output layer, a mean row
      e gives the logit h·e = mean_i(h·e_i) ≤ log Σ_i exp(h·e_i) − log V: the new token starts no
      likelier than average, so the model's text does not change before fine-tuning.
    - the model's vocabulary stays a multiple of ``pad_vocab_to`` (the presets' padding rule):
      rows that are already there as padding are reused; otherwise the table grows to the next
      multiple, and every row past the tokenizer is also set to the mean.
    - a tied output layer (``lm_head.weight is transformer.wte.weight``) stays tied.

    Works in place on ``model.transformer.wte`` / ``model.lm_head`` (``gpt.GPT``); returns the model.
    """
    if not (0 < old_vocab_size <= new_vocab_size):
        raise ValueError(f"need 0 < old_vocab_size <= new_vocab_size, got {old_vocab_size} and {new_vocab_size}")
    wte = model.transformer.wte
    current = wte.weight.size(0)
    if old_vocab_size > current:
        raise ValueError(f"old_vocab_size={old_vocab_size} exceeds the model's {current} embedding rows")
    tied = model.lm_head.weight is wte.weight
    size = max(current, (new_vocab_size + pad_vocab_to - 1) // pad_vocab_to * pad_vocab_to)
    mean = wte.weight[:old_vocab_size].mean(dim=0)
    if size > current:
        new = nn.Embedding(size, wte.weight.size(1), device=wte.weight.device, dtype=wte.weight.dtype)
        new.weight[:current] = wte.weight
        new.weight[current:] = mean
        model.transformer.wte = new
        if tied:
            model.lm_head.weight = new.weight
        else:
            head = nn.Linear(model.lm_head.in_features, size, bias=False, device=new.weight.device,
                             dtype=new.weight.dtype)
            head.weight[:current] = model.lm_head.weight
            head.weight[current:] = model.lm_head.weight[:old_vocab_size].mean(dim=0)
            model.lm_head = head
    model.transformer.wte.weight[old_vocab_size:new_vocab_size] = mean
    if hasattr(model, "config") and hasattr(model.config, "vocab_size"):
        model.config.vocab_size = size
    return model


def encode_hf_conversation(hf_tokenizer, messages: Sequence[dict], end_token: str | None = None,
                           **template_kwargs) -> tuple[torch.Tensor, torch.Tensor]:
    """``(input_ids, labels)`` for a ``transformers`` tokenizer, rendered by its ``apply_chat_template``.

    The same rule as :func:`encode_conversation`: labels on each assistant turn's tokens up to and
    including its end-of-turn token (``end_token``, default the tokenizer's ``eos_token``), -100
    elsewhere. Turn k's tokens are those the template adds between rendering messages[:k] with the
    generation prompt and rendering messages[:k+1]; a template for which the first is not a prefix of
    the second (some rewrite earlier turns) is a ValueError.
    """
    check_messages(messages)

    def render(msgs, gen):
        out = hf_tokenizer.apply_chat_template(list(msgs), tokenize=True, add_generation_prompt=gen,
                                               **template_kwargs)
        if isinstance(out, dict) or hasattr(out, "keys"):  # newer transformers return a BatchEncoding
            out = out["input_ids"]
        return list(out)

    end = end_token if end_token is not None else hf_tokenizer.eos_token
    end_id = hf_tokenizer.convert_tokens_to_ids(end)
    if end_id is None:
        raise ValueError(f"the tokenizer has no end-of-turn token {end!r}; pass end_token=")
    ids = render(messages, False)
    labels = [IGNORE_INDEX] * len(ids)
    for k, m in enumerate(messages):
        if m["role"] != "assistant":
            continue
        prefix, upto = render(messages[:k], True), render(messages[:k + 1], False)
        if upto[:len(prefix)] != prefix or ids[:len(upto)] != upto:
            raise ValueError("this chat template rewrites earlier turns, so an answer's tokens cannot be "
                             "located by prefixes; mask by hand for this model")
        span = range(len(prefix), len(upto))
        stop = next((t for t in span if ids[t] == end_id), None)
        if stop is None:
            raise ValueError(f"assistant turn {k} has no end-of-turn token {end!r} in the template's output")
        for t in range(len(prefix), stop + 1):
            labels[t] = ids[t]
    return torch.tensor(ids, dtype=torch.long), torch.tensor(labels, dtype=torch.long)
