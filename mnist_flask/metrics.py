"""Prometheus metrics, aggregated over all Gunicorn workers.

Under Gunicorn, ``gunicorn.conf.py`` sets ``PROMETHEUS_MULTIPROC_DIR`` before any worker starts,
so every worker writes its samples there and a scrape of any worker reads them all
(prometheus_client's multiprocess mode). Without it (the test client, ``flask run``) the app keeps
its own in-process registry.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass

from flask import Flask, Response, current_app, g, request
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.multiprocess import MultiProcessCollector

from .model import EXTENSION as MODEL_EXTENSION

EXTENSION = "mnist_metrics"
FAST_BUCKETS = (0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0)
SIZE_BUCKETS = (256, 1024, 4096, 16384, 65536, 262144, 1048576, 4194304, 16777216)


@dataclass
class Metrics:
    registry: CollectorRegistry
    requests: Counter
    latency: Histogram
    predictions: list[Counter]  # mnist_flask_predictions' child for each digit, by index
    inference: Histogram
    decode: Histogram
    upload: Histogram
    errors: Counter
    model: Gauge
    load_failures: Gauge


def multiprocess() -> bool:
    return "PROMETHEUS_MULTIPROC_DIR" in os.environ


def create_metrics() -> Metrics:
    """One set per app; in multiprocess mode the samples live in files, not in a registry.

    Every digit's prediction counter exists from the start: a scrape shows 0 rather than no series,
    and a prediction increments its digit's child without a label lookup.
    """
    registry = CollectorRegistry()
    target = None if multiprocess() else registry
    predictions = Counter("mnist_flask_predictions", "Predicted digits", ["digit"], registry=target)
    return Metrics(
        registry=registry,
        requests=Counter(
            "mnist_flask_http_requests", "HTTP requests answered", ["endpoint", "method", "status"], registry=target
        ),
        latency=Histogram(
            "mnist_flask_http_request_duration_seconds", "Time to answer a request", ["endpoint"],
            buckets=FAST_BUCKETS, registry=target,
        ),
        predictions=[predictions.labels(str(digit)) for digit in range(10)],
        inference=Histogram(
            "mnist_flask_inference_seconds", "Model call per batch", buckets=FAST_BUCKETS, registry=target
        ),
        decode=Histogram(
            "mnist_flask_image_decode_seconds", "Decoding and preprocessing per image, refused ones included", buckets=FAST_BUCKETS,
            registry=target,
        ),
        upload=Histogram("mnist_flask_upload_bytes", "Size of uploaded images", buckets=SIZE_BUCKETS, registry=target),
        errors=Counter("mnist_flask_errors", "Requests refused, by kind", ["kind"], registry=target),
        model=Gauge(
            "mnist_flask_model_info", "The model this server answers with", ["name", "version", "backend"],
            multiprocess_mode="livemax", registry=target,
        ),
        load_failures=Gauge(
            "mnist_flask_model_load_failed", "1 for each model version a live worker could not load", ["name", "version"],
            multiprocess_mode="livemax", registry=target,
        ),
    )  # fmt: skip


def init_app(app: Flask) -> None:
    app.extensions[EXTENSION] = create_metrics()
    app.before_request(start_timer)
    app.after_request(count_request)


def record_model(app: Flask) -> None:
    slot, recorded = app.extensions[MODEL_EXTENSION], app.extensions[EXTENSION]
    if slot.classifier is not None:
        recorded.model.labels(slot.classifier.name, str(slot.classifier.version), slot.classifier.backend).set(1)
    for version in slot.failures:
        recorded.load_failures.labels(app.config["MODEL_NAME"], str(version)).set(1)


def metrics() -> Metrics:
    return current_app.extensions[EXTENSION]


def start_timer() -> None:
    g.started = time.perf_counter()


def count_request(response):
    endpoint = request.url_rule.rule if request.url_rule else "unmatched"
    recorded = metrics()
    recorded.requests.labels(endpoint, request.method, str(response.status_code)).inc()
    recorded.latency.labels(endpoint).observe(time.perf_counter() - g.get("started", time.perf_counter()))
    return response


def exposition() -> Response:
    """The text format; in multiprocess mode, summed over every worker's files."""
    registry = metrics().registry
    if multiprocess():
        registry = CollectorRegistry()
        MultiProcessCollector(registry)
    return Response(generate_latest(registry), mimetype=CONTENT_TYPE_LATEST)
