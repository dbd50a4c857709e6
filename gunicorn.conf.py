"""Gunicorn settings for mnist_flask, each with its reason; any can be overridden on the command line.

The worker and logger classes they name are in mnist_flask/server.py.
"""

import os
import shutil
import tempfile

# All interfaces so the server is reachable on a VM; PORT is the convention of PaaS hosts.
bind = f"0.0.0.0:{os.environ.get('PORT', '8000')}"
# One worker per core: a request is CPU-bound, so more workers than cores only queue (bench/).
workers = int(os.environ.get("WEB_CONCURRENCY", os.cpu_count() or 2))
# uvicorn's event loop reads each request whole (llhttp does the framing, with limits on head, body,
# buffer and time), then the Flask app runs: a slow client costs a socket and a buffer, never a
# thread, and the fastest Flask worker measured (docs/performance.md). The seconds a client gets to
# send a whole request before a 408 are GUNICORN_REQUEST_TIMEOUT (30).
worker_class = "mnist_flask.server.FlaskWorker"
# Requests with a body over 4 KiB (any real picture) run the app in a pool of this many threads per
# worker: decoding and the model release the GIL, so while one request decodes a photo others go on,
# and a small upload does not wait behind large ones (docs/performance.md); smaller ones run inline in
# the event loop, where they cost least. Four kept the throughput and tail of eight, in less memory
# (docs/performance.md). 1 runs every request inline.
threads = int(os.environ.get("GUNICORN_THREADS", "4"))
# Connections one worker holds at most (each costs its buffers); one more gets a 503.
worker_connections = 1000
# Each worker imports the app after the fork and loads its own model: TensorFlow is not fork-safe.
preload_app = False
# Far longer than any request takes, the costliest accepted picture's included (docs/performance.md);
# the heartbeat stops while a request holds the app inline (or once one has run this long in the
# pool), so a worker silent this long is stuck in a request and replaced.
timeout = 10
# On SIGTERM or HUP, in-flight requests get this long to finish before workers are killed.
graceful_timeout = 30
# Queue of connections waiting for a free worker: bursts wait instead of being refused.
backlog = 2048
# `make reload` sends HUP to the master found here, to roll out a new model version.
pidfile = os.environ.get("GUNICORN_PIDFILE")
# One JSON line per request on stdout, errors and app logs on stderr.
accesslog = "-"
errorlog = "-"
logger_class = "mnist_flask.server.JsonAccessLogger"

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

