# Everything from a bare clone: `make demo` (set up + run the whole pipeline on the embedded cohort),
# `make test` (set up + run the tests), `make dev` (the Dagster UI on 127.0.0.1).
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
DVC_ENV := .tools/dvc
DVC_VERSION := 3.67.1
PROFILE ?= tiny
PORT ?= 3000
export DAGSTER_HOME ?= $(CURDIR)/dagster_home
export BRAINFM_DEID_SECRET_FILE ?= $(CURDIR)/.secrets/deid.key
export BRAINFM_DVC_BIN ?= $(CURDIR)/$(DVC_ENV)/bin/dvc

.PHONY: setup demo test dev clean

setup: $(VENV)/.installed $(DVC_ENV)/.installed

# The main environment: exact pins from pyproject.toml (torch 2.14.1 + torchvision 0.29.1, see README).
$(VENV)/.installed: pyproject.toml
	test -x $(VENV)/bin/python || $(PYTHON) -m venv $(VENV)
	$(VENV)/bin/python -m pip install --quiet --upgrade pip
	$(VENV)/bin/python -m pip install --quiet -e '.[dev]'
	touch $@

# dvc in its own tool environment: its hydra-core pins antlr4 4.9, dagster's selection parser needs 4.13.
$(DVC_ENV)/.installed:
	test -x $(DVC_ENV)/bin/python || $(PYTHON) -m venv $(DVC_ENV)
	$(DVC_ENV)/bin/python -m pip install --quiet dvc==$(DVC_VERSION)
	touch $@

.secrets/deid.key:
	mkdir -p .secrets && chmod 700 .secrets
	$(PYTHON) -c "import secrets; print(secrets.token_hex(32))" > $@ && chmod 600 $@

# A hospital deployment sends nothing out: Dagster's usage telemetry is off in the instance config.
$(DAGSTER_HOME)/dagster.yaml:
	mkdir -p $(DAGSTER_HOME)
	printf 'telemetry:\n  enabled: false\n' > $@

demo: setup .secrets/deid.key $(DAGSTER_HOME)/dagster.yaml
	BRAINFM_PROFILE=$(PROFILE) $(VENV)/bin/python -m dagster_project.demo

test: setup
	$(VENV)/bin/python -m pytest

dev: setup .secrets/deid.key $(DAGSTER_HOME)/dagster.yaml
	BRAINFM_PROFILE=$(PROFILE) $(VENV)/bin/dagster dev -w workspace.yaml -h 127.0.0.1 -p $(PORT)

clean:
	rm -rf $(DAGSTER_HOME) quarantine raw
