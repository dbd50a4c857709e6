"""The Open Inference Protocol (KServe V2) REST surface, so Triton's and KServe's clients work unchanged.

Health and metadata here; the request and response framing, binary tensor data included, is in
``v2_protocol``. Errors are ``{"error": ...}`` as the protocol has them (the app's error handler).
"""

from __future__ import annotations

from flasgger import swag_from
from flask import Blueprint, Response, jsonify, request
from werkzeug.exceptions import BadRequest, UnsupportedMediaType

from . import apispec
from .api import chosen, read_raw_body
from .metrics import metrics
from .model import Classifier, model_slot
from .preprocessing import FIELD
from .security import token_required
from .tfserving import check_model_name, named_classifier, tensor_batch
from .v2_protocol import BINARY_CONTENT_TYPE, FP32, HEADER_LENGTH, ProtocolError, parse_request, response_body

bp = Blueprint("v2", __name__)

SERVER_NAME = "mnist_flask"
EXTENSIONS = ["binary_tensor_data"]
INPUT, OUTPUT = "input", "probabilities"
INPUT_SHAPE = [-1, FIELD, FIELD, 1]  # what the metadata declares; [-1, 28, 28] is accepted too


@bp.get("/v2/health/live")
@swag_from(apispec.V2_LIVE)
def live():
    return jsonify(live=True)


@bp.get("/v2/health/ready")
@swag_from(apispec.V2_READY)
def ready():
    """Ready when this worker has its model (the one model this server serves)."""
    slot = model_slot()
    if slot.classifier is None:
        return jsonify(error=slot.problem), 503
    return jsonify(ready=True)


@bp.get("/v2")
@swag_from(apispec.V2_SERVER_METADATA)
def server_metadata():
    return jsonify(name=SERVER_NAME, version=apispec.TEMPLATE["info"]["version"], extensions=EXTENSIONS)


def served(name: str, version: str | None) -> Classifier:
    """The classifier for ``name`` and ``version`` (any loaded one), or the default version: 404 naming
    the served ones otherwise."""
    if version is None:
        return named_classifier(name)
    check_model_name(name)
    return model_slot().version(version)


def model_slot_choice(name: str) -> Classifier:
    """A request naming no version: the default one, or the canary for its share, as at /prediction."""
    check_model_name(name)
    return model_slot().choose()


@bp.get("/v2/models/<model:name>")
@swag_from(apispec.V2_MODEL_METADATA)
def model_metadata(name: str):
    return model_version_metadata(name, None)


@bp.get("/v2/models/<model:name>/versions/<version>")
@swag_from(apispec.V2_MODEL_VERSION_METADATA)
def model_version_metadata(name: str, version: str | None):
    classifier = served(name, version)
    accepts = {"also_accepts_shape": [-1, FIELD, FIELD], "range": [0, 1], "ink": "white on black, as MNIST"}
    return jsonify(
        name=classifier.name,
        versions=served_versions(),
        platform=classifier.backend,
        inputs=[{"name": INPUT, "datatype": FP32, "shape": INPUT_SHAPE, "parameters": accepts}],
        outputs=[{"name": OUTPUT, "datatype": FP32, "shape": [-1, 10]}],
    )


def served_versions() -> list[str]:
    """Every loaded version, the one answering requests that name none first, then newest first."""
    slot = model_slot()
    default = [slot.classifier.version] if slot.classifier else []
    return [str(v) for v in default + sorted(set(slot.loaded) - set(default), reverse=True)]


@bp.get("/v2/models/<model:name>/ready")
@swag_from(apispec.V2_MODEL_READY)
def model_ready(name: str):
    return model_version_ready(name, None)


@bp.get("/v2/models/<model:name>/versions/<version>/ready")
@swag_from(apispec.V2_MODEL_VERSION_READY)
def model_version_ready(name: str, version: str | None):
    classifier = served(name, version)
    return jsonify(name=classifier.name, ready=True)


@bp.post("/v2/models/<model:name>/infer")
@swag_from(apispec.V2_INFER)
@token_required
def infer(name: str):
    return infer_version(name, None)


@bp.post("/v2/models/<model:name>/versions/<version>/infer")
@swag_from(apispec.V2_INFER_VERSION)
@token_required
def infer_version(name: str, version: str | None):
    """One model call for the batch; the answer in JSON, or with binary data as the request asks."""
    classifier = chosen(served(name, version) if version is not None else model_slot_choice(name))
    encoding = request.headers.get("Content-Encoding", "identity")
    if encoding.lower() != "identity":  # tritonclient's request_compression_algorithm
        raise UnsupportedMediaType(f"Content-Encoding {encoding!r} is not accepted: send the body uncompressed")
    try:
        inference = parse_request(read_raw_body(), request.headers.get(HEADER_LENGTH))
        batch = tensor_batch(inference.input(INPUT).fp32())
        binary = inference.binary_outputs([OUTPUT])
    except ProtocolError as error:
        raise BadRequest(str(error)) from None
    with metrics().inference.time():
        probabilities = classifier.predict(batch)
    header = {"model_name": classifier.name, "model_version": str(classifier.version)}
    if inference.id is not None:
        header["id"] = inference.id
    body, json_length = response_body(header, {OUTPUT: probabilities}, binary)
    if json_length is None:
        return Response(body, mimetype="application/json")
    return Response(body, mimetype=BINARY_CONTENT_TYPE, headers={HEADER_LENGTH: str(json_length)})
