# cptlib — `make help` lists the targets. Two commands on a fresh machine: `make reproduce`, `make test`.
SHELL := /bin/bash
.DELETE_ON_ERROR:
.DEFAULT_GOAL := help

PROFILE ?= default
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
# torch is pinned in pyproject.toml; pip takes the CPU wheel that lies on the build machines' disk.
STAMP := $(VENV)/.setup-done
# NLTK's English Punkt model, which lm-eval's IFEval scorer needs, written offline by the project.
PUNKT := .cache/nltk_data/tokenizers/punkt_tab/english/cptlib_source.txt
SETUP := $(STAMP) $(PUNKT)

export PYTHONUNBUFFERED := 1

.PHONY: help setup reproduce family test bench clean

help:  ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-12s %s\n", $$1, $$2}'
	@echo "  PROFILE=$(PROFILE) (params/<profile>.yaml)"

setup: $(SETUP)  ## create .venv, install pinned dependencies, register the Jupyter kernel, provision data
$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[dev]'
	$(PY) -m ipykernel install --sys-prefix --name cptlib --display-name "Python (cptlib)" >/dev/null
	touch $@

$(PUNKT): $(STAMP)
	$(PY) -m cptlib.punkt_data
	touch $@

reproduce: family  ## run the study for PROFILE (default: the embedded synthetic testbed)

family: $(SETUP)  ## build the testbed data and the model family for PROFILE
	$(VENV)/bin/cptlib build --profile $(PROFILE)

test: $(SETUP)  ## run the test suite (fails if no test ran)
	$(VENV)/bin/pytest

bench: $(SETUP)  ## training throughput benchmark (bench/train_throughput.py)
	$(PY) bench/train_throughput.py

clean:  ## remove build outputs (keeps .venv and figures)
	rm -rf build
