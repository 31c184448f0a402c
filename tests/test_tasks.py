"""The Shakespeare tasks (by hand on known plays, split hygiene) and the hub loaders on offline data sets."""

import pytest

from llm_from_scratch import tasks as T
from llm_from_scratch.data import CATALOGUE, TEST_WORKS, TRAIN_WORKS
from llm_from_scratch.metrics import bio_spans


@pytest.fixture(scope="module")
def by_id(shakespeare):
    return {w.id: w for w in shakespeare}


def test_word_tokenize_and_tag_words_by_hand():
    assert T.word_tokenize("O Romeo, Romeo! wherefore art thou Romeo?") == \
        ["O", "Romeo", ",", "Romeo", "!", "wherefore", "art", "thou", "Romeo", "?"]
    assert T.tag_words(["to", "Don", "Pedro", "of", "Arragon", "and", "Hero"], {"Pedro", "Hero"}, {"Arragon"}) == \
        ["O", "O", "B-PER", "O", "B-LOC", "O", "B-PER"]
    assert T.tag_words(["Toby", "Belch", ",", "Toby"], {"Toby", "Belch"}, set()) == ["B-PER", "I-PER", "O", "B-PER"]


def test_parse_hamlet(by_id):
    play = T.parse_play(by_id["hamlet"])
    assert play.persons[0] == "Claudius, King of Denmark."
    assert "Elsinore. A platform before the Castle." in play.scene_headings
    assert play.speeches[0] == ("Ber", "Who's there?")
    assert play.speeches[1] == ("Fran", "Nay, answer me: stand, and unfold yourself.")
    assert len(play.speeches) > 1000
    assert not any("[" in s or "]" in s for _, s in play.speeches)  # stage directions are gone
    persons = T.play_persons(play)
    assert {"Hamlet", "Horatio", "Polonius", "Ophelia", "Gertrude", "Laertes", "Rosencrantz"} <= persons
    assert not persons & {"King", "Ghost", "Players", "Priest", "Captain", "Denmark", "Norway"}
    with pytest.raises(ValueError, match="is a poem"):
        T.parse_play(by_id["sonnets"])


def test_persons_after_of_depend_on_the_play(by_id):
    # "DUKE OF YORK" names a person in Henry V; "KING OF FRANCE" a place in All's Well (its scenes are in France)
    assert "York" in T.play_persons(T.parse_play(by_id["henry_v"]))
    alls_well = T.play_persons(T.parse_play(by_id["alls_well_that_ends_well"]))
    assert "France" not in alls_well and {"Bertram", "Helena", "Parolles"} <= alls_well


def test_corpus_places(by_id):
    plays = [T.parse_play(w) for w in by_id.values() if w.is_play]
    places = T.corpus_places(plays)
    assert {"Elsinore", "Venice", "Rome", "Cyprus", "London", "France", "Messina"} <= places
    assert not places & {"Castle", "Palace", "English", "French", "Hamlet", "Room", "Street"}


def test_genre_and_year_tasks(shakespeare):
    genre = T.genre_task(shakespeare, passage_chars=400, max_per_work=15)
    year = T.year_task(shakespeare, passage_chars=400, max_per_work=15)
    assert genre.label_names == ("comedy", "history", "tragedy") and genre.kind == "classification"
    for task in (genre, year):
        assert {e.source for e in task.train} == set(TRAIN_WORKS)
        assert {e.source for e in task.test} == set(TEST_WORKS)
        for e in task.train + task.validation + task.test:
            assert 200 <= len(e.text) <= 400
    for e in genre.train + genre.test:
        assert genre.label_names[e.label] == CATALOGUE[e.source].genre
    for e in year.test:
        assert e.label == float(CATALOGUE[e.source].year)
    # no passage of a test play is in train: the model never saw the test text
    assert not {e.text for e in genre.train} & {e.text for e in genre.test}
    # baselines by hand
    counts = [sum(e.label == c for e in genre.train) for c in range(3)]
    assert T.majority_class(genre) == counts.index(max(counts))
    assert T.mean_label(year) == pytest.approx(sum(e.label for e in year.train) / len(year.train))


def test_passages_keep_whole_lines(by_id):
    text = by_id["othello"].text
    for p in T.play_passages(by_id["othello"], 300)[:50]:
        for line in p.split("\n")[1:]:
            assert line.rstrip(".").upper() == line.rstrip(".") or line in text


def test_names_task(shakespeare):
    task = T.names_task(shakespeare, max_per_work=60)
    assert task.label_names == T.TAG_NAMES and task.kind == "tagging"
    assert {e.source for e in task.test} == set(TEST_WORKS)
    for e in task.train + task.test:
        assert len(e.tokens) == len(e.tags) <= 64
        assert bio_spans(e.tags, strict=True) == bio_spans(e.tags)  # the labels are valid BIO
    with_entity = sum(any(t != "O" for t in e.tags) for e in task.test)
    assert with_entity >= len(task.test) / 2
    test_spans = [(k, " ".join(e.tokens[s:t])) for e in task.test for k, s, t in bio_spans(e.tags)]
    assert ("PER", "Iago") in test_spans and ("LOC", "Cyprus") in test_spans


