"""Fine-tuning tasks made from the Shakespeare corpus (chapters 08-10): the schema, the builders, the baselines.

Every task is cut from the course's one split of the plays (``data.split_works``): the examples of
``train`` come from the training plays, those of ``test`` from plays that pretraining never saw.

==========  ==================  ==============================================  ===========================
task        kind                example                                         baseline
==========  ==================  ==============================================  ===========================
genre       classification      a passage (~512 characters, ~128 BPE tokens)    the majority class of train
                                -> comedy / history / tragedy of its play
year        regression          a passage -> the year its play was written      the mean year of train
names       tagging             the words of a speech -> BIO tags for persons   a gazetteer of the entities
                                (PER) and places (LOC)                          seen in the training plays
poems       language_modeling   a sonnet (train: most sonnets; test: every      the GPT before fine-tuning
                                10th one, kept aside)
==========  ==================  ==============================================  ===========================

How the names are labelled (silver labels, made by rules that a reader can check):

- PER: the names in the play's list of persons ("PERSONS REPRESENTED" / "Dramatis Personae"), the
  words before the first comma of an entry ("Polonius, Lord Chamberlain." -> Polonius; "SIR TOBY
  BELCH, uncle to Olivia" -> Toby, Belch), without titles ("Sir", "Duke", "Don"...) and without common
  words (a word that the play writes in lower case more often than capitalised, like "Clown" or "Time").
- LOC: the proper nouns of the scene headings of *all* plays ("Scene I. Elsinore. A platform before the
  Castle." -> Elsinore; "SCENE: Sometimes in Sicilia; sometimes in Bohemia." -> Sicilia, Bohemia): a
  capitalised heading word that the corpus's dialogue writes capitalised more often than not ("Castle"
  is "castle" in dialogue: not a place), that is not a person of the play, a title, or a people
  ("English", "Roman").
- A capitalised dialogue word that is one of those names is tagged; consecutive name words of one type
  make one entity ("Toby Belch" = B-PER I-PER). Speaker labels ("HAMLET.") and stage directions
  ("[Enter Horatio.]") are not part of the dialogue: they would make the task trivial.

The Colab versions (SST-2, STS-B, CoNLL-2003) are in :mod:`llm_from_scratch.hub_data`, mapped to
the same :class:`Task`.
"""

from __future__ import annotations

import math
import random
import re
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from functools import lru_cache

from .spelling import spelling_pairs  # noqa: F401  (chapter 13: First Folio -> modern spelling pairs)

GENRE_LABELS = ("comedy", "history", "tragedy")
TAG_NAMES = ("O", "B-PER", "I-PER", "B-LOC", "I-LOC")
TASK_NAMES = ("genre", "year", "names", "poems")
KINDS = ("classification", "regression", "tagging", "language_modeling")


# ------------------------------------------------------------------------------------------------
# The schema every task shares.
# ------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class TextExample:
    """A text and its label: a class index (classification), a number (regression) or, for the
    poems, the sonnet's number. ``text_pair`` is the second sentence of a pair task (STS-B)."""

    text: str
    label: int | float
    source: str = ""  # the work id (or the hub split) the example comes from
    text_pair: str | None = None


@dataclass(frozen=True)
class TaggedExample:
    """Words and one BIO tag per word."""

    tokens: tuple[str, ...]
    tags: tuple[str, ...]
    source: str = ""

    def __post_init__(self):
        if len(self.tokens) != len(self.tags):
            raise ValueError(f"{len(self.tokens)} tokens but {len(self.tags)} tags: give one tag per token")


@dataclass
class Task:
    """A fine-tuning task: its kind, the three splits, and the label names (classes or BIO tags)."""

    name: str
    kind: str  # one of KINDS
    train: list
    validation: list
    test: list
    label_names: tuple[str, ...] = ()
    info: dict = field(default_factory=dict)

    def __post_init__(self):
        if self.kind not in KINDS:
            raise ValueError(f"Task.kind must be one of {KINDS}, got {self.kind!r}")

    @property
    def num_labels(self) -> int:
        return len(self.label_names)

    def __repr__(self) -> str:
        labels = f", labels={list(self.label_names)}" if self.label_names else ""
        return (f"Task({self.name!r}, {self.kind}, train={len(self.train)}, validation={len(self.validation)}, "
                f"test={len(self.test)}{labels})")


