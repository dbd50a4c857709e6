# The two commands a user needs: `make serve` and `make test`. Both install what they need first.
VENV ?= .venv
PY := $(VENV)/bin/python
PORT ?= 8000
PIDFILE ?= /tmp/mnist-flask-$(PORT).pid
DATA ?= data/mnist.npz
SERVING := $(VENV)/.installed-serve
INSTALLED := $(VENV)/.installed
# BentoML, a peer in the benchmark, in a venv of its own: its pins are not the project's
BENTOML_VENV ?= .venv-bentoml
BENTOML := $(BENTOML_VENV)/.installed

SUDO := $(if $(filter 0,$(shell id -u)),,sudo)

# Install a Debian package unless its command is already on the PATH.
define apt_install
command -v $(1) >/dev/null || { $(SUDO) apt-get update -qq && \
  DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq $(1); }
endef

.PHONY: install chromium wrk serve reload test soak bench bench-workers upload-accuracy digit-likeness screenshots train evaluate models clean

# One venv; each target installs what it needs: serving alone (the LiteRT and ONNX runtimes, no
# TensorFlow), or everything (training, conversion, tests). The package has one compiled module (the
# MNIST-form check): pip builds it, with gcc and Python's headers.
define pip_install
$(call apt_install,gcc)
test -f "$$(python3 -c 'import sysconfig; print(sysconfig.get_path("include"))')/Python.h" || { \
  $(SUDO) apt-get update -qq && DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq python3-dev; }
test -x $(PY) || python3 -m venv $(VENV)
$(PY) -m pip install --quiet --upgrade pip
$(PY) -m pip install --quiet -r $(1) -e .
endef

$(SERVING): requirements-serve.txt pyproject.toml setup.py mnist_flask/_mnist_form.pyx
	$(call pip_install,requirements-serve.txt)
	touch $@

$(INSTALLED): requirements-serve.txt requirements.txt requirements-dev.txt pyproject.toml setup.py mnist_flask/_mnist_form.pyx
	$(call pip_install,requirements-dev.txt)
	touch $(SERVING) $@

$(BENTOML): requirements-bentoml.txt requirements-serve.txt pyproject.toml setup.py mnist_flask/_mnist_form.pyx | $(INSTALLED)
	test -x $(BENTOML_VENV)/bin/python || python3 -m venv $(BENTOML_VENV)
	$(BENTOML_VENV)/bin/python -m pip install --quiet --upgrade pip
	$(BENTOML_VENV)/bin/python -m pip install --quiet -r requirements-bentoml.txt -e .
	touch $@

# Everything: training, `models add` conversions, tests.
install: $(INSTALLED)

# The browser tests drive Debian's Chromium (Playwright's own browser download needs the internet).
chromium:
	$(call apt_install,chromium)

# The load generator of the benchmarks, and of the test of their request bodies.
wrk:
	$(call apt_install,wrk)

serve: $(SERVING)
	PORT=$(PORT) GUNICORN_PIDFILE=$(PIDFILE) $(VENV)/bin/gunicorn -c gunicorn.conf.py wsgi:app

# Roll out the newest model version: Gunicorn starts new workers, then retires the old ones gracefully.
reload:
	kill -HUP $$(cat $(PIDFILE))

test: $(INSTALLED) chromium wrk
	$(PY) -m pytest

# mnist_flask against its peers (the lecture's FastAPI app, FastAPI twins, BentoML with and without
# batching, the floors) on the 28x28 JPEG, each upload style and a mix; then digits/s through each API
# (Open Inference Protocol JSON and binary, :predict, /prediction); then what decoding costs, by decoder:
# bench/results/ (its length: README, Tests).
# Shorter: make bench BENCH_ARGS="--seconds 2 --rounds 1".
bench: $(INSTALLED) $(BENTOML) wrk
	$(PY) -m pip install --quiet -r requirements-bench.txt
	$(PY) -m bench.run $(BENCH_ARGS)
	$(PY) -m bench.v2_load
	$(PY) -m bench.decoders

# The worker choice: Flask under each candidate worker and the FastAPI twin (bench/results/workers.md).
bench-workers: $(INSTALLED) wrk
	$(PY) -m pip install --quiet -r requirements-bench.txt
	$(PY) -m bench.workers

# Accuracy per upload style, mnist_flask and the reference app (bench/results/upload_accuracy.md).
upload-accuracy: $(INSTALLED)
	$(PY) -m pip install --quiet -r requirements-bench.txt
	$(PY) -m bench.upload_accuracy

# Minutes of steady load: zero errors and flat worker memory (SOAK_SECONDS, default 180).
soak: $(INSTALLED)
	$(PY) -m pytest -m slow -s tests/test_soak.py

screenshots: $(INSTALLED) chromium
	SCREENSHOT_DIR=docs/screenshots $(PY) -m pytest tests/test_browser.py

# The photo search's digit-likeness network (mnist_flask/digit_likeness.npz), from photos of x_train digits.
digit-likeness: $(INSTALLED)
	$(PY) -m bench.digit_likeness

train: $(INSTALLED)
	$(VENV)/bin/mnist-flask train --data $(DATA)

evaluate: $(INSTALLED)
	$(VENV)/bin/mnist-flask evaluate --data $(DATA)

models: $(SERVING)
	$(VENV)/bin/mnist-flask models list

clean:
	rm -rf $(VENV) $(BENTOML_VENV) .pytest_cache bench/results/*
