"""The Simplified Chinese edition: chapters/zh/NN_topic.ipynb (and zh/solutions/), built from the English
notebooks and the translations in chapters/src/zh/NN_topic.md.

One source per chapter: the code lives once, in chapters/src/NN_topic.py. The translation file holds,
for each markdown cell and each comment block of the code cells, its Chinese text, keyed by a hash of
the English text. The Chinese notebook is the built English notebook with

- every markdown cell replaced by its translation (the Colab badge pointing to the Chinese path),
- every comment block in the code cells replaced by its translation (the code itself untouched),
- the outputs kept as they are: they are not computed twice.

When the English text of a cell or comment changes, its hash changes and the build names the entry
that is missing, so a stale translation can never ship silently.

    python tools/zh_edition.py skeleton 03_attention   # add the missing entries (English text) to the file
    python tools/zh_edition.py status                  # what is missing or unused, per chapter
    python tools/zh_edition.py lint 03_attention       # and English left in the prose, glossary terms
    python tools/zh_edition.py build [NN_topic ...]    # write chapters/zh/ from the committed chapters/

Translation file format (UTF-8)::

    === md 3f2a9c01d4  (cell 0)
    # 03 · 注意力 ...

    === comment 7be1c0aa52  (cell 1)
    一个注释块的中文（可以多行）

Everything after the key on a header line is a note for the translator and is ignored. A comment
translation is written without the leading ``#``; the build adds ``# `` and the block's indentation to
each line (an inline comment, after code on the same line, stays one line).
"""

from __future__ import annotations

import copy
import hashlib
import io
import re
import sys
import tokenize
from dataclasses import dataclass
from pathlib import Path

import nbformat

ROOT = Path(__file__).resolve().parents[1]
CHAPTERS = ROOT / "chapters"
ZH_SRC = CHAPTERS / "src" / "zh"
ZH_OUT = CHAPTERS / "zh"

_BADGE = re.compile(r"https://colab\.research\.google\.com/github/[^)\s]*")
_HEADER = re.compile(r"^=== (md|comment) ([0-9a-f]{10})\b.*$", re.M)
# Comments that are instructions to a tool, not prose for the learner: never translated.
_TOOL_COMMENT = re.compile(r"^#\s*(NBVAL_|noqa|type:|pragma|fmt:|%%|BEGIN SOLUTION|END SOLUTION|ruff:)")


def text_key(text: str) -> str:
    """The key of an English text: the first 10 hex digits of its SHA-1 (badge address left out, so that
    moving the repository does not invalidate the translations)."""
    norm = _BADGE.sub("COLAB", text).strip()
    return hashlib.sha1(norm.encode("utf-8")).hexdigest()[:10]


@dataclass
class CommentBlock:
    """Consecutive full-line comments at one indentation, or one comment after code on its line.
    Lines are 0-based, ``end`` exclusive; ``text`` is the English without the ``#`` markers."""

    start: int
    end: int
    col: int
    inline: bool
    text: str

    @property
    def key(self) -> str:
        return text_key(self.text)


def _strip_hash(comment: str) -> str:
    body = comment[1:]
    return body[1:] if body.startswith(" ") else body


def comment_blocks(source: str) -> list[CommentBlock]:
    """The translatable comment blocks of a code cell (tool comments such as ``# NBVAL_CHECK_OUTPUT``
    and comments without a letter are left out)."""
    lines = source.split("\n")
    # IPython magics and shell escapes are not Python: blank them (same line numbers) for tokenize.
    py = "\n".join("" if ln.lstrip().startswith(("%", "!")) else ln for ln in lines)
    comments: list[tuple[int, int, str, bool]] = []  # (line, col, text, inline)
    try:
        for tok in tokenize.generate_tokens(io.StringIO(py + "\n").readline):
            if tok.type == tokenize.COMMENT:
                row, col = tok.start[0] - 1, tok.start[1]
                inline = lines[row][:col].strip() != ""
                comments.append((row, col, tok.string, inline))
    except (tokenize.TokenError, IndentationError, SyntaxError) as e:
        raise ValueError(f"cannot read the comments of a code cell: {e}") from e
    blocks: list[CommentBlock] = []
    for row, col, text, inline in comments:
        if _TOOL_COMMENT.match(text) or not re.search(r"[A-Za-z]", text):
            continue
        body = _strip_hash(text).rstrip()
        last = blocks[-1] if blocks else None
        if (not inline and last is not None and not last.inline and last.end == row and last.col == col):
            last.end = row + 1
            last.text += "\n" + body
        else:
            blocks.append(CommentBlock(row, row + 1, col, inline, body))
    return blocks


