"""Tokenizers: text -> integer ids -> text.

Two tokenizers, from the simplest to the one GPT-2 uses:

- ``CharTokenizer``: one id per distinct character of the training text. Tiny vocabulary, long
  sequences, and it cannot encode a character it never saw.
- ``BPETokenizer``: byte-level byte-pair encoding exactly as GPT-2 (Radford et al., 2019):

  1. text -> UTF-8 bytes, so *every* string is representable with a base vocabulary of 256;
  2. each byte is shown as a printable unicode character (``bytes_to_unicode``) so that tokens
     are readable strings (a space is ``Ġ``, a newline ``Ċ``) and vocab files are plain text;
  3. a regex splits text into pre-tokens (words with their leading space, numbers, punctuation
     runs, whitespace runs) so merges never cross a word boundary;
  4. inside each pre-token, merges learned in training are applied lowest rank first.

  Training is the classic greedy algorithm (Sennrich et al., 2016): count every adjacent pair of
  tokens over all pre-tokens (weighted by how often the pre-token occurs), merge the most
  frequent pair into a new token, repeat until the vocabulary has ``vocab_size`` entries.

  ``save``/``load`` use GPT-2's own file format (``vocab.json`` + ``merges.txt``), so the files
  load into HF ``tokenizers`` / ``transformers`` unchanged, and ``to_hf()`` builds the equivalent
  ``tokenizers.Tokenizer`` directly; the tests check both give identical ids.
"""

from __future__ import annotations

import heapq
import json
from collections import defaultdict
from collections.abc import Collection, Iterable, Sequence
from functools import lru_cache
from pathlib import Path
from typing import Literal

import regex

# GPT-2's pre-tokenizer (encoder.py in openai/gpt-2). In words: the English contractions;
# an optional space + letters; an optional space + digits; an optional space + a run of
# everything else that is not whitespace; whitespace not followed by a non-space (so that
# "   word" leaves the last space to be glued to "word"); any remaining whitespace.
GPT2_SPLIT_PATTERN = r"""'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+"""

MERGES_HEADER = "#version: 0.2"
DEFAULT_SPECIAL_TOKENS = ("<|endoftext|>",)


# --------------------------------------------------------------------------------------------
# Characters
# --------------------------------------------------------------------------------------------

class CharTokenizer:
    """One id per character: ``id = position of the character in the sorted character set``.

    >>> tok = CharTokenizer.fit("hello")
    >>> tok.encode("hole"), tok.decode([1, 3])
    ([1, 3, 2, 0], 'ho')
    """

    FILE_NAME = "char_tokenizer.json"

    def __init__(self, chars: Sequence[str]):
        chars = list(chars)
        bad = [c for c in chars if not isinstance(c, str) or len(c) != 1]
        if bad:
            raise ValueError(f"CharTokenizer needs single characters, got {bad[:5]!r}")
        if len(set(chars)) != len(chars):
            raise ValueError("CharTokenizer: the character list has duplicates")
        self.chars = chars
        self.stoi = {c: i for i, c in enumerate(chars)}

    @classmethod
    def fit(cls, text: str) -> CharTokenizer:
        """The vocabulary is the sorted set of characters in ``text`` (sorted: deterministic)."""
        if not isinstance(text, str) or not text:
            raise ValueError("CharTokenizer.fit needs a non-empty string to take its characters from")
        return cls(sorted(set(text)))

    @property
    def vocab_size(self) -> int:
        return len(self.chars)

    def encode(self, text: str) -> list[int]:
        try:
            return [self.stoi[c] for c in text]
        except KeyError:
            pos = next(i for i, c in enumerate(text) if c not in self.stoi)
            c = text[pos]
            raise ValueError(
                f"character {c!r} (U+{ord(c):04X}) at position {pos} is not in this CharTokenizer's "
                f"vocabulary of {self.vocab_size} characters; fit the tokenizer on text that contains "
                f"it, or use BPETokenizer, which can encode any string"
            ) from None

    def encode_batch(self, texts: Sequence[str]) -> list[list[int]]:
        """``[encode(t) for t in texts]``, as a table lookup on the code points (numpy): ~50x faster
        on the millions of characters of the corpus. The same error as ``encode`` for an unknown one."""
        import numpy as np

        table = np.full(max(map(ord, self.chars)) + 1, -1, dtype=np.int64)
        table[[ord(c) for c in self.chars]] = np.arange(len(self.chars))
        out = []
        for text in texts:
            codes = np.frombuffer(text.encode("utf-32-le"), dtype=np.uint32).astype(np.int64)
            ids = table[np.minimum(codes, len(table) - 1)]
            if (ids < 0).any() or (codes >= len(table)).any():
                self.encode(text)  # raises the error that names the character
            out.append(ids.tolist())
        return out

    def decode(self, ids: Iterable[int]) -> str:
        ids = [int(i) for i in ids]
        bad = [i for i in ids if not 0 <= i < self.vocab_size]
        if bad:
            raise ValueError(f"ids {bad[:5]} are outside this CharTokenizer's vocabulary [0, {self.vocab_size})")
        return "".join(self.chars[i] for i in ids)

    def save(self, directory: str | Path) -> Path:
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        path = directory / self.FILE_NAME
        path.write_text(json.dumps({"type": "char", "chars": self.chars}, ensure_ascii=False), encoding="utf-8")
        return path

    @classmethod
    def load(cls, directory: str | Path) -> CharTokenizer:
        path = Path(directory) / cls.FILE_NAME
        if not path.is_file():
            raise FileNotFoundError(f"no {cls.FILE_NAME} in {directory}: save a CharTokenizer there first")
        return cls(json.loads(path.read_text(encoding="utf-8"))["chars"])

    def __repr__(self) -> str:
        return f"CharTokenizer(vocab_size={self.vocab_size})"