# ------------------------------------------------------------------------------------------------
# Reading a play: persons, scene headings, speeches.
# ------------------------------------------------------------------------------------------------

_PERSONS_HEADER = re.compile(r"^\s*(persons represented|dramatis personae)\b", re.IGNORECASE)
_ACT = re.compile(r"^\s*(act|actus)\b[\s\dIVXivx.:-]*", re.IGNORECASE)
_SCENE_HEADING = re.compile(r"^\s*scene\b\s*([\dIVXLivxl]+)?\s*[.:\-]*\s*(.*)$", re.IGNORECASE)
_OTHER_HEADING = re.compile(r"^\s*(prologue|epilogue|induction|chorus)\.?\s*$", re.IGNORECASE)
# A speaker label is a short line of its own that ends in a full stop: "Ber.", "HAMLET.", "First Clown."
_SPEAKER = re.compile(r"^[A-Z][A-Za-z'&\- ]{0,40}\.\s*$")
_WORD = re.compile(r"[A-Za-z]+(?:-[A-Za-z]+)*|'[A-Za-z]+|[^\sA-Za-z]")


def word_tokenize(text: str) -> list[str]:
    """Words, with punctuation split off and a possessive kept apart ("Polonius's" -> "Polonius", "'s").

    >>> word_tokenize("Welcome, good Marcellus. Polonius's house!")
    ['Welcome', ',', 'good', 'Marcellus', '.', 'Polonius', "'s", 'house', '!']
    """
    return _WORD.findall(text)


@dataclass(frozen=True)
class Play:
    """A play taken apart: the entries of its list of persons, its scene headings (the play-level
    "SCENE: ..." line first) and its speeches as (speaker label, dialogue text without stage directions)."""

    id: str
    persons: tuple[str, ...]
    scene_headings: tuple[str, ...]
    speeches: tuple[tuple[str, str], ...]


_HEADING_INITIALS = frozenset("AaSsPpEeIiCc")


def _strip_stage_directions(text: str) -> str:
    if "[" not in text:
        return text
    return re.sub(r"\[[^\]]*\]?", " ", text)  # an unclosed "[" runs to the end of the speech


@lru_cache(maxsize=64)
def _parse_play_text(work_id: str, text: str) -> Play:
    lines = text.split("\n")
    # The front matter runs to the first ACT / numbered SCENE heading / PROLOGUE.
    body_start = next((i for i, line in enumerate(lines) if _ACT.match(line) and len(line) < 40
                       or (_SCENE_HEADING.match(line) and _SCENE_HEADING.match(line).group(1))
                       or _OTHER_HEADING.match(line)), len(lines))
    front = lines[:body_start]
    persons, headings = [], []
    in_persons = False
    for i, line in enumerate(front):
        if _PERSONS_HEADER.match(line):
            in_persons = True
            continue
        m = _SCENE_HEADING.match(line)
        if m and not m.group(1):  # the play-level "SCENE: England; afterwards France." (may wrap)
            heading = m.group(2)
            j = i + 1
            while j < len(front) and front[j].strip():
                heading += " " + front[j].strip()
                j += 1
            headings.append(heading.strip())
            in_persons = False
            continue
        if in_persons and line.strip():
            persons.append(line.strip())

    speeches: list[tuple[str, str]] = []
    block: list[str] = []

    def flush():
        if not block:
            return
        first = block[0].strip()
        if _SPEAKER.match(first) and len(block) > 1:
            speech = _strip_stage_directions("\n".join(b.strip() for b in block[1:]))
            if "[" in "".join(block[1:]):
                speech = "\n".join(line.strip() for line in speech.split("\n") if line.strip())
            if speech:
                speeches.append((first.rstrip(". "), speech))
        block.clear()

    for line in lines[body_start:]:
        if not line.strip():
            flush()
            continue
        if line.lstrip()[0] not in _HEADING_INITIALS:  # most lines: no heading regex to try
            block.append(line)
            continue
        m = _SCENE_HEADING.match(line)
        if m and (m.group(1) or line.strip().lower().startswith("scene:")):
            flush()
            headings.append(m.group(2).strip())
            continue
        if (_ACT.match(line) and len(line.strip()) < 12) or _OTHER_HEADING.match(line):
            flush()
            continue
        block.append(line)
    flush()
    return Play(work_id, tuple(persons), tuple(h for h in headings if h), tuple(speeches))


