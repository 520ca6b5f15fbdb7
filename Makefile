# Deal Radar: every target creates .venv and installs what it needs on first use.
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed

.PHONY: run test lint bench clean

$(STAMP): pyproject.toml
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "Deal Radar needs Python 3.11 or newer; set PYTHON=python3.11")'
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[dev]'
	@touch $(STAMP)

## run: evaluate the example deals and print a table (the sandbox CRMs replace this later)
run: $(STAMP)
	$(VENV)/bin/dealradar evaluate examples/bundles/*.json --settings examples/settings.json \
		--now 2026-11-25T09:00:00+01:00 --format table

## test: the whole test suite, then the linter
test: $(STAMP)
	$(PY) -m pytest
	$(VENV)/bin/ruff check .

lint: $(STAMP)
	$(VENV)/bin/ruff check .

## bench: speed and memory figures (run on demand, never in CI)
bench: $(STAMP)
	$(PY) bench/engine.py

clean:
	rm -rf $(VENV) *.egg-info .pytest_cache .ruff_cache .hypothesis
