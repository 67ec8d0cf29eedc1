# Quick start: `make run` (the app with demo data on http://127.0.0.1:5000), `make test` (the whole suite).
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
FLASK := $(BIN)/flask --app feedapp

.PHONY: run test setup bench-poll clean

$(VENV)/.installed: requirements.txt requirements-dev.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -r requirements-dev.txt
	touch $@

setup: $(VENV)/.installed
	$(FLASK) db upgrade

run: setup
	@if [ -z "$$FEEDAPP_X_BEARER_TOKEN$$FEEDAPP_X_CONSUMER_KEY" ]; then $(FLASK) demo; else $(FLASK) poll || true; fi
	$(FLASK) run --host 127.0.0.1 --port 5000

test: $(VENV)/.installed
	$(BIN)/python -m pytest

bench-poll: $(VENV)/.installed
	$(BIN)/python bench/poll_bench.py

clean:
	rm -rf $(VENV) .pytest_cache
