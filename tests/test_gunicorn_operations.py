"""The operations features against a real Gunicorn, as an operator or a TF Serving client meets them."""

from __future__ import annotations

import numpy as np
import requests
from helpers import encode

from bench.harness import gunicorn
from mnist_flask.training import preprocess_all


def test_health_readiness_and_model_endpoints(server):
    assert requests.get(server.url + "/healthz", timeout=5).json() == {"status": "ok"}
    ready = requests.get(server.url + "/readyz", timeout=5).json()
    status = requests.get(server.url + "/v1/models/mnist", timeout=5).json()["model_version_status"][0]
    assert ready["model"] == f"mnist:{status['version']}" and status["state"] == "AVAILABLE"
    metadata = requests.get(server.url + "/v1/models/mnist/metadata", timeout=5).json()
    assert metadata["model_spec"]["version"] == status["version"]


def test_batch_upload_and_tfserving_predict(server, mnist_test):
    images, labels = mnist_test
    files = [("image", (f"{i}.png", encode(image))) for i, image in enumerate(images[10:20])]
    answer = requests.post(server.url + "/prediction", files=files, timeout=10).json()
    assert [p["prediction"] for p in answer["predictions"]] == labels[10:20].tolist()
    body = {"instances": preprocess_all(images[10:20]).tolist()}
    rows = requests.post(server.url + "/v1/models/mnist:predict", json=body, timeout=10).json()["predictions"]
    assert np.argmax(rows, axis=1).tolist() == labels[10:20].tolist()


def test_security_headers_and_app_logs(server):
    response = requests.get(server.url + "/", headers={"Accept": "text/html"}, timeout=5)
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert "default-src 'self'" in response.headers["Content-Security-Policy"]
    assert response.headers["Server"] == "gunicorn"
    assert "serving mnist:" in server.access_log()  # the app's own log line, through Gunicorn's error log


def test_bearer_token_from_the_environment(tmp_path, mnist_test):
    image = encode(mnist_test[0][0])
    with gunicorn(tmp_path / "gunicorn.log", env={"MNIST_FLASK_API_TOKEN": "s3cret"}) as secured:
        refused = requests.post(secured.url + "/prediction", files={"image": ("d.png", image)}, timeout=10)
        assert refused.status_code == 401
        allowed = requests.post(secured.url + "/prediction", files={"image": ("d.png", image)},
                                headers={"Authorization": "Bearer s3cret"}, timeout=10)  # fmt: skip
        assert allowed.status_code == 200 and allowed.json()["prediction"] == mnist_test[1][0]
        assert requests.get(secured.url + "/readyz", timeout=5).status_code == 200