def parse_play(work) -> Play:
    """Persons, scene headings and speeches of a play (a ``data.Work``)."""
    if not getattr(work, "is_play", True) or getattr(work, "genre", None) == "poem":
        raise ValueError(f"{work.id} is a poem, not a play: it has no persons, scenes or speeches")
    return _parse_play_text(work.id, work.text)


# Words that name a rank or a role, not a person or a place; and peoples (adjectives of nations).
_TITLES = frozenset("""
a an the of and to in at on first second third fourth fifth old young other two three
king queen prince princess duke duchess earl lord lady sir dame don friar father mother brother
sister son daughter saint st master mistress signior signor monsieur madam cardinal bishop archbishop
marquis marquess abbess abbot doctor captain general emperor empress count countess baron viscount
lieutenant ancient sheriff mayor governor constable herald chorus ghost servant gentleman gentlemen
messenger messengers nurse page boy clown fool shepherd shepherdess porter jailer gaoler
senator senators tribune tribunes officer officers soldier soldiers lords ladies attendants citizens
watch musicians sailors sailor players servants others another same part before near within without
steward stewards mariner mariners courtezan courtesan triumvir apparition apparitions captains
dutchman frenchman spaniard shepherds shepherdesses spirits nymphs reapers satyrs witches fairies
le la de du
i ii iii iv v vi vii viii ix x
""".split())
_PEOPLES = frozenset("""
english french roman romans greek greeks grecian trojan trojans moor moors dane danes welsh scots
scottish spanish italian venetian venetians egyptian egyptians british britons sicilian bohemian
neapolitan florentine athenian athenians volsces volscian volscians antiates goths turk turks jew jews christian christians
""".split())


def _name_words(entry: str) -> list[str]:
    """The capitalised words before the first comma of a list-of-persons entry, up to the first
    lower-case word: "HOSTESS of a tavern in Eastcheap" -> ["HOSTESS"]; "DUKE OF GLOUCESTER" -> all three."""
    head = re.split(r"[,;:(]", entry, maxsplit=1)[0].strip().rstrip(".")
    words = []
    for w in re.findall(r"[A-Za-z][A-Za-z'\-]*", head):
        if w[0].islower():
            break
        words.append(w)
    return words


def _capitalised(word: str) -> str:
    """ "LEONATO" -> "Leonato", "GUILDENSTERN" -> "Guildenstern"; mixed case is kept ("MacMorris")."""
    return word.capitalize() if word.isupper() else word


_ANY_WORD = re.compile(r"[A-Za-z]+(?:-[A-Za-z]+)*")
# A capitalised word inside a sentence: after a lower-case word or a comma and one space.
_INNER_CAPITAL = re.compile(r"(?<=[a-z,] )[A-Z][a-z]+(?:-[A-Za-z]+)*")


@lru_cache(maxsize=64)
def _case_counts(text: str) -> tuple[Counter, Counter]:
    """(capitalised words inside a sentence, lower-case words) of a text, counted."""
    low = Counter(w for w in _ANY_WORD.findall(text) if w[0].islower())
    return Counter(_INNER_CAPITAL.findall(text)), low


def _dialogue(play: Play) -> str:
    return "\n".join(text for _, text in play.speeches)


def _is_proper(word: str, cap: Counter, low: Counter) -> bool:
    """Written capitalised inside sentences at least as often as in lower case: a proper noun."""
    return cap[word] > 0 and cap[word] >= low[word.lower()]


def _person_candidates(entry: str) -> tuple[list[str], list[str]]:
    """Name words of a list-of-persons entry, split at "OF": "DUKE OF GLOUCESTER" -> (["DUKE"],
    ["GLOUCESTER"]); the words after "of" may be a domain ("KING OF FRANCE") rather than a name."""
    words = _name_words(entry)
    for i, w in enumerate(words):
        if w.lower() == "of":
            return words[:i], words[i + 1:]
    return words, []


def _keep_name(w: str, cap: Counter, low: Counter) -> bool:
    return len(w) > 1 and w.lower() not in _TITLES and w.lower() not in _PEOPLES and _is_proper(w, cap, low)


