"""Several versions at once against real Gunicorn: routing by version and label, 404s naming what there
is, a canary share, per-version metrics summed over workers, and a label change rolled out by HUP."""

from __future__ import annotations

import json
import re
import signal
from collections import Counter
from concurrent.futures import ThreadPoolExecutor

import pytest
import requests
from helpers import Load, cli, copy_store, encode, post_image, post_upload
from prometheus_client.parser import text_string_to_metric_families

from bench.harness import ROOT, gunicorn
from mnist_flask import create_app
from mnist_flask.metrics import create_metrics
from mnist_flask.model import write_label

SHIPPED = ROOT / "models" / "mnist"
CANARY_PERCENT = 20
DASHBOARD = ROOT / "deploy" / "grafana" / "mnist-flask-versions.json"


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    folder = tmp_path_factory.mktemp("versions")
    copy_store(folder)
    write_label(folder, "mnist", "stable", 1)  # the command's own function; the command itself is run below
    write_label(folder, "mnist", "canary", 2)
    return folder


@pytest.fixture(scope="module")
def served(store, tmp_path_factory):
    env = {"MNIST_FLASK_MODEL_DIR": str(store), "MNIST_FLASK_CANARY_PERCENT": str(CANARY_PERCENT)}
    with gunicorn(tmp_path_factory.mktemp("gunicorn") / "gunicorn.log", env=env) as server:
        yield server


@pytest.fixture(scope="module")
def image(mnist_test):
    return encode(mnist_test[0][0])


def test_models_list_shows_the_labels(store):
    listed = cli("models", "list", "--model-dir", str(store)).stdout.splitlines()
    assert [line.split()[0] for line in listed] == ["mnist:1", "mnist:2", "mnist:3"]
    assert listed[0].endswith("labels stable") and listed[1].endswith("labels canary") and "labels" not in listed[2]
    assert json.loads((store / "mnist" / "labels.json").read_text()) == {"canary": 2, "stable": 1}
    refused = cli("models", "label", "stable", "9", "--model-dir", str(store))
    assert refused.returncode != 0 and "no version 9" in refused.stderr and "[1, 2, 3]" in refused.stderr


def test_a_label_is_removed(tmp_path):
    copy_store(tmp_path)
    write_label(tmp_path, "mnist", "canary", 3)
    removed = cli("models", "label", "canary", "--remove", "--model-dir", str(tmp_path))
    assert removed.returncode == 0 and "'canary' removed; labels: none" in removed.stdout
    assert json.loads((tmp_path / "mnist" / "labels.json").read_text()) == {}
    assert cli("models", "label", "canary", "--model-dir", str(tmp_path)).returncode == 2  # neither a version nor --remove


def test_each_route_answers_with_the_version_or_label_it_names(served, image, mnist_test):
    instances = {"instances": (mnist_test[0][:2] / 255.0).tolist()}
    base = served.url
    for query, model in (("?version=1", "mnist:1"), ("?version=3", "mnist:3"), ("?label=stable", "mnist:1"), ("?label=canary", "mnist:2")):
        answer = post_upload(base, image, path="/prediction" + query)
        assert answer.status_code == 200 and answer.json()["model"] == model == answer.headers["X-Model"], query
    batch = post_upload(base, image, image, path="/prediction?version=2")
    assert batch.json()["model"] == "mnist:2" and [p["model"] for p in batch.json()["predictions"]] == ["mnist:2"] * 2
    for path, model in (("/v1/models/mnist/versions/1:predict", "mnist:1"), ("/v1/models/mnist/labels/canary:predict", "mnist:2")):
        # as `curl -d` sends it: JSON with curl's form Content-Type, which TF Serving reads as JSON too
        form = {"Content-Type": "application/x-www-form-urlencoded"}
        answer = requests.post(base + path, data=json.dumps(instances), headers=form, timeout=10)
        assert answer.status_code == 200 and answer.headers["X-Model"] == model and len(answer.json()["predictions"]) == 2
    # The three versions are different networks: their probabilities differ.
    answers = [requests.post(f"{base}/v1/models/mnist/versions/{v}:predict", json=instances, timeout=10).json() for v in (1, 2, 3)]
    assert answers[0] != answers[1] != answers[2]
    assert requests.get(base + "/v1/models/mnist/labels/stable", timeout=10).json()["model_version_status"][0]["version"] == "1"
    assert requests.get(base + "/v1/models/mnist/versions/2", timeout=10).json()["model_version_status"][0]["state"] == "AVAILABLE"
    metadata = requests.get(base + "/v1/models/mnist/labels/canary/metadata", timeout=10).json()
    assert metadata["model_spec"]["version"] == "2"
    assert requests.get(base + "/v1/models/mnist/versions/3/metadata", timeout=10).json()["model_spec"]["version"] == "3"
    status = requests.get(base + "/v1/models/mnist", timeout=10).json()
    assert [(s["version"], s["state"]) for s in status["model_version_status"]] == [("3", "AVAILABLE"), ("2", "AVAILABLE"), ("1", "AVAILABLE")]
    assert status["version_labels"] == {"canary": "2", "stable": "1"}
    assert requests.get(base + "/v2/models/mnist", timeout=10).json()["versions"] == ["3", "2", "1"]  # the default first
    v2 = {"inputs": [{"name": "input", "datatype": "FP32", "shape": [1, 28, 28], "data": (mnist_test[0][0] / 255.0).ravel().tolist()}]}
    assert requests.post(base + "/v2/models/mnist/versions/1/infer", json=v2, timeout=10).json()["model_version"] == "1"


