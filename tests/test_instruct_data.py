"""Corpus instruction tasks: answers checked by re-reading the prompts, the split, the baseline, the metrics."""

import pytest
import torch
import torch.nn as nn

from llm_from_scratch.instruct_data import (InstructExample, build_examples, encode_pairs, generate_answers,
                                            prior_predictions, score)
from llm_from_scratch.losses import IGNORE_INDEX


@pytest.fixture(scope="module")
def examples(shakespeare):
    return build_examples(shakespeare, per_task=5, seed=0)


def _passage(prompt):
    lines = prompt.split("\n\n")[0].split("\n")
    return [line.split(": ", 1)[0] for line in lines]


def test_examples_are_split_by_work(examples, shakespeare_splits):
    plays = {split: {e.play for e in exs} for split, exs in examples.items()}
    for split in ("train", "validation", "test"):
        assert plays[split] == {w.id for w in shakespeare_splits[split]}
    assert not (plays["train"] & plays["test"]) and not (plays["train"] & plays["validation"])
    assert {e.task for e in examples["test"]} == {"second_speaker", "count_lines", "which_play"}


def test_answers_can_be_read_back_from_the_prompts(examples, shakespeare):
    titles = {w.id: w.title for w in shakespeare}
    texts = {w.id: w.text for w in shakespeare}
    seen = set()
    for e in examples["train"] + examples["test"]:
        seen.add(e.task)
        assert e.rejected != e.answer
        if e.task == "second_speaker":
            speakers = _passage(e.prompt)
            assert len(speakers) == 4 and e.answer == speakers[1] and e.rejected in speakers
            assert e.prompt.endswith("Who speaks the second line?")
        elif e.task == "count_lines":
            name = e.prompt.rsplit("does ", 1)[1].removesuffix(" speak?")
            assert e.answer == str(_passage(e.prompt).count(name)) and 1 <= int(e.rejected) <= 4
        else:
            line, question = e.prompt.split("\n\n")
            assert e.answer == titles[e.play] and e.answer in question and e.rejected in question
            assert line in texts[e.play].replace("\n", " ") or line in texts[e.play]
    assert seen == {"second_speaker", "count_lines", "which_play"}
    assert build_examples(shakespeare, per_task=5, seed=0) == examples  # deterministic


def _ex(task, play, answer):
    return InstructExample(task, play, "q", answer, "x")


def test_prior_is_the_most_frequent_other_answer_of_the_task_and_play():
    exs = [_ex("second_speaker", "a", "Iago"), _ex("second_speaker", "a", "Iago"),
           _ex("second_speaker", "a", "Cassio"), _ex("second_speaker", "b", "Lear"),
           _ex("which_play", "a", "Othello"), _ex("which_play", "a", "Othello"), _ex("which_play", "b", "Lear")]
    # leave-one-out: the first Iago sees {Iago: 1, Cassio: 1} -> Iago (seen first); Cassio sees Iago twice;
    # the lone "b" example has nothing to go on; which_play ignores the play.
    assert prior_predictions(exs) == ["Iago", "Iago", "Iago", "", "Othello", "Othello", "Othello"]
    res = score([(p, True) for p in prior_predictions(exs)], exs)
    assert res["exact_match"] == pytest.approx(4 / 7) and res["exact_match/second_speaker"] == 0.5


def test_score_counts_format_and_exact_match():
    exs = [_ex("count_lines", "a", "2"), _ex("count_lines", "a", "3"), _ex("which_play", "a", "Othello")]
    res = score([(" 2 ", True), ("3", False), ("Othello and more", True)], exs)
    assert res == {"exact_match": pytest.approx(1 / 3), "format": pytest.approx(2 / 3),
                   "exact_match/count_lines": 0.5, "exact_match/which_play": 0.0}


class Scripted(nn.Module):
    """A 'model' that, after the prompt, always produces the same tokens (logit 10 on the next one)."""

    def __init__(self, vocab, script):
        super().__init__()
        self.w = nn.Parameter(torch.zeros(1))
        self.vocab, self.script, self.prompt_len = vocab, script, None

    def forward(self, idx):
        if self.prompt_len is None:
            self.prompt_len = idx.size(1)
        logits = torch.zeros(idx.size(0), idx.size(1), self.vocab)
        k = idx.size(1) - self.prompt_len
        logits[:, -1, self.script[min(k, len(self.script) - 1)]] = 10.0
        return logits