def play_persons(play: Play) -> set[str]:
    """The person names of a play (capitalised words), from its list of persons (see the module
    docstring). A word after "of" ("DUKE OF YORK", "KING OF FRANCE") names the person unless the play's
    own scene headings use it as a place: York is a person in Henry V, France a place in All's Well."""
    cap, low = _case_counts(_dialogue(play))
    own_places = {w for h in play.scene_headings for w in re.findall(r"[A-Za-z]+", h)}
    names = set()
    for entry in play.persons:
        before, after = _person_candidates(entry)
        names |= {_capitalised(w) for w in before if _keep_name(_capitalised(w), cap, low)}
        names |= {_capitalised(w) for w in after
                  if _capitalised(w) not in own_places and _keep_name(_capitalised(w), cap, low)}
    return names


def corpus_places(plays: Sequence[Play]) -> set[str]:
    """The place names of the scene headings of ``plays`` (see the module docstring)."""
    cap, low = Counter(), Counter()
    named = set()  # words that name a person somewhere ("Hamlet", not "Gloucester" of "Duke of Gloucester")
    for p in plays:
        c, lo = _case_counts(_dialogue(p))
        cap.update(c)
        low.update(lo)
        for entry in p.persons:
            named |= {_capitalised(w) for w in _person_candidates(entry)[0]}
    places = set()
    for p in plays:
        for heading in p.scene_headings:
            for w in re.findall(r"[A-Za-z][A-Za-z\-]*", heading):
                if not w[0].isupper() or w.isupper():  # "COUNTESS'S palace": persons are in capitals
                    continue
                if w.lower() in _TITLES or w.lower() in _PEOPLES or w in named:
                    continue
                if _is_proper(w, cap, low) and cap[w] >= 2:
                    places.add(w)
    return places


def tag_words(tokens: Sequence[str], persons: set[str], places: set[str]) -> list[str]:
    """BIO tags for ``tokens``: a run of consecutive words of one type is one entity.

    >>> tag_words(["Sir", "Toby", "Belch", "of", "Illyria", "."], {"Toby", "Belch"}, {"Illyria"})
    ['O', 'B-PER', 'I-PER', 'O', 'B-LOC', 'O']
    """
    tags, prev = [], None
    for tok in tokens:
        kind = "PER" if tok in persons else "LOC" if tok in places else None
        if kind is None:
            tags.append("O")
        else:
            tags.append(("I-" if prev == kind else "B-") + kind)
        prev = kind
    return tags


# ------------------------------------------------------------------------------------------------
# The Shakespeare tasks.
# ------------------------------------------------------------------------------------------------


def _works_split(works=None) -> dict:
    from llm_from_scratch.data import load_shakespeare, split_works

    return split_works(load_shakespeare(progress=False) if works is None else works)


