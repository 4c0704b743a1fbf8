# The two commands: `make run` starts the proxy on its embedded defaults, `make test` runs the
# tests. Each creates .venv with a Python >= 3.12 found on this machine and installs the project:
# `run` without the test tools, `test` (and lint, bench) with them, in the same .venv.
# For a gateway: `make wheel`, `make wheelhouse` and deploy/install.sh (docs/OPERATIONS.md).
SHELL := /bin/bash
VENV := .venv
VENV_MADE := $(VENV)/.created
STAMP_RUN := $(VENV)/.installed-run
STAMP_TEST := $(VENV)/.installed-test
LOCKTOOL := build/locktool
ARGS ?=

.PHONY: run test lint bench clean lock wheel wheelhouse
run: $(STAMP_RUN)
	$(VENV)/bin/socialguard run $(ARGS)

test: lint
	$(VENV)/bin/pytest -q $(ARGS)

# Style, types, and the wings' import rules (pyproject.toml's [tool.importlinter]).
lint: $(STAMP_TEST)
	$(VENV)/bin/ruff check addons tests benchmarks
	$(VENV)/bin/ruff format --check addons tests benchmarks
	$(VENV)/bin/mypy
	$(VENV)/bin/mypy benchmarks/*.py
	$(VENV)/bin/lint-imports --no-cache

bench: $(STAMP_TEST)
	$(VENV)/bin/python benchmarks/run.py $(ARGS)

$(VENV_MADE): pyproject.toml
	@py=$$(scripts/find-python); \
	  if [ -z "$$py" ]; then echo "socialguard needs Python 3.12 or newer and none was found." >&2; \
	  echo "On Debian/Ubuntu: sudo apt-get install python3 python3-venv (Debian 13 / Ubuntu 24.04 ship 3.12+)," >&2; \
	  echo "or install one with pyenv, or set PYTHON=/path/to/python3.12." >&2; exit 1; fi; \
	  echo "using $$py"; \
	  rm -rf $(VENV) && "$$py" -m venv $(VENV) && \
	  $(VENV)/bin/pip install -q --upgrade pip && touch $(VENV_MADE)

$(STAMP_RUN): $(VENV_MADE)
	$(VENV)/bin/pip install -q -e . && touch $(STAMP_RUN)

# The test extras include everything `run` needs, so one install makes both stamps.
$(STAMP_TEST): $(VENV_MADE)
	$(VENV)/bin/pip install -q -e '.[test]' && touch $(STAMP_RUN) $(STAMP_TEST)

# requirements.lock: the runtime dependencies only ([project].dependencies), every version
# pinned, with the hashes of every file PyPI holds for it, for Python 3.12 and newer on any
# platform (markers pick Linux's). uv is installed for this alone, into build/locktool.
lock:
	@py=$$(scripts/find-python); [ -n "$$py" ] || { echo "no Python 3.12 or newer found" >&2; exit 1; }; \
	  [ -x $(LOCKTOOL)/bin/uv ] || { "$$py" -m venv $(LOCKTOOL) && $(LOCKTOOL)/bin/pip install -q 'uv>=0.9,<1'; }
	$(LOCKTOOL)/bin/uv pip compile -q pyproject.toml --universal --python-version 3.12 \
	  --generate-hashes --upgrade --custom-compile-command 'make lock' -o requirements.lock

# dist/socialguard-<version>-py3-none-any.whl, the same bytes for the same source.
wheel:
	deploy/build-wheel.sh

# dist/socialguard-<version>-offline.tar.gz: the wheel, every locked wheel for CPython 3.12 and
# 3.13 on x86_64 Linux, and the installer, for `install.sh --wheelhouse` on an offline gateway.
wheelhouse:
	deploy/make-wheelhouse.sh

clean:
	rm -rf $(VENV) build dist *.egg-info addons/*.egg-info
