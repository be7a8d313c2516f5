# inkasso-gateway: `make run` starts the gateway, `make test` runs every check. Both build .venv first.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: run test lint typecheck bench clean sshd chromium sqlite3 screenshot

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $(STAMP)

run: $(STAMP)
	$(BIN)/inkasso-gateway run --config gateway.toml

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: $(STAMP)
	$(BIN)/mypy

# The SFTP tests run against a real OpenSSH server (Debian's openssh-server): install it when missing.
sshd:
	@test -x /usr/sbin/sshd || (apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q openssh-server)

# The report tests take screenshots with headless Chromium (Debian's chromium): install it when missing.
chromium:
	@command -v chromium >/dev/null || (apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q chromium)

# The fault tests hold the store's lock from a real sqlite3 process (Debian's sqlite3): install it when missing.
sqlite3:
	@command -v sqlite3 >/dev/null || (apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q sqlite3)

test: $(STAMP) lint typecheck sshd chromium sqlite3
	$(BIN)/pytest

bench: $(STAMP)
	$(BIN)/python bench/validate.py

# docs/report.png, the README's picture of a report: a week of traffic, its report, a screenshot.
screenshot: $(STAMP) chromium
	$(BIN)/python docs/report_screenshot.py

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache .coverage htmlcov build dist *.egg-info
