# Everything from a bare clone: `make demo` (set up + run the whole pipeline on the embedded cohort),
# `make test` (set up + run the tests), `make dev` (the Dagster UI on 127.0.0.1).
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
DVC_ENV := .tools/dvc
DVC_VERSION := 3.67.1
PIP_VERSION := 26.3
PROFILE ?= tiny
PORT ?= 3000
export DAGSTER_HOME ?= $(CURDIR)/dagster_home
export BRAINFM_DEID_SECRET_FILE ?= $(CURDIR)/.secrets/deid.key
export BRAINFM_DVC_BIN ?= $(CURDIR)/$(DVC_ENV)/bin/dvc

.PHONY: setup browser demo test dev clean lock add-center screenshots reports

setup: $(VENV)/.installed $(DVC_ENV)/.installed

# The main environment: exact pins from pyproject.toml (torch 2.14.1 + torchvision 0.29.1, see README),
# and every dependency of a dependency at its tested version from constraints.txt.
$(VENV)/.installed: pyproject.toml constraints.txt
	test -x $(VENV)/bin/python || $(PYTHON) -m venv $(VENV)
	$(VENV)/bin/python -m pip install --quiet pip==$(PIP_VERSION)
	$(VENV)/bin/python -m pip install --quiet -c constraints.txt -e '.[dev]'
	touch $@

# dvc in its own tool environment: its hydra-core pins antlr4 4.9, dagster's selection parser needs 4.13.
$(DVC_ENV)/.installed: constraints-dvc.txt
	test -x $(DVC_ENV)/bin/python || $(PYTHON) -m venv $(DVC_ENV)
	$(DVC_ENV)/bin/python -m pip install --quiet pip==$(PIP_VERSION)
	$(DVC_ENV)/bin/python -m pip install --quiet -c constraints-dvc.txt dvc==$(DVC_VERSION)
	touch $@

# Rewrite the constraints from the current environments (after a deliberate upgrade, tests passing).
lock: setup
	{ sed -n 1,2p constraints.txt; $(VENV)/bin/python -m pip freeze --exclude-editable; } > constraints.txt.new
	mv constraints.txt.new constraints.txt
	{ sed -n 1p constraints-dvc.txt; $(DVC_ENV)/bin/python -m pip freeze; } > constraints-dvc.txt.new
	mv constraints-dvc.txt.new constraints-dvc.txt

.secrets/deid.key:
	mkdir -p .secrets && chmod 700 .secrets
	$(PYTHON) -c "import secrets; print(secrets.token_hex(32))" > $@ && chmod 600 $@

# A hospital deployment sends nothing out: Dagster's usage telemetry is off in the instance config. The run
# queue starts one run tagged brainfm/exclusive=cross_center at a time (the cross-center jobs share outputs).
# Run monitoring fails runs stuck starting or cancelling, and runs past their dagster/max_runtime tag; a run
# whose worker died while started is failed by raw_data_sensor once it has logged nothing for 30 minutes.
$(DAGSTER_HOME)/dagster.yaml: deploy/local/dagster.yaml
	mkdir -p $(DAGSTER_HOME)
	cp deploy/local/dagster.yaml $@

demo: setup .secrets/deid.key $(DAGSTER_HOME)/dagster.yaml
	BRAINFM_PROFILE=$(PROFILE) $(VENV)/bin/python -m dagster_project.demo

# Headless Chromium (Debian's package) renders the evaluation reports to PNG and drives the UI test; the CJK
# font draws the reports' Chinese. Installed when missing and apt-get can (root); otherwise a warning, and the
# tests that need a browser skip unless BRAINFM_REQUIRE_BROWSER is set (CI sets it).
browser:
	@if ! command -v chromium >/dev/null || ! fc-list 2>/dev/null | grep -qi "noto.*cjk"; then \
	  { apt-get install -y -q chromium fonts-noto-cjk >/dev/null 2>&1 || \
	    { apt-get update -q >/dev/null 2>&1 && apt-get install -y -q chromium fonts-noto-cjk >/dev/null 2>&1; }; } || \
	  echo "warning: could not install chromium and fonts-noto-cjk (needs root and apt-get): browser tests will skip"; \
	fi

test: setup browser
	$(VENV)/bin/python -m pytest

# The UI in headless Chromium: the asset graph, a partitioned asset per center, a materialization's metadata.
screenshots: setup browser $(DAGSTER_HOME)/dagster.yaml
	$(VENV)/bin/python -m dagster_project.screenshots $(or $(OUT),outputs/screenshots)

# The three evaluation reports that `make demo` wrote, rendered to PNG (outputs/reports/) for people to look at.
reports: setup browser
	mkdir -p outputs/reports
	for name in prospective controlled retrospective; do \
	  test -f data/$${name}_evaluation/report.html && \
	    $(VENV)/bin/brainfm render-report data/$${name}_evaluation/report.html --out outputs/reports/$$name.png; \
	done; true

dev: setup .secrets/deid.key $(DAGSTER_HOME)/dagster.yaml
	BRAINFM_PROFILE=$(PROFILE) $(VENV)/bin/dagster dev -w workspace.yaml -h 127.0.0.1 -p $(PORT)

# Register a new site's center folders (raw/dicom/<center>) as partitions before the raw-data sensor has run:
# `make add-center` (every folder) or `make add-center CENTER=center_x`.
add-center: setup $(DAGSTER_HOME)/dagster.yaml
	$(VENV)/bin/python -m dagster_project.add_center $(CENTER)

clean:
	rm -rf $(DAGSTER_HOME) quarantine raw
