# edgelab: every target creates (or reuses) a local .venv from the pinned constraints.txt.
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed
export TF_CPP_MIN_LOG_LEVEL ?= 2
export PYTHONDONTWRITEBYTECODE = 1

NBVAL := -p no:cacheprovider --nbval -p edgelab.nbval

.PHONY: demo test unit nbtest lint lab bench bench-scale nbregen lock clean help

help:
	@echo "make demo     synthetic scenes -> train -> QAT -> every precision -> compare -> runs/demo/report.md"
	@echo "make test     lint, unit tests + notebook validation (nbval, twice: as stored and with other CPU numerics)"
	@echo "make lint     ruff (lint + format check) and mypy on edgelab/"
	@echo "make lab      JupyterLab on notebooks/"
	@echo "make bench    benchmarks -> runs/bench/bench.json"
	@echo "make bench-scale  time and peak memory vs dataset size -> runs/bench/bench.json (scale)"
	@echo "make nbregen  re-execute every notebook and store its outputs"

$(STAMP): constraints.txt pyproject.toml
	@$(PYTHON) -c 'import sys; v = sys.version_info[:2]; sys.exit(0 if (3, 10) <= v <= (3, 12) else "edgelab needs Python 3.10-3.12; $(PYTHON) is %d.%d. Run e.g. make PYTHON=python3.11 ..." % v)'
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check --upgrade pip
	$(PY) -m pip install --quiet --disable-pip-version-check -c constraints.txt -e ".[dev]"
	@touch $@

demo: $(STAMP)
	$(VENV)/bin/edgelab demo

test: lint unit nbtest

unit: $(STAMP)
	$(PY) -m pytest tests -q -p no:cacheprovider

# Twice, each from an empty notebooks/runs/ as on a fresh clone: as stored, then with the numerics
# changed the way another CPU changes them (edgelab/nbval.py: PORTABLE_ENV), against the same outputs.
# notebooks/runs-cache/ (converted files that depend only on a graph) is kept between the passes.
nbtest: $(STAMP)
	rm -rf notebooks/runs
	$(PY) -m pytest notebooks $(NBVAL) -q
	rm -rf notebooks/runs
	EDGELAB_NB_PORTABLE=1 $(PY) -m pytest notebooks $(NBVAL) -q

lint: $(STAMP)
	$(VENV)/bin/ruff check edgelab tests benchmarks tools
	$(VENV)/bin/ruff format --check edgelab tests benchmarks tools
	$(VENV)/bin/mypy

lab: $(STAMP)
	$(VENV)/bin/jupyter lab notebooks/ $(if $(filter 0,$(shell id -u)),--allow-root)

bench: $(STAMP)
	$(PY) benchmarks/bench.py

bench-scale: $(STAMP)
	$(PY) benchmarks/bench_scale.py

nbregen: $(STAMP)
	$(PY) notebooks/regenerate.py

lock: $(STAMP)
	{ echo "# Fully pinned environment for edgelab on Python 3.11 (Linux x86-64). Regenerate: make lock"; \
	  $(PY) -m pip freeze --exclude-editable --disable-pip-version-check | grep -v '^edgelab'; } > constraints.txt.new
	mv constraints.txt.new constraints.txt
	$(PY) tools/sync_environment.py

clean:
	rm -rf runs build *.egg-info
