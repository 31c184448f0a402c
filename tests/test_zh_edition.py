"""The Simplified Chinese edition (chapters/zh/): one twin per chapter and solutions notebook, the same
code (comments aside) and outputs as the English notebook, every markdown cell translated, the glossary
followed, and the twin up to date with the translations in chapters/src/zh/ (tools/zh_edition.py)."""

from __future__ import annotations

import importlib.util
import io
import re
import sys
import tokenize
from pathlib import Path

import nbformat
import pytest

ROOT = Path(__file__).resolve().parents[1]
CHAPTERS = ROOT / "chapters"
ENGLISH = sorted(CHAPTERS.glob("[0-9][0-9]_*.ipynb")) + sorted((CHAPTERS / "solutions").glob("[0-9][0-9]_*.ipynb"))
CJK = re.compile(r"[\u4e00-\u9fff]")


def _tool():
    spec = importlib.util.spec_from_file_location("zh_edition", ROOT / "tools" / "zh_edition.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules["zh_edition"] = module  # its dataclass looks its module up there
    spec.loader.exec_module(module)
    return module


zh_edition = _tool()


def _twin(en: Path) -> Path:
    return CHAPTERS / "zh" / en.relative_to(CHAPTERS)


def _code_without_comments(source: str) -> list[str]:
    """The code of a cell with every comment removed (tokenize's COMMENT tokens), line by line, blank
    lines dropped: what must be identical in both editions."""
    lines = source.split("\n")
    py = "\n".join("" if ln.lstrip().startswith(("%", "!")) else ln for ln in lines)
    cut = {}
    for tok in tokenize.generate_tokens(io.StringIO(py + "\n").readline):
        if tok.type == tokenize.COMMENT:
            cut[tok.start[0] - 1] = tok.start[1]
    kept = [(ln[:cut[i]] if i in cut else ln).rstrip() for i, ln in enumerate(lines)]
    return [ln for ln in kept if ln.strip()]


def _id(p: Path) -> str:
    return str(p.relative_to(CHAPTERS))


# --- the mechanism, on hand-written examples ---------------------------------------------------------

def test_comment_blocks_and_their_translation_on_a_hand_written_cell():
    source = ("# NBVAL_CHECK_OUTPUT\n"
              "x = 1  # one\n"
              "# two lines\n"
              "# of comment\n"
              "def f():\n"
              "    # indented\n"
              "    return '# not a comment'\n"
              "%timeit f()\n"
              "# ----")
    blocks = zh_edition.comment_blocks(source)
    assert [(b.start, b.end, b.col, b.inline, b.text) for b in blocks] == [
        (1, 2, 7, True, "one"), (2, 4, 0, False, "two lines\nof comment"), (5, 6, 4, False, "indented")]
    translations = {("comment", zh_edition.text_key("one")): "一",
                    ("comment", zh_edition.text_key("two lines\nof comment")): "两行注释",
                    ("comment", zh_edition.text_key("indented")): "缩进的\n注释"}
    assert zh_edition.translate_source(source, translations) == (
        "# NBVAL_CHECK_OUTPUT\n"
        "x = 1  # 一\n"
        "# 两行注释\n"
        "def f():\n"
        "    # 缩进的\n"
        "    # 注释\n"
        "    return '# not a comment'\n"
        "%timeit f()\n"
        "# ----")


def test_a_changed_english_text_makes_its_translation_missing():
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_markdown_cell("Attention is all.")])
    translations = {("md", zh_edition.text_key("Attention is all.")): "注意力就是一切。"}
    assert zh_edition.translate_notebook(nb, translations, "chapters/zh/x.ipynb").cells[0].source == "注意力就是一切。"
    nb.cells[0].source = "Attention is all you need."
    with pytest.raises(zh_edition.MissingTranslation):
        zh_edition.translate_notebook(nb, translations, "chapters/zh/x.ipynb")


def test_read_translations_parses_the_file_format(tmp_path):
    path = tmp_path / "t.md"
    path.write_text("=== md 0123456789  (cell 0)\n# 标题\n\n正文。\n\n=== comment abcdef0123\n注释\n\n",
                    encoding="utf-8")
    assert zh_edition.read_translations(path) == {("md", "0123456789"): "# 标题\n\n正文。",
                                                  ("comment", "abcdef0123"): "注释"}


def test_lint_finds_english_sentences_and_untranslated_glossary_terms():
    terms = [("注意力", "attention", "03"), ("词元", "token", "02")]
    assert zh_edition.english_runs("每个词元都会 look at all the other tokens here。") != []
    assert zh_edition.english_runs('例句 "the cat sat on the mat" 和 `scaled_dot_product_attention(q, k, v)`。') == []
    assert zh_edition.glossary_misses("每个 token 都有注意力。", terms) == ["token (use 词元)"]
    assert zh_edition.glossary_misses("注意力（attention）让每个词元（token）看到其他词元。", terms) == []


