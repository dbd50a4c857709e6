"""Optional bearer-token auth for the prediction endpoints, and the headers scanners look for."""

from __future__ import annotations

import functools
import hmac

from flask import Flask, current_app, request
from werkzeug.datastructures import WWWAuthenticate
from werkzeug.exceptions import Unauthorized

# Our own pages need nothing from elsewhere; Swagger UI's page runs inline scripts, so it is left out.
PAGE_POLICY = "default-src 'self'; img-src 'self' data: blob:; object-src 'none'; frame-ancestors 'none'"


def init_app(app: Flask) -> None:
    app.after_request(add_security_headers)


def token_required(view):
    """On the views that predict: with API_TOKEN set they need ``Authorization: Bearer <token>``;
    without it, no auth. Health, metrics, status and the docs stay open."""

    @functools.wraps(view)
    def checked(*args, **kwargs):
        require_token()
        return view(*args, **kwargs)

    return checked


def require_token() -> None:
    token = current_app.config["API_TOKEN"]
    if not token:
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
