"""The HTTP API: ``GET /`` and ``POST /prediction``, the same two endpoints as the FastAPI original."""

from __future__ import annotations

import numpy as np
from flasgger import swag_from
from flask import Blueprint, current_app, jsonify, request, url_for
from werkzeug.exceptions import BadRequest, HTTPException, UnsupportedMediaType

from . import apispec, web
from .model import get_classifier
from .preprocessing import Digit, ImageError, prepare_upload

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
def prediction():
    digit = prepare_upload(read_upload(), current_app.config["MAX_IMAGE_PIXELS"])
    answer = classify(digit)
    browser = web.wants_html()
    if browser or request.args.get("model_input") in ("1", "true"):
        answer["model_input"] = web.model_input_data_url(digit)
    return web.result_page(answer) if browser else jsonify(answer)


def read_upload() -> bytes:
    """The image bytes from a multipart field (``image`` or ``file``) or a raw ``image/*`` body."""
    if request.mimetype == "multipart/form-data":
        for field in UPLOAD_FIELDS:
            upload = request.files.get(field)
            if upload is not None:
                return upload.read()
        raise BadRequest("no file: send the image in the multipart field 'image' (or 'file')")
    if request.mimetype.startswith("image/"):
        return request.get_data()
    raise UnsupportedMediaType(
        f"Content-Type {request.mimetype or '(none)'!r} is not accepted: send multipart/form-data with "
        "the image in field 'image', or the raw image bytes with Content-Type image/*"
    )


def classify(digit: Digit) -> dict:
    classifier = get_classifier()
    probabilities = classifier.predict(digit.pixels[None])[0]
    best = int(np.argmax(probabilities))
    return {
        "prediction": best,
        "confidence": round(float(probabilities[best]), 6),
        "probabilities": [round(float(p), 6) for p in probabilities],
        "digit_found": digit.found,
        "model": classifier.label,
    }


@bp.app_errorhandler(ImageError)
def image_error(error: ImageError):
    return error_response(error.status, str(error))


@bp.app_errorhandler(HTTPException)
def http_error(error: HTTPException):
    """Every HTTP error as ``{"error": ...}``, or as the page's own message for a browser form."""
    headers = [(key, value) for key, value in error.get_headers() if key != "Content-Type"]
    return error_response(error.code or 500, error.description or error.name, headers)


def error_response(status: int, message: str, headers=()):
    if web.wants_html():
        return web.error_page(status, message), status, headers
    return jsonify(error=message), status, headers
