"""Chapter 13 experiment (issue 13): where a model's letters-only errors are, against the word table's.

Reads the test outputs that ``benchmarks.spelling_recipe`` wrote (a JSON list, one string per test line)
and prints, for the model and the word table: the errors on lines that hold a word the table never saw
and on the other lines, the letters-only CER by Folio line length, the share of the error that is only
case, how many outputs repeat one letter four or more times in a row (a decoder stuck in a loop), and
the training lines' lengths.

    python -m benchmarks.spelling_recipe --steps 4000 --clean --out runs/spelling_recipe/clean4000.json
    python -m benchmarks.spelling_errors runs/spelling_recipe/clean4000.json
"""
from __future__ import annotations

import json
import re
import sys
from collections import Counter
from pathlib import Path

from llm_from_scratch import metrics as M
from llm_from_scratch.spelling import WordTable, letters_only
from llm_from_scratch.tasks import spelling_pairs

from .spelling_recipe import MAX

WORD = re.compile(r"[A-Za-z']+")


def main() -> None:
    if len(sys.argv) != 2 or not Path(sys.argv[1]).is_file():
        sys.exit(print("usage: python -m benchmarks.spelling_errors OUTPUTS.json (written by "
                       "benchmarks.spelling_recipe --out)", file=sys.stderr) or 2)
    train = [p for p in spelling_pairs("train") if len(p["folio"]) <= MAX and len(p["modern"]) <= MAX]
    test = [p for p in spelling_pairs("test") if len(p["folio"]) <= MAX and len(p["modern"]) <= MAX]
    model = json.loads(Path(sys.argv[1]).read_text())
    if len(model) != len(test):
        sys.exit(print(f"{sys.argv[1]} holds {len(model)} lines, the test set {len(test)}: "
                       "not spelling_recipe's output", file=sys.stderr) or 2)
    table = WordTable.fit(train)
    sources = [p["folio"] for p in test]
    refs = [letters_only(p["modern"]) for p in test]
    raw = {"model": model, "word table": table.predict(sources)}
    preds = {k: [letters_only(x) for x in v] for k, v in raw.items()}
    total = sum(map(len, refs))
    dist = {k: [M.edit_distance(a, b) for a, b in zip(v, refs)] for k, v in preds.items()}

    def unknown(w):
        return w not in table.table and w.lower() not in table.table

    has_unknown = [any(unknown(w) for w in WORD.findall(s)) for s in sources]
    print(f"letters-only errors as a share of all {total:,} reference letters:")
    for name, sel in (("all lines", [True] * len(test)), ("lines with a word unknown to the table", has_unknown),
                      ("lines with known words only", [not u for u in has_unknown])):
        cells = "  ".join(f"{k} {sum(d for d, s in zip(v, sel) if s) / total:.2%}" for k, v in dist.items())
        print(f"  {name:<40} ({sum(sel):>6,} lines)  {cells}")
    print("letters-only CER by the Folio line's length (characters):")
    for lo, hi in ((0, 30), (30, 45), (45, 55), (55, 62), (62, MAX + 1)):
        ii = [i for i, s in enumerate(sources) if lo <= len(s) < hi]
        n = sum(len(refs[i]) for i in ii)
        cells = "  ".join(f"{k} {sum(v[i] for i in ii) / n:.2%}" for k, v in dist.items())
        print(f"  {lo:>2}-{hi - 1:<2} ({len(ii):>5,} lines)  {cells}")
    print("the part of the letters-only CER that is only case (CER minus CER with both sides lower-cased):")
    for k, v in preds.items():
        exact = M.character_error_rate(v, refs)
        caseless = M.character_error_rate([x.lower() for x in v], [r.lower() for r in refs])
        print(f"  {k}: {exact:.2%} - {caseless:.2%} = {exact - caseless:.2%}")
    stuck = re.compile(r"([A-Za-z])\1{3,}")  # no English word has one letter four times in a row
    print("outputs with one letter four or more times in a row:",
          "  ".join(f"{k} {sum(bool(stuck.search(x)) for x in v):,}" for k, v in raw.items()))  # raw: words apart
    lengths = Counter(min(len(p["folio"]) // 10 * 10, 60) for p in train)
    print("training pairs by Folio line length:", ", ".join(f"{k}-{k + 9}: {lengths[k]:,}" for k in sorted(lengths)))


if __name__ == "__main__":
    main()