def play_passages(work, passage_chars: int = 512) -> list[str]:
    """A play's dialogue (speaker labels kept, stage directions dropped) cut into passages of at most
    ``passage_chars`` characters at line boundaries, never across a scene. Passages shorter than half of
    ``passage_chars`` (the ends of speeches at the end of the play) are dropped."""
    if passage_chars < 32:
        raise ValueError(f"passage_chars={passage_chars} is too short for a passage; use 128 or more")
    play = parse_play(work)
    passages, current = [], ""
    for speaker, speech in play.speeches:
        for line in [speaker.upper() + "."] + speech.split("\n"):
            line = line[:passage_chars]
            if current and len(current) + 1 + len(line) > passage_chars:
                passages.append(current)
                current = ""
            current = f"{current}\n{line}" if current else line
    if current:
        passages.append(current)
    return [p for p in passages if len(p) >= passage_chars // 2]


def _sample(examples: list, limit: int | None, rng: random.Random) -> list:
    if limit is None or len(examples) <= limit:
        return examples
    keep = sorted(rng.sample(range(len(examples)), limit))  # keep the text's order
    return [examples[i] for i in keep]


def _passage_task(name: str, kind: str, label_of, works, passage_chars, max_per_work, seed) -> Task:
    split = _works_split(works)
    rng = random.Random(seed)
    parts = {}
    for part in ("train", "validation", "test"):
        examples = []
        for w in split[part]:
            ex = [TextExample(p, label_of(w), w.id) for p in play_passages(w, passage_chars)]
            examples += _sample(ex, max_per_work, rng)
        parts[part] = examples
    labels = GENRE_LABELS if kind == "classification" else ()
    info = {"passage_chars": passage_chars, "max_per_work": max_per_work,
            "works": {p: [w.id for w in split[p]] for p in ("train", "validation", "test")}}
    return Task(name, kind, parts["train"], parts["validation"], parts["test"], labels, info)


def genre_task(works=None, passage_chars: int = 512, max_per_work: int | None = None, seed: int = 0) -> Task:
    """Passages -> the genre of their play (0 comedy, 1 history, 2 tragedy).

    ``works``: ``load_shakespeare()`` (default) or a list of ``Work``; ``max_per_work`` samples at most
    that many passages from each play (small runs); ``seed`` fixes the sample.
    """
    return _passage_task("genre", "classification", lambda w: GENRE_LABELS.index(w.genre), works,
                         passage_chars, max_per_work, seed)


def year_task(works=None, passage_chars: int = 512, max_per_work: int | None = None, seed: int = 0) -> Task:
    """Passages -> the (approximate) year their play was written, a float."""
    return _passage_task("year", "regression", lambda w: float(w.year), works, passage_chars, max_per_work, seed)


def _chunks(tokens: list[str], tags: list[str], max_words: int) -> list[tuple[list[str], list[str]]]:
    """Cut a long speech into pieces of at most ``max_words``, after a sentence end where possible,
    never inside an entity."""
    out = []
    while len(tokens) > max_words:
        cut = max_words
        ends = [i + 1 for i in range(max_words // 2, max_words) if tokens[i] in (".", "!", "?", ";")]
        if ends:
            cut = ends[-1]
        while cut > 1 and tags[cut].startswith("I-"):
            cut -= 1
        out.append((tokens[:cut], tags[:cut]))
        tokens, tags = tokens[cut:], tags[cut:]
    if tokens:
        out.append((tokens, tags))
    return out


def names_task(works=None, max_words: int = 64, max_per_work: int | None = None, min_entity_fraction: float = 0.5,
               seed: int = 0) -> Task:
    """Speeches as words with BIO tags for persons (PER) and places (LOC); see the module docstring.

    ``max_words`` cuts long speeches. Most speeches name no one; to keep the tagger from learning
    "always O", at least ``min_entity_fraction`` of the examples of each play hold an entity (the
    speeches without one are sampled down to that; 0 keeps every speech). ``max_per_work`` then
    samples at most that many examples per play.
    """
    split = _works_split(works)
    all_plays = [parse_play(w) for part in ("train", "validation", "test") for w in split[part]]
    places = corpus_places(all_plays)
    rng = random.Random(seed)
    parts = {}
    for part in ("train", "validation", "test"):
        examples = []
        for w in split[part]:
            play = parse_play(w)
            persons = play_persons(play)
            with_entity, without = [], []  # (position in the play, example)
            for _, speech in play.speeches:
                toks = word_tokenize(speech.replace("\n", " "))
                for t, g in _chunks(toks, tag_words(toks, persons, places), max_words):
                    if sum(x[0].isalpha() for x in t) < 2:  # "O!" or a lone dash: nothing to tag
                        continue
                    ex = (len(with_entity) + len(without), TaggedExample(tuple(t), tuple(g), w.id))
                    (with_entity if any(x != "O" for x in g) else without).append(ex)
            if min_entity_fraction > 0:
                keep = int(len(with_entity) * (1 - min_entity_fraction) / min_entity_fraction)
                without = _sample(without, keep, rng)
            total = len(with_entity) + len(without)
            if max_per_work is not None and total > max_per_work:
                # sample both kinds in proportion, so the share of sentences with an entity stays
                n_with = min(len(with_entity), math.ceil(max_per_work * len(with_entity) / total))
                with_entity = _sample(with_entity, n_with, rng)
                without = _sample(without, max_per_work - n_with, rng)
            examples += [e for _, e in sorted(with_entity + without, key=lambda pe: pe[0])]  # the play's order
        parts[part] = examples
    info = {"max_words": max_words, "places": sorted(places),
            "works": {p: [w.id for w in split[p]] for p in ("train", "validation", "test")}}
    return Task("names", "tagging", parts["train"], parts["validation"], parts["test"], TAG_NAMES, info)


_ROMAN = re.compile(r"^\s*([IVXLC]+)\s*$")


def roman_to_int(s: str) -> int:
    """ "XIV" -> 14."""
    values = {"I": 1, "V": 5, "X": 10, "L": 50, "C": 100}
    total = 0
    for a, b in zip(s, s[1:] + " "):
        v = values[a]
        total += -v if b != " " and values.get(b, 0) > v else v
    return total


def split_sonnets(text: str) -> list[tuple[int, str]]:
    """The Sonnets' text -> [(number, sonnet text)], from their roman-numeral headings."""
    sonnets, number, lines = [], None, []
    for line in text.split("\n"):
        m = _ROMAN.match(line)
        if m:
            if number is not None and "".join(lines).strip():
                sonnets.append((number, "\n".join(lines).strip("\n")))
            number, lines = roman_to_int(m.group(1)), []
        elif number is not None:
            lines.append(line)
    if number is not None and "".join(lines).strip():
        sonnets.append((number, "\n".join(lines).strip("\n")))
    return sonnets


def poems_task(works=None, test_every: int = 10) -> Task:
    """The Sonnets for domain adaptation: sonnet k is in ``test`` when k % test_every == 0, in
    ``validation`` when k % test_every == test_every // 2, in ``train`` otherwise. Label = its number."""
    split = _works_split(works)
    sonnets_work = next((w for w in split["poems"] if w.id == "sonnets"), None)
    if sonnets_work is None:
        raise ValueError("the works hold no 'sonnets'; pass load_shakespeare() (or leave works=None)")
    sonnets = split_sonnets(sonnets_work.text)
    parts = {"train": [], "validation": [], "test": []}
    for k, text in sonnets:
        part = "test" if k % test_every == 0 else "validation" if k % test_every == test_every // 2 else "train"
        parts[part].append(TextExample(text, k, "sonnets"))
    return Task("poems", "language_modeling", parts["train"], parts["validation"], parts["test"], (),
                {"test_every": test_every, "sonnets": len(sonnets)})


def load_task(name: str, works=None, **kwargs) -> Task:
    """``genre`` | ``year`` | ``names`` | ``poems`` (keyword arguments go to the task's function)."""
    makers = {"genre": genre_task, "year": year_task, "names": names_task, "poems": poems_task}
    if name not in makers:
        raise ValueError(f"unknown task {name!r}: the Shakespeare tasks are {sorted(makers)} "
                         f"(for SST-2 / STS-B / CoNLL-2003 use load_hub_task)")
    return makers[name](works, **kwargs)


# ------------------------------------------------------------------------------------------------
# Baselines.
# ------------------------------------------------------------------------------------------------


def majority_class(task: Task) -> int:
    """The most frequent label of ``task.train`` (ties: the smallest index)."""
    counts = Counter(int(e.label) for e in task.train)
    return min(counts, key=lambda c: (-counts[c], c))


def mean_label(task: Task) -> float:
    """The mean label of ``task.train``: the constant prediction with the smallest squared error there."""
    return sum(float(e.label) for e in task.train) / len(task.train)


class GazetteerTagger:
    """The baseline tagger: remember every entity string of the training examples with its type, then
    tag the longest known entity at each position of a new sentence.

    It knows the names of the training plays only, so on unseen plays it finds the names they share
    (Rome, England, Caesar...) and misses the new ones: what a model that generalises must beat.
    """

    def __init__(self, examples: Iterable[TaggedExample]):
        from llm_from_scratch.metrics import bio_spans

        votes: dict[tuple[str, ...], Counter] = {}
        for ex in examples:
            for kind, s, e in bio_spans(ex.tags):
                votes.setdefault(ex.tokens[s:e], Counter())[kind] += 1
        self.entities = {words: c.most_common(1)[0][0] for words, c in votes.items()}
        self.max_len = max((len(k) for k in self.entities), default=0)

    def tag(self, tokens: Sequence[str]) -> list[str]:
        tokens = tuple(tokens)
        tags, i = ["O"] * len(tokens), 0
        while i < len(tokens):
            for n in range(min(self.max_len, len(tokens) - i), 0, -1):
                kind = self.entities.get(tokens[i:i + n])
                if kind is not None:
                    tags[i:i + n] = [f"B-{kind}"] + [f"I-{kind}"] * (n - 1)
                    i += n
                    break
            else:
                i += 1
        return tags


def __getattr__(name: str):
    # The hub loaders moved to hub_data.py; kept importable from here without importing it eagerly
    # (hub_data imports this module's schema).
    if name in ("load_hub_task", "HUB_TASKS"):
        from llm_from_scratch import hub_data

        return getattr(hub_data, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
