"""Spelling pairs (alignment, counts, split), the word-table baseline, and the text metrics vs brute force."""

import difflib
import functools
import itertools
import random

import pytest

from llm_from_scratch import metrics as M
from llm_from_scratch import spelling as S
from llm_from_scratch.data import TEST_WORKS, TRAIN_WORKS, VALIDATION_WORKS


# ------------------------------------------------------------------ metrics vs a brute-force edit distance


def brute_edit_distance(a, b):
    """The edit distance from its recursive definition (every edit script considered, top-down; memoised
    so that the tests stay fast): an independent reference for the package's row-by-row table."""

    @functools.lru_cache(maxsize=None)
    def d(i, j):
        if i == len(a):
            return len(b) - j
        if j == len(b):
            return len(a) - i
        return min(d(i + 1, j) + 1, d(i, j + 1) + 1, d(i + 1, j + 1) + (a[i] != b[j]))

    return d(0, 0)


def test_edit_distance_equals_brute_force_on_all_short_strings():
    alphabet = "ab"
    strings = ["".join(p) for n in range(5) for p in itertools.product(alphabet, repeat=n)]
    for a in strings:
        for b in strings:
            assert M.edit_distance(a, b) == brute_edit_distance(a, b), (a, b)


def test_edit_distance_random_strings_and_word_lists():
    rng = random.Random(0)
    for _ in range(300):
        a = "".join(rng.choice("uvea ") for _ in range(rng.randint(0, 7)))
        b = "".join(rng.choice("uvea ") for _ in range(rng.randint(0, 7)))
        assert M.edit_distance(a, b) == brute_edit_distance(a, b)
        assert M.edit_distance(a.split(), b.split()) == brute_edit_distance(a.split(), b.split())


def test_cer_and_word_accuracy_from_brute_force():
    rng = random.Random(1)
    words = ["haue", "have", "vs", "us", "beene", "been", "'tis", "Tis"]
    refs = [" ".join(rng.choice(words) for _ in range(rng.randint(1, 4))) for _ in range(20)]
    preds = [" ".join(rng.choice(words) for _ in range(rng.randint(0, 4))) for _ in range(20)]
    cer = sum(brute_edit_distance(p, r) for p, r in zip(preds, refs)) / sum(len(r) for r in refs)
    assert abs(M.character_error_rate(preds, refs) - cer) < 1e-12
    wd = sum(brute_edit_distance(p.split(), r.split()) for p, r in zip(preds, refs))
    n = sum(max(len(p.split()), len(r.split())) for p, r in zip(preds, refs))
    assert abs(M.word_accuracy(preds, refs) - (1 - wd / n)) < 1e-12
    assert M.word_accuracy(refs, refs) == 1.0 and M.character_error_rate(refs, refs) == 0.0
    assert M.word_accuracy(["x y z"], ["a b"]) == 0.0  # 3 edits over max(3, 2) words


def test_metrics_refuse_bad_input():
    with pytest.raises(ValueError, match="one prediction per reference"):
        M.character_error_rate(["a"], ["a", "b"])
    with pytest.raises(ValueError, match="empty"):
        M.word_accuracy([], [])


def test_views():
    assert S.letters_only("Nay, answer me: stand & vnfold") == "Nayanswermestandvnfold"
    assert S.words_only("Nay, answer me: 'tis -- so.") == "Nay answer me tis so"


# ------------------------------------------------------------------ alignment on hand-made texts

FOLIO = """The Tragedie of Hamlet

Actus Primus. Scoena Prima.

Enter Barnardo and Francisco two Centinels.

  Barnardo. Who's there?
  Fran. Nay answer me: Stand & vnfold
your selfe

   Bar. Long liue the King

   Fran. You come most carefully vpon your houre

   Bar. 'Tis now strook twelue, get thee to bed Francisco
"""

MODERN = """ACT I.

Scene I. Elsinore. A platform before the Castle.

[Francisco at his post. Enter to him Bernardo.]

Ber.
Who's there?

Fran.
Nay, answer me: stand, and unfold yourself.

Ber.
Long live the king!

Fran.
You come most carefully upon your hour.

Ber.
'Tis now struck twelve. Get thee to bed, Francisco.
"""


def test_dialogue_lines_drop_speakers_and_stage_directions():
    f = S.folio_dialogue_lines(FOLIO)
    assert "Who's there?" in f and "Nay answer me: Stand & vnfold" in f and "Long liue the King" in f
    m = S.modern_dialogue_lines(MODERN)
    assert m[:3] == ["ACT I.", "Scene I. Elsinore. A platform before the Castle.", "Who's there?"]
    assert "Ber." not in m and not any("[" in x for x in m)


def test_line_key_is_blind_to_the_usual_spelling_differences():
    assert S.line_key("Haue you had quiet Guard?") == S.line_key("Have you had quiet guard.")
    assert S.line_key("Long liue the King") == S.line_key("Long live the king!")
    assert S.line_key("Stand & vnfold") == S.line_key("stand and unfold")


