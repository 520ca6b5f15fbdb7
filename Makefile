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

## run: the whole product on an emulated HubSpot portal of 300 deals, installed and synced, then a
## table of deals by alert and the URLs to try; Ctrl-C stops it (RUN_ARGS="--deals 50 --port 8001")
run: $(STAMP)
	$(VENV)/bin/dealradar sandbox $(RUN_ARGS)

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
