# Two commands do everything on a fresh machine with Python 3.11:
#   make repro   set up the environment and run `dvc repro` (its first stage builds the embedded archive)
#   make test    set up the environment and run every test (notebooks included)
SHELL := /bin/bash
PY ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
PARAMS ?= params.yaml
# dvc repro runs under dumb-init as in the image: a SIGTERM (a host's shutdown, `kill`) becomes the SIGINT that
# dvc waits on, so `make repro` ends only after the training stage has written checkpoints/<phase>_last.pt
PREEMPTIBLE = $(BIN)/dumb-init --rewrite 15:2 --

.PHONY: setup repro test lab data bench readme

$(BIN)/nowcast: pyproject.toml
	test -x $(BIN)/python || $(PY) -m venv $(VENV) || python3 -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[dev]'
	$(BIN)/python -m ipykernel install --sys-prefix --name python3 >/dev/null
	touch $@

setup: $(BIN)/nowcast

data: setup
	PATH=$(abspath $(BIN)):$$PATH $(BIN)/dvc repro archive

repro: setup
	PATH=$(abspath $(BIN)):$$PATH $(PREEMPTIBLE) $(BIN)/dvc repro
	cat reports/summary.md

test: setup
	PATH=$(abspath $(BIN)):$$PATH bash .ci/checks.sh

lab: setup
	PATH=$(abspath $(BIN)):$$PATH $(BIN)/jupyter lab --notebook-dir=.

bench: setup
	PATH=$(abspath $(BIN)):$$PATH $(BIN)/python benchmarks/bench_data.py

readme: setup
	$(BIN)/python tools/render_readme.py
