# composite: environment, demo, tests, benchmarks.
# Every target creates .venv itself on first use.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: demo test lint bench docs clean-venv

$(STAMP): pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -c constraints.txt -e ".[torch,sam,gen,farm,provenance,dev]"
	touch $(STAMP)

demo: $(STAMP)
	$(PY) -m composite.demo

test: $(STAMP)
	$(PY) -m pytest tests

lint: $(STAMP)
	$(VENV)/bin/ruff check .

bench: $(STAMP)
	$(PY) -m benchmarks

docs: $(STAMP)
	$(PY) -m docs.build

clean-venv:
	rm -rf $(VENV)
