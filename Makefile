# Two commands do everything on a fresh machine: `make run` and `make test`.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-stamp
# the project's own modules compiled ahead: where PYTHONDONTWRITEBYTECODE is set (as on CI), every service start
# would compile them again from source (~0.25 s of CPU, several seconds of a restart on a loaded machine)
COMPILE := $(PY) -m compileall -q -j 0 shared services tessera

.PHONY: run test test-fast lint faults bench clean browser lock vendor-frontend

# exactly the locked versions, each checked against its hash; then the project itself
$(STAMP): pyproject.toml requirements-test.lock
	@$(PYTHON) -c 'import sys; assert sys.version_info >= (3, 11), "Python 3.11+ is needed"'
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet --require-hashes -r requirements-test.lock
	$(PY) -m pip install --quiet --no-deps -e .
	touch $(STAMP)

# after a change of pyproject.toml's dependencies: the locks again (uv, in a venv of its own)
lock:
	$(PYTHON) -m venv .venv-lock && .venv-lock/bin/pip install --quiet uv
	.venv-lock/bin/uv pip compile pyproject.toml --generate-hashes --universal --python-version 3.11 \
	  --extra s3 --extra oidc --no-header --quiet -o requirements.lock
	.venv-lock/bin/uv pip compile pyproject.toml --extra test --extra dev --extra s3 --extra oidc --generate-hashes \
	  --universal --python-version 3.11 --no-header --quiet -o requirements-test.lock
	sed -i '1i # Made by `make lock` from pyproject.toml: every package and its hashes, for every platform and Python 3.11+.' \
	  requirements.lock requirements-test.lock

# the desk's GOV.UK Frontend and MOJ Frontend, from npm at pinned versions and hashes (the result is committed)
vendor-frontend:
	$(PYTHON) -m tools.vendor_frontend

run: $(STAMP)
	$(COMPILE)
	$(PY) -m tessera run

# the web tests drive Debian's chromium through Playwright; root installs it with apt
browser:
	@if [ ! -x /usr/bin/chromium ]; then \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	    echo "Installing Debian's chromium for the browser tests"; \
	    export DEBIAN_FRONTEND=noninteractive; \
	    apt-get install -y -qq chromium >/dev/null 2>&1 || \
	      { apt-get update -qq && apt-get install -y -qq chromium >/dev/null; }; \
	  else echo "No /usr/bin/chromium: the browser tests will be skipped (apt-get install chromium)"; fi; \
	fi

# style, the import boundaries of pyproject.toml [tool.importlinter] and the types ([tool.mypy])
lint: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/lint-imports
	$(VENV)/bin/mypy

test: $(STAMP) browser lint
	$(COMPILE)
	$(PY) -m pytest -ra --durations=40

test-fast: $(STAMP)
	$(PY) -m pytest -ra tests/unit

# every fault test at full size; -s prints the fault suite's per-fault table (tests/integration/test_faults.py).
# The kill suite runs the services as `make run` does (each reads every partition, no group); the rest as deploy/k8s
KILL_SUITE := test_steady_load_through_kills_sigterms_and_database_and_broker_restarts_loses_and_doubles_nothing
faults: $(STAMP)
	$(COMPILE)
	FAULTS_FULL=1 FAULTS_ASSIGNMENT=all $(PY) -m pytest -ra -s -m fault_suite tests/integration/test_faults.py
	FAULTS_FULL=1 FAULTS_STATIC_MEMBERS=1 $(PY) -m pytest -ra -s -m 'faults or fault_suite' tests/integration \
	  --deselect tests/integration/test_faults.py::$(KILL_SUITE)
	HYPOTHESIS_PER_MODEL=100 $(PY) -m pytest -ra tests/unit/test_message_bounds.py

# one table, every figure beside its same-run baseline (bench/results/latest.md); BENCH_ARGS=--quick for seconds
bench: $(STAMP)
	$(COMPILE)
	$(PY) -m bench $(BENCH_ARGS)

clean:
	rm -rf $(VENV) .venv-lock .run .pytest_cache .mypy_cache
