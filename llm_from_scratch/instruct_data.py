"""Instruction tasks built from the corpus, with answers that can be scored exactly.

Three tasks, each a user question and a short right answer (and a plausible wrong one for DPO):

- ``second_speaker``: a passage of consecutive lines written ``SPEAKER: first line of the speech``;
  "Who speaks the second line?" The answer can be read from the prompt.
- ``count_lines``: the same kind of passage; "How many of these lines does NAME speak?" (a digit).
  The answer can be derived from the prompt by counting.
- ``which_play``: one line and two titles of the same genre; "Which play is this line from?"
  The answer leans on knowledge of the plays, which a small model mostly lacks.

Rejected answers are plausible: another speaker of the same passage, another count, the other title.
Examples are split by work with ``data.split_works``: a play's questions are all in one split, so the
test questions come from plays the model has never seen.

Metrics (:func:`score`): exact match (the answer, then the end-of-turn token, and nothing else) and
format compliance (the model produced the end-of-turn token). :func:`prior_predictions` is the
baseline that reads no prompt: the most frequent answer for the task and play.
"""

from __future__ import annotations

import random
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass

import torch

from llm_from_scratch.data import split_works
from llm_from_scratch.tasks import parse_play

__all__ = ["TASKS", "InstructExample", "passages", "build_examples", "with_random_speakers", "prior_predictions",
           "score", "generate_answers", "encode_examples", "encode_pairs"]

TASKS = ("second_speaker", "count_lines", "which_play")


@dataclass(frozen=True)
class InstructExample:
    task: str
    play: str  # the work id the question comes from
    prompt: str
    answer: str
    rejected: str  # a plausible wrong answer (for preference pairs)

    def messages(self, answer: str | None = None) -> list[dict]:
        """The conversation: the question, then ``answer`` (default the right one)."""
        return [{"role": "user", "content": self.prompt},
                {"role": "assistant", "content": self.answer if answer is None else answer}]


def _first_line(speech: str, max_chars: int) -> str:
    line = speech.split("\n")[0].strip()
    return line if len(line) <= max_chars else line[:max_chars].rsplit(" ", 1)[0]


def passages(play, n_lines: int = 4, max_chars: int = 40) -> list[list[tuple[str, str]]]:
    """Non-overlapping runs of ``n_lines`` consecutive speeches as (speaker, first line) pairs, kept
    when at least two speakers take part and every line has text."""
    speeches = [(s.title(), _first_line(t, max_chars)) for s, t in play.speeches]
    out = []
    for i in range(0, len(speeches) - n_lines + 1, n_lines):
        run = speeches[i:i + n_lines]
        if len({s for s, _ in run}) >= 2 and all(t for _, t in run):
            out.append(run)
    return out


def _render(run) -> str:
    return "\n".join(f"{s}: {t}" for s, t in run)


def build_examples(works, per_task: int = 20, n_lines: int = 4, max_chars: int = 40,
                   seed: int = 0) -> dict[str, list[InstructExample]]:
    """``{"train", "validation", "test"}`` -> examples; up to ``per_task`` per task and play.

    Deterministic for a given seed. Only plays are used (poems have no speakers).
    """
    rng = random.Random(seed)
    works = list(works)
    titles_by_genre: dict[str, list] = {}
    for w in works:
        if w.genre != "poem":
            titles_by_genre.setdefault(w.genre, []).append(w.title)
    out: dict[str, list[InstructExample]] = {}
    for split, members in split_works(works).items():
        if split == "poems":
            continue
        examples = []
        for w in members:
            runs = passages(parse_play(w), n_lines, max_chars)
            rng.shuffle(runs)
            for run in runs[:per_task]:  # who speaks the second line?
                answer = run[1][0]
                others = sorted({s for s, _ in run} - {answer})
                examples.append(InstructExample("second_speaker", w.id,
                                                f"{_render(run)}\n\nWho speaks the second line?",
                                                answer, rng.choice(others)))
            for run in runs[per_task:2 * per_task]:  # how many lines does NAME speak?
                name = rng.choice(sorted({s for s, _ in run}))
                count = sum(s == name for s, _ in run)
                wrong = rng.choice([c for c in range(1, n_lines + 1) if c != count])
                examples.append(InstructExample("count_lines", w.id,
                                                f"{_render(run)}\n\nHow many of these lines does {name} speak?",
                                                str(count), str(wrong)))
            lines = [t for _, t in (x for r in runs[2 * per_task:] for x in r) if len(t) >= 24]
            rng.shuffle(lines)
            same_genre = [t for t in titles_by_genre[w.genre] if t != w.title]
            for line in lines[:per_task] if same_genre else []:  # which play? (needs a second title)
                other = rng.choice(same_genre)
                a, b = (w.title, other) if rng.random() < 0.5 else (other, w.title)
                examples.append(InstructExample("which_play", w.id,
                                                f"{line}\n\nWhich play is this line from, {a} or {b}?",
                                                w.title, other))
        out[split] = examples
    return out