@pytest.mark.parametrize(
    ("method", "path", "names"),
    [
        ("post", "/prediction?version=9", "['1', '2', '3']"),
        ("post", "/prediction?label=nightly", "'canary': 2, 'stable': 1"),
        ("post", "/v1/models/mnist/versions/9:predict", "['1', '2', '3']"),
        ("post", "/v1/models/mnist/labels/nightly:predict", "'stable': 1"),
        ("get", "/v1/models/mnist/versions/9", "['1', '2', '3']"),
        ("get", "/v1/models/mnist/labels/nightly", "'stable': 1"),
        ("get", "/v1/models/mnist/labels/nightly/metadata", "'stable': 1"),
        ("get", "/v2/models/mnist/versions/9", "['1', '2', '3']"),
    ],
)
def test_an_unknown_version_or_label_is_a_404_naming_the_ones_there_are(served, image, method, path, names):
    if method == "post" and path.startswith("/prediction"):
        answer = post_upload(served.url, image, path=path)
    elif method == "post":
        answer = requests.post(served.url + path, json={"instances": [[[0.0] * 28] * 28]}, timeout=10)
    else:
        answer = requests.get(served.url + path, timeout=10)
    assert answer.status_code == 404 and answer.headers["Content-Type"] == "application/json"
    assert names in answer.json()["error"]


def scraped(server) -> dict[str, dict[tuple, float]]:
    """Samples by metric family and labels, from one scrape."""
    families = {}
    for family in text_string_to_metric_families(requests.get(server.url + "/metrics", timeout=10).text):
        families[family.name] = {(s.name, tuple(sorted(s.labels.items()))): s.value for s in family.samples}
    return families


def per_version(families, family: str, suffix: str = "_total", **labels) -> dict[str, float]:
    sums: dict[str, float] = Counter()
    for (name, sample_labels), value in families.get(family, {}).items():
        found = dict(sample_labels)
        if name.endswith(suffix) and all(found.get(key) == wanted for key, wanted in labels.items()):
            sums[found["version"]] += value
    return sums


def test_canary_share_and_per_version_metrics_summed_over_workers(served, image):
    """400 unpinned requests: the canary answers a binomial share (20 %: 80, sd 8, so within 40..120
    short of a 5-sigma fluke); the per-version metrics, summed over both workers, count every one."""
    before = scraped(served)
    with ThreadPoolExecutor(8) as pool:
        answers = list(pool.map(lambda _: post_upload(served.url, image), range(400)))
    assert {answer.status_code for answer in answers} == {200}
    models = Counter(answer.json()["model"] for answer in answers)
    assert set(models) == {"mnist:2", "mnist:3"} and 40 <= models["mnist:2"] <= 120, models
    pids = {json.loads(line)["pid"] for line in served.access_log().splitlines() if line.startswith('{"') and '"/prediction"' in line}
    assert len(pids) == 2, "both workers answered"
    digit = Counter(answer.json()["prediction"] for answer in answers if answer.json()["model"] == "mnist:2").most_common(1)[0][0]
    for _ in range(4):  # whichever worker answers the scrape, it reports both workers' samples
        after = scraped(served)
        requests_by_version = per_version(after, "mnist_flask_version_requests")
        grown = {v: requests_by_version[v] - per_version(before, "mnist_flask_version_requests")[v] for v in ("2", "3")}
        assert grown == {"2": models["mnist:2"], "3": models["mnist:3"]}
        found = per_version(after, "mnist_flask_version_digit_found")["2"] - per_version(before, "mnist_flask_version_digit_found")["2"]
        assert found == models["mnist:2"]  # an MNIST digit: found every time
        predicted = per_version(after, "mnist_flask_version_predictions", digit=str(digit))["2"]
        assert predicted - per_version(before, "mnist_flask_version_predictions", digit=str(digit))["2"] == models["mnist:2"]
        latency = per_version(after, "mnist_flask_version_request_duration_seconds", "_count")["3"]
        assert latency - per_version(before, "mnist_flask_version_request_duration_seconds", "_count")["3"] == models["mnist:3"]


