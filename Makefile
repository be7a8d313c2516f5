# inkasso-gateway: `make run` starts the gateway, `make test` runs every check. Both build .venv first:
# `make run` with what running needs only (at the versions in deploy/requirements.lock), `make test`
# adds the development tools.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
RUNTIME := $(VENV)/.installed-runtime
DEV := $(VENV)/.installed-dev
LOCK := deploy/requirements.lock

.PHONY: run test lint typecheck bench clean sshd chromium sqlite3 postgresql systemd system-python prometheus tools screenshot

$(RUNTIME): pyproject.toml $(LOCK)
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet --constraint $(LOCK) -e .
	touch $(RUNTIME)

$(DEV): $(RUNTIME)
	$(BIN)/pip install --quiet --constraint $(LOCK) -e '.[dev]'
	touch $(DEV)

run: $(RUNTIME)
	$(BIN)/inkasso-gateway run --config gateway.toml

lint: $(DEV)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: $(DEV)
	$(BIN)/mypy

# Tests run real components; CI runs as root on a fresh machine, so what is missing is installed:
# OpenSSH's sshd (SFTP), Chromium (report screenshots), sqlite3 (a store lock held by another
# process), PostgreSQL's server (the postgres tier starts throwaway clusters with it), systemd's
# systemd-analyze and systemd-sysusers (the unit's checks, deploy/install.sh), the system's Python
# with venv (deploy/install.sh builds the service's venv with it), Prometheus and promtool (a real
# Prometheus scrapes the daemon; deploy/prometheus-rules.yml is checked).
sshd:
	@test -x /usr/sbin/sshd || (apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q openssh-server)

chromium:
	@command -v chromium >/dev/null || (apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q chromium)

sqlite3:
	@command -v sqlite3 >/dev/null || (apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q sqlite3)

# Debian keeps initdb and pg_ctl in /usr/lib/postgresql/<major>/bin, out of PATH.
postgresql:
	@ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || (apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q postgresql)

systemd:
	@command -v systemd-analyze >/dev/null || (apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q systemd)

system-python:
	@/usr/bin/python3 -c 'import ensurepip, venv' 2>/dev/null || (apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q python3 python3-venv)

# Debian's package would start its own server where systemd runs: the tests start theirs.
prometheus:
	@(command -v prometheus >/dev/null && command -v promtool >/dev/null) || (apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q prometheus)

tools: sshd chromium sqlite3 postgresql systemd system-python prometheus

# Every tier: `-m ""` replaces the fast-tier selection in pyproject's addopts. pytest's exit 5 (no
# test collected) is not 0, so an empty run fails here too.
test: $(DEV) lint typecheck tools
	$(BIN)/pytest -m ""

bench: $(DEV)
	$(BIN)/python bench/validate.py

# docs/report.png, the README's picture of a report: a week of traffic, its report, a screenshot.
screenshot: $(DEV) chromium
	$(BIN)/python docs/report_screenshot.py

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache .coverage htmlcov build dist *.egg-info
