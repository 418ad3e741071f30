# Two entry points: `make demo` and `make test`. Each creates .venv and installs what it needs,
# with torch pinned to the 2.13.0 CPU wheel so pip never fetches a CUDA build.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
TORCH := torch==2.13.0

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --upgrade pip >/dev/null

$(VENV)/.installed: $(BIN)/python pyproject.toml
	$(BIN)/pip install $(TORCH)
	$(BIN)/pip install -e '.[dev]'
	touch $@

install: $(VENV)/.installed

demo: install
	$(BIN)/reparam demo

# The whole suite, including tests/test_install.py (builds the wheel and runs it in a fresh
# venv with only torch and numpy, about a minute); `-m "not install"` skips that one.
test: install
	$(BIN)/python -m pytest -q

lint: install
	$(BIN)/ruff check src tests benchmarks scripts

# mypy over src/ with the settings in pyproject.toml ([tool.mypy]).
typecheck: install
	$(BIN)/mypy

# The documentation site into site/ (Sphinx + furo + myst-nb; the tutorial and concepts notebooks
# run on every build; -E rebuilds from scratch, -W makes warnings errors), then the browser check
# (headless Chromium: images loaded and math typeset on the home, a tutorial and an API page).
docs: install
	$(BIN)/pip install -e '.[docs]'
	rm -rf site jupyter_execute
	$(BIN)/sphinx-build -E -W --keep-going -q -b html docs site
	@echo "docs: open site/index.html"

docs-check: docs
	$(BIN)/python scripts/check_site.py site

.PHONY: install demo test lint typecheck docs docs-check
