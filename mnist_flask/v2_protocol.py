"""The Open Inference Protocol's (KServe V2) inference framing: bytes in, tensors out, and back.

A request body is a JSON object, optionally followed by binary tensor data (Triton's binary tensor
data extension, which ``tritonclient`` uses by default): the ``Inference-Header-Content-Length``
header says where the JSON ends, and each binary input's ``parameters.binary_data_size`` how many
of the bytes after it are its own, in input order. Every size is checked against the body before
anything is sliced, so a header that lies is a ``ProtocolError`` (a 400), never a short read.

The JSON's structure is checked against ``INFERENCE_REQUEST``, the same schema the Swagger docs
show; no HTTP here, so the framing is tested on its own.
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass

import jsonschema_rs
import numpy as np

HEADER_LENGTH = "Inference-Header-Content-Length"
BINARY_CONTENT_TYPE = "application/octet-stream"
FP32 = "FP32"
WIRE_FP32 = np.dtype("<f4")  # binary tensor data is little-endian, row-major, unpadded
JSON_DECIMALS = 6  # as the TF Serving routes: 0.99999, not 0.9999899864196777
BYTE_COUNT = re.compile(r"[0-9]{1,12}")  # far above any body MAX_CONTENT_LENGTH lets through

SHAPE = {"type": "array", "items": {"type": "integer", "minimum": 0}, "example": [2, 28, 28, 1]}

REQUEST_INPUT = {
    "type": "object",
    "required": ["name", "shape", "datatype"],
    "properties": {
        "name": {"type": "string", "example": "input"},
        "shape": SHAPE,
        "datatype": {"type": "string", "example": FP32},
        "parameters": {
            "type": "object",
            "properties": {
                "binary_data_size": {
                    "type": "integer",
                    "minimum": 0,
                    "description": "the tensor is binary data: this many bytes after the JSON (and earlier inputs' bytes)",
                }
            },
        },
        "data": {
            "type": "array",
            "items": {},
            "description": "the elements, row-major, flat or nested; absent when the data is binary",
        },
    },
}

REQUEST_OUTPUT = {
    "type": "object",
    "required": ["name"],
    "properties": {
        "name": {"type": "string", "example": "probabilities"},
        "parameters": {
            "type": "object",
            "properties": {"binary_data": {"type": "boolean", "description": "return this output as binary data"}},
        },
    },
}

INFERENCE_REQUEST = {
    "type": "object",
    "required": ["inputs"],
    "properties": {
        "id": {"type": "string"},
        "parameters": {
            "type": "object",
            "properties": {"binary_data_output": {"type": "boolean", "description": "return every output as binary data"}},
        },
        "inputs": {"type": "array", "minItems": 1, "items": REQUEST_INPUT},
        "outputs": {"type": "array", "items": REQUEST_OUTPUT},
    },
}

# Rust-compiled: the pure-Python validator cost more than framing a binary request and, for JSON
# data, visits every element (docs/performance.md).
_check_request = jsonschema_rs.Draft4Validator(INFERENCE_REQUEST)


class ProtocolError(ValueError):
    """The request breaks the protocol; the message says how, for a 400."""


@dataclass
class Tensor:
    name: str
    datatype: str
    shape: list[int]
    data: list | None = None  # JSON data
    raw: bytes | None = None  # binary data

    def fp32(self) -> np.ndarray:
        """The tensor as float32 in its declared shape."""
        if self.datatype != FP32:
            raise ProtocolError(f"input {self.name!r} has datatype {self.datatype!r}; this model takes {FP32}")
        if self.raw is not None:
            return np.frombuffer(self.raw, WIRE_FP32).reshape(self.shape)
        try:
            array = np.asarray(self.data, dtype=np.float32)
        except (TypeError, ValueError, OverflowError):
            raise ProtocolError(f"input {self.name!r}: data must be numbers, in nested lists of equal length") from None
        if array.size != math.prod(self.shape):
            raise ProtocolError(f"input {self.name!r}: shape {self.shape} needs {math.prod(self.shape)} values, data has {array.size}")
        return array.reshape(self.shape)


@dataclass
class InferenceRequest:
    id: str | None
    inputs: list[Tensor]
    outputs: list[dict] | None  # the requested outputs, or None for all
    binary_output: bool  # the request-wide default: parameters.binary_data_output

    def input(self, name: str) -> Tensor:
        """The one input a single-input model takes, by its name."""
        if len(self.inputs) != 1 or self.inputs[0].name != name:
            raise ProtocolError(f"this model takes one input, {name!r}; got {[tensor.name for tensor in self.inputs]}")
        return self.inputs[0]

    def binary_outputs(self, available: list[str]) -> dict[str, bool]:
        """Each output to send, and whether as binary data: its own ``binary_data``, else the request's."""
        if self.outputs is None:
            return dict.fromkeys(available, self.binary_output)
        chosen = {}
        for output in self.outputs:
            if output["name"] not in available:
                raise ProtocolError(f"no output named {output['name']!r}; this model has {available}")
            parameters = output.get("parameters", {})
            if "classification" in parameters:
                raise ProtocolError("the classification extension is not supported: ask for the probabilities")
            chosen[output["name"]] = parameters.get("binary_data", self.binary_output)
        return chosen


