# The two commands a user needs: `make serve` and `make test`. Both install what they need first.
VENV ?= .venv
PY := $(VENV)/bin/python
PORT ?= 8000
DATA ?= data/mnist.npz
INSTALLED := $(VENV)/.installed

.PHONY: install serve test train evaluate models clean

$(INSTALLED): requirements.txt requirements-dev.txt pyproject.toml
	test -x $(PY) || python3 -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -r requirements-dev.txt -e .
	touch $@

install: $(INSTALLED)

serve: $(INSTALLED)
	PORT=$(PORT) $(VENV)/bin/gunicorn -c gunicorn.conf.py wsgi:app

test: $(INSTALLED)
	$(PY) -m pytest

train: $(INSTALLED)
	$(VENV)/bin/mnist-flask train --data $(DATA)

evaluate: $(INSTALLED)
	$(VENV)/bin/mnist-flask evaluate --data $(DATA)

models: $(INSTALLED)
	$(VENV)/bin/mnist-flask models list

clean:
	rm -rf $(VENV) .pytest_cache bench/results/*
