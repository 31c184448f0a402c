# The course's commands. Each target installs what it needs into .venv first.
#   make demo       install the course, then run its main job (pretrain a small GPT on the CPU, sample)
#   make test       install with the dev extras, then ruff (pyflakes), pytest over tests/ and nbval (lax) over chapters/,
#                   all in the smoke setting
#   make lab        install the `lab` extra (JupyterLab, widgets), then JupyterLab on chapters/
#   make book       re-execute every chapter (NB=07_pretraining for one) in the book setting and write
#                   the outputs in place: the committed notebooks (chapter 07 first: 08-10 start from it)
#   make smoke      the same in the smoke setting, written to build/smoke/ (a check; never over chapters/)
#   make bench      rerun the CPU benchmarks and regenerate benchmarks/RESULTS.md (a few minutes)
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
# The CPU build of torch that is installed when the machine has no torch yet.
# (Colab and GPU machines keep their own torch when it is >= 2.13, the lowest version tested.)
TORCH_CPU ?= torch==2.13.0

.PHONY: install install-dev install-lab demo test lint unit nbval lab book smoke notebooks bench clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

$(VENV)/.torch: | $(BIN)/python
	$(BIN)/python -c "import torch" 2>/dev/null || $(BIN)/python -m pip install "$(TORCH_CPU)"
	touch $@

$(VENV)/.installed: pyproject.toml $(VENV)/.torch
	$(BIN)/python -m pip install -e .
	touch $@

$(VENV)/.installed-dev: pyproject.toml $(VENV)/.torch
	$(BIN)/python -m pip install -e ".[dev]"
	touch $@ $(VENV)/.installed

$(VENV)/.installed-lab: pyproject.toml $(VENV)/.torch
	$(BIN)/python -m pip install -e ".[lab]"
	touch $@ $(VENV)/.installed

install: $(VENV)/.installed
install-dev: $(VENV)/.installed-dev
install-lab: $(VENV)/.installed-lab

demo: install
	$(BIN)/python -m llm_from_scratch demo --overwrite

test: install-dev lint unit nbval

# pyflakes' checks (pyproject.toml [tool.ruff]): undefined names, unused imports
lint: install-dev
	$(BIN)/ruff check llm_from_scratch tests benchmarks tools chapters/src

unit: install-dev
	LFS_SETTING=smoke $(BIN)/python -m pytest tests -ra

nbval: install-dev
	LFS_SETTING=smoke $(BIN)/python -m pytest --nbval-lax chapters --ignore=chapters/zh --nbval-sanitize-with tests/nbval_sanitize.cfg --nbval-cell-timeout=300 -q

lab: install-lab
	$(BIN)/jupyter lab chapters

# Regenerate every notebook (or NB=03_attention for one) from chapters/src/*.py and execute it in the
# book setting, in place: these are the outputs the repository ships (minutes a chapter on a CPU).
book: install-dev
	$(BIN)/python tools/build_notebooks.py --setting book $(NB)

# The same in the smoke setting, into build/smoke/ (seconds a chapter): a check, never committed.
smoke: install-dev
	$(BIN)/python tools/build_notebooks.py --setting smoke $(NB)

# The old name: it used to write smoke outputs over the committed ones; now it is the smoke check.
notebooks: smoke

bench: install-dev
	nice -n 5 $(BIN)/python -m benchmarks.run_all --write

clean:
	rm -rf $(VENV) .pytest_cache .hypothesis
