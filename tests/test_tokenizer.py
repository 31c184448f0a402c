"""Tokenizers against independent references: HF ``tokenizers`` (same vocab and merges -> same ids),
``transformers.GPT2TokenizerFast`` reading our files, GPT-2's own byte map, a hand-worked BPE example."""

from __future__ import annotations

import json

import pytest
import tokenizers
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from llm_from_scratch.tokenizer import (
    GPT2_SPLIT_PATTERN,
    BPETokenizer,
    CharTokenizer,
    bytes_to_unicode,
)

# Strings that have tripped byte-level tokenizers: whitespace runs and every unicode space, control
# characters, contractions, combining marks, emoji with ZWJ and skin tones, CJK, RTL, digits of
# other scripts, invalid-looking surrogate-free code points, and the special token inside words.
ADVERSARIAL = [
    "",
    " ",
    "   ",
    "\n",
    "\n\n\n",
    "a  b   c    d",
    "   leading and trailing   ",
    "\t\ttabs\tand\r\nwindows\rlines\n",
    "\x00\x01\x02\x1b[31mred\x1b[0m\x7f",
    "\x1c\x1d\x1e\x1f\x85\xa0\u1680\u2000\u2007\u200a\u2028\u2029\u202f\u205f\u3000 mixed spaces",
    "\u200b\u200c\u200d\ufeff zero width",
    "I'm, you're, he's, we've, they'll, I'd, can't; 'S 'T 'RE 'LL (upper case)",
    "''''s 'x' rock'n'roll",
    "café naïve coöperate e\u0301 a\u0308\u0304",
    "😀 👍🏽 👨‍👩‍👧‍👦 🏳️‍🌈 🇫🇷 ❤️",
    "中文字符和标点。日本語のテキスト、한국어 텍스트",
    "עברית العربية Ελληνικά русский हिन्दी ไทย",
    "٣٤٥ ४५६ ⅷ ½ ² 1234567890 3.14159 1e-10 -42",
    "<|endoftext|>",
    "a<|endoftext|>b <|endoftext|> <|endoftext|><|endoftext|>",
    "<|endoftext|",
    "\U0010ffff\U000e0001\ue000 private use and tags",
    "!!!???...---___***   $$$ @@@ ###",
    "x" * 300,
    " the the the the the",
]


@pytest.fixture(scope="module")
def corpus(shakespeare):
    """The corpus (tests/conftest.py): a missing corpus fails with its one-line error, it is not skipped."""
    return shakespeare


@pytest.fixture(scope="module")
def small_tok(corpus):
    """Our own trainer on a 1 MB slice: 1000 tokens (743 merges)."""
    text = "".join(w.text for w in corpus)[:1_000_000]
    return BPETokenizer.train(text, 1000, progress=False)


# ---- the byte map and the pre-tokenizer ----------------------------------------------------------

def test_bytes_to_unicode_matches_gpt2():
    from transformers.convert_slow_tokenizer import bytes_to_unicode as hf_bytes_to_unicode

    ours = bytes_to_unicode()
    assert ours == hf_bytes_to_unicode()
    assert set(ours.values()) == set(tokenizers.pre_tokenizers.ByteLevel.alphabet())
    assert len(set(ours.values())) == 256
    assert all(c.isprintable() and not c.isspace() for c in ours.values())
    assert ours[ord(" ")] == "Ġ" and ours[ord("\n")] == "Ċ" and ours[ord("A")] == "A"
    # the 256 base ids in GPT-2 order == the byte characters sorted by code point (HF's order)
    assert list(ours.values()) == sorted(ours.values())


@pytest.mark.parametrize("text", ADVERSARIAL[:18])
def test_pre_tokenizer_matches_hf_bytelevel(text):
    import regex

    ours = regex.findall(GPT2_SPLIT_PATTERN, text)
    assert "".join(ours) == text  # the pattern covers every character
    enc = bytes_to_unicode()
    ours_bl = ["".join(enc[b] for b in piece.encode("utf-8")) for piece in ours]
    hf = tokenizers.pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True)
    assert ours_bl == [piece for piece, _ in hf.pre_tokenize_str(text)]


# ---- training --------------------------------------------------------------------------------------

def test_hand_worked_merge_order():
    # "aaabdaaabac" (the textbook example): pair counts aa:4, ab:2, bd:1, da:1, ba:1, ac:1.
    # 1. merge (a, a) -> "aa a b d aa a b a c": pairs (aa, a):2, (a, b):2, ...
    # 2. tie at 2: (a, b) has ids (64, 65) < (256, 64) of (aa, a), so (a, b) wins -> "aa ab d aa ab a c"
    # 3. (aa, ab):2 is now the most frequent -> "aaab d aaab a c"
    tok = BPETokenizer.train("aaabdaaabac", 256 + 3 + 1, progress=False)
    assert tok.merges == [("a", "a"), ("a", "b"), ("aa", "ab")]
    assert [tok.id_to_token(i) for i in tok.encode("aaabdaaabac")] == ["aaab", "d", "aaab", "a", "c"]
    assert tok.vocab_size == 260
    assert tok.token_to_id("aaab") == 258 and tok.token_to_id("<|endoftext|>") == 259
    # a word of one repeated byte merges left to right, GPT-2's bpe(): "aaa" -> "aa" + "a"
    assert [tok.id_to_token(i) for i in tok.encode("aaa")] == ["aa", "a"]


