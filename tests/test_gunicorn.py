"""Against a real ``gunicorn -c gunicorn.conf.py wsgi:app`` with two workers, over real HTTP."""

from __future__ import annotations

import json
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import requests
from helpers import encode, post_upload

BROWSER_ACCEPT = "text/html,application/xhtml+xml;q=0.9,*/*;q=0.8"


def test_real_test_digits_are_read_right(server, mnist_test):
    images, labels = mnist_test
    answers = [post_upload(server.url, encode(image)).json()["prediction"] for image in images[200:300]]
    assert np.mean(np.array(answers) == labels[200:300]) >= 0.97


def test_curl_style_jpeg_upload(server, mnist_test):
    images, labels = mnist_test
    response = post_upload(server.url, encode(images[7], "JPEG", quality=90))
    assert response.status_code == 200
    assert response.json()["prediction"] == labels[7]


def test_bad_input_gets_json_4xx_and_the_server_keeps_serving(server, mnist_test):
    response = post_upload(server.url, b"%PDF-1.4 not an image")
    assert response.status_code == 400 and "not an image" in response.json()["error"]
    assert requests.get(server.url + "/nope", timeout=5).json()["error"]
    assert post_upload(server.url, encode(mnist_test[0][0])).status_code == 200


def test_docs_page_and_spec_load(server):
    ui = requests.get(server.url + "/apidocs/", timeout=5)
    assert ui.status_code == 200 and "swagger-ui" in ui.text
    spec = requests.get(server.url + "/apispec_1.json", timeout=5).json()
    assert "/prediction" in spec["paths"]


def test_form_page_loads(server):
    page = requests.get(server.url + "/", headers={"Accept": BROWSER_ACCEPT}, timeout=5)
    assert page.headers["Content-Type"].startswith("text/html")
    assert 'action="/prediction" method="post" enctype="multipart/form-data"' in page.text


def test_two_workers_answer(server, mnist_test):
    image = encode(mnist_test[0][0])
    with ThreadPoolExecutor(16) as pool:
        statuses = list(pool.map(lambda _: post_upload(server.url, image).status_code, range(200)))
    assert statuses == [200] * 200
    answered = [line for line in access_lines(server) if line["path"] == "/prediction" and line["status"] == 200]
    assert len({line["pid"] for line in answered}) == 2


def access_lines(server) -> list[dict]:
    return [json.loads(line) for line in server.access_log().splitlines() if line.startswith("{")]


def test_access_log_is_one_json_line_per_request(server):
    response = requests.get(server.url + "/healthz", headers={"X-Request-ID": "trace-me-42"}, timeout=5)
    assert response.headers["X-Request-ID"] == "trace-me-42"
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline and not any(line["request_id"] == "trace-me-42" for line in access_lines(server)):
        time.sleep(0.05)
    line = next(line for line in access_lines(server) if line["request_id"] == "trace-me-42")
    assert line["method"] == "GET" and line["path"] == "/healthz" and line["status"] == 200
    assert line["duration_ms"] >= 0 and line["pid"] in server.workers()


def test_master_never_loads_the_inference_runtime(server):
    """TensorFlow and LiteRT are not fork-safe: only workers, after the fork, may load them."""
    master, worker_pids = server.process.pid, server.workers()
    master_maps = Path(f"/proc/{master}/maps").read_text()
    assert "tensorflow" not in master_maps and "litert" not in master_maps
    assert len(worker_pids) == 2
    for pid in worker_pids:
        assert "litert" in Path(f"/proc/{pid}/maps").read_text()
