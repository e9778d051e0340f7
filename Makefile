# Two commands do everything on a fresh machine (Python >= 3.11 and make):
#   make run    set up .venv and run the main job on the built-in demo data
#   make test   set up .venv and run lint + the test suite (what CI runs)
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin

.PHONY: setup run test bench clean

setup: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -c constraints.txt -e '.[dev]'
	touch $@

run: setup
	$(BIN)/olist-fast run

test: setup
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/pytest

bench: setup
	$(BIN)/pytest benchmarks --benchmark-only

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache .mypy_cache
