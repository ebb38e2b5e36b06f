# Two entry points for a fresh machine: `make demo` (the main job) and `make test` (the suite).
# Both create .venv and install what they need; both are idempotent.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-stamp

.PHONY: demo test bench-smoke fuzz clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip

# torch first, pinned to the CPU wheel on disk; the project then asks only for a range it meets.
$(STAMP): $(BIN)/python setup.cfg pyproject.toml
	$(BIN)/python -m pip install -q torch==2.13.0
	$(BIN)/python -m pip install -q -e ".[test]"
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/wdtnopt demo

# the suite on every core (pytest-xdist: one process per core, tests shared as they finish)
test: $(STAMP)
	$(BIN)/python -m pytest -q -p no:cacheprovider -n auto

# the checks beyond the suite (README): the paper suite's smoke preset, 10,000 fuzzed inputs
bench-smoke: $(STAMP)
	$(BIN)/wdtnopt bench paper --preset smoke --out bench/paper

fuzz: $(STAMP)
	$(BIN)/python benchmarks/fuzz_inputs.py --examples 2500

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache .hypothesis
