"""The HTTP API: ``GET /`` and ``POST /prediction`` (the FastAPI original's two endpoints), plus a
TensorFlow-Serving-compatible REST surface under ``/v1/models/``."""

from __future__ import annotations

import numpy as np
from flasgger import swag_from
from flask import Blueprint, current_app, jsonify, request, url_for
from werkzeug.routing import BaseConverter
from werkzeug.exceptions import BadRequest, NotFound, RequestEntityTooLarge, UnsupportedMediaType

from . import apispec, web
from .metrics import metrics
from .model import Classifier, classify_each, get_classifier, model_slot, rounded_probabilities
from .preprocessing import FIELD, Digit, ImageError, prepare_upload
from .security import token_required

bp = Blueprint("api", __name__)

UPLOAD_FIELDS = ("image", "file")


class ModelName(BaseConverter):
    """A model name has no colon, so ``/v1/models/mnist:predict`` never matches the status route."""

    regex = r"[^/:]+"


@bp.record_once
def register_converter(state) -> None:
    state.app.url_map.converters["model"] = ModelName


@bp.get("/")
@swag_from(apispec.ROOT)
def root():
    """Browsers get the upload page; API clients get the original app's hint, plus where the docs are."""
    if web.wants_html():
        return web.index_page()
    return jsonify(error="use POST /prediction instead of root route", docs=url_for("flasgger.apidocs"))


@bp.post("/prediction")
@swag_from(apispec.PREDICTION)
@token_required
def prediction():
    uploads = read_uploads()
    if len(uploads) > 1:
        return jsonify(predictions=classify_each(uploads, decode, classify), model=get_classifier().label)
    digit = decode(uploads[0])
    answer = classify([digit])[0]
    browser = web.wants_html()
    if browser or asks_for_model_input():
        answer["model_input"] = web.model_input_data_url(digit)
    return web.result_page(answer) if browser else jsonify(answer)


def asks_for_model_input() -> bool:
    """``?model_input=true``. Most calls have no query string, and parsing an empty one into
    ``request.args`` costs ~6 µs a request (bench.request_parts)."""
    return bool(request.query_string) and request.args.get("model_input") in ("1", "true")


def read_uploads() -> list[bytes]:
    """Image bytes from multipart fields ``image`` (or ``file``), repeatable, or a raw ``image/*`` body."""
    if request.mimetype == "multipart/form-data":
        for field in UPLOAD_FIELDS:
            uploads = request.files.getlist(field)
            if len(uploads) > current_app.config["MAX_BATCH"]:
                raise RequestEntityTooLarge(
                    f"at most {current_app.config['MAX_BATCH']} images per request (MAX_BATCH), got {len(uploads)}"
                )
            if uploads:
                return [upload.read() for upload in uploads]
        raise BadRequest("no file: send the image in the multipart field 'image' (or 'file')")
    if request.mimetype.startswith("image/"):
        return [read_raw_body()]
    raise UnsupportedMediaType(
        f"Content-Type {request.mimetype or '(none)'!r} is not accepted: send multipart/form-data with "
        "the image in field 'image', or the raw image bytes with Content-Type image/*"
    )


def read_raw_body() -> bytes:
    """The body, refusing a chunked one that reaches the limit: Werkzeug stops reading there silently."""
    data = request.get_data()
    limit = current_app.config["MAX_CONTENT_LENGTH"]
    if request.content_length is None and limit is not None and len(data) >= limit:
        raise RequestEntityTooLarge(f"the body reached the {limit}-byte limit (MAX_CONTENT_LENGTH)")
    return data


def decode(data: bytes) -> Digit:
    recorded = metrics()
    recorded.upload.observe(len(data))
    try:
        with recorded.decode.time():
            return prepare_upload(data, current_app.config["MAX_IMAGE_PIXELS"])
    except ImageError as error:
        recorded.errors.labels(error.kind).inc()
        raise


def classify(digits: list[Digit]) -> list[dict]:
    recorded = metrics()
    with recorded.inference.time():
        answers = get_classifier().answers(digits)
    for answer in answers:
        recorded.predictions[answer["prediction"]].inc()
    return answers


