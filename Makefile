# The two commands a user needs: `make serve` and `make test`. Both install what they need first.
VENV ?= .venv
PY := $(VENV)/bin/python
PORT ?= 8000
PIDFILE ?= /tmp/mnist-flask-$(PORT).pid
DATA ?= data/mnist.npz
INSTALLED := $(VENV)/.installed

SUDO := $(if $(filter 0,$(shell id -u)),,sudo)

.PHONY: install chromium serve reload test screenshots train evaluate models clean

$(INSTALLED): requirements-serve.txt requirements.txt requirements-dev.txt pyproject.toml
	test -x $(PY) || python3 -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -r requirements-dev.txt -e .
	touch $@

install: $(INSTALLED)

# The browser tests drive Debian's Chromium (Playwright's own browser download needs the internet).
chromium:
	command -v chromium >/dev/null || { $(SUDO) apt-get update -qq && \
	  DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq chromium; }

serve: $(INSTALLED)
	PORT=$(PORT) GUNICORN_PIDFILE=$(PIDFILE) $(VENV)/bin/gunicorn -c gunicorn.conf.py wsgi:app

# Roll out the newest model version: Gunicorn starts new workers, then retires the old ones gracefully.
reload:
	kill -HUP $$(cat $(PIDFILE))

test: $(INSTALLED) chromium
	$(PY) -m pytest

screenshots: $(INSTALLED) chromium
	SCREENSHOT_DIR=docs/screenshots $(PY) -m pytest tests/test_browser.py

train: $(INSTALLED)
	$(VENV)/bin/mnist-flask train --data $(DATA)

evaluate: $(INSTALLED)
	$(VENV)/bin/mnist-flask evaluate --data $(DATA)

models: $(INSTALLED)
	$(VENV)/bin/mnist-flask models list

clean:
	rm -rf $(VENV) .pytest_cache bench/results/*