# --------------------------------------------------------------------------------------------
# Bytes
# --------------------------------------------------------------------------------------------

@lru_cache
def bytes_to_unicode() -> dict[int, str]:
    """GPT-2's reversible map byte (0..255) -> a printable unicode character.

    Bytes that are already printable and not whitespace (``!``..``~``, ``¡``..``¬``, ``®``..``ÿ``)
    map to themselves; the other 68 (controls, space, ``\\xad``...) are shifted to 256, 257, ...
    in byte order. So a space (byte 32) is ``Ġ`` (U+0120) and a newline (10) is ``Ċ`` (U+010A).
    The insertion order of the dict (printables first) is also GPT-2's id order of the 256 base
    tokens, which equals sorting the characters by code point.
    """
    bs = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1)) + list(range(ord("®"), ord("ÿ") + 1))
    cs = bs[:]
    n = 0
    for b in range(256):
        if b not in bs:
            bs.append(b)
            cs.append(256 + n)
            n += 1
    return {b: chr(c) for b, c in zip(bs, cs)}


def _byte_decoder() -> dict[str, int]:
    return {c: b for b, c in bytes_to_unicode().items()}


# --------------------------------------------------------------------------------------------
# Byte-level BPE
# --------------------------------------------------------------------------------------------

AllowedSpecial = Literal["all", "none"] | Collection[str]