def read_translations(path: Path) -> dict[tuple[str, str], str]:
    """{(kind, key): Chinese text} from a translation file (an empty dict if there is none)."""
    if not path.exists():
        return {}
    text = path.read_text(encoding="utf-8")
    found: dict[tuple[str, str], str] = {}
    heads = list(_HEADER.finditer(text))
    for i, m in enumerate(heads):
        body_end = heads[i + 1].start() if i + 1 < len(heads) else len(text)
        found[(m.group(1), m.group(2))] = text[m.end():body_end].strip("\n").rstrip()
    return found


def entries(nb) -> list[tuple[str, str, int, str]]:
    """(kind, key, cell index, English text) for everything in ``nb`` that the edition translates."""
    out = []
    for i, cell in enumerate(nb.cells):
        if cell.cell_type == "markdown":
            out.append(("md", text_key(cell.source), i, cell.source))
        elif cell.cell_type == "code":
            for block in comment_blocks(cell.source):
                out.append(("comment", block.key, i, block.text))
    return out


class MissingTranslation(KeyError):
    def __str__(self):
        return self.args[0]


def translate_source(source: str, translations: dict) -> str:
    """A code cell's source with its comment blocks in Chinese (the code unchanged)."""
    lines = source.split("\n")
    for block in reversed(comment_blocks(source)):
        zh = translations.get(("comment", block.key))
        if zh is None:
            raise MissingTranslation(f"comment {block.key}: {block.text[:60]!r}")
        if block.inline:
            line = lines[block.start]
            lines[block.start] = line[:block.col] + "# " + " ".join(zh.split("\n")).strip()
        else:
            pad = lines[block.start][:block.col]
            lines[block.start:block.end] = [(pad + "# " + z).rstrip() if z.strip() else pad + "#"
                                            for z in zh.split("\n")]
    return "\n".join(lines)


def zh_badge(text: str, rel_path: str) -> str:
    """Point every Colab badge in ``text`` at ``rel_path`` (e.g. chapters/zh/03_attention.ipynb)."""
    def repl(m):
        url = m.group(0)
        return url[: url.index("/blob/main/") + len("/blob/main/")] + rel_path if "/blob/main/" in url else url
    return _BADGE.sub(repl, text)


def translate_notebook(nb, translations: dict, rel_path: str):
    """The Chinese twin of the built English notebook ``nb``: markdown and comments translated, code
    and outputs unchanged. Raises MissingTranslation naming every entry that is missing."""
    zh = copy.deepcopy(nb)
    missing = []
    for cell, src_cell in zip(zh.cells, nb.cells):
        if cell.cell_type == "markdown":
            text = translations.get(("md", text_key(src_cell.source)))
            if text is None:
                missing.append(f"md {text_key(src_cell.source)}: {src_cell.source[:60]!r}")
            else:
                cell.source = zh_badge(text, rel_path)
        elif cell.cell_type == "code":
            try:
                cell.source = translate_source(src_cell.source, translations)
            except MissingTranslation as e:
                missing.append(str(e))
    if missing:
        raise MissingTranslation(f"{len(missing)} untranslated: " + "; ".join(missing[:5])
                                 + (" ..." if len(missing) > 5 else ""))
    zh.metadata.setdefault("llm_from_scratch", {})
    zh.metadata["llm_from_scratch"] = dict(zh.metadata["llm_from_scratch"], language="zh-CN")
    return zh


def chapter_stems() -> list[str]:
    return sorted(p.stem for p in (CHAPTERS / "src").glob("[0-9][0-9]_*.py"))


