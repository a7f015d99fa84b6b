# edgelab: every target creates (or reuses) a local .venv from the pinned constraints.txt.
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed
export TF_CPP_MIN_LOG_LEVEL ?= 2
export PYTHONDONTWRITEBYTECODE = 1

NBVAL := -p no:cacheprovider --nbval --nbval-current-env --nbval-sanitize-with notebooks/sanitize.cfg

.PHONY: demo test unit nbtest lint lab bench nbregen lock clean help

help:
	@echo "make demo     synthetic scenes -> train -> QAT -> every precision -> compare -> runs/demo/report.md"
	@echo "make test     unit tests + notebook validation (nbval)"
	@echo "make lint     ruff (lint + format check) and mypy on edgelab/"
	@echo "make lab      JupyterLab on notebooks/"
	@echo "make bench    benchmarks -> runs/bench/bench.json"
	@echo "make nbregen  re-execute every notebook and store its outputs"

$(STAMP): constraints.txt pyproject.toml
	@$(PYTHON) -c 'import sys; v = sys.version_info[:2]; sys.exit(0 if (3, 10) <= v <= (3, 12) else "edgelab needs Python 3.10-3.12; $(PYTHON) is %d.%d. Run e.g. make PYTHON=python3.11 ..." % v)'
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check --upgrade pip
	$(PY) -m pip install --quiet --disable-pip-version-check -c constraints.txt -e ".[dev]"
	@touch $@

demo: $(STAMP)
	$(VENV)/bin/edgelab demo

test: unit nbtest

unit: $(STAMP)
	$(PY) -m pytest tests -q -p no:cacheprovider

nbtest: $(STAMP)
	$(PY) -m pytest notebooks $(NBVAL) -q

lint: $(STAMP)
	$(VENV)/bin/ruff check edgelab tests benchmarks tools
	$(VENV)/bin/ruff format --check edgelab tests benchmarks tools
	$(VENV)/bin/mypy

lab: $(STAMP)
	$(VENV)/bin/jupyter lab notebooks/ $(if $(filter 0,$(shell id -u)),--allow-root)

bench: $(STAMP)
	$(PY) benchmarks/bench.py

nbregen: $(STAMP)
	$(PY) notebooks/regenerate.py

lock: $(STAMP)
	{ echo "# Fully pinned environment for edgelab on Python 3.11 (Linux x86-64). Regenerate: make lock"; \
	  $(PY) -m pip freeze --exclude-editable --disable-pip-version-check | grep -v '^edgelab'; } > constraints.txt.new
	mv constraints.txt.new constraints.txt
	$(PY) tools/sync_environment.py

clean:
	rm -rf runs build *.egg-info