class BPETokenizer:
    """Byte-level BPE (GPT-2).

    State: ``vocab`` (token string -> id, tokens written with ``bytes_to_unicode`` characters),
    ``merges`` (list of pairs; the index in the list is the merge's *rank*, lower = learned
    earlier = applied first) and ``special_tokens`` (strings such as ``<|endoftext|>`` that are
    encoded as one id and never split).

    Encoding one pre-token (GPT-2's ``bpe()``): start from its byte characters; while some
    adjacent pair is in the merge table, take the pair of lowest rank and merge every occurrence
    of it, left to right. Results are cached per pre-token, since natural text repeats words.
    """

    CACHE_LIMIT = 1 << 18  # pre-tokens kept in the cache before it is cleared

    def __init__(self, vocab: dict[str, int], merges: Sequence[tuple[str, str]],
                 special_tokens: Sequence[str] = DEFAULT_SPECIAL_TOKENS):
        self.byte_encoder = bytes_to_unicode()
        self.byte_decoder = _byte_decoder()
        self.vocab: dict[str, int] = dict(vocab)
        self.merges: list[tuple[str, str]] = [tuple(m) for m in merges]
        self._check_vocab_and_merges()
        self.special_tokens: list[str] = []
        for s in special_tokens:
            if s not in self.vocab:  # a special token missing from the vocab gets the next free id
                self.vocab[s] = max(self.vocab.values(), default=-1) + 1
            self.special_tokens.append(s)
        self.id_to_str: dict[int, str] = {i: t for t, i in self.vocab.items()}
        if len(self.id_to_str) != len(self.vocab):
            raise ValueError("vocab maps two tokens to the same id; every id must be used once")
        self.ranks: dict[tuple[str, str], int] = {m: r for r, m in enumerate(self.merges)}
        self.pattern = regex.compile(GPT2_SPLIT_PATTERN)
        self._special_set = set(self.special_tokens)
        self._cache: dict[str, tuple[int, ...]] = {}
        self._hf = None  # the HF tokenizer encode_batch builds once
        self._special_splitters: dict[tuple[str, ...], regex.Pattern] = {}

    def _check_vocab_and_merges(self) -> None:
        missing = [c for c in self.byte_encoder.values() if c not in self.vocab]
        if missing:
            raise ValueError(f"a byte-level vocab must contain all 256 byte characters; missing {missing[:5]!r}")
        for rank, (a, b) in enumerate(self.merges):
            for part in (a, b, a + b):
                if part not in self.vocab:
                    raise ValueError(f"merge #{rank} ({a!r}, {b!r}) uses {part!r}, which is not in the vocab")

    # ---- sizes and lookups ----------------------------------------------------------------
    @property
    def vocab_size(self) -> int:
        return len(self.vocab)

    def token_to_id(self, token: str) -> int:
        """Id of a token written in byte-level characters (``"Ġthe"``) or of a special token."""
        try:
            return self.vocab[token]
        except KeyError:
            raise KeyError(f"token {token!r} is not in the vocabulary (tokens are written with "
                           f"bytes_to_unicode characters: a leading space is 'Ġ')") from None

    def id_to_token(self, id: int) -> str:
        try:
            return self.id_to_str[int(id)]
        except KeyError:
            raise KeyError(f"id {id} is not in the vocabulary of {self.vocab_size} tokens") from None

    def token_bytes(self, id: int) -> bytes:
        """The bytes a token stands for (a special token: its UTF-8 spelling)."""
        tok = self.id_to_token(id)
        if tok in self._special_set:
            return tok.encode("utf-8")
        return bytes(self.byte_decoder[c] for c in tok)

    @property
    def eos_id(self) -> int | None:
        return self.vocab.get("<|endoftext|>")

    # ---- encoding ----------------------------------------------------------------------------
    def bpe(self, word: str) -> list[str]:
        """Merge the byte characters of one pre-token by rank (lowest first), as GPT-2's ``bpe()``."""
        parts = list(word)
        while len(parts) > 1:
            # the adjacent pair learned earliest; unknown pairs rank +infinity
            best = min(zip(parts, parts[1:]), key=lambda p: self.ranks.get(p, float("inf")))
            if best not in self.ranks:
                break
            first, second = best
            merged, i = [], 0
            while i < len(parts):
                if i < len(parts) - 1 and parts[i] == first and parts[i + 1] == second:
                    merged.append(first + second)
                    i += 2
                else:
                    merged.append(parts[i])
                    i += 1
            parts = merged
        return parts

    def _encode_ordinary(self, text: str) -> list[int]:
        ids: list[int] = []
        cache, vocab, enc = self._cache, self.vocab, self.byte_encoder
        for piece in self.pattern.findall(text):
            hit = cache.get(piece)
            if hit is None:
                word = "".join(enc[b] for b in piece.encode("utf-8"))
                hit = tuple(vocab[t] for t in self.bpe(word))
                if len(cache) >= self.CACHE_LIMIT:
                    cache.clear()
                cache[piece] = hit
            ids.extend(hit)
        return ids

    def _allowed_specials(self, allowed_special: AllowedSpecial) -> list[str]:
        if allowed_special == "all":
            return self.special_tokens
        if allowed_special == "none":
            return []
        if isinstance(allowed_special, str):
            raise ValueError(f"allowed_special must be 'all', 'none' or a collection of special "
                             f"tokens, got the string {allowed_special!r}")
        unknown = set(allowed_special) - self._special_set
        if unknown:
            raise ValueError(f"allowed_special names {sorted(unknown)}, which are not special tokens of "
                             f"this tokenizer ({self.special_tokens})")
        return [s for s in self.special_tokens if s in allowed_special]

    def encode(self, text: str, allowed_special: AllowedSpecial = "all") -> list[int]:
        """Text -> ids.

        Special tokens listed in ``allowed_special`` (default ``"all"``, like HF ``tokenizers``)
        are cut out first and become one id each; any other text, including a special token's
        spelling when it is not allowed (``allowed_special="none"``), is encoded as plain bytes.
        """
        if not isinstance(text, str):
            raise TypeError(f"encode takes a str, got {type(text).__name__}; decode bytes as UTF-8 first")
        specials = self._allowed_specials(allowed_special)
        if not specials:
            return self._encode_ordinary(text)
        key = tuple(specials)
        split = self._special_splitters.get(key)
        if split is None:  # longest first, so that a special token that contains another wins
            split = regex.compile("(" + "|".join(regex.escape(s) for s in sorted(specials, key=len, reverse=True)) + ")")
            self._special_splitters[key] = split
        ids: list[int] = []
        for i, chunk in enumerate(split.split(text)):
            if i % 2:  # odd chunks are the separators, i.e. the special tokens
                ids.append(self.vocab[chunk])
            elif chunk:
                ids.extend(self._encode_ordinary(chunk))
        return ids

    def encode_batch(self, texts: Sequence[str]) -> list[list[int]]:
        """``[encode(t) for t in texts]`` through the equivalent HF ``tokenizers`` tokenizer (Rust:
        the same ids, tested in test_tokenizer, in a fraction of the time)."""
        if self._hf is None:
            self._hf = self.to_hf()
        return [enc.ids for enc in self._hf.encode_batch(list(texts))]

    def decode(self, ids: Iterable[int], errors: str = "replace") -> str:
        """Ids -> bytes -> text. A slice of ids may end inside a multi-byte character: such bytes
        are shown as U+FFFD with the default ``errors="replace"`` (``"strict"`` raises)."""
        return b"".join(self.token_bytes(i) for i in ids).decode("utf-8", errors=errors)

    # ---- training ----------------------------------------------------------------------------
    @classmethod
    def train(cls, text: str | Iterable[str], vocab_size: int,
              special_tokens: Sequence[str] = DEFAULT_SPECIAL_TOKENS, progress: bool = True) -> BPETokenizer:
        """Learn ``vocab_size - 256 - len(special_tokens)`` merges from ``text``.

        Ids: 0..255 are the byte characters in GPT-2's order, then one id per merge in the order
        learned, then the special tokens (GPT-2 puts ``<|endoftext|>`` last too).

        Algorithm: pre-tokenize, count each distinct pre-token once with its frequency, count
        adjacent pairs weighted by frequency. Then repeat: pop the most frequent pair from a heap,
        merge it in the pre-tokens that contain it (an index pair -> pre-tokens says which), and
        update the pair counts of only those pre-tokens (subtract their old pairs, add their new
        ones). Counts of old pairs only go down, so the heap is lazy: a popped entry whose count is
        stale is pushed back with the current count.

        Ties: among pairs of equal count the one with the smallest ``(left id, right id)`` wins,
        i.e. the pair whose tokens are oldest (bytes before merges, earlier merges first). This is
        the rule of HF ``tokenizers``' BPE trainer too, whose ids are ordered the same way.

        Special tokens found in ``text`` are removed before counting, so no merge spans them.
        """
        special_tokens = list(special_tokens)
        num_merges = vocab_size - 256 - len(special_tokens)
        if num_merges < 0:
            raise ValueError(f"vocab_size={vocab_size} is smaller than the 256 byte tokens plus "
                             f"{len(special_tokens)} special tokens; ask for at least {256 + len(special_tokens)}")
        texts = [text] if isinstance(text, str) else list(text)
        pattern = regex.compile(GPT2_SPLIT_PATTERN)
        splitter = (regex.compile("|".join(regex.escape(s) for s in special_tokens)) if special_tokens else None)
        piece_counts: dict[str, int] = defaultdict(int)
        for t in texts:
            for chunk in (splitter.split(t) if splitter else [t]):
                for piece in pattern.findall(chunk):
                    piece_counts[piece] += 1

        byte_encoder = bytes_to_unicode()
        base_tokens = list(byte_encoder.values())  # id -> byte character, GPT-2 order
        byte_to_id = {b: base_tokens.index(c) for b, c in byte_encoder.items()}
        words = [[byte_to_id[b] for b in piece.encode("utf-8")] for piece in piece_counts]
        freqs = list(piece_counts.values())
        pair_ids = _learn_merges(words, freqs, num_merges, first_id=256, progress=progress)

        id_to_token = base_tokens[:]
        merges = []
        for a, b in pair_ids:
            merges.append((id_to_token[a], id_to_token[b]))
            id_to_token.append(id_to_token[a] + id_to_token[b])
        vocab = {t: i for i, t in enumerate(id_to_token)}
        for s in special_tokens:
            vocab[s] = len(vocab)
        return cls(vocab, merges, special_tokens)

    @classmethod
    def train_fast(cls, text: str | Iterable[str], vocab_size: int,
                   special_tokens: Sequence[str] = DEFAULT_SPECIAL_TOKENS, progress: bool = False) -> BPETokenizer:
        """The fast path: train with HF ``tokenizers`` (Rust, multi-threaded) and return our
        tokenizer with its vocab and merges. Same pre-tokenizer, same byte alphabet; HF puts the
        special tokens first (ids 0..), then the 256 bytes, then the merges; the ids are renumbered
        here into :meth:`train`'s order (bytes, merges in the order learned, special tokens last), so
        both give the same ids for the same text and size."""
        from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

        texts = [text] if isinstance(text, str) else list(text)
        tok = Tokenizer(models.BPE())
        tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True)
        tok.decoder = decoders.ByteLevel()
        trainer = trainers.BpeTrainer(vocab_size=vocab_size, special_tokens=list(special_tokens),
                                      initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
                                      min_frequency=0, show_progress=progress)
        tok.train_from_iterator(texts, trainer=trainer)
        learned = cls.from_hf(tok, special_tokens)
        order = list(bytes_to_unicode().values()) + [a + b for a, b in learned.merges] + list(learned.special_tokens)
        return cls({t: i for i, t in enumerate(order)}, learned.merges, learned.special_tokens)

    @classmethod
    def from_hf(cls, hf_tokenizer, special_tokens: Sequence[str] | None = None) -> BPETokenizer:
        """Our tokenizer from a byte-level BPE ``tokenizers.Tokenizer`` (same vocab and merges)."""
        model = json.loads(hf_tokenizer.to_str())["model"]
        if model.get("type") != "BPE":
            raise ValueError(f"expected a BPE model, got {model.get('type')!r}")
        merges = [tuple(m.split(" ")) if isinstance(m, str) else tuple(m) for m in model["merges"]]
        vocab = hf_tokenizer.get_vocab(with_added_tokens=True)
        if special_tokens is None:
            special_tokens = [t.content for t in hf_tokenizer.get_added_tokens_decoder().values() if t.special]
        return cls(vocab, merges, special_tokens)

    def to_hf(self):
        """The same tokenizer as a ``tokenizers.Tokenizer`` (ByteLevel pre-tokenizer with
        ``add_prefix_space=False, use_regex=True``, BPE model with our vocab and merges,
        ByteLevel decoder, our special tokens)."""
        from tokenizers import Tokenizer, decoders, models, pre_tokenizers

        tok = Tokenizer(models.BPE(vocab=dict(self.vocab), merges=list(self.merges)))
        tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True)
        tok.decoder = decoders.ByteLevel()
        if self.special_tokens:
            tok.add_special_tokens(list(self.special_tokens))
        return tok

    # ---- files -------------------------------------------------------------------------------
    def save(self, directory: str | Path) -> tuple[Path, Path]:
        """Write GPT-2's ``vocab.json`` (token -> id, special tokens included) and ``merges.txt``
        (``#version: 0.2`` then one ``left right`` pair per line, by rank)."""
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        vocab_path, merges_path = directory / "vocab.json", directory / "merges.txt"
        vocab_path.write_text(json.dumps(self.vocab, ensure_ascii=False), encoding="utf-8")
        merges_path.write_text("\n".join([MERGES_HEADER] + [f"{a} {b}" for a, b in self.merges]) + "\n",
                               encoding="utf-8")
        return vocab_path, merges_path

    @classmethod
    def load(cls, directory: str | Path, special_tokens: Sequence[str] | None = None) -> BPETokenizer:
        """Read ``vocab.json`` + ``merges.txt`` (ours, GPT-2's or HF's). Special tokens default to
        the vocab entries that are neither a byte nor the result of a merge (``<|endoftext|>`` in
        GPT-2's files)."""
        directory = Path(directory)
        vocab_path, merges_path = directory / "vocab.json", directory / "merges.txt"
        for p in (vocab_path, merges_path):
            if not p.is_file():
                raise FileNotFoundError(f"{p} does not exist: a BPE tokenizer directory holds vocab.json "
                                        f"and merges.txt (write them with BPETokenizer.save)")
        vocab = json.loads(vocab_path.read_text(encoding="utf-8"))
        merges = []
        for n, line in enumerate(merges_path.read_text(encoding="utf-8").split("\n"), start=1):
            if not line or line.startswith("#version"):
                continue
            parts = line.split(" ")
            if len(parts) != 2:
                raise ValueError(f"{merges_path}:{n}: expected two tokens separated by one space, got {line!r}")
            merges.append((parts[0], parts[1]))
        if special_tokens is None:
            regular = set(bytes_to_unicode().values()) | {a + b for a, b in merges}
            special_tokens = [t for t, _ in sorted(vocab.items(), key=lambda kv: kv[1]) if t not in regular]
        return cls(vocab, merges, special_tokens)

    def __repr__(self) -> str:
        return (f"BPETokenizer(vocab_size={self.vocab_size}, merges={len(self.merges)}, "
                f"special_tokens={self.special_tokens})")


