# The two commands: `make run` starts the proxy on its embedded defaults, `make test` runs the
# tests. Each creates .venv with a Python >= 3.12 found on this machine and installs the project.
SHELL := /bin/bash
VENV := .venv
STAMP := $(VENV)/.installed
ARGS ?=

.PHONY: run test lint bench clean
run: $(STAMP)
	$(VENV)/bin/socialguard run $(ARGS)

test: lint
	$(VENV)/bin/pytest -q $(ARGS)

# Style, types, and the wings' import rules (pyproject.toml's [tool.importlinter]).
lint: $(STAMP)
	$(VENV)/bin/ruff check addons tests benchmarks
	$(VENV)/bin/ruff format --check addons tests benchmarks
	$(VENV)/bin/mypy
	$(VENV)/bin/mypy benchmarks/*.py
	$(VENV)/bin/lint-imports --no-cache

bench: $(STAMP)
	$(VENV)/bin/python benchmarks/run.py $(ARGS)

$(STAMP): pyproject.toml
	@py=$$(scripts/find-python); \
	  if [ -z "$$py" ]; then echo "socialguard needs Python 3.12 or newer and none was found." >&2; \
	  echo "On Debian/Ubuntu: sudo apt-get install python3 python3-venv (Debian 13 / Ubuntu 24.04 ship 3.12+)," >&2; \
	  echo "or install one with pyenv, or set PYTHON=/path/to/python3.12." >&2; exit 1; fi; \
	  echo "using $$py"; \
	  rm -rf $(VENV) && "$$py" -m venv $(VENV) && \
	  $(VENV)/bin/pip install -q --upgrade pip && \
	  $(VENV)/bin/pip install -q -e '.[test]' && touch $(STAMP)

clean:
	rm -rf $(VENV) build *.egg-info addons/*.egg-info