def with_random_speakers(examples: Sequence[InstructExample], names: Sequence[str],
                         seed: int = 0) -> list[InstructExample]:
    """Copies of the passage questions (``second_speaker``, ``count_lines``) with the speakers renamed,
    each to a different name drawn from ``names``, the same name for every line of one speaker.

    The answer can still be read from the prompt, but knowing which names a play uses no longer helps:
    a data augmentation for training, so that a small model learns to *copy* the name instead of
    answering with a name it memorised. ``which_play`` questions are left out (they have no passage).
    Deterministic for a given seed; ``names`` needs at least as many names as a passage has speakers.
    """
    rng = random.Random(seed)
    pool = sorted(set(names))
    out = []
    for e in examples:
        if e.task not in ("second_speaker", "count_lines"):
            continue
        passage, question = e.prompt.rsplit("\n\n", 1)
        lines = [line.split(": ", 1) for line in passage.split("\n")]
        speakers = list(dict.fromkeys(s for s, _ in lines))
        rename = dict(zip(speakers, rng.sample(pool, len(speakers))))
        passage = "\n".join(f"{rename[s]}: {t}" for s, t in lines)
        if e.task == "second_speaker":
            out.append(InstructExample(e.task, e.play, f"{passage}\n\n{question}", rename[e.answer],
                                       rename[e.rejected]))
        else:
            asked = question.removeprefix("How many of these lines does ").removesuffix(" speak?")
            out.append(InstructExample(e.task, e.play,
                                       f"{passage}\n\nHow many of these lines does {rename[asked]} speak?",
                                       e.answer, e.rejected))
    return out


def prior_predictions(examples: Sequence[InstructExample]) -> list[str]:
    """The baseline that ignores the prompt: for each example, the most frequent answer among the
    *other* examples of the same task and play (for ``which_play``, where the play is the answer, of
    the same task only). Ties go to the answer seen first."""
    def key(e):
        return (e.task,) if e.task == "which_play" else (e.task, e.play)

    counts: dict[tuple, Counter] = {}
    for e in examples:
        counts.setdefault(key(e), Counter())[e.answer] += 1
    preds = []
    for e in examples:
        c = counts[key(e)].copy()
        c[e.answer] -= 1  # leave this example out
        best = max(c.items(), key=lambda kv: kv[1], default=("", 0))
        preds.append(best[0] if best[1] > 0 else "")
    return preds


def score(outputs: Sequence[tuple[str, bool]], examples: Sequence[InstructExample]) -> dict:
    """outputs: (answer text, ended with the end-of-turn token) per example ->
    {"exact_match", "format", and "exact_match/<task>" per task}, all fractions in [0, 1].

    Exact match: the format is right and the text, stripped of surrounding spaces, equals the answer.
    """
    if len(outputs) != len(examples):
        raise ValueError(f"{len(outputs)} outputs for {len(examples)} examples")
    hits = [ok and text.strip() == e.answer for (text, ok), e in zip(outputs, examples)]
    res = {"exact_match": sum(hits) / max(len(hits), 1),
           "format": sum(ok for _, ok in outputs) / max(len(outputs), 1)}
    for task in TASKS:
        h = [x for x, e in zip(hits, examples) if e.task == task]
        if h:
            res[f"exact_match/{task}"] = sum(h) / len(h)
    return res


@torch.no_grad()
def generate_answers(model, tokenizer, examples: Sequence[InstructExample],
                     max_new_tokens: int = 16) -> list[tuple[str, bool]]:
    """Greedy answers: (the text before ``<|end|>``, whether ``<|end|>`` came) per example.

    Generation stops at ``<|end|>``, so nothing follows it; an answer that runs to
    ``max_new_tokens`` without it fails the format. The default leaves room for the longest answer:
    a play title ("The Two Gentlemen of Verona") is up to 12 tokens of the course's 2,000-token BPE,
    plus ``<|end|>``."""
    from llm_from_scratch.generate import generate
    from llm_from_scratch.sft import END, encode_prompt

    end_id = tokenizer.vocab[END]
    device = next(model.parameters()).device
    out = []
    for e in examples:
        prompt = encode_prompt(tokenizer, e.messages()[:1])[None].to(device)
        new = generate(model, prompt, max_new_tokens, temperature=0, eos_id=end_id,
                       use_cache=hasattr(model, "forward_cached"))[0, prompt.size(1):].tolist()
        ended = end_id in new
        text_ids = new[:new.index(end_id)] if ended else new
        out.append((tokenizer.decode([i for i in text_ids if i < tokenizer.vocab_size]), ended))
    return out


def encode_examples(tokenizer, examples: Sequence[InstructExample]) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """(input_ids, labels) of each example's conversation with its right answer."""
    from llm_from_scratch.sft import encode_conversation

    return [encode_conversation(tokenizer, e.messages()) for e in examples]


def encode_pairs(tokenizer, examples: Sequence[InstructExample]) -> list[tuple[tuple, tuple]]:
    """Preference pairs: (chosen (input_ids, labels), rejected (input_ids, labels)) per example."""
    from llm_from_scratch.sft import encode_conversation

    return [(encode_conversation(tokenizer, e.messages()), encode_conversation(tokenizer, e.messages(e.rejected)))
            for e in examples]
