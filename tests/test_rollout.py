"""Operations against real Gunicorn: metrics summed over workers, and a zero-downtime model rollout."""

from __future__ import annotations

import json
import os
import shutil
import signal
import time
from concurrent.futures import ThreadPoolExecutor

import requests
from helpers import Load, encode
from prometheus_client.parser import text_string_to_metric_families

from bench.harness import ROOT, gunicorn
from mnist_flask.model import list_versions

STATUS_PATH = "/v1/models/<model:name>"


def scraped_count(server, endpoint: str) -> float:
    text = requests.get(server.url + "/metrics", timeout=5).text
    for family in text_string_to_metric_families(text):
        if family.name == "mnist_flask_http_requests":
            return sum(s.value for s in family.samples if s.name.endswith("_total") and s.labels["endpoint"] == endpoint)
    return 0.0


def test_metrics_are_summed_over_both_workers(server):
    before = scraped_count(server, STATUS_PATH)
    statuses: list[int] = []
    # The kernel hands each new connection to whichever worker wakes first: one worker can take a
    # whole batch, so batches go on (up to five) until both have answered.
    for _ in range(5):
        with ThreadPoolExecutor(8) as pool:
            statuses += pool.map(lambda _: requests.get(server.url + "/v1/models/mnist", timeout=5).status_code, range(200))
        served_by = {json.loads(line)["pid"] for line in server.access_log().splitlines()
                     if line.startswith("{") and json.loads(line)["path"] == "/v1/models/mnist"}  # fmt: skip
        if len(served_by) == 2:
            break
    assert statuses == [200] * len(statuses)
    assert len(served_by) == 2
    # Whichever worker answers the scrape, it reports both workers' requests.
    assert {scraped_count(server, STATUS_PATH) for _ in range(8)} == {before + len(statuses)}


def add_version(store, source, version: int) -> None:
    """Copy under a temporary name, then rename: a half-copied version is never visible."""
    staging = store / "mnist" / f".incoming-{version}"
    shutil.copytree(source, staging)
    metadata = json.loads((staging / "metadata.json").read_text())
    (staging / "metadata.json").write_text(json.dumps({**metadata, "version": version}))
    os.rename(staging, store / "mnist" / str(version))


def test_hup_rolls_out_a_new_version_with_zero_failed_requests(tmp_path, mnist_test):
    shipped = ROOT / "models" / "mnist" / str(list_versions(ROOT / "models", "mnist")[-1])
    store = tmp_path / "models"
    (store / "mnist").mkdir(parents=True)
    add_version(store, shipped, 1)
    with gunicorn(tmp_path / "gunicorn.log", env={"MNIST_FLASK_MODEL_DIR": str(store)}) as server:
        with Load(server.url, encode(mnist_test[0][0])) as load:
            time.sleep(1)
            add_version(store, shipped, 2)
            server.process.send_signal(signal.SIGHUP)
            load.wait_for("mnist:2", 200)
    assert load.answers and load.failed == []
    assert load.models[0] == "mnist:1" and load.models[-50:] == ["mnist:2"] * 50
