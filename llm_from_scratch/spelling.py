"""First Folio spelling -> modern spelling: aligned line pairs, baselines and the text views (chapter 13).

The corpus holds 35 plays twice: as printed in the First Folio of 1623 (``*_gut_f.txt``: "Haue you
had quiet Guard?") and in a modern edition (``*_gut.txt``: "Have you had quiet guard?"). A pair of
lines, one from each, is a character-level translation example with a known answer.

How the lines are aligned (per play; nothing is guessed, what does not align is dropped and counted):

1. Dialogue lines. Folio: a speech starts on an indented line "  Bra. It is too true an euill": the
   speaker prefix is removed. Modern: a speech is a block under a speaker line ("Bra."), stage
   directions are in [brackets]; both are removed. Empty lines are skipped. Stage directions of the
   Folio ("Enter Brabantio") stay in as candidates and simply find no partner.
2. A matching key per line, blind to the usual spelling differences: lower case, "&" -> "and",
   letters only, v -> u, j -> i, y -> i, every "e" dropped, doubled letters made single
   ("Haue you had quiet Guard?" and "Have you had quiet guard?" both give "hauouhadquitguard").
3. Anchors: ``difflib.SequenceMatcher`` over the two sequences of keys finds the longest runs of
   lines whose keys are equal, in order (a monotone alignment, like ``diff`` on two files).
4. Gaps between anchors (at most ``MAX_GAP`` lines on each side) are filled by a small dynamic
   programme that pairs lines in order, maximising the number of pairs whose keys are similar
   (``difflib`` ratio >= ``MIN_SIMILARITY``, lengths within that ratio too). Lines whose line breaks differ (one Folio line = two
   modern lines) find no partner and are dropped.

Quality (:func:`alignment_report`): share of the Folio's dialogue lines aligned, per play.

Training pairs (:func:`word_for_word`): an aligned pair can still differ in its words (a prose line
broken at another word, a speaker prefix left in); the chapter's model trains on the pairs whose words
match one for one, and is scored on all test pairs.

Views used by the metrics: ``raw`` (the strings as they are) and ``letters`` (:func:`letters_only`:
punctuation and whitespace removed, case kept): the modern editor also changes punctuation, capitals
and line breaks, which the letters-only view ignores except for capitals.

Baselines: :func:`copy_baseline` (predict the input) and :class:`WordTable` (the most frequent modern
form of each Folio word in the training plays). :class:`CharVocab` turns lines into the character ids
of the chapter's model (``seq2seq.EncoderDecoder``).
"""

from __future__ import annotations

import difflib
import re
from collections import Counter, defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

__all__ = [
    "MIN_SIMILARITY",
    "MAX_GAP",
    "folio_dialogue_lines",
    "modern_dialogue_lines",
    "line_key",
    "align_lines",
    "AlignedPlay",
    "align_play",
    "spelling_pairs",
    "alignment_report",
    "letters_only",
    "words_only",
    "word_for_word",
    "copy_baseline",
    "WordTable",
    "CharVocab",
]

MIN_SIMILARITY = 0.8  # difflib ratio of two keys for a pair inside a gap
MAX_GAP = 40  # a gap larger than this on either side is left unaligned (e.g. Cymbeline's missing acts)

_FOLIO_SPEAKER = re.compile(r"^\s{2,}[A-Z][A-Za-z']*(?:\s[A-Za-z][A-Za-z']*){0,2}\.\s+(\S.*)$")
_MODERN_SPEAKER = re.compile(r"^[A-Z][A-Za-z']*(?:[ ,][A-Za-z'&]+){0,4}\.$")
_BRACKETS = re.compile(r"\[[^\]]*\]")
_WORD = re.compile(r"[A-Za-z]+(?:['’][A-Za-z]+)*|['’][A-Za-z]+")


def folio_dialogue_lines(text: str) -> list[str]:
    """The Folio text's non-empty lines, speaker prefixes ("  Bra. ") removed, stripped."""
    out = []
    for line in text.splitlines():
        if not line.strip():
            continue
        m = _FOLIO_SPEAKER.match(line)
        out.append((m.group(1) if m else line).strip())
    return out