def english_notebooks(stem: str, chapters: Path = CHAPTERS) -> list[tuple[Path, str]]:
    """(built English notebook, its path relative to the repository for the Chinese twin)."""
    out = [(chapters / f"{stem}.ipynb", f"chapters/zh/{stem}.ipynb")]
    sol = chapters / "solutions" / f"{stem}.ipynb"
    if sol.exists():
        out.append((sol, f"chapters/zh/solutions/{stem}.ipynb"))
    return out


def build_zh(stem: str, chapters: Path = CHAPTERS, out: Path | None = None) -> list[Path]:
    """Write the Chinese twins of chapter ``stem`` (and of its solutions notebook) from the English
    notebooks in ``chapters`` into ``out`` (default ``chapters/zh``, or ``<chapters>/zh``)."""
    out = out or chapters / "zh"
    translations = read_translations(ZH_SRC / f"{stem}.md")
    written = []
    for en_path, rel in english_notebooks(stem, chapters):
        nb = nbformat.read(en_path, as_version=4)
        zh = translate_notebook(nb, translations, rel)
        target = out / Path(rel).relative_to("chapters/zh")
        target.parent.mkdir(parents=True, exist_ok=True)
        nbformat.write(zh, target)
        written.append(target)
    return written


def _source_notebooks(stem: str):
    """The unexecuted chapter and solutions notebooks of ``stem`` (what the build turns into .ipynb)."""
    import importlib.util

    spec = importlib.util.spec_from_file_location("build_notebooks", ROOT / "tools" / "build_notebooks.py")
    bn = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bn)
    src = CHAPTERS / "src" / f"{stem}.py"
    return [nb for nb in (bn.read_source(src), bn.read_source(src, solutions=True)) if nb is not None]


def needed(stem: str) -> list[tuple[str, str, int, str]]:
    """Every entry chapter ``stem`` needs (chapter and solutions notebook), once each, in order."""
    seen, out = set(), []
    for nb in _source_notebooks(stem):
        for kind, key, i, text in entries(nb):
            if (kind, key) not in seen:
                seen.add((kind, key))
                out.append((kind, key, i, text))
    return out


def skeleton(stem: str) -> int:
    """Append the missing entries of ``stem`` to its translation file, with the English text to replace."""
    path = ZH_SRC / f"{stem}.md"
    have = read_translations(path)
    missing = [e for e in needed(stem) if (e[0], e[1]) not in have]
    if missing:
        path.parent.mkdir(parents=True, exist_ok=True)
        before = path.read_text(encoding="utf-8") if path.exists() else ""
        ends_clean = before == "" or before.endswith("\n\n")
        with path.open("a", encoding="utf-8") as f:
            if not ends_clean:
                f.write("\n\n")
            for kind, key, i, text in missing:
                f.write(f"=== {kind} {key}  (cell {i})\n{text}\n\n")
    return len(missing)


def status(stem: str) -> tuple[list, list]:
    """(missing entries, unused keys) of chapter ``stem``."""
    have = read_translations(ZH_SRC / f"{stem}.md")
    need = needed(stem)
    want = {(k, key) for k, key, _, _ in need}
    return ([e for e in need if (e[0], e[1]) not in have], sorted(k for k in have if k not in want))


# --- checks of the Chinese text (used by tests/test_zh_edition.py and `zh_edition.py lint`) ---------

_CODE = [re.compile(r"```.*?```", re.S), re.compile(r"`[^`\n]*`"), re.compile(r"\$\$.*?\$\$", re.S),
         re.compile(r"\$[^$\n]*\$"), re.compile(r"\]\([^)\s]*\)"), re.compile(r"<[^>\n]*>"),
         re.compile(r"https?://\S+")]
_QUOTED = [re.compile(r'"[^"\n]*"'), re.compile(r"“[^”\n]*”"), re.compile(r"‘[^’\n]*’"),
           re.compile(r"「[^」\n]*」"), re.compile(r"(?<![*\w])\*(?![\s*])[^*\n]+?(?<![\s*])\*(?![*\w])"),
           re.compile(r"(?<![\w])_(?![\s_])[^_\n]+?(?<![\s_])_(?![\w])")]
