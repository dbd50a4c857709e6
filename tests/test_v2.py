"""The Open Inference Protocol (KServe V2) against a real Gunicorn, driven by an unmodified tritonclient."""

from __future__ import annotations

import json
import re
from urllib.parse import urlsplit

import numpy as np
import pytest
import requests
import tritonclient.http as triton
from tritonclient.utils import InferenceServerException

from bench.harness import ROOT
from mnist_flask import create_app
from mnist_flask.config import Defaults
from mnist_flask.training import preprocess_all


@pytest.fixture(scope="module")
def client(server):
    """tritonclient's HTTP client, as a user makes it: host and port, no scheme."""
    client = triton.InferenceServerClient(urlsplit(server.url).netloc, connection_timeout=10, network_timeout=10)
    yield client
    client.close()


@pytest.fixture(scope="module")
def digits(mnist_test):
    """32 real x_test digits as the model takes them: [N, 28, 28, 1] floats in [0, 1], white on black."""
    images, labels = mnist_test
    return preprocess_all(images[:32])[..., None].astype(np.float32), labels[:32]


def classify(client, batch: np.ndarray, binary: bool, **options):
    tensor = triton.InferInput("input", list(batch.shape), "FP32")
    tensor.set_data_from_numpy(batch, binary_data=binary)
    output = triton.InferRequestedOutput("probabilities", binary_data=binary)
    return client.infer("mnist", [tensor], outputs=[output], **options)


def test_health_metadata_and_readiness(client):
    assert client.is_server_live() and client.is_server_ready()
    assert "binary_tensor_data" in client.get_server_metadata()["extensions"]
    metadata = client.get_model_metadata("mnist")
    (version,) = metadata["versions"]
    assert metadata["inputs"] == [
        {"name": "input", "datatype": "FP32", "shape": [-1, 28, 28, 1], "parameters": metadata["inputs"][0]["parameters"]}
    ]
    assert metadata["outputs"] == [{"name": "probabilities", "datatype": "FP32", "shape": [-1, 10]}]
    assert client.get_model_metadata("mnist", model_version=version) == metadata
    assert client.is_model_ready("mnist") and client.is_model_ready("mnist", model_version=version)
    assert not client.is_model_ready("mnist", model_version=str(int(version) + 100))
    assert not client.is_model_ready("cifar")


@pytest.mark.parametrize("binary", [False, True], ids=["json", "binary"])
def test_infer_classifies_real_digits(client, digits, binary):
    batch, labels = digits
    version = client.get_model_metadata("mnist")["versions"][0]
    result = classify(client, batch, binary, request_id="batch-1")
    probabilities = result.as_numpy("probabilities")
    assert probabilities.shape == (32, 10) and probabilities.dtype == np.float32
    assert (probabilities.argmax(axis=1) == labels).mean() >= 0.95  # 99 % on x_test; a few may miss
    np.testing.assert_allclose(probabilities.sum(axis=1), 1, atol=1e-4)
    answer = result.get_response()
    assert answer["model_name"] == "mnist" and answer["model_version"] == version and answer["id"] == "batch-1"
    assert ("parameters" in answer["outputs"][0]) == binary  # binary_data_size only for binary data
    pinned = classify(client, batch[:, :, :, 0], binary, model_version=version)  # [N, 28, 28] as well
    np.testing.assert_allclose(pinned.as_numpy("probabilities"), probabilities, atol=1e-5)


def test_binary_in_json_out_and_the_client_default(client, digits):
    batch, labels = digits
    tensor = triton.InferInput("input", list(batch[:4].shape), "FP32")
    tensor.set_data_from_numpy(batch[:4], binary_data=True)
    json_out = client.infer("mnist", [tensor], outputs=[triton.InferRequestedOutput("probabilities", binary_data=False)])
    default = client.infer("mnist", [tensor])  # no outputs named: the client asks for binary data
    assert "data" in json_out.get_response()["outputs"][0] and "data" not in default.get_response()["outputs"][0]
    np.testing.assert_allclose(json_out.as_numpy("probabilities"), default.as_numpy("probabilities"), atol=1e-5)
    assert default.as_numpy("probabilities").argmax(axis=1).tolist() == labels[:4].tolist()


def refusal(call) -> InferenceServerException:
    with pytest.raises(InferenceServerException) as raised:
        call()
    return raised.value


@pytest.mark.parametrize("binary", [False, True], ids=["json", "binary"])
def test_wrong_shape_datatype_and_batch_are_400(client, digits, binary):
    batch, _ = digits
    wrong_shape = refusal(lambda: classify(client, batch.reshape(32, 784), binary))
    assert wrong_shape.status() == "400" and "[32, 784]" in wrong_shape.message()
    tensor = triton.InferInput("input", list(batch.shape), "FP64")
    tensor.set_data_from_numpy(batch.astype(np.float64), binary_data=binary)
    wrong_type = refusal(lambda: client.infer("mnist", [tensor]))
    assert wrong_type.status() == "400" and "FP64" in wrong_type.message() and "FP32" in wrong_type.message()
    too_many = np.concatenate([batch, batch, batch])[: Defaults.MAX_BATCH + 1]
    over = refusal(lambda: classify(client, too_many, binary))
    assert over.status() == "400" and f"at most {Defaults.MAX_BATCH}" in over.message()