def modern_dialogue_lines(text: str) -> list[str]:
    """The modern text's spoken lines: blocks between blank lines, the speaker line of a block
    ("Ber.") and [stage directions] removed, stripped, empty lines skipped."""
    out = []
    for block in re.split(r"\n\s*\n", _BRACKETS.sub("", text)):
        lines = [ln.strip() for ln in block.splitlines() if ln.strip()]
        if len(lines) >= 2 and _MODERN_SPEAKER.match(lines[0]):
            lines = lines[1:]
        out.extend(lines)
    return out


def line_key(line: str) -> str:
    """The spelling-blind matching key: lower, & -> and, letters only, v->u j->i y->i, no e, no doubles."""
    s = line.lower().replace("&", "and")
    s = re.sub(r"[^a-z]", "", s).translate(str.maketrans("vjy", "uii")).replace("e", "")
    return re.sub(r"(.)\1+", r"\1", s)


def _similar(a: str, b: str) -> bool:
    # the length test keeps a line from pairing with a longer line that contains it (a merged line)
    if not a or not b or min(len(a), len(b)) < MIN_SIMILARITY * max(len(a), len(b)):
        return False
    sm = difflib.SequenceMatcher(None, a, b, autojunk=False)
    # quick_ratio (shared letters, ignoring order) bounds ratio from above: a cheap first test
    return sm.quick_ratio() >= MIN_SIMILARITY and sm.ratio() >= MIN_SIMILARITY


def _fill_gap(fk: Sequence[str], mk: Sequence[str]) -> list[tuple[int, int]]:
    """Monotone pairs (i, j) of similar keys, as many as possible (an LCS-style dynamic programme)."""
    n, m = len(fk), len(mk)
    ok = [[_similar(fk[i], mk[j]) for j in range(m)] for i in range(n)]
    best = [[0] * (m + 1) for _ in range(n + 1)]  # best[i][j]: most pairs in fk[i:], mk[j:]
    for i in range(n - 1, -1, -1):
        for j in range(m - 1, -1, -1):
            best[i][j] = max(best[i + 1][j], best[i][j + 1], best[i + 1][j + 1] + ok[i][j])
    pairs, i, j = [], 0, 0
    while i < n and j < m:
        if ok[i][j] and best[i][j] == best[i + 1][j + 1] + 1:
            pairs.append((i, j))
            i, j = i + 1, j + 1
        elif best[i][j] == best[i + 1][j]:
            i += 1
        else:
            j += 1
    return pairs


def align_lines(folio: Sequence[str], modern: Sequence[str]) -> list[tuple[int, int]]:
    """Indices (i, j) of aligned lines, increasing in both: anchors of equal keys, then gaps filled."""
    fk = [line_key(s) for s in folio]
    mk = [line_key(s) for s in modern]
    matcher = difflib.SequenceMatcher(None, fk, mk, autojunk=False)
    pairs: list[tuple[int, int]] = []
    i0 = j0 = 0
    for block in matcher.get_matching_blocks():  # the last block is (len(fk), len(mk), 0)
        gi, gj = block.a - i0, block.b - j0
        if 0 < gi <= MAX_GAP and 0 < gj <= MAX_GAP:
            pairs += [(i0 + a, j0 + b) for a, b in _fill_gap(fk[i0:block.a], mk[j0:block.b])]
        pairs += [(block.a + k, block.b + k) for k in range(block.size) if fk[block.a + k]]
        i0, j0 = block.a + block.size, block.b + block.size
    return pairs


@dataclass(frozen=True)
class AlignedPlay:
    """One play's alignment: the pairs, and how many Folio dialogue lines there were."""

    work: str
    pairs: list  # of dicts {"work", "folio", "modern"}
    folio_lines: int
    modern_lines: int

    @property
    def dropped(self) -> int:
        return self.folio_lines - len(self.pairs)

    @property
    def share_aligned(self) -> float:
        return len(self.pairs) / max(self.folio_lines, 1)


