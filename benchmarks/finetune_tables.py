"""Print the fine-tuning results that chapters 08-10 computed in their committed (book setting) outputs.

    python benchmarks/finetune_tables.py

The chapters are built and executed by ``make book`` (``python tools/build_notebooks.py --setting book
NN_name``, on 2 CPU cores); this script reads the outputs saved in ``chapters/NN_name.ipynb`` and prints, word
for word, every output that reports a result (the baselines, the results tables, the perplexities),
so that RESULTS.md quotes what the committed notebooks say rather than a copy typed by hand.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CHAPTERS = ("08_finetune_classification", "09_finetune_regression", "10_sequence_labeling_crf")
# An output is a result when it holds one of these (the chapters' own printed headers and lines).
KEYS = ("majority class", "trainable (", "method  accuracy", "perplexity on the held-out", "baseline RMSE",
        "RMSE (years)", "gazetteer on the test plays", "invalid sentences")


def outputs(notebook: Path) -> list[str]:
    """The text of every code-cell output of a notebook that reports a result."""
    found = []
    for cell in json.loads(notebook.read_text())["cells"]:
        for out in cell.get("outputs", []) if cell["cell_type"] == "code" else []:
            text = "".join(out.get("text", "")) or "".join(out.get("data", {}).get("text/plain", ""))
            if any(k in text for k in KEYS):
                found.append(text.rstrip())
    return found


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--json", help="also write the results here")
    args = parser.parse_args(argv)
    results = {}
    for name in CHAPTERS:
        path = ROOT / "chapters" / f"{name}.ipynb"
        texts = outputs(path)
        assert texts, f"chapters/{name}.ipynb has no result outputs: build it first"
        built = json.loads(path.read_text())["metadata"].get("llm_from_scratch", {})
        print(f"machine: {built.get('machine', 'not recorded')} ({name}: {built.get('setting')} setting, "
              f"{built.get('seconds')} s to build)")
        results[name] = texts
        print(f"== chapters/{name}.ipynb")
        print("\n\n".join(texts) + "\n")
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=1))
    return results


def markdown(results: dict) -> str:
    """The chapters' own printed tables, word for word, one block per chapter."""
    parts = []
    for name, texts in results.items():
        parts += [f"`chapters/{name}.ipynb`:", "", "```", "\n\n".join(texts), "```", ""]
    return "\n".join(parts).rstrip()


if __name__ == "__main__":
    main(sys.argv[1:])
