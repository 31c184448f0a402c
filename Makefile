# The course's commands. Each target installs what it needs into .venv first.
#   make demo       install the course, then run its main job (pretrain a small GPT on the CPU, sample)
#   make test       install with the dev extras, then pytest over tests/ and nbval over chapters/
#   make lab        JupyterLab on chapters/
#   make notebooks  re-execute every chapter in place with the CI (SMOKE) settings
#   make bench      rerun the CPU benchmarks and regenerate benchmarks/RESULTS.md (a few minutes)
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
# The CPU build of torch that is installed when the machine has no torch yet.
# (Colab and GPU machines keep their own torch when it is >= 2.13, the lowest version tested.)
TORCH_CPU ?= torch==2.13.0

.PHONY: install install-dev demo test unit nbval lab notebooks bench clean

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

install: $(VENV)/.installed
install-dev: $(VENV)/.installed-dev

demo: install
	$(BIN)/python -m llm_from_scratch demo --overwrite

test: install-dev unit nbval

unit: install-dev
	LFS_SMOKE=1 $(BIN)/python -m pytest tests -ra

nbval: install-dev
	LFS_SMOKE=1 $(BIN)/python -m pytest --nbval chapters --nbval-sanitize-with tests/nbval_sanitize.cfg --nbval-cell-timeout=300 -q

lab: install-dev
	$(BIN)/jupyter lab chapters

# Regenerate every notebook (or NB=03_attention for one) from chapters/src/*.py and execute it in place.
notebooks: install-dev
	LFS_SMOKE=1 $(BIN)/python tools/build_notebooks.py $(NB)

bench: install-dev
	nice -n 5 $(BIN)/python -m benchmarks.run_all --write

clean:
	rm -rf $(VENV) .pytest_cache .hypothesis
