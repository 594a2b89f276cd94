# mlcomops_assets: everything a fresh machine with Python 3.11, make and git needs.
#   make run    set up, then materialize the whole asset graph on the default data and summarize it
#   make test   set up, lint (make lint), then run the test suite
#   make ui     Dagster UI on 127.0.0.1:3000 (guarded: no GET mutations, same-origin only) + daemon,
#               MLflow UI on 127.0.0.1:5000, reports on 127.0.0.1:3001
#   make audit  read-only view for auditors: Dagster 127.0.0.1:3100 (no daemon), reports :3101,
#               MLflow :3102 (login; the auditor's password is in .mlflow-audit/auditor.json)
#   make serve  the scoring service on 127.0.0.1:8000: the verified champion's decisions with receipts
SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := help

PYTHON ?= python3.11
ROOT := $(CURDIR)
VENV := $(ROOT)/.venv
DVC_VENV := $(ROOT)/.venv-dvc
TOOLS := $(ROOT)/.venv-tools
STAMPS := $(ROOT)/.make
UV := $(TOOLS)/bin/uv

# A copied or moved project must run its own code on its own stores: the venvs' scripts and the
# editable install name the folder they were built in (a copy would import the original's package),
# so venvs built in another folder are removed here and rebuilt by `setup`.
BUILT_FOR := $(shell sed -n '1s/^..//p' $(VENV)/bin/dagster 2>/dev/null)
ifneq ($(BUILT_FOR),)
ifneq ($(BUILT_FOR),$(VENV)/bin/python)
$(info the virtual environments were built for $(dir $(BUILT_FOR)); rebuilding them in $(ROOT))
$(shell rm -rf $(STAMPS) $(VENV) $(DVC_VENV) $(TOOLS))
endif
endif

export MLCOMOPS_HOME := $(ROOT)
export DAGSTER_HOME := $(ROOT)/.dagster_home
export PATH := $(VENV)/bin:$(PATH)
export UV_PYTHON_DOWNLOADS := never
# Telemetry off across the stack (MLflow needs the literal "true").
export MLFLOW_DISABLE_TELEMETRY := true
export DO_NOT_TRACK := true
export DVC_NO_ANALYTICS := 1
export GX_ANALYTICS_ENABLED := False

DAGSTER_MODULE := -m mlcomops_assets.definitions

.PHONY: help setup run test ui serve inbox-demo bench lint lock clean dvc-status data-push data-pull

help:
	@echo "make run | make test | make ui | make audit | make serve | make inbox-demo | make bench | make lint | make lock | make clean | make data-push | make data-pull"

$(UV): requirements/tools.lock
	@$(PYTHON) -c 'import sys; assert sys.version_info[:2] == (3, 11), f"Python 3.11 is required, found {sys.version.split()[0]}"'
	$(PYTHON) -m venv $(TOOLS)
	$(TOOLS)/bin/pip install --quiet --disable-pip-version-check --require-hashes -r requirements/tools.lock
	@touch $@

$(STAMPS)/venv: requirements/runtime.lock pyproject.toml $(UV)
	@mkdir -p $(STAMPS)
	@test -x $(VENV)/bin/python || $(UV) venv --quiet --python $(PYTHON) $(VENV)
	$(UV) pip sync --quiet --python $(VENV)/bin/python --require-hashes requirements/runtime.lock
	$(UV) pip install --quiet --python $(VENV)/bin/python --no-deps -e .
	@touch $@

# DVC gets its own venv: its hydra/omegaconf pin ANTLR 4.9, which breaks Dagster's selection parser.
$(STAMPS)/dvc: requirements/dvc.lock $(UV) $(STAMPS)/venv
	@test -x $(DVC_VENV)/bin/python || $(UV) venv --quiet --python $(PYTHON) $(DVC_VENV)
	$(UV) pip sync --quiet --python $(DVC_VENV)/bin/python --require-hashes requirements/dvc.lock
	ln -sf $(DVC_VENV)/bin/dvc $(VENV)/bin/dvc
	@touch $@