def test_align_play_by_hand():
    play = S.align_play("hamlet", FOLIO, MODERN)
    got = [(p["folio"], p["modern"]) for p in play.pairs]
    # worked out by hand: the two-line Folio speech ("...vnfold" / "your selfe") has no one-line partner,
    # "strook" vs "struck" still passes the similarity test, the headings have no partner
    assert got == [
        ("Who's there?", "Who's there?"),
        ("Long liue the King", "Long live the king!"),
        ("You come most carefully vpon your houre", "You come most carefully upon your hour."),
        ("'Tis now strook twelue, get thee to bed Francisco", "'Tis now struck twelve. Get thee to bed, Francisco."),
    ]
    assert play.folio_lines == 9 and play.dropped == 5 and play.share_aligned == 4 / 9


def test_fill_gap_never_pairs_a_line_with_a_merged_longer_line():
    pairs = S.align_lines(["That thou deal'st iustly with me"], ["I do not find that thou dealest justly with me."])
    assert pairs == []


# ------------------------------------------------------------------ the word table


def test_word_table_learns_the_most_frequent_form_and_keeps_case_and_punctuation():
    pairs = [{"folio": "Haue you seene vs", "modern": "Have you seen us"},
             {"folio": "I haue done", "modern": "I have done"},
             {"folio": "I haue done", "modern": "I've done"}] + [{"folio": "vs", "modern": "us"}] * 2
    t = S.WordTable.fit(pairs)
    assert t.table["haue"] == "have" and t.table["vs"] == "us" and t.table["seene"] == "seen"
    assert t("Haue, vs?  unknowne") == "Have, us?  unknowne"
    assert t("VS") == "Us"  # not in the table as written: its lower-case form, capitalised


def test_copy_baseline():
    assert S.copy_baseline(["a b", "c"]) == ["a b", "c"]


def test_char_vocab_round_trip():
    v = S.CharVocab(["Haue", "Have"])
    ids, mask = v.batch(["Haue", "Hz"], bos=True, eos=True)
    assert ids[0, 0] == v.BOS and ids[0, 5] == v.EOS and ids[1, 2] == v.UNK and ids[1, 4] == v.PAD
    assert mask.sum(1).tolist() == [6, 4]
    assert v.decode(ids[0, 1:].tolist()) == "Haue" and v.decode(ids[1, 1:].tolist()) == "H?"


# ------------------------------------------------------------------ the corpus (cached archive)


@pytest.fixture(scope="module")
def corpus_ready():
    from llm_from_scratch.data import CorpusError, ensure_corpus

    try:
        ensure_corpus(progress=False)
    except CorpusError as exc:  # no cache and no network
        pytest.skip(f"corpus unavailable: {exc}")


def test_spelling_pairs_follow_the_split_and_alignment_counts(corpus_ready):
    from llm_from_scratch.tasks import spelling_pairs

    for split, works in (("test", TEST_WORKS), ("validation", VALIDATION_WORKS), ("train", TRAIN_WORKS)):
        pairs = spelling_pairs(split)
        report = S.alignment_report(split)
        folio_plays = {w for w in works if w not in ("pericles", "troilus_and_cressida")}
        assert {r["work"] for r in report} == folio_plays
        assert {p["work"] for p in pairs} == folio_plays
        assert sum(r["aligned"] for r in report) == len(pairs)
        for r in report:
            assert r["aligned"] + r["dropped"] == r["folio_lines"]
            assert 0.25 < r["share"] < 1.0, r  # none perfectly (line breaks differ); prose-heavy Merry Wives 30%
        for p in random.Random(0).sample(pairs, 200):  # every pair passes the similarity test of its keys
            a, b = S.line_key(p["folio"]), S.line_key(p["modern"])
            ratio = difflib.SequenceMatcher(None, a, b, autojunk=False).ratio()
            assert a == b or (ratio >= S.MIN_SIMILARITY and min(len(a), len(b)) >= S.MIN_SIMILARITY * max(len(a), len(b)))
    assert len(S.alignment_report("train")) + len(S.alignment_report("validation")) + len(S.alignment_report("test")) == 35
    cym = next(r for r in S.alignment_report("train") if r["work"] == "cymbeline")
    assert cym["share"] < 0.6  # its modern text lacks two acts: those Folio lines are dropped, not guessed


def test_baselines_on_the_test_plays(corpus_ready):
    test = S.spelling_pairs("test")
    src, ref = [p["folio"] for p in test], [p["modern"] for p in test]
    table = S.WordTable.fit(S.spelling_pairs("train"))
    lo = lambda xs: [S.letters_only(x) for x in xs]
    copy_cer = M.character_error_rate(lo(src), lo(ref))
    table_cer = M.character_error_rate(lo(table.predict(src)), lo(ref))
    assert 0.0 < table_cer < copy_cer < 0.2


def test_word_for_word_keeps_respelled_lines_and_drops_shifted_ones():
    def ok(f, m):
        return S.word_for_word({"folio": f, "modern": m})

    assert ok("Haue you had quiet Guard?", "Have you had quiet guard?")
    assert ok("And henceforth, I am thy true Seruitour:", "And henceforth I am thy true servitor.")  # key differs, 1:1
    assert ok("Thogh with their high wrongs", "Though with their high wrongs")
    assert not ok("which being dead many yeares, shall", "being dead many years, shall after")  # a prose line re-broken
    assert not ok("Du.Sen. I thinke he be", "I think he be")  # a speaker prefix left in
    assert not ok("So I do still", "And so I do still")  # a word added
    assert not ok("", "") and not ok("--", "--")  # no words: nothing to learn from
