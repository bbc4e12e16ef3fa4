# cptlib — `make help` lists the targets. Two commands on a fresh machine: `make reproduce`, `make test`.
SHELL := /bin/bash
.DELETE_ON_ERROR:
.DEFAULT_GOAL := help

PROFILE ?= default
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
# The whole environment is pinned, with hashes, in requirements.lock (`make lock` writes it from pyproject.toml's
# direct pins); set-up installs exactly that. torch is the CPU wheel that lies on the build machines' disk
# (/opt/wheels, pip's find-links here): the lock pins torch==2.13.0+cpu with that local wheel's sha256.
LOCK := requirements.lock
STAMP := $(VENV)/.setup-done
# NLTK's English Punkt model, which lm-eval's IFEval scorer needs, written offline by the project.
PUNKT := .cache/nltk_data/tokenizers/punkt_tab/english/cptlib_source.txt
SETUP := $(STAMP) $(PUNKT)

export PYTHONUNBUFFERED := 1
# The venv's modules are byte-compiled when first imported and cached (setup compiles nothing ahead): a shell's
# PYTHONDONTWRITEBYTECODE=1 would make every process of a run compile torch, transformers and lm-eval again (~10 s each).
unexport PYTHONDONTWRITEBYTECODE
# Jupyter's own state (kernel connection files, JupyterLab's workspaces and settings) stays in the project too;
# the project's kernel is registered inside .venv (ipykernel --sys-prefix), which Jupyter searches regardless.
export JUPYTER_RUNTIME_DIR := $(CURDIR)/.cache/jupyter/runtime
export JUPYTER_DATA_DIR := $(CURDIR)/.cache/jupyter/data
export JUPYTER_CONFIG_DIR := $(CURDIR)/.cache/jupyter/config
# The libraries' caches inside the project, as the `cptlib` command sets them (cptlib.core.paths.project_cache_env;
# tests/test_layout.py checks they agree): the Jupyter kernels of `make lab` inherit them. A value you set wins.
export HF_HOME ?= $(CURDIR)/.cache/huggingface
export TORCHINDUCTOR_CACHE_DIR ?= $(CURDIR)/.cache/torchinductor
export NLTK_DATA ?= $(CURDIR)/.cache/nltk_data
export MPLCONFIGDIR ?= $(CURDIR)/.cache/matplotlib
# What `cptlib` names on Ctrl-C as the command that resumes: the outermost make (`make smoke`, not the sub-make it
# runs), with the variables given on its command line.
export CPTLIB_RESUME ?= make $(strip $(MAKECMDGOALS) $(foreach v,PROFILE CPTLIB_BUILD_DIR,$(if $(filter command line,$(origin $(v))),$(v)=$($(v)))))
# Where stages and executed notebooks go (cptlib.core.paths reads the same variable).
BUILD_ROOT := $(or $(CPTLIB_BUILD_DIR),build)
# make's targets are words: a path with a space, or an empty profile, would become rules make misreads.
ifneq ($(words $(BUILD_ROOT)),1)
$(error CPTLIB_BUILD_DIR="$(CPTLIB_BUILD_DIR)" contains a space, which make cannot use in a target; choose a folder without spaces (a symlink to this one works))
endif
ifneq ($(words $(PROFILE)),1)
$(error PROFILE="$(PROFILE)" must be one profile name, e.g. PROFILE=default (params/<name>.yaml; make help lists the targets))
endif
# A path would put the executed notebooks outside the build folder (build/../x/), where make never finds them built.
ifneq ($(findstring /,$(PROFILE)),)
$(error PROFILE=$(PROFILE) is a path; PROFILE is the name of a file in params/ (PROFILE=smoke for params/smoke.yaml): copy your profile there, or run it with `.venv/bin/cptlib notebook run <notebook> --profile <file.yaml>`)
endif

.PHONY: help setup lock reproduce redraw docs cost family ancestors notebooks-check lab smoke test bench clean clean-partial

help:  ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-16s %s\n", $$1, $$2}'
	@echo "  PROFILE=$(PROFILE) (params/<profile>.yaml)"

