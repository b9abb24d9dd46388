# Two entry points work on a fresh machine:
#   make run    create .venv, install gendyn, run the default workflow and build the report
#   make test   create .venv, install gendyn with the dev extras, run the test suite
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(CURDIR)/$(VENV)/bin
export PATH := $(BIN):$(PATH)
CORES ?= 2
PYTEST_ARGS ?=

.PHONY: run test install install-dev report dry-run bench clean-results help

help:
	@echo "make run      - install and run the default workflow (config/config.yaml), build results/report.html"
	@echo "make test     - install with dev extras and run pytest"
	@echo "make dry-run  - show the jobs the default workflow would run"
	@echo "make bench    - run the benchmarks in benchmarks/"

$(VENV)/bin/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

# Stamps: reinstall when pyproject.toml changes.
$(VENV)/.installed: pyproject.toml | $(VENV)/bin/python
	$(BIN)/python -m pip install --quiet -e .
	touch $@

$(VENV)/.installed-dev: pyproject.toml | $(VENV)/bin/python
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $@ $(VENV)/.installed

install: $(VENV)/.installed
install-dev: $(VENV)/.installed-dev

run: install
	$(BIN)/snakemake --cores $(CORES)
	$(BIN)/snakemake --cores $(CORES) --report results/report.html
	@echo "report: results/report.html"

report: install
	$(BIN)/snakemake --cores $(CORES) --report results/report.html

dry-run: install
	$(BIN)/snakemake --cores $(CORES) -n

test: install-dev
	$(BIN)/python -m pytest $(PYTEST_ARGS)

bench: install
	@for b in benchmarks/*.py; do echo "== $$b"; $(BIN)/python $$b || exit 1; done

clean-results:
	rm -rf results .snakemake
