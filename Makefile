# Quick start: `make run` (the app with demo data on http://127.0.0.1:5000), `make test` (the whole suite).
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
FLASK := $(BIN)/flask --app feedapp

.PHONY: run test browser setup bench-poll translations clean

$(VENV)/.installed: requirements.txt requirements-dev.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -r requirements-dev.txt
	touch $@

setup: $(VENV)/.installed
	$(FLASK) db upgrade
	$(FLASK) assets
	$(BIN)/pybabel -q compile -d translations

# The web app needs its public address (FEEDAPP_BASE_URL or FEEDAPP_TRUSTED_HOSTS): here, where `flask run` listens.
run: setup
	@if [ -z "$$FEEDAPP_X_BEARER_TOKEN$$FEEDAPP_X_CONSUMER_KEY" ]; then $(FLASK) demo; else $(FLASK) poll || true; fi
	FEEDAPP_BASE_URL="$${FEEDAPP_BASE_URL:-http://127.0.0.1:5000}" $(FLASK) run --host 127.0.0.1 --port 5000

# What the tests serve, built only when its sources changed: a second `make test` in the same tree then
# never rewrites files under a run that is going on. Catalogues are compiled aside and moved into place whole.
STATIC_SOURCES := $(shell find static -type f ! -path 'static/dist/*')
MO_FILES := $(patsubst %.po,%.mo,$(wildcard translations/*/LC_MESSAGES/messages.po))

test: browser $(VENV)/.installed static/dist/manifest.json $(MO_FILES)
	$(BIN)/python -m pytest

static/dist/manifest.json: $(STATIC_SOURCES) | $(VENV)/.installed
	$(FLASK) assets

translations/%.mo: translations/%.po | $(VENV)/.installed
	$(BIN)/pybabel -q compile -i $< -o $@.tmp
	mv $@.tmp $@

# Debian packages the tests use: headless Chromium (Playwright only drives it), a Java runtime
# for the W3C HTML validator and sfeed (a feed reader's parser, in C, that the feed tests read
# feeds back with beside feedparser). Installed only when missing; that needs root.
browser:
	@command -v chromium >/dev/null && command -v java >/dev/null && command -v sfeed >/dev/null || \
	  { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium default-jre-headless sfeed; }

bench-poll: $(VENV)/.installed
	$(BIN)/python bench/poll_bench.py

# The uncached feed page at 1,000 in-scope sources against 10, same posts (SQLite; BENCH_ARGS=--postgres adds PostgreSQL).
.PHONY: bench-feed
bench-feed: $(VENV)/.installed
	$(BIN)/python bench/feed_bench.py $(BENCH_ARGS)

# A company-wide must-read to 10,000 push subscriptions against the loopback push service (SQLite; BENCH_ARGS=--postgres).
.PHONY: bench-push
bench-push: $(VENV)/.installed
	$(BIN)/python bench/push_bench.py $(BENCH_ARGS)

# Publish-to-visible latency on / of 100 posts, with the filtered stream and then polling only (SQLite; BENCH_ARGS=--postgres).
.PHONY: bench-stream
bench-stream: $(VENV)/.installed
	$(BIN)/python bench/stream_bench.py $(BENCH_ARGS)

# After changing interface text: extract it, add French to tools/fr.py, rerun until nothing is missing.
translations: $(VENV)/.installed
	$(BIN)/python tools/update_translations.py
	$(BIN)/pybabel -q compile -d translations

clean:
	rm -rf $(VENV) .pytest_cache

.PHONY: bench-http
bench-http: $(VENV)/.installed
	@command -v wrk >/dev/null || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq wrk; }
	$(BIN)/python bench/http_bench.py

# Lighthouse (mobile, simulated throttling) on the demo feed served by gunicorn on 127.0.0.1; installs the pinned
# Lighthouse into bench/node_modules (npm) when missing; report in bench/out/lighthouse.json. A benchmark: exits 0.
.PHONY: lighthouse screenshots
lighthouse: browser $(VENV)/.installed
	$(BIN)/python bench/lighthouse.py

# Every kind of page (feed, office, thread, sign-in, offline, error) at 390x844 and 1280x800, light and dark,
# English and French, into screenshots/*.png, to look at (tools/page_screenshots.py).
screenshots: browser $(VENV)/.installed
	$(BIN)/python tools/page_screenshots.py --out screenshots

# A break-room screen (/screen/TOKEN) at 1920x1080 and 1080x1920, with and without a photo, into bench/out/.
.PHONY: screens-screenshots
screens-screenshots: browser $(VENV)/.installed
	$(BIN)/python bench/screens.py