def align_play(work_id: str, folio_text: str, modern_text: str) -> AlignedPlay:
    folio, modern = folio_dialogue_lines(folio_text), modern_dialogue_lines(modern_text)
    pairs = [{"work": work_id, "folio": folio[i], "modern": modern[j]} for i, j in align_lines(folio, modern)]
    return AlignedPlay(work_id, pairs, len(folio), len(modern))


_ALIGNED_CACHE: dict[str, list[AlignedPlay]] = {}


def _aligned_plays(split: str, cache_dir=None) -> list[AlignedPlay]:
    from .data import SPLITS, load_shakespeare, split_works

    if split not in SPLITS or split == "poems":
        raise ValueError(f"spelling_pairs: split must be one of 'train', 'validation', 'test', got {split!r}")
    key = f"{cache_dir}:{split}"
    if key not in _ALIGNED_CACHE:
        folio = {w.id: w for w in load_shakespeare(cache_dir, progress=False, first_folio=True)}
        modern = split_works(load_shakespeare(cache_dir, progress=False))[split]
        _ALIGNED_CACHE[key] = [align_play(w.id, folio[w.id].text, w.text) for w in modern if w.id in folio]
    return _ALIGNED_CACHE[key]


def spelling_pairs(split: str, cache_dir=None) -> list[dict]:
    """Aligned (Folio, modern) line pairs of the plays of ``split`` ("train", "validation", "test",
    as in ``data.split_works``): a list of ``{"work", "folio", "modern"}`` in play and line order."""
    return [p for play in _aligned_plays(split, cache_dir) for p in play.pairs]


def alignment_report(split: str, cache_dir=None) -> list[dict]:
    """Per play: ``work``, ``folio_lines``, ``aligned``, ``dropped``, ``share`` (aligned / folio_lines)."""
    return [{"work": p.work, "folio_lines": p.folio_lines, "aligned": len(p.pairs), "dropped": p.dropped,
             "share": p.share_aligned} for p in _aligned_plays(split, cache_dir)]


# ------------------------------------------------------------------------------------ clean training pairs


def _word_alignment(pair: dict) -> tuple[list[str], list[str], list[tuple]]:
    """The words of the pair's two lines and ``difflib``'s opcodes over their ``line_key``s."""
    fw, mw = _WORD.findall(pair["folio"]), _WORD.findall(pair["modern"])
    ops = difflib.SequenceMatcher(None, [line_key(w) for w in fw], [line_key(w) for w in mw],
                                  autojunk=False).get_opcodes()
    return fw, mw, ops


def _one_to_one(tag: str, a0: int, a1: int, b0: int, b1: int) -> bool:
    """An opcode whose words pair one to one: equal words, or a replaced run of equal length."""
    return tag == "equal" or (tag == "replace" and a1 - a0 == b1 - b0)


def word_for_word(pair: dict) -> bool:
    """True when the pair's two lines have the same words one for one: equally many words, and
    ``difflib`` over their ``line_key``s finds only equal words or replaced runs of equal length.

    A pair can pass the line alignment (keys >= ``MIN_SIMILARITY`` alike) and still not say the same
    words: prose lines broken at another word ("which being dead ... to" | "being dead ... to the"), a
    speaker prefix left in the Folio line ("Du.Sen. I thinke"), a word the editor added. Trained on such
    pairs, a model learns to drop and invent words; the chapter trains on the pairs that pass (about 88%
    of the training pairs) and scores on all test pairs.
    """
    fw, mw, ops = _word_alignment(pair)
    return bool(fw) and len(fw) == len(mw) and all(_one_to_one(*op) for op in ops)


# ------------------------------------------------------------------------------------ views


def letters_only(text: str) -> str:
    """The letters of ``text``, case kept: punctuation, digits and whitespace removed."""
    return "".join(c for c in text if c.isalpha())


