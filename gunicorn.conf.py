"""Gunicorn settings for mnist_flask and the worker class they name; each can be overridden on the command line."""

import json
import math
import os
import re
import selectors
import shutil
import tempfile
import time
from functools import partial

from gunicorn.glogging import Logger
from gunicorn.workers.gthread import ThreadWorker, TConn

# All interfaces so the server is reachable on a VM; PORT is the convention of PaaS hosts.
bind = f"0.0.0.0:{os.environ.get('PORT', '8000')}"
# One worker per core: a request is CPU-bound, so more workers than cores only queue (bench/).
workers = int(os.environ.get("WEB_CONCURRENCY", os.cpu_count() or 2))
# Gunicorn's threaded worker, with requests read whole by its event loop: `worker_class` at the end.
# Threads per worker: they only compute, so more than two only share one GIL (docs/performance.md).
threads = int(os.environ.get("GUNICORN_THREADS", "2"))
# Seconds a client gets to send a whole request (head and body) before it is answered 408.
request_arrival_timeout = float(os.environ.get("GUNICORN_REQUEST_TIMEOUT", "30"))
# Each worker imports the app after the fork and loads its own model: TensorFlow is not fork-safe.
preload_app = False
# A request takes milliseconds; a worker silent this long is stuck (or fed by a slow client) and is replaced.
timeout = 30
# On SIGTERM or HUP, in-flight requests get this long to finish before workers are killed.
graceful_timeout = 30
# Queue of connections waiting for a free worker: bursts wait instead of being refused.
backlog = 2048
# `make reload` sends HUP to the master found here, to roll out a new model version.
pidfile = os.environ.get("GUNICORN_PIDFILE")
# One JSON line per request on stdout (JsonAccessLogger below), errors and app logs on stderr.
accesslog = "-"
errorlog = "-"

# prometheus_client's multiprocess mode: every worker writes its samples to this directory and any
# worker's /metrics sums them. It must exist before the workers import prometheus_client.
metrics_dir = os.environ.get("PROMETHEUS_MULTIPROC_DIR") or tempfile.mkdtemp(prefix="mnist-flask-metrics-")
os.environ["PROMETHEUS_MULTIPROC_DIR"] = metrics_dir


def on_starting(server):
    """Samples left by an earlier run would be counted again: start from an empty directory."""
    shutil.rmtree(metrics_dir, ignore_errors=True)
    os.makedirs(metrics_dir, exist_ok=True)


def child_exit(server, worker):
    """A dead worker's live gauges must stop counting (its counters stay in the totals)."""
    from prometheus_client import multiprocess

    multiprocess.mark_process_dead(worker.pid)


logger_class = "mnist_flask.server.JsonAccessLogger"
worker_class = "mnist_flask.server.FlaskWorker"
