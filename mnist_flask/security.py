"""Optional bearer-token auth for the prediction endpoints, and the headers scanners look for."""

from __future__ import annotations

import hmac

from flask import Flask, current_app, request
from werkzeug.datastructures import WWWAuthenticate
from werkzeug.exceptions import Unauthorized

PROTECTED_ENDPOINTS = {"api.prediction", "api.tfserving_predict", "v2.infer", "v2.infer_version"}

# Our own pages need nothing from elsewhere; Swagger UI's page runs inline scripts, so it is left out.
PAGE_POLICY = "default-src 'self'; img-src 'self' data: blob:; object-src 'none'; frame-ancestors 'none'"


def init_app(app: Flask) -> None:
    app.before_request(require_token)
    app.after_request(add_security_headers)


def require_token() -> None:
    """With API_TOKEN set, predictions need ``Authorization: Bearer <token>``; without it, no auth."""
    token = current_app.config["API_TOKEN"]
    if not token or request.endpoint not in PROTECTED_ENDPOINTS:
        return
    scheme, _, given = request.headers.get("Authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not hmac.compare_digest(given.strip().encode(), str(token).encode()):
        raise Unauthorized(
            "send the API token as 'Authorization: Bearer <token>'",
            www_authenticate=WWWAuthenticate("bearer", {"realm": "mnist_flask"}),
        )


def add_security_headers(response):
    response.headers.setdefault("X-Content-Type-Options", "nosniff")
    response.headers.setdefault("Referrer-Policy", "no-referrer")
    response.headers.setdefault("Cross-Origin-Resource-Policy", "same-origin")
    if response.mimetype == "text/html" and request.blueprint != "flasgger":
        response.headers.setdefault("Content-Security-Policy", PAGE_POLICY)
        response.headers.setdefault("X-Frame-Options", "DENY")
    return response
