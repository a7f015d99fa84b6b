# edgelab: every target creates (or reuses) a local .venv from the pinned constraints.txt.
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed
export TF_CPP_MIN_LOG_LEVEL ?= 2
export PYTHONDONTWRITEBYTECODE = 1

NBVAL := -p no:cacheprovider --nbval -p edgelab.nbval

.PHONY: device-venv demo test unit nbtest nbtest-stored nbtest-portable lint lab bench bench-scale nbregen lock clean help

help:
	@echo "make demo     synthetic scenes -> train -> QAT -> every precision -> compare -> runs/demo/report.md"
	@echo "make test     lint, unit tests + notebook validation (nbval, twice: as stored and with other CPU numerics)"
	@echo "make lint     ruff (lint + format check), mypy, and the import contract (lint-imports)"
	@echo "make lab      JupyterLab on notebooks/ (widget state saved with notebooks, the series trusted)"
	@echo "make browser  every notebook run, clicked, saved and reopened in JupyterLab in headless Chromium"
	@echo "make bench    benchmarks -> runs/bench/bench.json"
	@echo "make bench-scale  time and peak memory vs dataset size -> runs/bench/bench.json (scale)"
	@echo "make nbregen  re-execute every notebook and store its outputs"
	@echo "make device-venv  the device stack the tests run bundles on (.venv-device: tflite-runtime 2.14, numpy 1.26, Pillow)"

$(STAMP): constraints.txt pyproject.toml
	@$(PYTHON) -c 'import sys; v = sys.version_info[:2]; sys.exit(0 if (3, 10) <= v <= (3, 12) else "edgelab needs Python 3.10-3.12; $(PYTHON) is %d.%d. Run e.g. make PYTHON=python3.11 ..." % v)'
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check --upgrade pip
	$(PY) -m pip install --quiet --disable-pip-version-check -c constraints.txt -e ".[dev]"
	@touch $@

# The device stack for tests: what a Raspberry Pi or an old Coral image runs bundles with (tflite-runtime
# 2.14 + numpy<2 + Pillow; no TensorFlow, no edgelab). tflite-runtime 2.14 has wheels for Python 3.8-3.11
# only: with another Python the target says so in one line and the device tests skip.
DEVICE_PYTHON ?= $(PYTHON)
DEVICE_VENV   ?= .venv-device
DEVICE_STAMP  := $(DEVICE_VENV)/.installed

device-venv: $(DEVICE_STAMP)

$(DEVICE_STAMP): constraints-device.txt
	@if $(DEVICE_PYTHON) -c 'import sys; sys.exit(0 if (3, 8) <= sys.version_info[:2] <= (3, 11) else 1)'; then \
	  { test -x $(DEVICE_VENV)/bin/python || $(DEVICE_PYTHON) -m venv $(DEVICE_VENV); } && \
	  $(DEVICE_VENV)/bin/python -m pip install --quiet --disable-pip-version-check -r constraints-device.txt && \
	  touch $@; \
	else \
	  echo "device-venv: tflite-runtime 2.14 needs Python 3.8-3.11 (run make DEVICE_PYTHON=python3.11 ...); the device tests will be skipped" >&2; \
	fi

demo: $(STAMP)
	$(VENV)/bin/edgelab demo

# Lint first; then the unit tests and both notebook passes side by side (each mostly uses one core).
test: lint
	$(MAKE) --no-print-directory -j3 --output-sync=target unit nbtest-stored nbtest-portable

# UNIT_ARGS adds pytest options to the unit tests only, e.g. a random order (pytest-random-order):
#   make test UNIT_ARGS="--random-order-bucket=global --random-order-seed=1234"
# (the notebook passes keep their cell order: a notebook is a sequence).
UNIT_ARGS ?=
unit: $(STAMP) $(DEVICE_STAMP)
	$(PY) -m pytest tests -q -p no:cacheprovider $(UNIT_ARGS)

# The series twice, each from an empty runs/ as on a fresh clone: as stored, and with the numerics
# changed the way another CPU changes them (edgelab/nbval.py: PORTABLE_ENV), against the same outputs.
# The second pass runs on a copy in notebooks-portable/ so both can run at once (make -j); they share
# notebooks/runs-cache/ (converted files that depend only on a graph).
nbtest: $(STAMP) $(DEVICE_STAMP)
	$(MAKE) --no-print-directory -j2 --output-sync=target nbtest-stored nbtest-portable

nbtest-stored: $(STAMP) $(DEVICE_STAMP)
	rm -rf notebooks/runs
	mkdir -p notebooks/runs-cache
	$(PY) -m pytest notebooks $(NBVAL) -q

nbtest-portable: $(STAMP) $(DEVICE_STAMP)
	rm -rf notebooks-portable
	mkdir -p notebooks-portable notebooks/runs-cache
	cp notebooks/*.ipynb notebooks/params.json notebooks-portable/
	ln -s ../notebooks/runs-cache notebooks-portable/runs-cache
	EDGELAB_NB_PORTABLE=1 $(PY) -m pytest notebooks-portable $(NBVAL) -q

lint: $(STAMP)
	$(VENV)/bin/ruff check edgelab tests benchmarks tools
	$(VENV)/bin/ruff format --check edgelab tests benchmarks tools
	$(VENV)/bin/mypy
	$(VENV)/bin/lint-imports --no-logo

# tools/lab_setup.py: JupyterLab saves widget state with notebooks (overrides.json) and the series is trusted
# (your local signature store), so stored explorers render and still render after you save.
lab: $(STAMP)
	$(PY) tools/lab_setup.py
	$(VENV)/bin/jupyter lab notebooks/ $(if $(filter 0,$(shell id -u)),--allow-root)

# The browser test on the whole series (make test opens 00 and 01; .ci/run runs this target too); screenshots in runs/browser/.
browser: $(STAMP)
	EDGELAB_BROWSER_NOTEBOOKS=all $(PY) -m pytest tests/test_browser.py -q -p no:cacheprovider -m browser

bench: $(STAMP)
	$(PY) benchmarks/bench.py

bench-scale: $(STAMP)
	$(PY) benchmarks/bench_scale.py

nbregen: $(STAMP) $(DEVICE_STAMP)
	$(PY) notebooks/regenerate.py

lock: $(STAMP)
	{ echo "# Fully pinned environment for edgelab on Python 3.11 (Linux x86-64). Regenerate: make lock"; \
	  $(PY) -m pip freeze --exclude-editable --disable-pip-version-check | grep -v '^edgelab'; } > constraints.txt.new
	mv constraints.txt.new constraints.txt
	$(PY) tools/sync_environment.py

clean:
	rm -rf runs build *.egg-info $(DEVICE_VENV) notebooks/runs notebooks/runs-cache notebooks-portable
