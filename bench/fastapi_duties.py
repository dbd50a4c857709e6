"""The FastAPI twin with mnist_flask's production duties per request, in FastAPI's own idioms.

    PROMETHEUS_MULTIPROC_DIR=$(mktemp -d) uvicorn bench.fastapi_duties:app --workers 2 \
        --loop uvloop --http httptools --no-access-log

bench.fastapi_twin does only the work (read, classify, answer); mnist_flask also gives every
answer an ``X-Request-ID`` (the caller's, when safe to log), the security headers scanners look
for, a JSON access-log line, and Prometheus metrics summed over the workers (multiprocess mode).
This twin does the same duties with a pure ASGI middleware and prometheus_client, so the benchmark
can compare both "bare work" and "same duties".
"""

from __future__ import annotations

import json
import logging
import os
import re
import sys
import time
import uuid

from fastapi import FastAPI, UploadFile
from fastapi.responses import JSONResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Histogram, generate_latest, multiprocess

from bench.same_work import read_upload, served_classifier
from mnist_flask.preprocessing import ImageError

ACCEPTED_ID = re.compile(rb"[A-Za-z0-9._:-]{1,128}")
SECURITY_HEADERS = [(b"x-content-type-options", b"nosniff"), (b"referrer-policy", b"no-referrer"),
                    (b"cross-origin-resource-policy", b"same-origin")]  # fmt: skip
BUCKETS = (0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0)

REQUESTS = Counter("twin_http_requests", "HTTP requests answered", ["endpoint", "method", "status"])
LATENCY = Histogram("twin_http_request_duration_seconds", "Time to answer a request", ["endpoint"], buckets=BUCKETS)
DECODE = Histogram("twin_image_decode_seconds", "Decoding and preprocessing per image", buckets=BUCKETS)
INFERENCE = Histogram("twin_inference_seconds", "Model call per batch", buckets=BUCKETS)
UPLOAD = Histogram("twin_upload_bytes", "Size of uploaded images", buckets=(256, 1024, 4096, 16384, 65536, 262144, 1048576, 4194304))
PREDICTIONS = Counter("twin_predictions", "Predicted digits", ["digit"])

access_log = logging.getLogger("twin.access")
access_log.addHandler(logging.StreamHandler(sys.stdout))
access_log.setLevel(logging.INFO)
access_log.propagate = False


class ProductionDuties:
    """Pure ASGI middleware (no BaseHTTPMiddleware and its extra task per request): request ID,
    security headers, metrics and one JSON access line for every answer."""

    def __init__(self, app):
        self.app = app

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        started = time.perf_counter()
        given = dict(scope["headers"]).get(b"x-request-id", b"")
        request_id = given if ACCEPTED_ID.fullmatch(given) else uuid.uuid4().hex.encode()
        answer = {"status": 500, "bytes": 0}

        async def send_with_duties(message):
            if message["type"] == "http.response.start":
                answer["status"] = message["status"]
                message["headers"] = [*message.get("headers", []), (b"x-request-id", request_id), *SECURITY_HEADERS]
            elif message["type"] == "http.response.body":
                answer["bytes"] += len(message.get("body", b""))
            await send(message)

        try:
            await self.app(scope, receive, send_with_duties)
        finally:
            seconds = time.perf_counter() - started
            REQUESTS.labels(scope["path"], scope["method"], answer["status"]).inc()
            LATENCY.labels(scope["path"]).observe(seconds)
            client = scope.get("client") or (None,)
            access_log.info(json.dumps(
                {"remote": client[0], "method": scope["method"], "path": scope["path"], "status": answer["status"],
                 "bytes": answer["bytes"], "duration_ms": round(seconds * 1000, 3), "request_id": request_id.decode(),
                 "pid": os.getpid()}))  # fmt: skip


classifier = served_classifier()
app = FastAPI()
app.add_middleware(ProductionDuties)


@app.post("/prediction")
def prediction(image: UploadFile):
    """A plain ``def`` route, in FastAPI's thread pool, as the twin's (the faster, bench.fastapi_twin)."""
    data = image.file.read()
    UPLOAD.observe(len(data))
    with DECODE.time():
        digit = read_upload(data)
    if isinstance(digit, ImageError):
        return JSONResponse({"error": str(digit)}, status_code=digit.status)
    with INFERENCE.time():
        answer = classifier.answers([digit])[0]
    PREDICTIONS.labels(answer["prediction"]).inc()
    return answer


@app.get("/metrics")
async def metrics():
    registry = CollectorRegistry()
    multiprocess.MultiProcessCollector(registry)
    return Response(generate_latest(registry), media_type=CONTENT_TYPE_LATEST)
