"""Request IDs and where the application's log lines go."""

from __future__ import annotations

import logging
import re
import uuid

from flask import Flask, g, request

REQUEST_ID = "X-Request-ID"
ACCEPTED_ID = re.compile(r"[A-Za-z0-9._:-]{1,128}")  # anything else could forge log lines


def init_app(app: Flask) -> None:
    use_gunicorn_error_log(app)
    app.before_request(assign_request_id)
    app.after_request(echo_request_id)


def use_gunicorn_error_log(app: Flask) -> None:
    """Under Gunicorn, application logs go where Gunicorn's error log goes, at its level."""
    gunicorn = logging.getLogger("gunicorn.error")
    if gunicorn.handlers:
        app.logger.handlers = gunicorn.handlers
        app.logger.setLevel(gunicorn.level)


def assign_request_id() -> None:
    """Keep the caller's ID (a proxy's or client's) when it is safe to log, else make one."""
    given = request.headers.get(REQUEST_ID, "")
    g.request_id = given if ACCEPTED_ID.fullmatch(given) else uuid.uuid4().hex


def echo_request_id(response):
    response.headers[REQUEST_ID] = g.get("request_id") or uuid.uuid4().hex
    return response