def words_only(text: str) -> str:
    """``text`` without punctuation, its words separated by single spaces (the letters-only view of
    word accuracy): "Nay, answer me: stand" -> "Nay answer me stand"."""
    return " ".join("".join(c for c in w if c.isalpha()) for w in text.split() if any(c.isalpha() for c in w))


# ------------------------------------------------------------------------------------ baselines


def copy_baseline(folio_lines: Iterable[str]) -> list[str]:
    """Predict the input unchanged: the error left when nothing is modernised."""
    return list(folio_lines)


class WordTable:
    """Replace each Folio word by its most frequent modern form in the training pairs.

    Learning: in each pair, the words of the two lines are aligned with ``difflib`` on their
    ``line_key``s; words in 'equal' runs and in 'replace' runs of equal length are paired one to one
    ("Haue" -> "Have", "vnfold" -> "unfold"). Applying: each word of the input is looked up as written,
    else lower-cased (the modern form then takes the input's capital), else kept; punctuation and
    spaces are kept as they are.
    """

    def __init__(self, table: dict[str, str]):
        self.table = dict(table)

    @classmethod
    def fit(cls, pairs: Iterable[dict]) -> "WordTable":
        counts: dict[str, Counter] = defaultdict(Counter)
        for p in pairs:
            fw, mw, ops = _word_alignment(p)
            for tag, a0, a1, b0, b1 in ops:
                if _one_to_one(tag, a0, a1, b0, b1):
                    for a, b in zip(range(a0, a1), range(b0, b1)):
                        counts[fw[a]][mw[b]] += 1
        # ties broken by the modern form's first appearance order is arbitrary; sort for determinism
        return cls({f: max(sorted(c), key=c.__getitem__) for f, c in counts.items()})

    def __len__(self) -> int:
        return len(self.table)

    def _word(self, w: str) -> str:
        if w in self.table:
            return self.table[w]
        low = self.table.get(w.lower())
        if low is not None:
            return low[:1].upper() + low[1:] if w[:1].isupper() else low
        return w

    def __call__(self, line: str) -> str:
        return _WORD.sub(lambda m: self._word(m.group(0)), line)

    def predict(self, lines: Iterable[str]) -> list[str]:
        return [self(s) for s in lines]


# ------------------------------------------------------------------------------------ characters as ids


class CharVocab:
    """Characters <-> ids for the character-level model: 0 = PAD, 1 = BOS, 2 = EOS, 3 = UNK (a character
    never seen in training), then the characters of ``texts`` in sorted order. One table for both
    sides, so that source and target can share their embeddings (most characters are copied)."""

    PAD, BOS, EOS, UNK = 0, 1, 2, 3

    def __init__(self, texts: Iterable[str]):
        self.chars = sorted(set().union(*map(set, texts)))
        self.index = {c: i + 4 for i, c in enumerate(self.chars)}

    def __len__(self) -> int:
        return len(self.chars) + 4

    def encode(self, text: str, eos: bool = False) -> list[int]:
        return [self.index.get(c, self.UNK) for c in text] + ([self.EOS] if eos else [])

    def decode(self, ids: Iterable[int]) -> str:
        """ids -> text, stopping at EOS (PAD and BOS skipped; UNK shown as '?')."""
        out = []
        for i in ids:
            i = int(i)
            if i == self.EOS:
                break
            if i >= 4:
                out.append(self.chars[i - 4])
            elif i == self.UNK:
                out.append("?")
        return "".join(out)

    def batch(self, texts: Sequence[str], bos: bool = False, eos: bool = False):
        """Right-padded ids (B, L) and mask (B, L), True = real token; optional BOS first / EOS last."""
        import torch

        rows = [([self.BOS] if bos else []) + self.encode(t, eos) for t in texts]
        L = max(len(r) for r in rows)
        ids = torch.full((len(rows), L), self.PAD, dtype=torch.long)
        for i, r in enumerate(rows):
            ids[i, :len(r)] = torch.tensor(r, dtype=torch.long)
        return ids, ids != self.PAD
