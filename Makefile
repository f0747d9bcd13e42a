# One target per intent. `make serve` and `make test` do all the set-up themselves.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
DEV_STAMP := $(VENV)/.installed-dev
# Exact versions of every runtime and dev dependency: installs take these, never the
# newest release pyproject's ranges allow. `make lock` refreshes the file.
LOCK := constraints.txt
PYTEST_ARGS ?=

.PHONY: serve test lint bench demo clean install install-dev lock geography screenshots

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(STAMP): pyproject.toml $(LOCK) | $(BIN)/python
	$(BIN)/pip install --quiet -c $(LOCK) -e .
	touch $@

$(DEV_STAMP): pyproject.toml $(LOCK) | $(BIN)/python
	$(BIN)/pip install --quiet -c $(LOCK) -e '.[dev]'
	touch $(STAMP) $@

install: $(STAMP)
install-dev: $(DEV_STAMP)

serve: $(STAMP)
	$(BIN)/aidmesh serve

demo: $(STAMP)
	$(BIN)/aidmesh demo

test: $(DEV_STAMP)
	$(BIN)/python -m pytest $(PYTEST_ARGS)

lint: $(DEV_STAMP)
	$(BIN)/ruff check service realtime playbooks tests bench
	$(BIN)/mypy

bench: $(DEV_STAMP)
	$(BIN)/python -m bench

# The README's screenshots, from a demo started for the purpose (docs/screenshots/).
screenshots: $(DEV_STAMP)
	$(BIN)/python -m tests.browser.screenshots

# Resolve pyproject's ranges afresh in a throwaway venv and write the versions it got to
# $(LOCK). Only PyPI is asked (--isolated skips local pip configuration and mirrors), so
# the lock names releases every machine and the Docker build can fetch.
lock:
	@set -e; tmp=$$(mktemp -d); trap 'rm -rf "$$tmp"' EXIT; \
	$(PYTHON) -m venv "$$tmp/venv"; \
	"$$tmp/venv/bin/python" -m pip install --isolated --quiet --upgrade pip; \
	"$$tmp/venv/bin/python" -m pip install --isolated --quiet -e '.[dev]'; \
	{ echo "# Exact versions of aidmesh's runtime and dev dependencies, for"; \
	  echo "# pip install -c $(LOCK). Written by make lock: do not edit by hand."; \
	  echo "# Resolved with $$("$$tmp/venv/bin/python" -V) on $$(uname -sm)."; \
	  "$$tmp/venv/bin/python" -m pip freeze --isolated --exclude aidmesh; } > "$$tmp/lock"; \
	mv "$$tmp/lock" $(LOCK); \
	echo "$(LOCK): $$(grep -c '==' $(LOCK)) pinned versions"

clean:
	rm -rf $(VENV) var .pytest_cache .mypy_cache .ruff_cache

# Fetch the map's geography again from the npm registry (see service/web/geography.py)
# and record the copy's checksum; needs npm.
geography:
	@set -e; tmp=$$(mktemp -d); trap 'rm -rf "$$tmp"' EXIT; \
	field() { sed -n "s/^$$1 = \"\([^\"]*\)\".*/\1/p" service/web/geography.py; }; \
	package=$$(field PACKAGE); version=$$(field VERSION); source=$$(field SOURCE_FILE); \
	(cd "$$tmp" && npm pack --silent "$$package@$$version" >/dev/null && tar xzf ./*.tgz); \
	cp "$$tmp/package/$$source" service/web/static/natural-earth-50m.json; \
	sum=$$(sha256sum service/web/static/natural-earth-50m.json | cut -d' ' -f1); \
	sed -i "s/^SHA256 = .*/SHA256 = \"$$sum\"/" service/web/geography.py; \
	echo "natural-earth-50m.json: $$package $$version $$source, sha256 $$sum"
