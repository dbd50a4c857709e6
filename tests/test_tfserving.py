"""TF Serving's REST API (mnist_flask/tfserving.py): predict, status and metadata, through the test
client and against a real Gunicorn."""

from __future__ import annotations

import numpy as np
import pytest
import requests
from helpers import encode, post_upload

from mnist_flask import create_app
from mnist_flask.training import preprocess_all


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


def test_batch_upload_and_tfserving_predict(server, mnist_test):
    images, labels = mnist_test
    answer = post_upload(server.url, *[encode(image) for image in images[10:20]]).json()
    assert [p["prediction"] for p in answer["predictions"]] == labels[10:20].tolist()
    body = {"instances": preprocess_all(images[10:20]).tolist()}
    rows = requests.post(server.url + "/v1/models/mnist:predict", json=body, timeout=10).json()["predictions"]
    assert np.argmax(rows, axis=1).tolist() == labels[10:20].tolist()
