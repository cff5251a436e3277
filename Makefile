# The README's commands. Thin: the real work is in deploy/scripts/ and the Python code.
VENV ?= .venv
PY := $(VENV)/bin/python
HOST ?= 127.0.0.1
PORT ?= 8080

.PHONY: run test unit lint bench e2e bootstrap clean

bootstrap:
	@deploy/scripts/bootstrap.sh

## run: the sidecar on a throwaway local PostgreSQL primary + streaming replica, until Ctrl-C
## (the runtime only is installed; PORT=8081 HOST=0.0.0.0 change where it listens)
run:
	@FASTERDB_EXTRAS= deploy/scripts/bootstrap.sh
	$(PY) -m devtools.local --host $(HOST) --port $(PORT)

## test: lint, type-check and every test (unit, integration on real PostgreSQL, chart)
test: bootstrap lint
	$(PY) -m pytest -q

unit: bootstrap
	$(PY) -m pytest -q -m unit

lint: bootstrap
	$(VENV)/bin/ruff check kit service cli devtools tests
	$(VENV)/bin/ruff format --check kit service cli devtools tests
	$(VENV)/bin/mypy

## bench: benchmark scripts that print ratios measured side by side
bench: bootstrap
	$(PY) -m tests.bench.run_all

clean:
	rm -rf $(VENV) .tools .pytest_cache .mypy_cache .ruff_cache

## e2e: the kind end-to-end test (needs docker, kind, helm, kubectl; see deploy/kind/e2e.sh)
e2e:
	FASTERDB_EXTRAS=test,kube deploy/scripts/bootstrap.sh
	deploy/kind/e2e.sh