def test_gazetteer_baseline_by_hand():
    train = [T.TaggedExample(("Sir", "Toby", "Belch", "in", "Illyria"), ("O", "B-PER", "I-PER", "O", "B-LOC")),
             T.TaggedExample(("Toby", "!"), ("B-PER", "O"))]
    gaz = T.GazetteerTagger(train)
    assert gaz.tag(["Toby", "Belch", "and", "Toby", "to", "Illyria", "Orsino"]) == \
        ["B-PER", "I-PER", "O", "B-PER", "O", "B-LOC", "O"]  # longest match first; Orsino unseen


def test_poems_task(shakespeare):
    task = T.poems_task(shakespeare)
    numbers = {p: [e.label for e in getattr(task, p)] for p in ("train", "validation", "test")}
    assert task.info["sonnets"] == 154
    assert numbers["test"] == list(range(10, 151, 10))
    assert numbers["validation"] == list(range(5, 155, 10))
    assert len(numbers["train"]) == 154 - 15 - 15
    first = next(e for e in task.train if e.label == 1)
    assert first.text.startswith("From fairest creatures we desire increase,")
    assert T.roman_to_int("CXLIV") == 144 and T.roman_to_int("XIX") == 19


def test_split_sonnets_by_hand():
    text = "THE SONNETS\n\nI\n\nline one\nline two\n\nII\n\nline three\n"
    assert T.split_sonnets(text) == [(1, "line one\nline two"), (2, "line three")]


def test_load_task_errors():
    with pytest.raises(ValueError, match="unknown task 'sst2'.*load_hub_task"):
        T.load_task("sst2")
    with pytest.raises(ValueError, match="unknown hub task"):
        T.load_hub_task("imdb")


# ---------------------------------------------------------------------------- hub loaders, offline


def _glue_like(rows_by_split, features):
    import datasets

    return datasets.DatasetDict({k: datasets.Dataset.from_dict(v, features=features) for k, v in rows_by_split.items()})


def test_load_hub_sst2_offline():
    import datasets

    features = datasets.Features({"sentence": datasets.Value("string"),
                                  "label": datasets.ClassLabel(names=["negative", "positive"]),
                                  "idx": datasets.Value("int32")})
    train = {"sentence": [f"s{i}" for i in range(40)], "label": [i % 2 for i in range(40)], "idx": list(range(40))}
    val = {"sentence": ["good", "bad"], "label": [1, 0], "idx": [0, 1]}
    test = {"sentence": ["hidden"], "label": [-1], "idx": [0]}  # GLUE hides test labels
    task = T.load_hub_task("sst2", dataset=_glue_like({"train": train, "validation": val, "test": test}, features))
    assert task.kind == "classification" and task.label_names == ("negative", "positive")
    assert [(e.text, e.label) for e in task.test] == [("good", 1), ("bad", 0)]  # the hub's validation
    assert len(task.train) + len(task.validation) == 40 and len(task.validation) == 2
    assert not {e.text for e in task.train} & {e.text for e in task.validation}
    with pytest.raises(ValueError, match="lacks the column"):
        bad = _glue_like({"train": {"text": ["a"], "label": [0]}, "validation": {"text": ["b"], "label": [1]}},
                         datasets.Features({"text": datasets.Value("string"), "label": datasets.Value("int64")}))
        T.load_hub_task("sst2", dataset=bad)


def test_load_hub_stsb_offline():
    import datasets

    features = datasets.Features({"sentence1": datasets.Value("string"), "sentence2": datasets.Value("string"),
                                  "label": datasets.Value("float32"), "idx": datasets.Value("int32")})
    rows = {"sentence1": ["a", "b", "c"], "sentence2": ["x", "y", "z"], "label": [0.5, 4.0, 2.5], "idx": [0, 1, 2]}
    task = T.load_hub_task("stsb", dataset=_glue_like({"train": rows, "validation": rows}, features))
    assert task.kind == "regression"
    assert [(e.text, e.text_pair, e.label) for e in task.test] == [("a", "x", 0.5), ("b", "y", 4.0), ("c", "z", 2.5)]


def test_load_hub_conll_offline():
    import datasets

    names = ["O", "B-PER", "I-PER", "B-ORG", "I-ORG", "B-LOC", "I-LOC", "B-MISC", "I-MISC"]
    features = datasets.Features({"id": datasets.Value("string"), "tokens": datasets.Sequence(datasets.Value("string")),
                                  "pos_tags": datasets.Sequence(datasets.Value("int32")),
                                  "chunk_tags": datasets.Sequence(datasets.Value("int32")),
                                  "ner_tags": datasets.Sequence(datasets.ClassLabel(names=names))})
    split = {"id": ["0", "1"], "tokens": [["EU", "rejects", "German", "call"], ["Peter", "Blackburn"]],
             "pos_tags": [[0, 0, 0, 0], [0, 0]], "chunk_tags": [[0, 0, 0, 0], [0, 0]],
             "ner_tags": [[3, 0, 7, 0], [1, 2]]}
    task = T.load_hub_task("conll2003", dataset=_glue_like({"train": split, "validation": split, "test": split},
                                                              features))
    assert task.kind == "tagging" and task.label_names == tuple(names)
    assert task.test[0].tags == ("B-ORG", "O", "B-MISC", "O")
    assert task.test[1] == T.TaggedExample(("Peter", "Blackburn"), ("B-PER", "I-PER"), "test")
