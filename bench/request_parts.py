"""What each part of a prediction adds to a request: in-process, and under load.

    python -m bench.request_parts [--rounds 12] [--requests 300]   # in-process, through WSGI
    python -m bench.request_parts --load [--rounds 5] [--seconds 4]  # under Gunicorn and wrk, c=32
    python -m bench.request_parts --parsers [--rounds 12]  # the upload's parse: Werkzeug's, mnist_flask's

The framework floor's view (read the upload, answer a constant) is swapped for views that add one
part of the real work at a time. In-process, each app gets the benchmark's multipart JPEG through
its WSGI entry point, in turns, and the best round per app is kept (the machine is shared).
Under load, each runs under Gunicorn exactly as the benchmark runs mnist_flask, wrk posts the same
JPEG at 32 connections, and each part gets the median server CPU per request and its throughput
against the floor's in the same round. A part costs several times its tight-loop price in a
request, and more again under load. Prints a Markdown table.
"""

from __future__ import annotations

import argparse
import io
import os
import statistics
import sys
import tempfile
import time
from contextlib import ExitStack
from pathlib import Path

# Metrics as under Gunicorn (files shared by workers): prometheus_client picks that mode on import.
os.environ.setdefault("PROMETHEUS_MULTIPROC_DIR", tempfile.mkdtemp(prefix="mnist-flask-parts-"))

import numpy as np  # noqa: E402
from flask import Request, jsonify, request  # noqa: E402

from bench.bare_flask_app import CONSTANT  # noqa: E402
from bench.floor_app import constant_answer  # noqa: E402
from bench.harness import free_port, gunicorn_command, serving  # noqa: E402
from bench.run import COOL_DOWN, one_picture, wrk  # noqa: E402
from bench.upload_mix import MULTIPART, digit_jpeg, multipart_body  # noqa: E402
from mnist_flask import api, create_app  # noqa: E402
from mnist_flask.forms import UploadRequest  # noqa: E402
from mnist_flask.model import model_slot  # noqa: E402
from mnist_flask.preprocessing import prepare_upload, read_luminance  # noqa: E402

PARTS = {
    "floor": "floor: read the upload, answer a constant",
    "grey": "+ JPEG to grey",
    "input": "+ JPEG to model input (grey, MNIST-form check, normalised)",
    "model": "+ model call only, on a ready input",
    "answer": "+ model call and answer, on a ready input",
    "metrics": "+ model call, answer and its metrics, on a ready input",
    "view": "mnist_flask's view",
}


def part_app(part: str):
    """mnist_flask with its prediction view doing only ``part`` of the work (a Gunicorn app spec:
    ``bench.request_parts:part_app('model')``)."""
    app = create_app()
    app.view_functions["api.prediction"] = views(prepare_upload(digit_jpeg()[0], 10**8))[part]
    return app


def upload() -> bytes:
    return request.files["image"].read()


def views(digit) -> dict:
    """Each view reads the upload like the floor's and does one more part of the work."""

    def to_grey():
        read_luminance(upload(), 10**8)
        return jsonify(CONSTANT)

    def to_model_input():
        prepare_upload(upload(), 10**8)
        return jsonify(CONSTANT)

    def model_call():
        upload()
        model_slot().choose().predict(digit.pixels[np.newaxis])
        return jsonify(CONSTANT)

    def answer():
        upload()
        return jsonify(model_slot().choose().answers([digit])[0])

    def answer_with_metrics():
        upload()
        return jsonify(api.classify(api.requested_classifier(), [digit])[0])

    return {
        "floor": constant_answer, "grey": to_grey, "input": to_model_input, "model": model_call, "answer": answer,
        "metrics": answer_with_metrics, "view": api.prediction,
    }  # fmt: skip


def benchmark_upload() -> bytes:
    """The benchmark's request body: the 28x28 JPEG in the multipart field ``image``."""
    return multipart_body([(digit_jpeg()[0], "image/jpeg")])


def upload_environ(body: bytes) -> dict:
    return {
        "REQUEST_METHOD": "POST", "PATH_INFO": "/prediction", "SERVER_NAME": "127.0.0.1", "SERVER_PORT": "80",
        "wsgi.url_scheme": "http", "CONTENT_TYPE": MULTIPART,
        "CONTENT_LENGTH": str(len(body)), "wsgi.errors": sys.stderr, "wsgi.input_terminated": True,
    }  # fmt: skip