setup: $(SETUP)  ## create .venv, install requirements.lock (hash-checked) and cptlib, register the Jupyter kernel, provision data
# Every package from the lock, each checked against its hash, none resolved again (--no-deps); then cptlib itself,
# editable, built with the lock's setuptools (no build isolation: nothing outside the lock is fetched).
# Nothing is byte-compiled at install (pip would compile every file, one at a time: ~60 s here; compileall of all
# 18,700 modules took 37 s on both cores): Python caches the ~4,200 modules the study imports the first time they
# are imported (PYTHONDONTWRITEBYTECODE is unexported below for that: ~13 s once, then every process reads them).
# No stamp at all means the set-up never finished (interrupted: a half-installed .venv): it starts again from an
# empty .venv. A stamp older than the lock is a finished set-up that updates in place.
$(STAMP): pyproject.toml $(LOCK)
	test -f $@ || rm -rf $(VENV)
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet --no-compile --require-hashes --no-deps -r $(LOCK)
	PYTHONWARNINGS='ignore:Editable installation' $(PY) -m pip install --quiet --no-compile --no-deps \
	  --no-build-isolation -e '.[study,dev]'
	$(PY) -m ipykernel install --sys-prefix --name cptlib --display-name "Python (cptlib)" >/dev/null
	touch $@

# The lock: pyproject.toml's direct pins (the engine, [study] and [dev]) and everything they pull in, for CPython 3.11
# (any 3.11.x) on x86_64 Linux (glibc >= 2.28), with the sha256 of every file each pinned version has on PyPI.
# torch==2.13.0+cpu is not on PyPI: uv takes it from TORCH_WHEELS (default /opt/wheels, the build machines' local
# wheel), so its hash is that local wheel's. uv keeps the lock's other pins where pyproject allows them;
# UV_ARGS=--upgrade moves every transitive pin to its newest release. uv is pinned and lives in .cache/ (its cache too).
UV_VERSION := 0.13.9
UV := .cache/uv-$(UV_VERSION)/bin/uv
UV_ARGS ?=
TORCH_WHEELS ?= /opt/wheels
$(UV):
	$(PYTHON) -m venv $(dir $(@D))
	$(dir $(@D))bin/pip install --quiet uv==$(UV_VERSION)
lock: $(UV)  ## refresh requirements.lock (every package, pinned with hashes) from pyproject.toml's pins
	UV_CACHE_DIR=.cache/uv $(UV) pip compile pyproject.toml --extra study --extra dev --generate-hashes \
	  --python-version 3.11 --python-platform x86_64-manylinux_2_28 --find-links $(TORCH_WHEELS) \
	  --custom-compile-command 'make lock' --quiet $(UV_ARGS) -o $(LOCK)

$(PUNKT): $(STAMP)
	$(PY) -m cptlib.evaluation.punkt_data
	touch $@

