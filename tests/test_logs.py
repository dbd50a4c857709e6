"""Request ids and the app's log lines (mnist_flask/logs.py)."""

from __future__ import annotations

import requests


def test_request_id_is_echoed_or_made(client):
    assert client.get("/healthz", headers={"X-Request-ID": "abc-123"}).headers["X-Request-ID"] == "abc-123"
    made = client.get("/healthz").headers["X-Request-ID"]
    assert len(made) == 32 and made != client.get("/healthz").headers["X-Request-ID"]
    forged = client.get("/healthz", headers={"X-Request-ID": "x\" status=200 fake"}).headers["X-Request-ID"]
    assert forged != "x\" status=200 fake" and len(forged) == 32


def test_app_logs_go_through_gunicorn_with_security_headers(server):
    response = requests.get(server.url + "/", headers={"Accept": "text/html"}, timeout=5)
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert "default-src 'self'" in response.headers["Content-Security-Policy"]
    assert response.headers["Server"] == "gunicorn"
    assert "serving mnist:" in server.access_log()  # the app's own log line, through Gunicorn's error log