def app_call(app):
    """One request through the app's WSGI entry point; only a 200 counts."""

    def start_response(status, headers):
        assert status.startswith("200"), status

    return lambda environ: b"".join(app(environ, start_response))


def request_files(request_class):
    """A bare request object reading the upload: the parse alone."""
    return lambda environ: request_class(environ).files["image"].read()


def best_microseconds(candidates: dict, body: bytes, rounds: int, requests: int) -> dict[str, float]:
    """Each candidate (a function of a WSGI environ) in turns, ``requests`` calls a round; the best
    round of each, as the machine is shared."""
    environ = upload_environ(body)
    best = dict.fromkeys(candidates, float("inf"))
    for _ in range(rounds):
        for name, call in candidates.items():
            started = time.perf_counter()
            for _ in range(requests):
                call({**environ, "wsgi.input": io.BytesIO(body)})
            best[name] = min(best[name], (time.perf_counter() - started) / requests * 1e6)
    return best


def in_process(rounds: int, requests: int) -> None:
    apps = {part: app_call(part_app(part)) for part in PARTS}
    best = best_microseconds(apps, benchmark_upload(), rounds, requests)
    print("| view | µs per request | added to the floor |\n|---|---|---|")
    for part, value in best.items():
        print(f"| {PARTS[part]} | {value:.0f} | {value - best['floor']:+.0f} |")


def parsers(rounds: int, requests: int) -> None:
    """A request object reading the benchmark's upload, with Werkzeug's multipart parser and with
    python-multipart's (mnist_flask.forms)."""
    candidates = {
        "Werkzeug's parser (flask.Request)": request_files(Request),
        "python-multipart (mnist_flask.forms.UploadRequest)": request_files(UploadRequest),
    }
    best = best_microseconds(candidates, benchmark_upload(), rounds, requests)
    print("| request object reading the upload | µs |\n|---|---|")
    for name, value in best.items():
        print(f"| {name} | {value:.0f} |")


def under_load(rounds: int, seconds: int, concurrency: int = 32) -> None:
    # Each server makes its own metrics directory; this process's must not be handed down to them.
    os.environ.pop("PROMETHEUS_MULTIPROC_DIR")
    with tempfile.TemporaryDirectory() as logs, ExitStack() as stack:
        bodies = one_picture(Path(logs), digit_jpeg()[0])
        servers = {}
        for part in PARTS:
            port = free_port()
            command = gunicorn_command(port, 2)[:-1] + [f"bench.request_parts:part_app({part!r})"]
            servers[part] = stack.enter_context(serving(command, port, Path(logs) / f"{part}.log"))
        runs = {part: [] for part in PARTS}
        for _ in range(rounds):
            for part, server in servers.items():
                time.sleep(COOL_DOWN)
                cpu_before = server.cpu_seconds()
                run = wrk(server.url, bodies, concurrency, seconds)
                run["cpu_us"] = (server.cpu_seconds() - cpu_before) * 1e6 / max(run["requests"], 1)
                runs[part].append(run)
    floor_cpu = statistics.median(run["cpu_us"] for run in runs["floor"])
    print(f"| view (c={concurrency}, median of {rounds} rounds) | server CPU µs per request | added to the floor "
          "| throughput / floor (same round) |\n|---|---|---|---|")  # fmt: skip
    for part, measured in runs.items():
        cpu = statistics.median(run["cpu_us"] for run in measured)
        ratio = statistics.median(a["requests_per_s"] / b["requests_per_s"] for a, b in zip(measured, runs["floor"]))
        print(f"| {PARTS[part]} | {cpu:.0f} | {cpu - floor_cpu:+.0f} | {ratio:.0%} |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--load", action="store_true", help="under Gunicorn and wrk instead of in-process")
    parser.add_argument("--parsers", action="store_true", help="only the upload's parse, by each multipart parser")
    parser.add_argument("--rounds", type=int, help="default 12 in-process, 5 under load")
    parser.add_argument("--requests", type=int, default=300, help="requests per app and round, in-process")
    parser.add_argument("--seconds", type=int, default=4, help="seconds per wrk run, under load")
    args = parser.parse_args()
    if args.load:
        under_load(args.rounds or 5, args.seconds)
    elif args.parsers:
        parsers(args.rounds or 12, args.requests)
    else:
        in_process(args.rounds or 12, args.requests)


if __name__ == "__main__":
    main()
