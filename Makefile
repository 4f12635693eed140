# Two commands on a fresh machine: `make run` and `make test`.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-stamp

.PHONY: install run test bench lint screenshot clean

$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	# llama-cpp-python compiles llama.cpp from source the first time (about 8 minutes on 2 cores).
	CMAKE_BUILD_PARALLEL_LEVEL=$$(nproc) $(PY) -m pip install --progress-bar off -e '.[dev]'
	touch $(STAMP)

install: $(STAMP)

run: install
	$(PY) -m storage.embedder
	$(VENV)/bin/assistant

test: install
	$(PY) -m pytest

bench: install
	$(PY) -m bench

lint: install
	$(VENV)/bin/ruff check .
	$(VENV)/bin/lint-imports
	$(VENV)/bin/mypy

screenshot: install
	$(PY) -m bench.screenshot docs/screenshot.svg
	$(PY) -m bench.screenshot --learning docs/learning.svg

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
