"""The HTTP API: ``GET /`` and ``POST /prediction`` (the FastAPI original's two endpoints), plus a
TensorFlow-Serving-compatible REST surface under ``/v1/models/``."""

from __future__ import annotations

from functools import partial

import numpy as np
from flasgger import swag_from
from flask import Blueprint, current_app, g, jsonify, request, url_for
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
    """``?version=3`` or ``?label=stable`` pick a version; otherwise the default one, or the canary for its share."""
    uploads = read_uploads()
    classifier = requested_classifier()
    if len(uploads) > 1:
        return jsonify(predictions=classify_each(uploads, decode, partial(classify, classifier)), model=classifier.label)
    digit = decode(uploads[0])
    answer = classify(classifier, [digit])[0]
    browser = web.wants_html()
    if browser or asks_for_model_input():
        answer["model_input"] = web.model_input_data_url(digit)
    return web.result_page(answer) if browser else jsonify(answer)


def requested_classifier() -> Classifier:
    """The version ``?version=`` or ``?label=`` names (404 naming the ones there are), else :func:`chosen`."""
    if request.query_string:  # most calls have none: skip parsing it
        version, label = request.args.get("version"), request.args.get("label")
        if version is not None and label is not None:
            raise BadRequest("name a version or a label, not both")
        if version is not None or label is not None:
            return chosen(model_slot().named(version, label))
    return chosen(model_slot().choose())


def chosen(classifier: Classifier) -> Classifier:
    """Remember which version answers, for the per-version metrics and the ``X-Model`` header."""
    g.model = classifier
    return classifier


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


def classify(classifier: Classifier, digits: list[Digit]) -> list[dict]:
    recorded = metrics()
    with recorded.inference.time():
        answers = classifier.answers(digits)
    version = recorded.version(classifier.version)
    for answer in answers:
        recorded.predictions[answer["prediction"]].inc()
        version.predictions[answer["prediction"]].inc()
        if answer["digit_found"]:
            version.digit_found.inc()
    return answers


@bp.post("/v1/models/<model:name>:predict")
@swag_from(apispec.TFSERVING_PREDICT)
@token_required
def tfserving_predict(name: str):
    """TensorFlow Serving's REST predict, so its existing clients can point here unchanged."""
    check_model_name(name)
    return tfserving_predict_with(chosen(model_slot().choose()))


@bp.post("/v1/models/<model:name>/versions/<int:version>:predict")
@swag_from(apispec.TFSERVING_PREDICT_VERSION)
@token_required
def tfserving_predict_version(name: str, version: int):
    return tfserving_predict_named(name, version, None)


@bp.post("/v1/models/<model:name>/labels/<model:label>:predict")
@swag_from(apispec.TFSERVING_PREDICT_LABEL)
@token_required
def tfserving_predict_label(name: str, label: str):
    return tfserving_predict_named(name, None, label)


def tfserving_predict_named(name: str, version: int | None, label: str | None):
    check_model_name(name)
    return tfserving_predict_with(chosen(model_slot().named(version, label)))


def tfserving_predict_with(classifier: Classifier):
    body = request.get_json(force=True, silent=True)  # as TF Serving: JSON whatever the Content-Type (curl -d)
    if not isinstance(body, dict) or ("instances" in body) == ("inputs" in body):
        raise BadRequest('send a JSON object with either "instances" or "inputs": a list of 28x28 arrays')
    key = "instances" if "instances" in body else "inputs"
    batch = tensor_batch(body[key])
    with metrics().inference.time():
        probabilities = classifier.predict(batch)
    return jsonify({"predictions" if key == "instances" else "outputs": rounded_probabilities(probabilities)})


@bp.after_app_request
def name_the_model(response):
    """Every answer a version produced says which one, TF Serving's and V2's included: ``X-Model: mnist:3``."""
    if "model" in g and response.status_code < 400:
        response.headers["X-Model"] = g.model.label
    return response


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
    """The default version when ``name`` is the served model; 404 otherwise."""
    check_model_name(name)
    return get_classifier()


def check_model_name(name: str) -> None:
    if name != current_app.config["MODEL_NAME"]:
        raise NotFound(f"no model named {name!r}; this server serves {current_app.config['MODEL_NAME']!r}")


@bp.get("/v1/models/<model:name>")
@swag_from(apispec.MODEL_STATUS)
def model_status(name: str):
    """TensorFlow Serving's model status: every version in the store with its state, newest first:
    AVAILABLE when loaded, END with the error when it failed to load (or was left out by
    MODEL_VERSIONS_LOADED); ``version_labels`` as TF Serving's config names them."""
    check_model_name(name)
    slot = model_slot()
    statuses = version_statuses(slot)
    if not statuses:
        return jsonify(model_version_status=[version_status("", "UNAVAILABLE", slot.problem)])
    answer = {"model_version_status": [statuses[version] for version in sorted(statuses, reverse=True)]}
    if slot.classifier is not None:
        answer["backend"] = slot.classifier.backend
    return jsonify(**answer, version_labels={label: str(version) for label, version in slot.labels.items()})


@bp.get("/v1/models/<model:name>/versions/<int:version>")
@swag_from(apispec.MODEL_STATUS_VERSION)
def model_version_status(name: str, version: int):
    check_model_name(name)
    return one_version_status(model_slot(), version)


@bp.get("/v1/models/<model:name>/labels/<model:label>")
@swag_from(apispec.MODEL_STATUS_LABEL)
def model_label_status(name: str, label: str):
    check_model_name(name)
    slot = model_slot()
    if label not in slot.labels:
        slot.labelled(label)  # the 404 naming the labels there are
    return one_version_status(slot, slot.labels[label])


def one_version_status(slot, version: int):
    statuses = version_statuses(slot)
    if version not in statuses:
        slot.version(version)  # the 404 naming the versions there are
    return jsonify(model_version_status=[statuses[version]])


def version_statuses(slot) -> dict[int, dict]:
    statuses = {version: version_status(version, "AVAILABLE") for version in slot.loaded}
    statuses |= {version: version_status(version, "END", why) for version, why in slot.failures.items()}
    statuses |= {version: version_status(version, "END", why, "OK") for version, why in slot.not_loaded.items()}
    return statuses


def version_status(version, state: str, problem: str | None = None, code: str = "UNKNOWN") -> dict:
    error = {"error_code": code if problem else "OK", "error_message": problem or ""}
    return {"version": str(version), "state": state, "status": error}


@bp.get("/v1/models/<model:name>/metadata")
@swag_from(apispec.MODEL_METADATA)
def model_metadata(name: str):
    """The input/output signature, in TensorFlow Serving's shape, plus the model's own metadata."""
    return metadata_of(named_classifier(name))


@bp.get("/v1/models/<model:name>/versions/<int:version>/metadata")
@swag_from(apispec.MODEL_METADATA_VERSION)
def model_version_metadata(name: str, version: int):
    check_model_name(name)
    return metadata_of(model_slot().version(version))


@bp.get("/v1/models/<model:name>/labels/<model:label>/metadata")
@swag_from(apispec.MODEL_METADATA_LABEL)
def model_label_metadata(name: str, label: str):
    check_model_name(name)
    return metadata_of(model_slot().labelled(label))


def metadata_of(classifier: Classifier):
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
