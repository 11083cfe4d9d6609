# decart — `make help` lists the targets.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-stamp
# The two official Python SDKs share the PyPI name `decart`: each gets its own virtualenv, outside
# the project's .venv, driven by the tests as subprocesses (tests/sdk/).
SDK_DIR   ?= .venv-sdk
SDK_OLD   := $(SDK_DIR)/0.0.40
SDK_NEW   := $(SDK_DIR)/0.2.4
SDK_STAMP := .installed-stamp
NETNS     := scripts/netns-run

.DEFAULT_GOAL := help
.PHONY: help install sdk-venvs xvfb demo test check fmt lint types completions serve soak bench clean

help: ## List the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-12s %s\n", $$1, $$2}'

$(STAMP): pyproject.toml
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "Python >= 3.11 is required (found %s)" % sys.version.split()[0])'
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	@touch $(STAMP)

install: $(STAMP) ## Create .venv and install decart with its dev tools (idempotent)

$(SDK_OLD)/$(SDK_STAMP): Makefile
	$(PYTHON) -m venv $(SDK_OLD)
	$(SDK_OLD)/bin/python -m pip install --quiet --upgrade pip
	$(SDK_OLD)/bin/python -m pip install --quiet 'decart[realtime]==0.0.40' numpy opencv-python
	@touch $@

$(SDK_NEW)/$(SDK_STAMP): Makefile
	$(PYTHON) -m venv $(SDK_NEW)
	$(SDK_NEW)/bin/python -m pip install --quiet --upgrade pip
	$(SDK_NEW)/bin/python -m pip install --quiet 'decart[realtime,verify]==0.2.4' 'livekit==1.2.1' numpy opencv-python
	@touch $@

sdk-venvs: $(SDK_OLD)/$(SDK_STAMP) $(SDK_NEW)/$(SDK_STAMP) ## Virtualenvs of the official SDKs the tests drive (decart 0.0.40, 0.2.4)

demo: $(STAMP) ## Run the main job on the embedded emulator: synthetic camera, prompts, a recording
	@# Inside a private network namespace where unshare is allowed (every packet stays in it);
	@# straight on this machine otherwise.
	@if $(NETNS) true 2>/dev/null; then wrap="$(NETNS)"; else wrap=""; echo "demo: no network namespace here; running without one"; fi; \
	DECART_SERVE_LOOPBACK_ONLY=1 $$wrap $(BIN)/decart stream --local --camera test --duration 12 --prompts examples/demo-prompts.txt --record demo.mp4 --no-window
	@echo "recorded demo.mp4"

xvfb: ## Install Xvfb when missing (Debian, as root): the preview-window test runs under it
	@command -v Xvfb >/dev/null 2>&1 || { [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1 && \
		apt-get update -qq && apt-get install -y -qq xvfb x11-utils >/dev/null; } || \
		echo "Xvfb is not installed (apt-get install xvfb): the window test skips here and fails in CI"

test: $(STAMP) sdk-venvs xvfb ## Run the whole test suite (slow end-to-end tests included)
	$(BIN)/python -m pytest -q

check: $(STAMP) sdk-venvs xvfb ## Format check, lint, mypy --strict, completions current, tests
	$(BIN)/ruff format --check decart_cli tests
	$(BIN)/ruff check decart_cli tests
	$(BIN)/mypy --strict decart_cli
	$(BIN)/python -m pytest -q

fmt: $(STAMP) ## Format the code
	$(BIN)/ruff format decart_cli tests
	$(BIN)/ruff check --fix decart_cli tests

completions: $(STAMP) ## Regenerate completions/ from the app
	$(BIN)/python scripts/gen_completions.py

serve: $(STAMP) ## Start the emulator on 127.0.0.1:8787
	$(BIN)/decart serve

soak: $(STAMP) ## 10-minute reconnect soak against the emulator (not in CI)
	$(BIN)/python scripts/soak.py

bench: $(STAMP) sdk-venvs ## decart bench vs the official SDKs, both transports, same emulator: fps, latency, CPU, ratios
	$(BIN)/python scripts/bench.py --startup
	$(BIN)/python scripts/bench.py --rounds 3 --duration 20 --out bench-results.json

clean: ## Remove the virtualenv and build artefacts
	rm -rf $(VENV) $(SDK_DIR) build dist *.egg-info .pytest_cache .mypy_cache .ruff_cache