_PARENS = [re.compile(r"\([^()\n]*\)"), re.compile(r"（[^（）\n]*）")]
_ENGLISH_RUN = re.compile(r"[A-Za-z][A-Za-z'’-]*(?:[\s,;:.!?-]+[A-Za-z][A-Za-z'’-]*){1,}")
GLOSSARY = ZH_OUT / "GLOSSARY.md"


def prose(text: str, keep_parentheses: bool = True) -> str:
    """``text`` without code, formulas, addresses, HTML and quotations (those stay English by rule)."""
    for rx in _CODE + _QUOTED + ([] if keep_parentheses else _PARENS):
        text = rx.sub(" ", text)
    return text


def english_runs(text: str, words: int = 5) -> list[str]:
    """Runs of ``words`` or more English words in the prose of ``text``: an untranslated sentence."""
    return [m.group(0) for m in _ENGLISH_RUN.finditer(prose(text)) if len(m.group(0).split()) >= words]


def glossary(path: Path = GLOSSARY) -> list[tuple[str, str, str]]:
    """(Chinese, English, chapter) for every row of the glossary's table."""
    rows = []
    for line in path.read_text(encoding="utf-8").splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) == 3 and re.fullmatch(r"\d\d", cells[2]):
            rows.append((cells[0], cells[1], cells[2]))
    return rows


def glossary_misses(text: str, terms: list[tuple[str, str, str]]) -> list[str]:
    """English glossary terms used untranslated in the prose of ``text`` (outside parentheses)."""
    bare = prose(text, keep_parentheses=False)
    found = []
    for zh, en, _ in terms:
        if re.search(r"(?<![\w-])" + re.escape(en) + r"(?:s|es)?(?![\w-])", bare, re.I):
            found.append(f"{en} (use {zh})")
    return found


def lint(stem: str) -> list[str]:
    """Every problem of the translation file of ``stem``: missing or unused entries, English sentences
    left in the markdown, English glossary terms in the prose."""
    missing, unused = status(stem)
    problems = [f"missing {k} {key} (cell {i}): {t[:50]!r}" for k, key, i, t in missing]
    problems += [f"unused {k} {key}: not in the English source any more" for k, key in unused]
    terms = glossary()
    for (kind, key), text in read_translations(ZH_SRC / f"{stem}.md").items():
        if kind == "md":
            problems += [f"md {key}: English left: {r[:70]!r}" for r in english_runs(text)]
            problems += [f"md {key}: glossary term in English: {m}" for m in glossary_misses(text, terms)]
    return problems


def main(argv: list[str] | None = None) -> int:
    import argparse

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("command", choices=("skeleton", "status", "lint", "build"))
    parser.add_argument("names", nargs="*", help="chapters (default: all)")
    args = parser.parse_args(argv)
    stems = chapter_stems()
    if args.names:
        wanted = [n.removesuffix(".py").removesuffix(".ipynb").removesuffix(".md") for n in args.names]
        unknown = [w for w in wanted if w not in stems]
        if unknown:
            print(f"no such chapter: {unknown} (chapters are {stems[0]} ... {stems[-1]})", file=sys.stderr)
            return 2
        stems = wanted
    rc = 0
    for stem in stems:
        if args.command == "skeleton":
            print(f"{stem}: {skeleton(stem)} entries added to {(ZH_SRC / (stem + '.md')).relative_to(ROOT)}")
        elif args.command == "status":
            missing, unused = status(stem)
            print(f"{stem}: {len(missing)} missing, {len(unused)} unused")
            rc |= bool(missing)
        elif args.command == "lint":
            problems = lint(stem)
            print(f"{stem}: {len(problems)} problems")
            for p in problems:
                print("  " + p)
            rc |= bool(problems)
        else:
            try:
                for p in build_zh(stem):
                    print(f"{stem}: -> {p.relative_to(ROOT)}")
            except MissingTranslation as e:
                print(f"{stem}: not built: {e}", file=sys.stderr)
                rc = 1
    return rc


if __name__ == "__main__":
    sys.exit(main())