def test_train_counts_words_not_across_pre_tokens():
    # "ab ab ab": pre-tokens "ab", " ab", " ab"; the pair (b, " ") never exists, (Ġ, a) twice, (a, b) thrice
    tok = BPETokenizer.train("ab ab ab", 256 + 2 + 1, progress=False)
    assert tok.merges == [("a", "b"), ("Ġ", "ab")]


def test_train_matches_hf_trainer_on_a_slice(corpus):
    # Not required by the contract, but our tie-break (smallest id pair) is HF's rule, and HF's ids
    # are ours shifted by the number of special tokens, so both trainers learn the same merges.
    text = "".join(w.text for w in corpus)[:300_000]
    ours = BPETokenizer.train(text, 600, progress=False)
    fast = BPETokenizer.train_fast(text, 600)
    assert len(ours.merges) == 600 - 257
    assert ours.merges == fast.merges


def test_train_rejects_a_too_small_vocab():
    with pytest.raises(ValueError, match="at least 257"):
        BPETokenizer.train("hello", 100, progress=False)


def test_train_stops_when_nothing_is_left_to_merge():
    tok = BPETokenizer.train("ab", 1000, progress=False)
    assert tok.merges == [("a", "b")] and tok.vocab_size == 256 + 1 + 1


def test_special_tokens_are_not_learned_from_text():
    tok = BPETokenizer.train("<|endoftext|>" * 50 + "hello", 300, progress=False)
    assert not any("endoftext" in a + b for a, b in tok.merges)


# ---- encoding: round trip and equality with tokenizers ---------------------------------------------

@pytest.mark.parametrize("text", ADVERSARIAL)
def test_ids_equal_hf_on_adversarial_strings(small_tok, text):
    hf = small_tok.to_hf()
    ids = small_tok.encode(text)
    assert ids == hf.encode(text).ids
    assert small_tok.decode(ids) == text
    assert hf.decode(ids, skip_special_tokens=False) == text


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.text(alphabet=st.characters(blacklist_categories=("Cs",)), max_size=60))
def test_round_trip_and_hf_ids_on_arbitrary_unicode(small_tok, hf_small, text):
    ids = small_tok.encode(text)
    assert small_tok.decode(ids, errors="strict") == text
    assert ids == hf_small.encode(text).ids


@pytest.fixture(scope="module")
def hf_small(small_tok):
    return small_tok.to_hf()


def test_ids_equal_hf_on_the_whole_corpus(corpus, small_tok, hf_small):
    texts = [w.text for w in corpus]
    ours = [small_tok.encode(t) for t in texts]
    # encode_batch_fast (tokenizers >= 0.20) skips the offsets, which we do not need
    encode_batch = getattr(hf_small, "encode_batch_fast", hf_small.encode_batch)
    theirs = [e.ids for e in encode_batch(texts)]
    assert sum(map(len, ours)) > 1_000_000  # really the whole corpus: ~2 M tokens at 1000 tokens
    for work, a, b in zip(corpus, ours, theirs):
        assert a == b, f"ids differ on {work.id}"
    assert small_tok.decode(ours[0]) == texts[0]


def test_special_token_is_one_id(small_tok):
    eos = small_tok.eos_id
    assert eos == small_tok.token_to_id("<|endoftext|>") == 999
    ids = small_tok.encode("To be<|endoftext|>or not")
    assert ids.count(eos) == 1
    assert ids == small_tok.encode("To be") + [eos] + small_tok.encode("or not")
    # not allowed: spelled out as ordinary bytes, and still round-trips
    plain = small_tok.encode("To be<|endoftext|>or not", allowed_special="none")
    assert eos not in plain and small_tok.decode(plain) == "To be<|endoftext|>or not"
    assert small_tok.encode("<|endoftext|>", allowed_special={"<|endoftext|>"}) == [eos]
    with pytest.raises(ValueError, match="not special tokens"):
        small_tok.encode("x", allowed_special={"<|im_start|>"})


def test_decode_of_a_cut_character_replaces_and_strict_raises():
    tok = BPETokenizer.train("plain ascii", 260, progress=False)
    ids = tok.encode("é")  # two bytes, no merge: two ids
    assert len(ids) == 2 and tok.decode(ids[:1]) == "\ufffd"
    with pytest.raises(UnicodeDecodeError):
        tok.decode(ids[:1], errors="strict")
    with pytest.raises(KeyError, match="id 5000"):
        tok.decode([5000])


def test_encode_rejects_bytes():
    tok = BPETokenizer.train("abc", 257, progress=False)
    with pytest.raises(TypeError, match="decode bytes"):
        tok.encode(b"abc")


# ---- files -----------------------------------------------------------------------------------------