def test_unknown_model_and_version_are_404(client, digits):
    batch, _ = digits
    tensor = triton.InferInput("input", list(batch[:1].shape), "FP32")
    tensor.set_data_from_numpy(batch[:1])
    unknown = refusal(lambda: client.infer("cifar", [tensor]))
    assert unknown.status() == "404" and "'mnist'" in unknown.message()
    served = client.get_model_metadata("mnist")["versions"][0]
    missing = refusal(lambda: client.infer("mnist", [tensor], model_version="999"))
    assert missing.status() == "404" and repr(served) in missing.message()
    assert refusal(lambda: client.get_model_metadata("mnist", model_version="999")).status() == "404"


def test_compressed_request_is_415(client, digits):
    batch, _ = digits
    tensor = triton.InferInput("input", list(batch[:2].shape), "FP32")
    tensor.set_data_from_numpy(batch[:2])
    compressed = refusal(lambda: client.infer("mnist", [tensor], request_compression_algorithm="gzip"))
    assert compressed.status() == "415" and "uncompressed" in compressed.message()


def test_without_a_model_v2_is_live_but_says_why_it_is_not_ready():
    client = create_app({"MODEL_VERSION": 42}).test_client()
    assert client.get("/v2/health/live").status_code == 200
    for path in ("/v2/health/ready", "/v2/models/mnist/ready", "/v2/models/mnist"):
        response = client.get(path)
        assert response.status_code == 503 and "42" in response.json["error"], path
    body, json_length = binary_request(np.zeros((1, 28, 28), np.float32))
    assert client.post("/v2/models/mnist/infer", data=body, headers={"Inference-Header-Content-Length": str(json_length)}).status_code == 503


def binary_request(batch: np.ndarray) -> tuple[bytes, int]:
    header = {"inputs": [{"name": "input", "shape": list(batch.shape), "datatype": "FP32", "parameters": {"binary_data_size": batch.nbytes}}]}
    text = json.dumps(header).encode()
    return text + batch.tobytes(), len(text)


@pytest.mark.parametrize(
    ("cut", "header"),
    [
        (1, lambda n: str(n)),  # truncated binary data
        (0, lambda n: str(n + 40)),  # longer than the JSON: the JSON takes binary bytes
        (0, lambda n: str(n - 40)),  # shorter than the JSON
        (0, lambda n: str(n * 1000)),  # longer than the body
        (0, lambda n: "-1"),
        (0, lambda n: "9" * 5000),
        (0, lambda n: "x"),
    ],
    ids=["truncated", "longer", "shorter", "past-the-end", "negative", "5000-digits", "not-a-number"],
)
def test_lying_binary_sizes_are_400_at_once(server, digits, cut, header):
    """A body or Inference-Header-Content-Length that disagrees with the JSON: 400, not a hang or a 500."""
    body, json_length = binary_request(digits[0][:2])
    response = requests.post(
        f"{server.url}/v2/models/mnist/infer",
        data=body[: len(body) - cut],
        headers={"Inference-Header-Content-Length": header(json_length)},
        timeout=5,
    )
    assert response.status_code == 400 and response.json()["error"]


def test_infer_needs_the_token_when_one_is_set(digits):
    client = create_app({"API_TOKEN": "s3cret"}).test_client()
    body, json_length = binary_request(digits[0][:1])
    headers = {"Inference-Header-Content-Length": str(json_length)}
    assert client.post("/v2/models/mnist/infer", data=body, headers=headers).status_code == 401
    headers["Authorization"] = "Bearer s3cret"
    assert client.post("/v2/models/mnist/infer", data=body, headers=headers).status_code == 200
    assert client.get("/v2/health/ready").status_code == 200 and client.get("/v2/models/mnist").status_code == 200


def readme_example() -> str:
    text = (ROOT / "README.md").read_text()
    blocks = re.findall(r"```python\n(.*?)```", text, re.S)
    (example,) = [block for block in blocks if "tritonclient" in block]
    return example


def test_readme_tritonclient_example(server, capsys, monkeypatch):
    """The README's tritonclient code, as written, against Gunicorn (only the address differs)."""
    monkeypatch.chdir(ROOT)  # it reads data/mnist.npz, as from a checkout
    example = readme_example()
    assert '"localhost:8000"' in example
    namespace: dict = {}
    exec(compile(example.replace("localhost:8000", urlsplit(server.url).netloc), "README.md", "exec"), namespace)
    printed = capsys.readouterr().out.splitlines()
    assert namespace["result"].as_numpy("probabilities").argmax(axis=1).tolist() == namespace["labels"].tolist()
    assert printed[1] == "[7 2 1 0 4 1 4 9] [7 2 1 0 4 1 4 9]"
    assert printed[2] == namespace["client"].get_model_metadata("mnist")["versions"][0]
    namespace["client"].close()
