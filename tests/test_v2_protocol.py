"""The Open Inference Protocol framing on its own: tritonclient's own encoder builds the requests,
its own decoder reads the responses, and every lying size is a ProtocolError."""

from __future__ import annotations

import json
import re

import numpy as np
import pytest
import tritonclient.http as triton

from mnist_flask.v2_protocol import ProtocolError, parse_request, response_body

RNG = np.random.default_rng(18)
BATCH = RNG.random((3, 28, 28, 1), dtype=np.float32)


def triton_request(array: np.ndarray, binary: bool, datatype: str = "FP32", name: str = "input", **options):
    """The body and Inference-Header-Content-Length tritonclient itself sends."""
    tensor = triton.InferInput(name, list(array.shape), datatype)
    tensor.set_data_from_numpy(array, binary_data=binary)
    body, json_length = triton.InferenceServerClient.generate_request_body([tensor], **options)
    return body, None if json_length is None else str(json_length)


@pytest.mark.parametrize("binary", [False, True])
def test_tritonclient_requests_decode_to_the_same_tensor(binary):
    body, length = triton_request(BATCH, binary, request_id="req-1")
    request = parse_request(body, length)
    assert request.id == "req-1"
    assert (length is not None) == binary
    np.testing.assert_array_equal(request.input("input").fp32(), BATCH)


def test_binary_output_follows_the_request_and_each_output():
    body, length = triton_request(BATCH, True)  # no outputs named: tritonclient asks for binary_data_output
    assert parse_request(body, length).binary_outputs(["probabilities"]) == {"probabilities": True}
    for binary in (False, True):
        output = triton.InferRequestedOutput("probabilities", binary_data=binary)
        body, length = triton_request(BATCH, True, outputs=[output])
        assert parse_request(body, length).binary_outputs(["probabilities"]) == {"probabilities": binary}
    body, length = triton_request(BATCH, False, outputs=[triton.InferRequestedOutput("logits")])
    with pytest.raises(ProtocolError, match="no output named 'logits'"):
        parse_request(body, length).binary_outputs(["probabilities"])


@pytest.mark.parametrize("binary", [False, True])
def test_responses_read_back_with_tritonclient(binary):
    probabilities = RNG.random((5, 10), dtype=np.float32)
    body, length = response_body({"model_name": "mnist", "model_version": "3", "id": "a"}, {"probabilities": probabilities}, {"probabilities": binary})
    assert (length is not None) == binary
    result = triton.InferenceServerClient.parse_response_body(body, header_length=length)
    assert result.get_response()["model_version"] == "3" and result.get_response()["id"] == "a"
    decoded = result.as_numpy("probabilities")
    assert decoded.shape == (5, 10)
    np.testing.assert_allclose(decoded, probabilities, atol=0 if binary else 1e-6)


def binary_body(size_field: int | bool, data: bytes, **extra) -> tuple[bytes, str]:
    header = json.dumps({"inputs": [{"name": "input", "shape": [1, 28, 28], "datatype": "FP32", "parameters": {"binary_data_size": size_field}}], **extra}).encode()
    return header + data, str(len(header))


PIXELS = np.zeros((1, 28, 28), np.float32).tobytes()


@pytest.mark.parametrize(
    ("body", "length", "words"),
    [
        (*binary_body(len(PIXELS), PIXELS[:-1]), "runs past the body"),  # truncated
        (*binary_body(len(PIXELS), PIXELS + b"\0"), "1 bytes after"),  # trailing bytes
        (*binary_body(len(PIXELS) - 4, PIXELS[:-4]), "binary_data_size says"),  # size disagrees with shape
        (*binary_body(-4, PIXELS), "minimum"),
        (*binary_body(True, PIXELS), 'binary_data_size: true is not of type "integer"'),
        (*binary_body(10**30, PIXELS), "runs past the body"),
        (binary_body(len(PIXELS), PIXELS)[0], str(len(PIXELS) * 2), "but the body has only"),  # header length past the end
        (binary_body(len(PIXELS), PIXELS)[0], "40", "not a JSON object"),  # header length inside the JSON
        (binary_body(len(PIXELS), PIXELS)[0], "120", "not a JSON object"),
        (binary_body(len(PIXELS), PIXELS)[0], "-5", "byte count"),
        (binary_body(len(PIXELS), PIXELS)[0], "9" * 5000, "byte count"),
        (binary_body(len(PIXELS), PIXELS)[0], "1e3", "byte count"),
        (binary_body(len(PIXELS), PIXELS)[0], None, "not a JSON object"),  # binary data but no header
        (b"[" * 100_000 + b"]" * 100_000, None, "not a JSON object"),
        (b"\xff\xfe{}", None, "not a JSON object"),
        (b'{"inputs": []}', None, "request.inputs"),
        (b'{"inputs": [{"name": "input", "shape": [1, 28, 28], "datatype": "FP32"}]}', None, "no data"),
        (b'{"inputs": [{"name": "input", "shape": [1, 28], "datatype": "FP32", "data": [1, 2]}]}', None, "needs 28 values"),
        (b'{"inputs": [{"name": "input", "shape": [-1, 28], "datatype": "FP32", "data": []}]}', None, "minimum"),
        (b'{"inputs": [{"name": "input", "shape": [2], "datatype": "FP32", "data": ["a", "b"]}]}', None, "must be numbers"),
    ],
)
def test_lying_or_broken_framing_is_a_protocol_error(body, length, words):
    with pytest.raises(ProtocolError, match=re.escape(words)) as raised:
        parse_request(body, length).input("input").fp32()
    assert len(str(raised.value)) < 400  # the message names the problem, not the whole body


def test_wrong_datatype_and_wrong_input_name():
    body, length = triton_request(BATCH.astype(np.float64), True, datatype="FP64")
    with pytest.raises(ProtocolError, match="datatype 'FP64'; this model takes FP32"):
        parse_request(body, length).input("input").fp32()
    body, length = triton_request(BATCH, False, name="images")
    with pytest.raises(ProtocolError, match=r"one input, 'input'; got \['images'\]"):
        parse_request(body, length).input("input")
