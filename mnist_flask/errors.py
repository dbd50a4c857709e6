"""Every error as ``{"error": "..."}`` for API clients, or as a page for a browser's form post.

A blueprint of its own, as microblog keeps its ``errors`` package: the handlers are app-wide
(``app_errorhandler``), whichever blueprint raised the error.
"""

from __future__ import annotations

from flask import Blueprint, jsonify
from werkzeug.exceptions import HTTPException

from . import web
from .metrics import metrics
from .preprocessing import ImageError

bp = Blueprint("errors", __name__)


@bp.app_errorhandler(ImageError)
def image_error(error: ImageError):
    """Counted where the picture was decoded: a batch answers bad pictures without raising."""
    return error_response(error.status, str(error))


@bp.app_errorhandler(HTTPException)
def http_error(error: HTTPException):
    metrics().errors.labels(error.name.lower().replace(" ", "_")).inc()
    headers = [(key, value) for key, value in error.get_headers() if key != "Content-Type"]
    return error_response(error.code or 500, error.description or error.name, headers)


def error_response(status: int, message: str, headers=()):
    if web.wants_html():
        return web.error_page(status, message), status, headers
    return jsonify(error=message), status, headers