@bp.post("/v1/models/<model:name>:predict")
@swag_from(apispec.TFSERVING_PREDICT)
@token_required
def tfserving_predict(name: str):
    """TensorFlow Serving's REST predict, so its existing clients can point here unchanged."""
    classifier = named_classifier(name)
    body = request.get_json(silent=True)
    if not isinstance(body, dict) or ("instances" in body) == ("inputs" in body):
        raise BadRequest('send a JSON object with either "instances" or "inputs": a list of 28x28 arrays')
    key = "instances" if "instances" in body else "inputs"
    batch = tensor_batch(body[key])
    with metrics().inference.time():
        probabilities = classifier.predict(batch)
    return jsonify({"predictions" if key == "instances" else "outputs": rounded_probabilities(probabilities)})


def tensor_batch(values) -> np.ndarray:
    """A list of 28x28 (or 28x28x1) arrays of floats in [0, 1], white ink on black, as the model takes."""
    try:
        batch = np.asarray(values, dtype=np.float32)
    except (TypeError, ValueError):
        raise BadRequest("instances must be numbers in nested lists of equal length, shape [N, 28, 28]") from None
    if batch.ndim == 4 and batch.shape[-1] == 1:
        batch = batch[..., 0]
    if batch.ndim != 3 or batch.shape[1:] != (FIELD, FIELD) or len(batch) == 0:
        raise BadRequest(f"expected shape [N, 28, 28] or [N, 28, 28, 1] with N >= 1, got {list(batch.shape)}")
    if len(batch) > current_app.config["MAX_BATCH"]:
        raise BadRequest(f"at most {current_app.config['MAX_BATCH']} instances per request, got {len(batch)}")
    if not np.isfinite(batch).all():
        raise BadRequest("instances must be finite numbers")
    return batch


def named_classifier(name: str) -> Classifier:
    classifier = get_classifier()
    if name != classifier.name:
        raise NotFound(f"no model named {name!r}; this server serves {classifier.name!r}")
    return classifier


@bp.get("/v1/models/<model:name>")
@swag_from(apispec.MODEL_STATUS)
def model_status(name: str):
    """TensorFlow Serving's model status: the served version, and each version that failed to load
    (state END, with the error), newest first."""
    slot = model_slot()
    if name != current_app.config["MODEL_NAME"]:
        raise NotFound(f"no model named {name!r}; this server serves {current_app.config['MODEL_NAME']!r}")
    failed = [version_status(version, "END", why) for version, why in slot.failures.items()]
    if slot.classifier is None:
        return jsonify(model_version_status=failed or [version_status("", "UNAVAILABLE", slot.problem)])
    served = version_status(slot.classifier.version, "AVAILABLE")
    statuses = sorted([served, *failed], key=lambda status: -int(status["version"]))
    return jsonify(model_version_status=statuses, backend=slot.classifier.backend)


def version_status(version, state: str, problem: str | None = None) -> dict:
    error = {"error_code": "UNKNOWN" if problem else "OK", "error_message": problem or ""}
    return {"version": str(version), "state": state, "status": error}


@bp.get("/v1/models/<model:name>/metadata")
@swag_from(apispec.MODEL_METADATA)
def model_metadata(name: str):
    """The input/output signature, in TensorFlow Serving's shape, plus the model's own metadata."""
    classifier = named_classifier(name)
    signature = {
        "inputs": {"input": {"name": "input", **tensor_info(-1, FIELD, FIELD, 1)}},
        "outputs": {"probabilities": {"name": "probabilities", **tensor_info(-1, 10)}},
        "method_name": "tensorflow/serving/predict",
    }
    return jsonify(
        model_spec={"name": classifier.name, "version": str(classifier.version), "signature_name": ""},
        metadata={"signature_def": {"signature_def": {"serving_default": signature}}, "model": classifier.metadata},
    )


def tensor_info(*dims: int) -> dict:
    return {"dtype": "DT_FLOAT", "tensor_shape": {"dim": [{"size": str(size)} for size in dims]}}
