# Two commands on a fresh machine with Python 3.11+ and make: `make run`, `make test`.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
PIP := $(PY) -m pip --disable-pip-version-check -q

.PHONY: run test test-quick lint typecheck bench build build-test soak screenshot clean

# The stamp files re-run the install when pyproject.toml changes.
$(VENV)/.stamp-base: pyproject.toml
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "AgentDesk needs Python 3.11 or newer (PYTHON=$(PYTHON))")'
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PIP) install -e '.[desktop,server]'
	@touch $@

$(VENV)/.stamp-test: $(VENV)/.stamp-base
	$(PIP) install -e '.[desktop,server,test]'
	@touch $@

run: $(VENV)/.stamp-base
	$(VENV)/bin/agentdesk

test: $(VENV)/.stamp-test
	QT_QPA_PLATFORM=offscreen $(PY) -m pytest $(PYTEST_ARGS)

# A quick local run: everything but the tests marked slow (simulations, fresh-venv installs).
test-quick: $(VENV)/.stamp-test
	QT_QPA_PLATFORM=offscreen $(PY) -m pytest -m "not slow" $(PYTEST_ARGS)

lint: $(VENV)/.stamp-test
	$(VENV)/bin/ruff check agentdesk tests bench
	$(VENV)/bin/ruff format --check agentdesk tests bench
	$(VENV)/bin/lint-imports

typecheck: $(VENV)/.stamp-test
	$(VENV)/bin/mypy

bench: $(VENV)/.stamp-test
	QT_QPA_PLATFORM=offscreen $(PY) bench/policy_bench.py
	QT_QPA_PLATFORM=offscreen $(PY) bench/queue_bench.py
	QT_QPA_PLATFORM=offscreen $(PY) bench/sync_bench.py --quick
	QT_QPA_PLATFORM=offscreen $(PY) bench/gui_latency_bench.py

build: $(VENV)/.stamp-base
	$(PIP) install -e '.[build]'
	$(VENV)/bin/pyinstaller --noconfirm build.spec

# Build the bundle, then run the bundle's own self-test (offscreen, temporary data, local mode,
# one sync round): proves the frozen app has its Qt plugins, migrations and resources.
build-test: build
	QT_QPA_PLATFORM=offscreen dist/AgentDesk/AgentDesk --self-test
	@du -sh dist/AgentDesk | sed 's/^/bundle size: /'

# The seeded fault simulation (tests/sync/test_convergence.py) over seeds 1..SOAK_SEEDS, on SQLite
# and, when AGENTDESK_TEST_DATABASE_URL is set, PostgreSQL (SOAK_ENGINE=sqlite or postgresql for
# one). CI runs 4 seeds; SOAK_SEEDS=1000 for a soak. A seed costs a few seconds of one core:
# SOAK_JOBS=2 splits the seeds into two ranges run by parallel pytest processes (scripts/soak.sh;
# one seed or range alone: AGENTDESK_SIM_SEED=17 or AGENTDESK_SIM_SEED=501-1000). A 1,000-seed
# soak of one engine on both cores of an idle 2-core machine: about 45 minutes.
SOAK_SEEDS ?= 100
SOAK_JOBS ?= 1
SOAK_ENGINE ?=
soak: $(VENV)/.stamp-test
	SOAK_SEEDS=$(SOAK_SEEDS) SOAK_JOBS=$(SOAK_JOBS) SOAK_ENGINE=$(SOAK_ENGINE) PY=$(PY) \
	  scripts/soak.sh

# On a virtual X screen when xvfb-run is installed (as a person sees it), else offscreen.
screenshot: $(VENV)/.stamp-test
	for theme in light dark; do \
	  if command -v xvfb-run >/dev/null; then \
	    QT_QPA_PLATFORM=xcb xvfb-run -a -s "-screen 0 1600x1000x24" $(PY) scripts/screenshot.py --theme $$theme || exit 1; \
	  else QT_QPA_PLATFORM=offscreen $(PY) scripts/screenshot.py --theme $$theme || exit 1; fi; \
	done

clean:
	rm -rf $(VENV) build dist .pytest_cache .mypy_cache .ruff_cache
