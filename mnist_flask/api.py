"""The HTTP API: ``GET /`` and ``POST /prediction``, the FastAPI original's two endpoints. TF Serving's
REST routes are in ``tfserving``, the Open Inference Protocol's in ``v2``."""

from __future__ import annotations

from functools import partial

from flasgger import swag_from
from flask import Blueprint, current_app, g, jsonify, request, url_for
from werkzeug.exceptions import BadRequest, RequestEntityTooLarge, UnsupportedMediaType

from . import apispec, web
from .metrics import metrics
from .model import Classifier, classify_each, model_slot
from .preprocessing import Digit, ImageError, prepare_upload
from .security import token_required

bp = Blueprint("api", __name__)

UPLOAD_FIELDS = ("image", "file")


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
    ``request.args`` is work every request would pay for nothing (docs/performance.md)."""
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


@bp.after_app_request
def name_the_model(response):
    """Every answer a version produced says which one, TF Serving's and V2's included: ``X-Model: mnist:3``."""
    if "model" in g and response.status_code < 400:
        response.headers["X-Model"] = g.model.label
    return response