# The instance's configuration follows the profile: MLCOMOPS_PROFILE=team selects PostgreSQL storage
# (config/dagster.team.yaml, mlcomops_assets/profile.py); copied again whenever it differs, so a switch
# of profile takes effect at the next make.
DAGSTER_CONFIG := config/dagster$(if $(filter team,$(MLCOMOPS_PROFILE)),.team).yaml
.PHONY: dagster-config-changed
$(DAGSTER_HOME)/dagster.yaml: $(DAGSTER_CONFIG) dagster-config-changed
	@mkdir -p $(DAGSTER_HOME)
	@cmp -s $(DAGSTER_CONFIG) $@ || cp $(DAGSTER_CONFIG) $@

# The libraries' bytecode, compiled once here: uv does not write it, and where Python may not write it
# either (a read-only venv, PYTHONDONTWRITEBYTECODE set) every process compiled Dagster, MLflow, GX,
# scikit-learn... from source again: about 15 s of CPU of each graph run (docs/performance.md).
$(STAMPS)/bytecode: $(STAMPS)/venv $(STAMPS)/dvc
	$(VENV)/bin/python -m compileall -q -j 0 $(VENV)/lib/python3.11/site-packages
	$(DVC_VENV)/bin/python -m compileall -q -j 0 $(DVC_VENV)/lib/python3.11/site-packages
	@touch $@

setup: $(STAMPS)/venv $(STAMPS)/dvc $(STAMPS)/bytecode $(DAGSTER_HOME)/dagster.yaml chromium

.PHONY: chromium audit
# The browser test drives the system's Chromium (Playwright's own browser download does not work
# here). Installed only when missing, and only as root with apt-get; otherwise one line of advice.
chromium:
	@if command -v chromium >/dev/null || command -v chromium-browser >/dev/null; then :; \
	elif [ "$$(id -u)" -eq 0 ] && command -v apt-get >/dev/null; then \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium; \
	else \
		echo "note: no Chromium, so the browser test will fail; install it (Debian: sudo apt-get install chromium)"; \
	fi

# Read-only view for auditors and DPOs (README: "Who uses which view"); Ctrl-C stops all three servers.
audit: setup
	python -m mlcomops_assets.audit_view

# The summary is printed whether the run succeeded or not (after a failure it says so and shows the
# last good state); make's exit status is the failed step's. The audit (compliance matrix, evidence
# bundle) runs in any case: a blocked version is documented as well as a promoted one.
run: setup
	@start=$$(date +%s); failed=""; \
	python -m mlcomops_assets.pipeline_run || failed="the graph run (pipeline_run)"; \
	if [ -z "$$failed" ]; then python -m mlcomops_assets.monitor_all || failed="batch monitoring (monitor_all)"; fi; \
	python -m mlcomops_assets.audit_run || failed="$${failed:-the audit (audit_run)}"; \
	if [ -z "$$failed" ]; then dvc commit --force --quiet || failed="dvc commit"; fi; \
	python -m mlcomops_assets.summary --elapsed $$(( $$(date +%s) - start )) $${failed:+--failed-step "$$failed"}; \
	test -z "$$failed"

dvc-status: setup
	dvc status

# Team profile (docs/deployment.md): the data versions on the object store, $MLCOMOPS_OBJECT_STORE_URL/dvc
# at $MLCOMOPS_S3_ENDPOINT_URL; credentials only from the environment (AWS_ACCESS_KEY_ID, ...).
data-push: setup
	mlcomops data push

data-pull: setup
	mlcomops data pull

# Lint first, so CI (.ci/run calls make test) fails on a broken layering contract or lint error too.
test: setup lint
	python -m pytest $(PYTEST_ARGS)

ui: setup
	@mkdir -p .mlflow/artifacts
	@# A copied project's MLflow store still names the original's artifact folder until aligned.
	python -m mlcomops_assets.lib.mlflow_store
	@set -m; \
	mlflow ui --backend-store-uri "sqlite:///$(ROOT)/.mlflow/mlflow.db" \
		--default-artifact-root "$(ROOT)/.mlflow/artifacts" --host 127.0.0.1 --port 5000 & \
	mlflow_pid=$$!; \
	python -m mlcomops_assets.report_server --host 127.0.0.1 --port 3001 & \
	reports_pid=$$!; \
	dagster-daemon run -w workspace.yaml & \
	daemon_pid=$$!; \
	trap 'for pid in $$daemon_pid $$reports_pid $$mlflow_pid; do kill -INT -- -$$pid 2>/dev/null || true; done; wait' EXIT; \
	python -m mlcomops_assets.ui_server -w workspace.yaml --host 127.0.0.1 --port 3000

