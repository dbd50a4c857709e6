"""Soak: steady load for minutes, zero errors, and worker memory that stays flat.

Slow, so it runs with ``make soak`` (``pytest -m slow``), not in ``make test``.
SOAK_SECONDS sets the length (default 180).
"""

from __future__ import annotations

import os
import statistics
import time

import pytest
from helpers import Load, encode

from bench.harness import gunicorn, rss_bytes

GROWTH_LIMIT_MB = 8  # per worker, between the first and the last minute of load


@pytest.mark.slow
def test_soak_has_no_errors_and_no_leak(tmp_path, mnist_test):
    seconds = int(os.environ.get("SOAK_SECONDS", "180"))
    image = encode(mnist_test[0][0])
    with gunicorn(tmp_path / "gunicorn.log") as server:
        workers = server.workers()
        samples = []
        with Load(server.url, image, threads=4, seconds=seconds + 30) as load:
            deadline = time.monotonic() + seconds
            while time.monotonic() < deadline:
                time.sleep(5)
                samples.append([rss_bytes(pid) / 2**20 for pid in workers])
        assert server.workers() == workers, "a worker died or was replaced during the soak"
    assert load.failed == [] and load.ok > 1000
    window = max(3, len(samples) // 4)
    for worker in range(len(workers)):
        early = statistics.median(sample[worker] for sample in samples[:window])
        late = statistics.median(sample[worker] for sample in samples[-window:])
        print(f"worker {worker}: {early:.1f} MB -> {late:.1f} MB over {load.ok} requests")
        assert late - early < GROWTH_LIMIT_MB
