"""Gunicorn settings for mnist_flask; each can be overridden on the command line."""

import os

# All interfaces so the server is reachable on a VM; PORT is the convention of PaaS hosts.
bind = f"0.0.0.0:{os.environ.get('PORT', '8000')}"
# One worker per core: inference is single-threaded CPU work, so more workers only queue (bench/).
workers = int(os.environ.get("WEB_CONCURRENCY", os.cpu_count() or 2))
# Sync workers: a request is CPU-bound for under a millisecond, so threads would only add locking.
worker_class = "sync"
# Each worker imports the app after the fork and loads its own model: TensorFlow is not fork-safe.
preload_app = False
# A request is milliseconds; a worker silent for this long is stuck and gets replaced.
timeout = 30
# On SIGTERM/HUP, in-flight requests get this long to finish before workers are killed.
graceful_timeout = 30
# Queue of connections waiting for a free worker: bursts wait instead of being refused.
backlog = 2048
# Access log on stdout, one line per request with its duration in ms and the worker's pid.
accesslog = "-"
access_log_format = '%(h)s "%(r)s" %(s)s %(b)s %(M)sms pid=%(p)s'