# The scoring service on 127.0.0.1:8000 (docs/serving.md): the verified champion, decisions with receipts.
# Needs the pseudonym key (MLCOMOPS_PSEUDONYM_KEY or MLCOMOPS_PSEUDONYM_KEY_FILE); SERVE_ARGS="--port 8001".
# The service needs the pseudonym key. When neither MLCOMOPS_PSEUDONYM_KEY nor MLCOMOPS_PSEUDONYM_KEY_FILE
# is set, a key file outside the repository is used, created once (owner-only) like the signing key.
PSEUDONYM_KEY_FILE ?= $(HOME)/.config/mlcomops/pseudonym.key
serve: setup
	@if [ -z "$${MLCOMOPS_PSEUDONYM_KEY:-}" ] && [ -z "$${MLCOMOPS_PSEUDONYM_KEY_FILE:-}" ]; then \
		if [ ! -f "$(PSEUDONYM_KEY_FILE)" ]; then \
			mkdir -p "$$(dirname "$(PSEUDONYM_KEY_FILE)")"; \
			(umask 077; python -c 'import secrets; print(secrets.token_hex(32))' > "$(PSEUDONYM_KEY_FILE)"); \
			echo "created the pseudonym key $(PSEUDONYM_KEY_FILE) (keep it: receipts are keyed with it)"; \
		fi; \
		export MLCOMOPS_PSEUDONYM_KEY_FILE="$(PSEUDONYM_KEY_FILE)"; \
	fi; \
	mlcomops serve $(SERVE_ARGS)

# With `make ui` running in another terminal: drop a drifted batch into the inbox and time the
# automatic path from file to verdict (monitoring run, retraining run, promotion verdict).
inbox-demo: setup
	python benchmarks/inbox_to_verdict.py

TEAM_BENCH_ROWS ?= 1000000
# Orchestration overhead and scaling (default data, 100k, 1M rows; then 10M rows, the graph only, against the
# scaling targets of benchmarks/targets.py: --scale-sizes), then the scoring service under load
# next to `mlflow models serve` on the champion `make run` promoted (benchmarks/serving.py; only that:
# python benchmarks/serving.py; leave it out: BENCH_ARGS=--no-serving): benchmarks/out/results.{json,md}.
bench: setup
	python benchmarks/run.py $(BENCH_ARGS)
	python benchmarks/import_ratio.py | tee -a benchmarks/out/results.md
	@# The team profile at 1M rows on its real services (PostgreSQL, the S3 stand-in, two Dask workers),
	@# next to the default profile's 1M figure above; leave it out with TEAM_BENCH_ROWS=.
	$(if $(TEAM_BENCH_ROWS),python benchmarks/team.py --rows $(TEAM_BENCH_ROWS) 2>/dev/null | tee -a benchmarks/out/results.md)

# `lint-imports` checks the layering contracts (pyproject.toml [tool.importlinter]: lib/ free of
# Dagster and MLflow, asset modules independent). `dg check defs` loads the code location as Dagster
# will (pyproject.toml [tool.dg]); VIRTUAL_ENV names .venv as the active environment, which dg otherwise
# warns about.
lint: setup
	ruff check mlcomops_assets mlcomops_assets_tests
	lint-imports --no-logo
	VIRTUAL_ENV=$(VENV) dg check defs

# Re-resolve the exact versions (hash-checked) from pyproject.toml and requirements/dvc.in.
lock: $(UV)
	$(UV) pip compile pyproject.toml --extra dev --python-version 3.11 --generate-hashes --no-header -o requirements/runtime.lock
	$(UV) pip compile requirements/dvc.in --python-version 3.11 --generate-hashes --no-header -o requirements/dvc.lock

clean:
	rm -rf $(VENV) $(DVC_VENV) $(TOOLS) $(STAMPS)
