"""What operators rely on: health, readiness, metrics, request IDs, auth, headers, batch and TF Serving."""

from __future__ import annotations

import io

import numpy as np
import pytest
from conftest import encode

from mnist_flask import create_app
from mnist_flask.training import preprocess_all


def test_healthz_and_readyz(client):
    assert client.get("/healthz").json == {"status": "ok"}
    ready = client.get("/readyz").json
    assert ready["status"] == "ready" and ready["model"].startswith("mnist:")


def test_several_images_in_one_request_keep_their_order(client, mnist_test):
    images, labels = mnist_test
    files = [(io.BytesIO(encode(image)), f"{i}.png") for i, image in enumerate(images[:5])]
    files.insert(2, (io.BytesIO(b"not an image"), "bad.png"))
    answer = client.post("/prediction", data={"image": files}).json
    predictions = answer["predictions"]
    assert len(predictions) == 6
    assert predictions[2]["status"] == 400 and "not an image" in predictions[2]["error"]
    good = [p["prediction"] for i, p in enumerate(predictions) if i != 2]
    assert good == list(labels[:5])
    assert answer["model"] == predictions[0]["model"]


def test_batch_size_is_limited():
    client = create_app({"MAX_BATCH": 3, "MAX_FORM_PARTS": 4}).test_client()
    files = [(io.BytesIO(b"x"), f"{i}.png") for i in range(6)]
    response = client.post("/prediction", data={"image": files})
    assert response.status_code == 413 and "error" in response.json


@pytest.mark.parametrize("count, status", [(3, 200), (4, 413), (6, 413)])
def test_max_batch_limits_multipart_uploads(mnist_test, count, status):
    """MAX_BATCH alone limits the images, and the part limit follows it (MAX_BATCH + 6)."""
    app = create_app({"MAX_BATCH": 3})
    assert app.config["MAX_FORM_PARTS"] == 9
    files = [(io.BytesIO(encode(image)), f"{i}.png") for i, image in enumerate(mnist_test[0][:count])]
    response = app.test_client().post("/prediction", data={"image": files})
    assert response.status_code == status
    if status == 413:
        assert response.json["error"] == f"at most 3 images per request (MAX_BATCH), got {count}"
    else:
        assert [p["prediction"] for p in response.json["predictions"]] == mnist_test[1][:count].tolist()


def test_tfserving_predict_instances_and_inputs(client, mnist_test):
    images, labels = mnist_test
    fields = preprocess_all(images[:4])
    rows = client.post("/v1/models/mnist:predict", json={"instances": fields.tolist()}).json["predictions"]
    assert np.argmax(rows, axis=1).tolist() == labels[:4].tolist()
    columns = client.post("/v1/models/mnist:predict", json={"inputs": fields[..., None].tolist()}).json["outputs"]
    np.testing.assert_allclose(columns, rows, atol=1e-5)


@pytest.mark.parametrize(
    ("body", "words"),
    [
        ({"instances": [[[0.0] * 27] * 28]}, "[1, 28, 27]"),
        ({"instances": [[0.0] * 784]}, "[1, 784]"),
        ({"instances": []}, "N >= 1"),
        ({"instances": [["a"] * 28] * 28}, "numbers"),
        ({"wrong": 1}, '"instances" or "inputs"'),
        ([1, 2], '"instances" or "inputs"'),
    ],
)
def test_tfserving_bad_shapes_are_named(client, body, words):
    response = client.post("/v1/models/mnist:predict", json=body)
    assert response.status_code == 400 and words in response.json["error"]


def test_tfserving_unknown_model(client):
    response = client.post("/v1/models/cifar:predict", json={"instances": [[[0.0] * 28] * 28]})
    assert response.status_code == 404 and "cifar" in response.json["error"]