def test_generate_answers_stops_at_the_end_token():
    from llm_from_scratch.sft import END, add_chat_tokens
    from llm_from_scratch.tokenizer import BPETokenizer

    tok = add_chat_tokens(BPETokenizer.train_fast(["Iago: I am not what I am."] * 3, 270))
    iago = tok.encode("Iago", allowed_special="none")
    e = InstructExample("second_speaker", "othello", "Who?", "Iago", "Cassio")
    model = Scripted(tok.vocab_size, iago + [tok.vocab[END], iago[0]])
    [(text, ended)] = generate_answers(model, tok, [e], max_new_tokens=8)
    assert text == "Iago" and ended
    model = Scripted(tok.vocab_size, iago)  # never ends
    [(text, ended)] = generate_answers(model, tok, [e], max_new_tokens=3)
    assert not ended and score([(text, ended)], [e])["exact_match"] == 0


def test_preference_pairs_share_the_prompt_and_differ_in_the_answer(shakespeare, examples):
    from llm_from_scratch.sft import add_chat_tokens
    from llm_from_scratch.tokenizer import BPETokenizer

    tok = add_chat_tokens(BPETokenizer.train_fast([shakespeare[0].text[:20000]], 400))
    exs = examples["train"][::7][:12]
    for e, ((c, cl), (r, rl)) in zip(exs, encode_pairs(tok, exs)):
        start = int((cl != IGNORE_INDEX).nonzero()[0])
        assert torch.equal(c[:start], r[:start]) and (rl[:start] == IGNORE_INDEX).all()
        assert tok.decode(cl[cl != IGNORE_INDEX].tolist()) == e.answer + "<|end|>"
        assert tok.decode(rl[rl != IGNORE_INDEX].tolist()) == e.rejected + "<|end|>"


def test_with_random_speakers_renames_consistently_and_keeps_the_answer_readable():
    from llm_from_scratch.instruct_data import with_random_speakers

    second = InstructExample("second_speaker", "othello",
                             "Iago: I am not what I am.\nRoderigo: What a full fortune!\nIago: Call up her father."
                             "\n\nWho speaks the second line?", "Roderigo", "Iago")
    count = InstructExample("count_lines", "othello",
                            "Iago: I am not what I am.\nRoderigo: What a full fortune!\nIago: Call up her father."
                            "\n\nHow many of these lines does Iago speak?", "2", "1")
    which = InstructExample("which_play", "othello", "I am not what I am.\n\nWhich play?", "Othello", "Hamlet")
    out = with_random_speakers([second, count, which], ["Ann", "Bob", "Cy", "Di"], seed=1)
    assert len(out) == 2  # which_play has no passage to rename
    for new, old in zip(out, (second, count)):
        passage, question = new.prompt.rsplit("\n\n", 1)
        speakers = [line.split(": ", 1)[0] for line in passage.split("\n")]
        texts = [line.split(": ", 1)[1] for line in passage.split("\n")]
        assert texts == ["I am not what I am.", "What a full fortune!", "Call up her father."]
        assert speakers[0] == speakers[2] != speakers[1] and set(speakers) <= {"Ann", "Bob", "Cy", "Di"}
        assert new.task == old.task and new.play == old.play
    renamed_second, renamed_count = out
    # read from the prompt, as a person would: the second line's speaker; the first speaker's line count
    second_line = renamed_second.prompt.split("\n")[1]
    assert renamed_second.answer == second_line.split(": ")[0] and renamed_second.rejected != renamed_second.answer
    first_speaker = renamed_count.prompt.split(": ")[0]
    assert renamed_count.prompt.endswith(f"does {first_speaker} speak?") and renamed_count.answer == "2"
    assert with_random_speakers([second], ["Ann", "Bob", "Cy", "Di"], seed=1) == out[:1]  # deterministic
