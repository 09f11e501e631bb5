# `make prove` runs xenpin's main job on the shipped models; `make test` runs the test suite.
# Both create .venv and install xenpin into it unless a virtual environment is already active.
PYTHON ?= python3
ifdef VIRTUAL_ENV
VENV_PY := $(VIRTUAL_ENV)/bin/python
else
VENV_PY := .venv/bin/python
endif
STAMP := $(dir $(VENV_PY)).xenpin-installed

.PHONY: prove test lint bench clean

$(STAMP): pyproject.toml
	@test -x $(VENV_PY) || $(PYTHON) -m venv .venv
	$(VENV_PY) -m pip install -q --upgrade pip
	$(VENV_PY) -m pip install -q -e '.[test]'
	@touch $(STAMP)

prove: $(STAMP)
	$(VENV_PY) -m xenpin replay models/scenarios
	$(VENV_PY) -m xenpin boot models/kernels
	$(VENV_PY) -m xenpin logs
	$(VENV_PY) -m xenpin prove
	$(VENV_PY) -m xenpin verify-rules

test: $(STAMP)
	$(VENV_PY) -m ruff check xenpin tests
	$(VENV_PY) -m ruff format --check xenpin tests
	HYPOTHESIS_PROFILE=ci $(VENV_PY) -m pytest -n auto

bench: $(STAMP)
	$(VENV_PY) tests/benchmarks/bench_validator.py
	$(VENV_PY) tests/benchmarks/bench_boot.py
	$(VENV_PY) tests/benchmarks/bench_prove.py
	$(VENV_PY) tests/benchmarks/bench_verify_rules.py

clean:
	rm -rf .venv build *.egg-info
