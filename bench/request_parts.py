"""What each part of a prediction adds to a whole request, measured inside the request.

    python -m bench.request_parts [--rounds 12] [--requests 300]

The framework floor's view (read the upload, answer a constant) is swapped for views that add one
part of the real work at a time; each app gets the benchmark's multipart JPEG through its WSGI
entry point, in turns, and the best round per app is kept (the machine is shared). A part costs
several times its tight-loop price here, since the rest of the request runs between its calls.
Prints a Markdown table.
"""

from __future__ import annotations

import argparse
import io
import os
import sys
import tempfile
import time

# Metrics as under Gunicorn (files shared by workers): prometheus_client picks that mode on import.
os.environ.setdefault("PROMETHEUS_MULTIPROC_DIR", tempfile.mkdtemp(prefix="mnist-flask-parts-"))

from flask import jsonify, request  # noqa: E402

from bench.bare_flask_app import CONSTANT  # noqa: E402
from bench.floor_app import constant_answer  # noqa: E402
from bench.run import bench_image  # noqa: E402
from mnist_flask import api, create_app  # noqa: E402
from mnist_flask.preprocessing import prepare_upload, read_luminance  # noqa: E402

BOUNDARY = "mnist-flask-parts"


def multipart(image: bytes) -> bytes:
    head = f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="image"; filename="digit.jpg"\r\n'
    return (head + "Content-Type: image/jpeg\r\n\r\n").encode() + image + f"\r\n--{BOUNDARY}--\r\n".encode()


def app_with_view(view):
    app = create_app()
    app.view_functions["api.prediction"] = view
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
        api.get_classifier().run(digit.pixels.reshape(1, 28, 28, 1))
        return jsonify(CONSTANT)

    def answer():
        upload()
        return jsonify(api.classify([digit])[0])

    return {
        "floor: read the upload, answer a constant": constant_answer,
        "+ JPEG to grey": to_grey,
        "+ JPEG to model input (grey, MNIST-form check, normalised)": to_model_input,
        "+ model call only, on a ready input": model_call,
        "+ model call, answer and its metrics, on a ready input": answer,
        "mnist_flask's view": api.prediction,
    }


def microseconds_per_request(app, body: bytes, requests: int) -> float:
    def start_response(status, headers):
        assert status.startswith("200"), status

    environ = {
        "REQUEST_METHOD": "POST", "PATH_INFO": "/prediction", "SERVER_NAME": "127.0.0.1", "SERVER_PORT": "80",
        "wsgi.url_scheme": "http", "CONTENT_TYPE": f"multipart/form-data; boundary={BOUNDARY}",
        "CONTENT_LENGTH": str(len(body)), "wsgi.errors": sys.stderr,
    }  # fmt: skip
    started = time.perf_counter()
    for _ in range(requests):
        b"".join(app({**environ, "wsgi.input": io.BytesIO(body)}, start_response))
    return (time.perf_counter() - started) / requests * 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=12)
    parser.add_argument("--requests", type=int, default=300)
    args = parser.parse_args()
    image, _ = bench_image()
    body = multipart(image)
    apps = {name: app_with_view(view) for name, view in views(prepare_upload(image, 10**8)).items()}
    best = {name: float("inf") for name in apps}
    for _ in range(args.rounds):
        for name, app in apps.items():
            best[name] = min(best[name], microseconds_per_request(app, body, args.requests))
    floor = next(iter(best.values()))
    print("| view | µs per request | added to the floor |\n|---|---|---|")
    for name, value in best.items():
        print(f"| {name} | {value:.0f} | {value - floor:+.0f} |")


if __name__ == "__main__":
    main()
