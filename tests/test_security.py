"""Bearer auth on the views that predict, and the headers on every answer (mnist_flask/security.py)."""

from __future__ import annotations

import requests
from helpers import encode, post_image, post_upload

from bench.harness import gunicorn
from mnist_flask import create_app


def test_bearer_token_protects_predictions_only(mnist_test):
    client = create_app({"API_TOKEN": "s3cret"}).test_client()
    data = encode(mnist_test[0][0])
    refused = post_image(client, data)
    assert refused.status_code == 401 and refused.headers["WWW-Authenticate"].lower().startswith("bearer")
    wrong = post_image(client, data, headers={"Authorization": "Bearer nope"})
    assert wrong.status_code == 401
    allowed = post_image(client, data, headers={"Authorization": "Bearer s3cret"})
    assert allowed.status_code == 200
    assert client.post("/v1/models/mnist:predict", json={"instances": []}).status_code == 401
    for open_path in ("/healthz", "/readyz", "/metrics", "/v1/models/mnist", "/apispec_1.json"):
        assert client.get(open_path).status_code == 200, open_path


def test_bearer_token_from_the_environment(tmp_path, mnist_test):
    image = encode(mnist_test[0][0])
    with gunicorn(tmp_path / "gunicorn.log", env={"MNIST_FLASK_API_TOKEN": "s3cret"}) as secured:
        refused = post_upload(secured.url, image)
        assert refused.status_code == 401
        allowed = post_upload(secured.url, image, headers={"Authorization": "Bearer s3cret"})
        assert allowed.status_code == 200 and allowed.json()["prediction"] == mnist_test[1][0]
        assert requests.get(secured.url + "/readyz", timeout=5).status_code == 200


def test_security_headers(client):
    page = client.get("/", headers={"Accept": "text/html"})
    assert page.headers["X-Content-Type-Options"] == "nosniff"
    assert "default-src 'self'" in page.headers["Content-Security-Policy"]
    assert page.headers["X-Frame-Options"] == "DENY"
    assert client.get("/healthz").headers["X-Content-Type-Options"] == "nosniff"