# The study: one target per notebook, each the executed notebook for PROFILE, in dependency order. A
# notebook is run by `cptlib notebook run` = `papermill -f params/$(PROFILE).yaml` done right: the profile is
# resolved (`extends` applied) and validated first, and a key that is not a notebook parameter is an error
# (papermill would only warn). It writes <nb>.partial-<pid>.ipynb and renames it only on success, so a failed
# notebook never counts as built; .DELETE_ON_ERROR covers the rest. Nothing changed = nothing runs.
NB_OUT := $(BUILD_ROOT)/$(PROFILE)/notebooks
NB_SRC := $(or $(CPTLIB_NOTEBOOKS_DIR),notebooks)
PARAMS := params/$(PROFILE).yaml
# The profile's file and those it extends (`extends: <name>` lines, followed to the root), not every params file:
# a new, unrelated profile leaves the others' notebooks up to date; and the notebooks the profile runs, in order (its
# `notebooks:` key: the study's six by default; params/sizes.yaml runs the size ladder's 06_sizes only).
# Resolved and validated by cptlib.config, the code the CLI uses, while make reads this file: an invalid profile is its
# own one-line message before any rule runs. Only a finished set-up (its stamp is written last) runs that Python, and
# only for the goals that run notebooks: an interrupted set-up's half-built .venv leaves `make help`, `make clean` and
# `make setup` working, and `make setup` starts it again.
STUDY_NOTEBOOKS := 00_build 01_forgetting 02_recipes 03_transfer 04_ablations 05_report
PROFILE_GOALS := $(filter-out help setup lock clean test bench lab smoke clean-partial cost family ancestors notebooks-check redraw docs,$(MAKECMDGOALS))
ifneq ($(and $(PROFILE_GOALS),$(wildcard $(STAMP))),)
RESOLVED := $(shell $(PY) -m cptlib.config '$(PROFILE)' --make '$(NB_OUT)' 2>&1)
ifeq ($(firstword $(RESOLVED)),error:)
$(error make: PROFILE=$(PROFILE): $(wordlist 2,999,$(RESOLVED)))
endif
ifneq ($(.SHELLSTATUS),0)
$(error make: $(PY) failed (exit $(.SHELLSTATUS)) reading PROFILE=$(PROFILE): the .venv is broken; rebuild it with `rm -rf $(VENV) && make setup`)
endif
PROFILE_FILES := $(patsubst file:%,%,$(filter file:%,$(RESOLVED)))
# A missing profile prints nothing: the study's list, whose rules name the missing file (params/%.yaml below).
NOTEBOOKS := $(or $(patsubst nb:%,%,$(filter nb:%,$(RESOLVED))),$(STUDY_NOTEBOOKS))
# An executed notebook that is not a whole notebook (truncated, emptied) is not built, whatever its time stamp says.
$(patsubst unfinished:%,%,$(filter unfinished:%,$(RESOLVED))): FORCE
else
PROFILE_FILES := $(wildcard params/$(PROFILE).yaml)
NOTEBOOKS := $(STUDY_NOTEBOOKS)
# Before the first set-up there is no interpreter to resolve a profile; one whose file does not exist is named now,
# not after the ~80 s of set-up (a fresh clone's `make reproduce PROFILE=typo`).
ifneq ($(filter reproduce redraw cost family ancestors,$(MAKECMDGOALS)),)
ifeq ($(PROFILE_FILES),)
$(error make: profile file params/$(PROFILE).yaml does not exist (PROFILE=$(PROFILE)); known profiles: $(sort $(basename $(notdir $(wildcard params/*.yaml)))))
endif
endif
endif
.PHONY: FORCE
FORCE:
# The notebooks call cptlib, and the testbed profiles start from their released ancestors: any of them changing
# reruns the notebooks (quickly: trained models and evaluations are cached by content).
SOURCES := $(PROFILE_FILES) $(wildcard cptlib/*.py cptlib/*/*.py cptlib/*/*/*.py cptlib/evaluation/tasks/*/*) \
           $(wildcard models/$(PROFILE)/*/release.json models/$(PROFILE)/sizes/*/*/release.json)

ifneq ($(wildcard $(STAMP)),)
reproduce: $(NB_OUT)/$(lastword $(NOTEBOOKS)).ipynb  ## run every notebook for PROFILE (default: the embedded synthetic testbed)
else
# Set up first, then make reads this file again with an interpreter that resolves the profile's own notebook list
# (`make -n` runs a $(MAKE) line even so: without the stamp it would call itself for ever).
reproduce: $(SETUP)
	if test -f $(STAMP); then $(MAKE) reproduce; fi
endif

$(NB_OUT)/%.ipynb: $(NB_SRC)/%.ipynb $(PARAMS) $(SOURCES) | $(SETUP)
	CPTLIB_PUBLISH=1 $(VENV)/bin/cptlib notebook run $* --profile $(PROFILE)

# A profile that does not exist: one message naming it and the known ones (before any notebook rule runs).
.PRECIOUS: params/%.yaml
params/%.yaml:
	@echo "make: profile file params/$*.yaml does not exist (PROFILE=$*)$(if $(filter %.yaml %.yml,$*),; PROFILE is the name without .yaml: PROFILE=$(basename $*))$(if $(wildcard params/$*.yml),; params/$*.yml is there: a profile's file ends in .yaml: rename it params/$*.yaml); known profiles: $(sort $(basename $(notdir $(wildcard params/*.yaml))))" >&2; exit 2

# Dependency order: each notebook of the profile's list after the one before it.
$(foreach nb,$(NOTEBOOKS),$(if $(PREV_NB),$(eval $(NB_OUT)/$(nb).ipynb: $(NB_OUT)/$(PREV_NB).ipynb))$(eval PREV_NB := $(nb)))

# Figures drawn again from the tables committed beside them (cptlib.study.redraw): seconds, no training, no evaluation;
# a one-notebook profile's report too (PROFILE=drift, PROFILE=sizes). FIGURES="effects n4_map" picks some.
FIGURES ?=
redraw: $(SETUP)  ## draw PROFILE's figures (and a one-notebook profile's report) again from its committed tables
	CPTLIB_PUBLISH=1 $(VENV)/bin/cptlib notebook redraw --profile $(PROFILE) $(foreach f,$(FIGURES),--figure $(f))

docs: $(SETUP)  ## rewrite the README's and docs' generated blocks from the committed figures, profiles and release
	$(VENV)/bin/cptlib docs render

cost: $(SETUP)  ## the cost model of PROFILE's last run: seconds per notebook, stage and category (cptlib cost)
	$(VENV)/bin/cptlib cost --profile $(PROFILE)

smoke:  ## run every notebook on the smoke profile (minutes)
	$(MAKE) reproduce PROFILE=smoke

notebooks-check: $(SETUP)  ## check that every key of the PROFILE's params file is a notebook parameter
	$(VENV)/bin/cptlib notebook check --profile $(PROFILE)

# JupyterLab from the repository root (notebooks/ opens first; the executed ones are in build/<profile>/notebooks/),
# with --allow-root where make runs as root (Jupyter refuses root otherwise). LAB_ARGS: e.g. --no-browser --ip=0.0.0.0
LAB_ARGS ?=
lab: $(SETUP)  ## JupyterLab with the project's kernel (cptlib): notebooks/ and the executed build/<profile>/notebooks/
	$(VENV)/bin/jupyter lab --ServerApp.root_dir=. --ServerApp.default_url=/lab/tree/notebooks \
	  --MultiKernelManager.default_kernel_name=cptlib $(if $(filter 0,$(shell id -u)),--allow-root) $(LAB_ARGS)

ancestors: $(SETUP)  ## train the released testbed ancestors of PROFILE into models/PROFILE/ (rare: a new recipe)
	$(VENV)/bin/cptlib ancestors build --profile $(PROFILE) $(if $(REUSE),--reuse-released)

family: $(SETUP)  ## build the testbed data and the model family for PROFILE
	$(VENV)/bin/cptlib build --profile $(PROFILE)

# One pytest-xdist worker per core, a test file per worker at a time (its module fixtures are built once); each
# worker trains with one torch thread (tests/conftest.py). TEST_WORKERS=0 runs the suite in this one process.
TEST_WORKERS ?= 2
test: $(SETUP)  ## run the test suite in TEST_WORKERS processes (default 2; fails if no test ran)
	$(VENV)/bin/pytest --durations=15 $(if $(filter-out 0,$(TEST_WORKERS)),-n $(TEST_WORKERS) --dist loadfile)

bench: $(SETUP)  ## training throughput benchmark (bench/train_throughput.py)
	$(PY) bench/train_throughput.py

clean-partial: $(SETUP)  ## remove unfinished stages and idle lock files left by failed or killed runs (says what)
	$(VENV)/bin/cptlib clean-partial

# CPTLIB_BUILD_DIR=. or =$HOME (a typo, or a variable set for something else) would remove the clone or the home folder.
clean:  ## remove build outputs: trained stages, evaluations, executed notebooks (keeps .venv and figures)
	@root=$$(realpath -m -- '$(BUILD_ROOT)'); case "$(CURDIR)/" in "$${root%/}/"*) bad="holds this clone";; *) \
	  if [ "$$root" = "$$(realpath -m -- "$$HOME")" ] || [ -e "$$root/.git" ]; then bad="is a home folder or a git clone"; fi;; esac; \
	  if [ -n "$$bad" ]; then echo "make clean: CPTLIB_BUILD_DIR=$(BUILD_ROOT) $$bad, not a build folder; point CPTLIB_BUILD_DIR at the folder cptlib builds in (default build/)" >&2; exit 2; fi
	rm -rf $(BUILD_ROOT)
