"""One source, two notebooks. A chapter source ends with an exercise section (a markdown cell starting
"## Exercises", then the exercise cells); the learner's code in it sits between marker lines:

    def causal_mask(T):
        ### BEGIN SOLUTION
        return torch.ones(T, T, dtype=torch.bool).tril()
        ### END SOLUTION

``to_chapter`` replaces each marked block by ``raise NotImplementedError`` (same indentation): the chapter
the learner gets. ``to_solutions`` keeps the solutions and only what they need: a title, the setup cell
(cell 2) and the exercise section. tools/build_notebooks.py writes both; tests/test_notebooks.py checks
the committed notebooks against them.
"""

from __future__ import annotations

import copy

BEGIN, END = "### BEGIN SOLUTION", "### END SOLUTION"
STUB = "raise NotImplementedError  # your code here"
SECTION = "## Exercises"


def strip_solutions(source: str) -> str:
    """Each block between the markers (inclusive) becomes one ``raise NotImplementedError`` line."""
    out, inside = [], False
    for line in source.splitlines():
        stripped = line.strip()
        if stripped == BEGIN:
            if inside:
                raise ValueError(f"nested {BEGIN!r}")
            inside = True
            out.append(line[: len(line) - len(line.lstrip())] + STUB)
        elif stripped == END:
            if not inside:
                raise ValueError(f"{END!r} without {BEGIN!r}")
            inside = False
        elif not inside:
            out.append(line)
    if inside:
        raise ValueError(f"{BEGIN!r} without {END!r}")
    return "\n".join(out)


def drop_markers(source: str) -> str:
    return "\n".join(line for line in source.splitlines() if line.strip() not in (BEGIN, END))


def exercise_section_start(nb) -> int | None:
    """The index of the "## Exercises" markdown cell, or None when the chapter has no exercises."""
    for i, cell in enumerate(nb.cells):
        if cell.cell_type == "markdown" and cell.source.lstrip().startswith(SECTION):
            return i
    return None


def to_chapter(nb):
    """The learner's notebook: a copy of ``nb`` with every solution block replaced by the stub."""
    nb = copy.deepcopy(nb)
    for cell in nb.cells:
        if cell.cell_type == "code" and BEGIN in cell.source:
            cell.source = strip_solutions(cell.source)
    return nb


def to_solutions(nb, name: str):
    """The solutions notebook of chapter ``name`` ("03_attention"): a title, the setup cell and the exercise
    section with the solutions in place; None when the chapter has no exercise section."""
    import nbformat

    start = exercise_section_start(nb)
    if start is None:
        return None
    nb = copy.deepcopy(nb)
    title = nb.cells[0].source.lstrip().splitlines()[0].lstrip("# ").strip()
    head = nbformat.v4.new_markdown_cell(
        f"# Solutions: {title}\n\nThe exercises of `chapters/{name}.ipynb` with their solutions, each checked by "
        f"`llm_from_scratch.exercises.check`. Built from the same source, `chapters/src/{name}.py`: try the "
        "exercises in the chapter first.")
    nb.cells = [head, nb.cells[1], *nb.cells[start:]]
    for cell in nb.cells:
        if cell.cell_type == "code":
            cell.source = drop_markers(cell.source)
    return nb