def json_header_length(value: str | None, body_length: int) -> int:
    """Where the JSON ends: the header's byte count, or the whole body without it."""
    if value is None:
        return body_length
    if not BYTE_COUNT.fullmatch(value.strip()):
        raise ProtocolError(f"{HEADER_LENGTH} must be a byte count, got {value[:40]!r}")
    length = int(value)
    if length > body_length:
        raise ProtocolError(f"{HEADER_LENGTH} is {length} but the body has only {body_length} bytes")
    return length


def parse_request(body: bytes, header_length: str | None = None) -> InferenceRequest:
    """The request from the body and its ``Inference-Header-Content-Length`` header (None when absent)."""
    split = json_header_length(header_length, len(body))
    try:
        header = json.loads(body[:split])
    except (ValueError, RecursionError):  # bad JSON, bad UTF-8, absurd nesting
        raise ProtocolError(f"the first {split} bytes of the body are not a JSON object") from None
    error = next(_check_request.iter_errors(header), None)
    if error is not None:
        where = "".join(f"[{part}]" if isinstance(part, int) else f".{part}" for part in error.instance_path)
        raise ProtocolError(f"request{where}: {error.message[:200]}")
    binary = memoryview(body)[split:]
    inputs, offset = [], 0
    for item in header["inputs"]:
        parameters = item.get("parameters", {})
        tensor = Tensor(item["name"], item["datatype"], item["shape"])
        if "binary_data_size" in parameters:
            if "data" in item:
                raise ProtocolError(f"input {tensor.name!r} has both JSON data and binary_data_size")
            size = parameters["binary_data_size"]
            if offset + size > len(binary):
                raise ProtocolError(
                    f"input {tensor.name!r}: binary_data_size {size} runs past the body "
                    f"({len(binary) - offset} bytes of binary data left)"
                )
            expected = math.prod(tensor.shape) * WIRE_FP32.itemsize
            if tensor.datatype == FP32 and size != expected:
                raise ProtocolError(f"input {tensor.name!r}: shape {tensor.shape} of {FP32} is {expected} bytes, binary_data_size says {size}")
            tensor.raw = bytes(binary[offset : offset + size])
            offset += size
        elif "data" in item:
            tensor.data = item["data"]
        else:
            raise ProtocolError(f"input {tensor.name!r} has no data: send data, or binary data with binary_data_size")
        inputs.append(tensor)
    if offset != len(binary):
        raise ProtocolError(f"the body has {len(binary) - offset} bytes after the JSON and the binary data its inputs declare")
    return InferenceRequest(
        id=header.get("id"),
        inputs=inputs,
        outputs=header.get("outputs"),
        binary_output=header.get("parameters", {}).get("binary_data_output", False),
    )


def response_body(header: dict, outputs: dict[str, np.ndarray], binary: dict[str, bool]) -> tuple[bytes, int | None]:
    """The response: ``header`` (model_name, model_version, id) plus each FP32 output, as JSON data or
    binary data after the JSON. Returns the body and the JSON's length, None when all is JSON."""
    tensors, chunks = [], []
    for name, array in outputs.items():
        if name not in binary:
            continue
        tensor = {"name": name, "datatype": FP32, "shape": list(array.shape)}
        if binary[name]:
            chunk = np.ascontiguousarray(array, WIRE_FP32).tobytes()
            tensor["parameters"] = {"binary_data_size": len(chunk)}
            chunks.append(chunk)
        else:
            tensor["data"] = np.round(array.astype(np.float64), JSON_DECIMALS).ravel().tolist()
        tensors.append(tensor)
    text = json.dumps({**header, "outputs": tensors}, separators=(",", ":")).encode()
    if not chunks:
        return text, None
    return b"".join([text, *chunks]), len(text)
