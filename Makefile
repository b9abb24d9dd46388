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

.PHONY: run test reproduce install install-dev report dry-run bench clean-results help slurm-profile slurm-up

help:
	@echo "make run      - install and run the default workflow (config/config.yaml), build results/report.html"
	@echo "make test     - install with dev extras and run pytest"
	@echo "make reproduce - install and run config/reproduce.yaml (the papers' effects on CPU, about an hour on 2 cores):"
	@echo "                 results/reproduce/reproduction.csv and results/reproduce/report.html"
	@echo "make dry-run  - show the jobs the default workflow would run"
	@echo "make bench    - run the benchmarks in benchmarks/"
	@echo "make slurm-profile - link profiles/slurm to ~/.config/snakemake/slurm (for 'snakemake --profile slurm')"
	@echo "                     and create the site settings file ~/.config/gendyn/slurm-site.yaml if absent"
	@echo "make slurm-up - start a single-node Slurm on this machine (root; for the tests marked slurm)"

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

# The papers' headline effects at CPU scale, with a verdict per paper figure (docs/reproduction.md).
reproduce: install
	$(BIN)/snakemake --cores $(CORES) --configfile config/reproduce.yaml
	$(BIN)/snakemake --cores $(CORES) --configfile config/reproduce.yaml --report results/reproduce/report.html
	@echo "verdicts: results/reproduce/reproduction.csv; report: results/reproduce/report.html"

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

# `snakemake --profile slurm` finds profiles in ./slurm, $XDG_CONFIG_HOME/snakemake/slurm (default
# ~/.config/snakemake/slurm) and /etc/xdg/snakemake/slurm. Link ours into the user's folder so that
# updates of the project reach it; site settings stay in their own file, never overwritten.
CONFIG_HOME := $(or $(XDG_CONFIG_HOME),$(HOME)/.config)
SLURM_PROFILE_LINK := $(CONFIG_HOME)/snakemake/slurm
SLURM_SITE := $(or $(GENDYN_SLURM_SITE),$(CONFIG_HOME)/gendyn/slurm-site.yaml)

slurm-profile:
	@mkdir -p "$(dir $(SLURM_PROFILE_LINK))"
	@if [ -e "$(SLURM_PROFILE_LINK)" ] && [ ! -L "$(SLURM_PROFILE_LINK)" ]; then \
		echo "error: $(SLURM_PROFILE_LINK) exists and is not a link; move it away (keep your site settings in $(SLURM_SITE))" >&2; \
		exit 1; \
	fi
	ln -sfn "$(CURDIR)/profiles/slurm" "$(SLURM_PROFILE_LINK)"
	@if [ -e "$(SLURM_SITE)" ]; then \
		echo "site settings: $(SLURM_SITE) (kept)"; \
	else \
		mkdir -p "$$(dirname "$(SLURM_SITE)")" && cp profiles/slurm/site.example.yaml "$(SLURM_SITE)" && \
		echo "site settings: $(SLURM_SITE) (created from profiles/slurm/site.example.yaml: set partition, account)"; \
	fi
	@echo "now run: snakemake --profile slurm [--configfile config/experiments/NAME.yaml]"

slurm-up:
	tests/slurm/up.sh
