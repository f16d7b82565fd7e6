# Two commands do everything:  `make run` (set up, then serve the default corpus)
#                              `make test` (set up, then run the whole test suite)
# Setup is idempotent: it re-installs only when pyproject.toml or this file changed.

PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
# The CPU build of PyTorch, installed before the project so that nothing resolves a CUDA build.
TORCH  ?= torch==2.13.0

.PHONY: setup lexicon run ask index test test-fast lint typecheck browser axe eval bench clean

setup: $(STAMP)

$(STAMP): pyproject.toml Makefile
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	@$(BIN)/python -c "import torch" 2>/dev/null || $(BIN)/pip install -q "$(TORCH)"
	$(BIN)/pip install -q -e ".[dev]"
	@! $(BIN)/pip list 2>/dev/null | grep -qi '^nvidia-' || { echo "CUDA packages were installed: see README" >&2; exit 1; }
	@touch $(STAMP)

# Ding's German-English word list (Debian's trans-de-en, GPL-2+, read at run time from /usr/share/trans):
# English questions over German articles are matched through it (README: "Questions in English").
# `make run` goes on without it where apt is missing or not root; `make test` needs it (its figures do).
DING   := /usr/share/trans/de-en
APT    := DEBIAN_FRONTEND=noninteractive apt-get install -y -qq

lexicon:
	@test -f $(DING) || { command -v apt-get >/dev/null 2>&1 && [ "$$(id -u)" = 0 ] \
		&& { $(APT) trans-de-en >/dev/null 2>&1 || { apt-get update -qq && $(APT) trans-de-en >/dev/null; }; }; } \
		|| echo "note: no word list at $(DING) (apt-get install trans-de-en): English questions over German articles match less" >&2

run: setup lexicon
	$(BIN)/rag serve

ask: setup
	$(BIN)/rag ask

index: setup
	$(BIN)/rag index

# Debian's Chromium for the browser test (never a browser download); needs root, as on CI.
browser:
	@command -v chromium >/dev/null 2>&1 || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; }

# axe-core, which the browser test injects into the chat page, from the npm registry at the version pinned
# in tests/axe/package-lock.json (Debian's npm where there is none; needs root, as on CI).
AXE    := tests/axe/node_modules/axe-core/axe.min.js

axe: $(AXE)

$(AXE): tests/axe/package.json tests/axe/package-lock.json
	@command -v npm >/dev/null 2>&1 || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq npm >/dev/null; }
	cd tests/axe && npm ci --no-audit --no-fund --silent
	@touch $(AXE)

test: setup browser lexicon axe
	@test -f $(DING) || { echo "the tests need $(DING): apt-get install trans-de-en (as root)" >&2; exit 1; }
	$(BIN)/python -m pytest

test-fast: setup
	$(BIN)/python -m pytest -m "not model and not browser"

lint: setup
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: setup
	$(BIN)/mypy

eval: setup
	$(BIN)/rag eval bench/data/xquad-de-dev.json

# The performance figures of the README (bench/README.md says what each measures); about an hour on
# 2 cores, mostly bench.scale and bench.incremental. JSON copies go to bench/results/.
bench: setup
	$(BIN)/python -m bench.start --json bench/results/start.json
	$(BIN)/python -m bench.query --json bench/results/query.json
	$(BIN)/python -m bench.ingest --json bench/results/ingest.json
	$(BIN)/python -m bench.backends --json bench/results/backends.json
	$(BIN)/python -m bench.incremental --json bench/results/incremental.json
	$(BIN)/python -m bench.scale --json bench/results/scale.json

clean:
	rm -rf $(VENV) index/CURRENT index/builds .pytest_cache tests/axe/node_modules
