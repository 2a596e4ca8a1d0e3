# Two commands do everything on a fresh machine: `make run` and `make test`.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-stamp

.PHONY: run test test-fast faults bench clean

$(STAMP): pyproject.toml
	@$(PYTHON) -c 'import sys; assert sys.version_info >= (3, 11), "Python 3.11+ is needed"'
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[test]'
	touch $(STAMP)

run: $(STAMP)
	$(PY) -m tessera run

test: $(STAMP)
	$(PY) -m pytest -ra

test-fast: $(STAMP)
	$(PY) -m pytest -ra tests/unit

faults: $(STAMP)
	FAULTS_FULL=1 $(PY) -m pytest -ra -m faults tests/integration

bench: $(STAMP)
	$(PY) -m bench.intake
	$(PY) -m bench.steps
	$(PY) -m bench.timers

clean:
	rm -rf $(VENV) .run .pytest_cache