def test_the_grafana_dashboard_queries_metrics_the_server_exports(served):
    dashboard = json.loads(DASHBOARD.read_text())
    queries = [target["expr"] for panel in dashboard["panels"] for target in panel["targets"]]
    named = {re.sub(r"_(bucket|total|count|sum)$", "", name) for query in queries for name in re.findall(r"mnist_flask_\w+", query)}
    assert {"mnist_flask_version_requests", "mnist_flask_version_request_duration_seconds", "mnist_flask_version_predictions",
            "mnist_flask_version_digit_found"} <= named  # fmt: skip
    defined = {family.name for family in create_metrics().registry.collect()}
    assert named <= defined, named - defined
    scraped = {family.name for family in text_string_to_metric_families(requests.get(served.url + "/metrics", timeout=10).text)}
    assert {name for name in named if "_version_" in name} <= scraped  # with samples for every loaded version


def test_a_label_change_rolls_out_on_hup_with_zero_failed_requests(served, store, image):
    with Load(served.url, image, path="/prediction?label=stable") as load:
        relabelled = cli("models", "label", "stable", "3", "--model-dir", str(store))
        assert relabelled.returncode == 0, relabelled.stderr
        served.process.send_signal(signal.SIGHUP)
        load.wait_for("mnist:3", 200)
    assert load.answers and load.failed == []
    assert load.models[0] == "mnist:1" and load.models[-50:] == ["mnist:3"] * 50


def test_versions_loaded_policy_and_a_pinned_broken_version(tmp_path, image):
    copy_store(tmp_path)
    newest = create_app({"MODEL_DIR": str(tmp_path), "MODEL_VERSIONS_LOADED": 1}).test_client()
    status = newest.get("/v1/models/mnist").json["model_version_status"]
    assert [(s["version"], s["state"], s["status"]["error_code"]) for s in status] == [
        ("3", "AVAILABLE", "OK"), ("2", "END", "OK"), ("1", "END", "OK")]  # fmt: skip
    assert "MODEL_VERSIONS_LOADED" in status[1]["status"]["error_message"]
    assert post_image(newest, image, path="/prediction?version=1").status_code == 404

    (tmp_path / "mnist" / "3" / "model.tflite").write_bytes(b"not a flatbuffer")
    (tmp_path / "mnist" / "labels.json").write_text('{"stable": 1}')
    fallback = create_app({"MODEL_DIR": str(tmp_path), "MODEL_VERSIONS_LOADED": "latest 1"}).test_client()
    status = fallback.get("/v1/models/mnist").json["model_version_status"]
    # 3 is wanted but broken, so 2 is loaded in its place; 1 is loaded for its label.
    assert [(s["version"], s["state"]) for s in status] == [("3", "END"), ("2", "AVAILABLE"), ("1", "AVAILABLE")]
    assert post_image(fallback, image).json["model"] == "mnist:2"

    pinned = create_app({"MODEL_DIR": str(tmp_path), "MODEL_VERSION": 3}).test_client()
    assert pinned.get("/readyz").status_code == 503 and "mnist:3" in pinned.get("/readyz").json["error"]
    assert post_image(pinned, image).status_code == 503
    named = post_image(pinned, image, path="/prediction?label=stable")
    assert named.status_code == 200 and named.json["model"] == "mnist:1"
    broken = post_image(pinned, image, path="/prediction?version=3")
    assert broken.status_code == 503 and "failed to load" in broken.json["error"]


def test_a_new_version_labelled_canary_gets_only_its_share(tmp_path, image):
    copy_store(tmp_path)
    write_label(tmp_path, "mnist", "canary", 3)
    for percent, default in ((0, "mnist:2"), (100, "mnist:3")):
        client = create_app({"MODEL_DIR": str(tmp_path), "CANARY_PERCENT": percent}).test_client()
        assert post_image(client, image).json["model"] == default
        assert client.get("/readyz").json["model"] == "mnist:2"


@pytest.mark.parametrize(("key", "value"), [("MODEL_VERSIONS_LOADED", "newest"), ("CANARY_PERCENT", 150)])
def test_a_setting_out_of_range_leaves_the_worker_up_but_not_ready(key, value):
    ready = create_app({key: value}).test_client().get("/readyz")
    assert ready.status_code == 503 and key in ready.json["error"]


def test_the_token_protects_every_version_and_label(tmp_path):
    copy_store(tmp_path)
    write_label(tmp_path, "mnist", "stable", 1)
    client = create_app({"MODEL_DIR": str(tmp_path), "API_TOKEN": "s3cret"}).test_client()
    body = {"instances": [[[0.0] * 28] * 28]}
    for path in ("/v1/models/mnist/versions/1:predict", "/v1/models/mnist/labels/stable:predict", "/v2/models/mnist/versions/1/infer"):
        assert client.post(path, json=body).status_code == 401, path
    answer = client.post("/v1/models/mnist/labels/stable:predict", json=body, headers={"Authorization": "Bearer s3cret"})
    assert answer.status_code == 200 and answer.headers["X-Model"] == "mnist:1"
    assert client.get("/v1/models/mnist/labels/stable").status_code == 200  # status stays open
