# The few verbs a newcomer needs. Everything installs into .venv from this repo's own files.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: install run sim test test-stress lint bench bench-soak clean conformance conformance-tools

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	@# The flight deck's browser tests drive Debian's Chromium (Playwright downloads nothing).
	@if [ ! -x /usr/bin/chromium ]; then \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	    apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q chromium; \
	  else \
	    echo "tests/deck needs /usr/bin/chromium: run 'sudo apt-get install -y chromium' (Debian/Ubuntu)"; \
	  fi; \
	fi
	touch $(STAMP)

## install: the venv, and the pinned MCP conformance suite with a Node 22 binary in .cache/ (npm)
install: $(STAMP) conformance-tools

conformance-tools: $(STAMP)
	@$(BIN)/python -m tests.support.conformance install

## conformance: the official MCP conformance suite against every path, both revisions (a score table)
conformance: conformance-tools
	$(BIN)/python -m tests.support.conformance

## run: the suite's main job — the drone MCP server with the simulator embedded
run: $(STAMP)
	$(BIN)/tello-mcp serve --sim --flight-recording-dir .cache/flights

## sim: the UDP drone simulator alone (for djitellopy scripts and the like)
sim: $(STAMP)
	$(BIN)/drone-sim

## test: the whole test suite (what CI runs): two processes, each test file in one of them
test: $(STAMP) conformance-tools
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/pyright
	$(BIN)/pytest -n 2 --dist loadfile

## test-stress: the whole suite three times in a row while both cores are kept busy
test-stress: $(STAMP)
	@trap 'kill $$busy 2>/dev/null' EXIT; busy=""; \
	for core in 1 2; do timeout 3600 $(BIN)/python -c 'while True: pass' & busy="$$busy $$!"; done; \
	for run in 1 2 3; do echo "== test-stress: run $$run of 3, both cores busy"; $(MAKE) --no-print-directory test || exit 1; done

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/pyright

bench: $(STAMP)
	$(BIN)/python -m benchmarks

## bench-soak: 10 minutes of every server under load and faults (benchmarks/soak.py)
bench-soak: $(STAMP)
	$(BIN)/python -m benchmarks.soak

## bench-verdicts: the issue-9 fault matrix over HTTP, every verdict checked on ground truth
.PHONY: bench-verdicts
bench-verdicts: $(STAMP)
	$(BIN)/python -m benchmarks.verdicts

## bench-deck: the flight deck's cost to the link (10 viewers vs none) and its paint latency
.PHONY: bench-deck
bench-deck: $(STAMP)
	$(BIN)/python -m benchmarks.deck

## bench-lane: stop/emergency/land call-to-drone latency, idle vs 64 clients saturating, both eras
.PHONY: bench-lane
bench-lane: $(STAMP)
	$(BIN)/python -m benchmarks.lane

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache .hypothesis