def _learn_merges(words: list[list[int]], freqs: list[int], num_merges: int, first_id: int,
                  progress: bool = True) -> list[tuple[int, int]]:
    """Greedy BPE on integer words: return up to ``num_merges`` pairs, the k-th becoming id
    ``first_id + k``. ``words[i]`` (a list of ids) occurs ``freqs[i]`` times. ``words`` is merged in
    place. Stops early when no pair is left (every word is a single token)."""
    pair_counts: dict[tuple[int, int], int] = defaultdict(int)
    where: dict[tuple[int, int], set[int]] = defaultdict(set)  # pair -> words that may contain it
    for i, (w, f) in enumerate(zip(words, freqs)):
        for pair in zip(w, w[1:]):
            pair_counts[pair] += f
            where[pair].add(i)
    # max-heap by count, ties to the smallest (a, b): heapq is a min-heap, so store -count
    heap = [(-c, a, b) for (a, b), c in pair_counts.items()]
    heapq.heapify(heap)

    bar = None
    if progress:
        from tqdm.auto import tqdm
        bar = tqdm(total=num_merges, desc="BPE merges", unit="merge")
    merges: list[tuple[int, int]] = []
    new_id = first_id
    while len(merges) < num_merges and heap:
        neg, a, b = heapq.heappop(heap)
        count = pair_counts.get((a, b), 0)
        if count != -neg:  # stale entry: the pair lost occurrences since it was pushed
            if count > 0:
                heapq.heappush(heap, (-count, a, b))
            continue
        merges.append((a, b))
        touched: set[tuple[int, int]] = set()
        for i in where.pop((a, b)):
            w = words[i]
            if len(w) < 2:
                continue
            merged, j = [], 0
            while j < len(w):
                if j < len(w) - 1 and w[j] == a and w[j + 1] == b:
                    merged.append(new_id)
                    j += 2
                else:
                    merged.append(w[j])
                    j += 1
            if len(merged) == len(w):  # the pair is no longer in this word
                continue
            f = freqs[i]
            for pair in zip(w, w[1:]):
                pair_counts[pair] -= f
            for pair in zip(merged, merged[1:]):
                pair_counts[pair] += f
                if new_id in pair:  # only pairs with the new token are new
                    where[pair].add(i)
                    touched.add(pair)
            words[i] = merged
        del pair_counts[(a, b)]
        for pair in sorted(touched):
            if pair_counts[pair] > 0:
                heapq.heappush(heap, (-pair_counts[pair], *pair))
        new_id += 1
        if bar is not None:
            bar.update(1)
    if bar is not None:
        bar.close()
    return merges


# --------------------------------------------------------------------------------------------
# Identity
# --------------------------------------------------------------------------------------------

def tokenizer_info(tokenizer) -> dict:
    """What identifies a tokenizer: its type, vocabulary size and a hash of its vocabulary."""
    import hashlib

    if isinstance(tokenizer, CharTokenizer):
        kind, content = "char", tokenizer.chars
    elif isinstance(tokenizer, BPETokenizer):
        kind, content = "bpe", [sorted(tokenizer.vocab.items()), [list(m) for m in tokenizer.merges]]
    else:
        raise TypeError(f"unknown tokenizer type {type(tokenizer).__name__}")
    digest = hashlib.sha256(json.dumps(content, ensure_ascii=False).encode()).hexdigest()[:16]
    return {"type": kind, "vocab_size": tokenizer.vocab_size, "vocab_sha256": digest}
