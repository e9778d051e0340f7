# Two commands do everything on a fresh machine (Python >= 3.11 and make):
#   make run    set up .venv and run the main job on the built-in demo data
#   make test   set up .venv and run lint + the test suite (what CI runs)
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin

.PHONY: setup run test bench bench-smoke clean

setup: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -c constraints.txt -e '.[dev,spark]'
	touch $@

run: setup
	$(BIN)/olist-fast run

test: setup
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy olist_fast
	$(BIN)/pytest

# a plain `pip install` of the wheel (no extras, no constraints), newest and lowest versions
# the declared ranges allow, runs the CLI's main path (issue 19); needs no .venv
.PHONY: install-check
install-check:
	PYTHON=$(PYTHON) .ci/install-check

bench: setup
	$(BIN)/pytest benchmarks --scales 0.1,1 --benchmark-json benchmarks/results/latest.json

bench-smoke: setup
	$(BIN)/pytest benchmarks --benchmark-disable --scales 0.1 -q

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache .mypy_cache
