"""Liveness and readiness (mnist_flask/health.py), in the app and under Gunicorn."""

from __future__ import annotations

import requests


def test_healthz_and_readyz(client):
    assert client.get("/healthz").json == {"status": "ok"}
    ready = client.get("/readyz").json
    assert ready["status"] == "ready" and ready["model"].startswith("mnist:")


def test_health_readiness_and_model_endpoints(server):
    assert requests.get(server.url + "/healthz", timeout=5).json() == {"status": "ok"}
    ready = requests.get(server.url + "/readyz", timeout=5).json()
    status = requests.get(server.url + "/v1/models/mnist", timeout=5).json()["model_version_status"][0]
    assert ready["model"] == f"mnist:{status['version']}" and status["state"] == "AVAILABLE"
    metadata = requests.get(server.url + "/v1/models/mnist/metadata", timeout=5).json()
    assert metadata["model_spec"]["version"] == status["version"]