def test_model_status_and_metadata(client):
    status = client.get("/v1/models/mnist").json["model_version_status"][0]
    assert status["state"] == "AVAILABLE" and status["status"]["error_code"] == "OK"
    metadata = client.get("/v1/models/mnist/metadata").json
    assert metadata["model_spec"]["version"] == status["version"]
    signature = metadata["metadata"]["signature_def"]["signature_def"]["serving_default"]
    assert [d["size"] for d in signature["inputs"]["input"]["tensor_shape"]["dim"]] == ["-1", "28", "28", "1"]
    assert metadata["metadata"]["model"]["evaluation"]["split"] == "x_test"


def test_unavailable_model_status():
    client = create_app({"MODEL_VERSION": 42}).test_client()
    status = client.get("/v1/models/mnist").json["model_version_status"][0]
    assert status["version"] == "42" and status["state"] == "END"
    assert status["status"]["error_code"] == "UNKNOWN" and "no version 42" in status["status"]["error_message"]


def test_request_id_is_echoed_or_made(client):
    assert client.get("/healthz", headers={"X-Request-ID": "abc-123"}).headers["X-Request-ID"] == "abc-123"
    made = client.get("/healthz").headers["X-Request-ID"]
    assert len(made) == 32 and made != client.get("/healthz").headers["X-Request-ID"]
    forged = client.get("/healthz", headers={"X-Request-ID": "x\" status=200 fake"}).headers["X-Request-ID"]
    assert forged != "x\" status=200 fake" and len(forged) == 32


def test_bearer_token_protects_predictions_only(mnist_test):
    client = create_app({"API_TOKEN": "s3cret"}).test_client()
    data = encode(mnist_test[0][0])
    refused = client.post("/prediction", data={"image": (io.BytesIO(data), "d.png")})
    assert refused.status_code == 401 and refused.headers["WWW-Authenticate"].lower().startswith("bearer")
    wrong = client.post("/prediction", data={"image": (io.BytesIO(data), "d.png")}, headers={"Authorization": "Bearer nope"})
    assert wrong.status_code == 401
    allowed = client.post("/prediction", data={"image": (io.BytesIO(data), "d.png")}, headers={"Authorization": "Bearer s3cret"})
    assert allowed.status_code == 200
    assert client.post("/v1/models/mnist:predict", json={"instances": []}).status_code == 401
    for open_path in ("/healthz", "/readyz", "/metrics", "/v1/models/mnist", "/apispec_1.json"):
        assert client.get(open_path).status_code == 200, open_path


def test_security_headers(client):
    page = client.get("/", headers={"Accept": "text/html"})
    assert page.headers["X-Content-Type-Options"] == "nosniff"
    assert "default-src 'self'" in page.headers["Content-Security-Policy"]
    assert page.headers["X-Frame-Options"] == "DENY"
    assert client.get("/healthz").headers["X-Content-Type-Options"] == "nosniff"


def test_metrics_count_requests_predictions_and_errors(client, mnist_test):
    images, _ = mnist_test
    answered = [
        client.post("/prediction", data={"image": (io.BytesIO(encode(image)), "d.png")}).json["prediction"]
        for image in images[:3]
    ]
    client.post("/prediction", data={"image": (io.BytesIO(b"junk"), "d.png")})
    text = client.get("/metrics").get_data(as_text=True)
    assert 'mnist_flask_http_requests_total{endpoint="/prediction",method="POST",status="200"} 3.0' in text
    assert 'mnist_flask_http_requests_total{endpoint="/prediction",method="POST",status="400"} 1.0' in text
    for digit in range(10):  # every digit has its series, counting exactly the answers given
        assert f'mnist_flask_predictions_total{{digit="{digit}"}} {float(answered.count(digit))}' in text
    assert 'mnist_flask_errors_total{kind="bad_image"} 1.0' in text
    assert "mnist_flask_inference_seconds_count 3.0" in text
    assert "mnist_flask_image_decode_seconds_count 4.0" in text  # a refused picture took decoding time too
    assert "mnist_flask_upload_bytes_count 4.0" in text
    assert 'mnist_flask_model_info{backend="litert",name="mnist",version=' in text