def test_save_load_round_trip(tmp_path, small_tok):
    vocab_path, merges_path = small_tok.save(tmp_path)
    lines = merges_path.read_text(encoding="utf-8").splitlines()
    assert lines[0] == "#version: 0.2" and len(lines) == 1 + len(small_tok.merges)
    assert lines[1] == " ".join(small_tok.merges[0])
    assert json.loads(vocab_path.read_text(encoding="utf-8")) == small_tok.vocab
    loaded = BPETokenizer.load(tmp_path)
    assert loaded.vocab == small_tok.vocab and loaded.merges == small_tok.merges
    assert loaded.special_tokens == ["<|endoftext|>"]  # inferred: neither a byte nor a merge
    for text in ADVERSARIAL:
        assert loaded.encode(text) == small_tok.encode(text)


def test_files_load_into_tokenizers_and_transformers(tmp_path, small_tok, corpus):
    from transformers import GPT2TokenizerFast

    vocab_path, merges_path = small_tok.save(tmp_path)
    gpt2 = GPT2TokenizerFast(str(vocab_path), str(merges_path))
    gpt2_dir = GPT2TokenizerFast.from_pretrained(str(tmp_path))
    from_files = tokenizers.Tokenizer(tokenizers.models.BPE.from_file(str(vocab_path), str(merges_path)))
    from_files.pre_tokenizer = tokenizers.pre_tokenizers.ByteLevel(add_prefix_space=False)
    sample = corpus[0].text[:20_000]
    for text in ADVERSARIAL + [sample]:
        ours = small_tok.encode(text)
        assert gpt2(text)["input_ids"] == ours
        assert gpt2_dir(text)["input_ids"] == ours
        if "<|endoftext|>" not in text:  # this bare Tokenizer has no special tokens added
            assert from_files.encode(text).ids == ours
    assert gpt2.eos_token_id == gpt2_dir.eos_token_id == small_tok.eos_id


def test_load_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="vocab.json"):
        BPETokenizer.load(tmp_path)
    tok = BPETokenizer.train("hello hello", 260, progress=False)
    tok.save(tmp_path)
    (tmp_path / "merges.txt").write_text("#version: 0.2\nh e l\n", encoding="utf-8")
    with pytest.raises(ValueError, match="merges.txt:2"):
        BPETokenizer.load(tmp_path)
    with pytest.raises(ValueError, match="256 byte characters"):
        BPETokenizer({"a": 0}, [])


def test_train_fast_and_from_hf_agree_with_the_hf_tokenizer(corpus):
    text = corpus[1].text
    fast = BPETokenizer.train_fast(text, 500)
    assert fast.vocab_size == 500 and fast.token_to_id("<|endoftext|>") == 499  # renumbered: specials last
    hf = fast.to_hf()
    assert fast.encode(text) == hf.encode(text).ids
    again = BPETokenizer.from_hf(hf)
    assert again.vocab == fast.vocab and again.merges == fast.merges
    assert again.special_tokens == ["<|endoftext|>"]


def test_train_and_train_fast_give_the_same_ids(corpus):
    """The slow (ours) and fast (HF tokenizers) trainers: the same vocabulary with the same ids, the
    special token last in both, so a text encodes to the same ids whichever trained the tokenizer."""
    text = corpus[1].text[:20_000]
    slow = BPETokenizer.train(text, 400, progress=False)
    fast = BPETokenizer.train_fast(text, 400)
    assert slow.merges == fast.merges
    assert slow.vocab == fast.vocab
    assert slow.token_to_id("<|endoftext|>") == fast.token_to_id("<|endoftext|>") == 399
    sample = corpus[1].text[20_000:22_000] + "<|endoftext|>"
    assert slow.encode(sample) == fast.encode(sample)


def test_encode_batch_equals_encode(corpus):
    text = corpus[1].text[:5000]
    bpe = BPETokenizer.train_fast(text, 300)
    char = CharTokenizer.fit(text)
    texts = [text[:700], "", text[700:1500] + "<|endoftext|>"]
    assert bpe.encode_batch(texts) == [bpe.encode(t) for t in texts]
    assert char.encode_batch(texts[:2]) == [char.encode(t) for t in texts[:2]]
    with pytest.raises(ValueError, match=r"\(U\+2603\) at position 1"):
        char.encode_batch(["ab", "a\u2603"])


# ---- characters ------------------------------------------------------------------------------------

def test_char_tokenizer(tmp_path):
    text = "To be, or not to be: that is the question.\n"
    tok = CharTokenizer.fit(text)
    assert tok.chars == sorted(set(text)) and tok.vocab_size == len(set(text))
    ids = tok.encode("to be")
    assert ids == [sorted(set(text)).index(c) for c in "to be"]
    assert tok.decode(ids) == "to be"
    assert tok.decode(tok.encode(text)) == text
    with pytest.raises(ValueError, match=r"'z' \(U\+007A\) at position 3"):
        tok.encode("to z")
    with pytest.raises(ValueError, match="outside"):
        tok.decode([tok.vocab_size])
    tok.save(tmp_path)
    assert CharTokenizer.load(tmp_path).chars == tok.chars
    with pytest.raises(ValueError, match="non-empty"):
        CharTokenizer.fit("")