# --- the committed edition ----------------------------------------------------------------------------

def test_every_chapter_and_solutions_notebook_has_a_chinese_twin():
    assert ENGLISH
    missing = [_id(p) for p in ENGLISH if not _twin(p).exists()]
    assert not missing, f"no Chinese twin for {missing}: run python tools/zh_edition.py build"


@pytest.mark.parametrize("en", ENGLISH, ids=_id)
def test_twin_has_the_same_code_and_outputs(en: Path):
    a = nbformat.read(en, as_version=4)
    b = nbformat.read(_twin(en), as_version=4)
    assert [c.cell_type for c in a.cells] == [c.cell_type for c in b.cells]
    for i, (x, y) in enumerate(zip(a.cells, b.cells)):
        if x.cell_type == "code":
            assert _code_without_comments(x.source) == _code_without_comments(y.source), f"cell {i}: code differs"
            assert x.outputs == y.outputs, f"cell {i}: outputs differ (the twin takes the English outputs)"
            assert x.execution_count == y.execution_count


@pytest.mark.parametrize("en", ENGLISH, ids=_id)
def test_twin_is_up_to_date_with_the_translations(en: Path):
    stem = en.stem
    translations = zh_edition.read_translations(zh_edition.ZH_SRC / f"{stem}.md")
    rel = str(_twin(en).relative_to(ROOT))
    try:
        expected = zh_edition.translate_notebook(nbformat.read(en, as_version=4), translations, rel)
    except zh_edition.MissingTranslation as e:
        pytest.fail(f"{_id(en)}: {e}; run python tools/zh_edition.py skeleton {stem}, translate, then build")
    got = nbformat.read(_twin(en), as_version=4)
    assert [c.source for c in got.cells] == [c.source for c in expected.cells], (
        f"{rel} is stale: run python tools/zh_edition.py build {stem}")
    assert got.metadata["llm_from_scratch"]["language"] == "zh-CN"
    if "colab.research.google.com/github" in nbformat.read(en, as_version=4).cells[0].source:
        assert f"blob/main/{rel}" in got.cells[0].source, "the Colab badge points to the Chinese chapter"


@pytest.mark.parametrize("en", ENGLISH, ids=_id)
def test_every_markdown_cell_is_translated_and_follows_the_glossary(en: Path):
    a = nbformat.read(en, as_version=4)
    b = nbformat.read(_twin(en), as_version=4)
    terms = zh_edition.glossary()
    for i, (x, y) in enumerate(zip(a.cells, b.cells)):
        if x.cell_type != "markdown":
            continue
        if len(re.findall(r"[A-Za-z]+", zh_edition.prose(x.source))) >= 3:
            assert CJK.search(y.source), f"cell {i} is not translated: {y.source[:80]!r}"
        assert not zh_edition.english_runs(y.source), f"cell {i}: English left: {zh_edition.english_runs(y.source)}"
        assert not zh_edition.glossary_misses(y.source, terms), (
            f"cell {i}: glossary terms in English: {zh_edition.glossary_misses(y.source, terms)}")


def test_glossary_terms_are_introduced_where_the_glossary_says():
    terms = zh_edition.glossary()
    assert len(terms) >= 50
    assert len({zh for zh, _, _ in terms}) == len(terms) and len({en for _, en, _ in terms}) == len(terms)
    text = {}
    for p in sorted((CHAPTERS / "zh").glob("[0-9][0-9]_*.ipynb")):
        text[p.stem[:2]] = "\n".join(c.source for c in nbformat.read(p, as_version=4).cells if c.cell_type == "markdown")
    for zh, en, chapter in terms:
        assert chapter in text, f"{zh} ({en}): chapter {chapter} has no Chinese twin"
        assert zh in text[chapter], f"{zh} ({en}) is introduced in chapter {chapter} by the glossary, but not used there"


def test_readme_has_its_chinese_counterpart():
    en = (ROOT / "README.md").read_text(encoding="utf-8")
    zh = (ROOT / "README.zh-CN.md").read_text(encoding="utf-8")
    assert "README.zh-CN.md" in en.split("\n\n")[0] + en.split("\n\n")[1], "README.md links the Chinese README at its top"
    assert "README.md" in zh[:500], "README.zh-CN.md links the English README at its top"
    for p in sorted(CHAPTERS.glob("[0-9][0-9]_*.ipynb")):
        assert f"chapters/zh/{p.name}" in zh, f"README.zh-CN.md does not link chapters/zh/{p.name}"
    assert len(CJK.findall(zh)) > 1000
