"""Faults under load against real Gunicorn: killed workers, slow clients, graceful shutdown.

Every load here targets 127.0.0.1 only, is bounded in requests and seconds, and stops by itself.
"""

from __future__ import annotations

import os
import signal
import threading
import time

import numpy as np
import requests
from helpers import Load, connect, encode, post_upload, upload_head
from PIL import Image

from bench.harness import gunicorn


def test_a_killed_worker_is_replaced_and_service_continues(tmp_path, mnist_test):
    image = encode(mnist_test[0][0])
    with gunicorn(tmp_path / "gunicorn.log") as server:
        workers = server.workers()
        with Load(server.url, image) as load:
            time.sleep(1.5)
            os.kill(workers[0], signal.SIGKILL)
            time.sleep(3)
        replaced = server.workers()
        assert len(replaced) == 2 and workers[0] not in replaced
        assert load.ok > 100
        assert len(load.failed) <= 4, load.failed  # at most the killed worker's in-flight request per thread
        assert requests.get(server.url + "/readyz", timeout=5).status_code == 200


def dribble(server, seconds: float, stop: threading.Event) -> None:
    """A slow client: announces an upload, then sends it one byte every 200 ms."""
    with connect(server, timeout=5) as connection:
        connection.sendall(upload_head("image/png", "Content-Length: 100000"))
        deadline = time.monotonic() + seconds
        while not stop.is_set() and time.monotonic() < deadline:
            try:
                connection.sendall(b"\0")
            except OSError:
                return  # the server gave up on us: that is the protection working
            time.sleep(0.2)


def test_slow_clients_do_not_take_the_pool_down(tmp_path, mnist_test):
    image = encode(mnist_test[0][0])
    with gunicorn(tmp_path / "gunicorn.log") as server:
        stop = threading.Event()
        # More slow clients than the two workers have threads (2 x 2), and than stock gthread's 2 x 8.
        slow = [threading.Thread(target=dribble, args=(server, 12, stop)) for _ in range(24)]
        for client in slow:
            client.start()
        time.sleep(1)
        latencies = []
        for _ in range(20):
            started = time.monotonic()
            response = post_upload(server.url, image)
            latencies.append(time.monotonic() - started)
            assert response.status_code == 200
        stop.set()
        for client in slow:
            client.join()
    assert max(latencies) < 2


def big_batch(mnist_test, count: int = 48) -> list[bytes]:
    """A request that takes a while to answer: many large pictures in one upload."""
    return [encode(np.asarray(Image.fromarray(255 - mnist_test[0][index]).resize((600, 600)))) for index in range(count)]


def test_sigterm_lets_in_flight_requests_finish(tmp_path, mnist_test):
    pictures = big_batch(mnist_test)
    outcome = {}
    with gunicorn(tmp_path / "gunicorn.log") as server:
        started = time.monotonic()
        timed = post_upload(server.url, *pictures, timeout=30)
        assert timed.status_code == 200
        duration = time.monotonic() - started

        def post_batch():
            outcome["response"] = post_upload(server.url, *pictures, timeout=30)
            outcome["finished"] = time.monotonic()

        in_flight = threading.Thread(target=post_batch)
        in_flight.start()
        time.sleep(duration / 2)
        terminated = time.monotonic()
        server.process.send_signal(signal.SIGTERM)
        in_flight.join()
        server.process.wait(timeout=35)
    assert outcome["finished"] > terminated  # the request was still in flight when SIGTERM came
    response = outcome["response"]
    assert response.status_code == 200
    predictions = [p["prediction"] for p in response.json()["predictions"]]
    assert predictions == [p["prediction"] for p in timed.json()["predictions"]]  # the whole answer, as before
    assert np.mean(np.array(predictions) == mnist_test[1][: len(pictures)]) >= 0.9
    assert server.process.returncode == 0
