"""mnist_flask.server's pieces on their own: the WSGI bridge's environ, body limits and shedding, and
the JSON access logger on Gunicorn's own error answers. (Over real sockets: test_attacks.py.)"""

from __future__ import annotations

import asyncio
import datetime
import json
import logging
from types import SimpleNamespace

from gunicorn.config import Config
from gunicorn.http.wsgi import Response

from mnist_flask.server import JsonAccessLogger, Limits, WsgiBridge


def echo_app(environ, start_response):
    """Answers with what it was given: the environ's strings and the body it read."""
    seen = {key: value for key, value in environ.items() if isinstance(value, str)}
    seen["body"] = environ["wsgi.input"].read().decode("latin-1")
    start_response("200 OK", [("Content-Type", "application/json"), ("X-Request-ID", "abc")])
    return [json.dumps(seen).encode()]


def call(bridge: WsgiBridge, headers: list, pieces: list[bytes], method: str = "POST", path: str = "/p"):
    """Run one request through the bridge; returns (status, headers, body, access-log lines)."""
    scope = {"type": "http", "method": method, "path": path, "query_string": b"a=1", "http_version": "1.1",
             "headers": headers, "client": ("10.0.0.1", 5), "server": ("localhost", 80), "scheme": "http"}  # fmt: skip
    messages = [{"type": "http.request", "body": piece, "more_body": i < len(pieces) - 1} for i, piece in enumerate(pieces)]
    sent = []

    async def receive():
        return messages.pop(0) if messages else {"type": "http.disconnect"}

    async def send(message):
        sent.append(message)

    asyncio.run(bridge(scope, receive, send))
    start = sent[0]
    return start["status"], dict(start["headers"]), b"".join(m.get("body", b"") for m in sent[1:])


def bridge(**limits) -> tuple[WsgiBridge, list[str]]:
    lines: list[str] = []
    return WsgiBridge(echo_app, Limits(**limits), lines.append), lines


def test_the_environ_is_what_a_wsgi_server_gives():
    app, lines = bridge()
    headers = [(b"content-type", b"image/png"), (b"content-length", b"5"), (b"x-a", b"1"), (b"x-a", b"2")]
    status, answer_headers, body = call(app, headers, [b"he", b"llo"], path="/caf\u00e9")
    seen = json.loads(body)
    assert status == 200 and seen["body"] == "hello"
    assert seen["CONTENT_LENGTH"] == "5" and seen["CONTENT_TYPE"] == "image/png" and seen["HTTP_X_A"] == "1,2"
    assert seen["PATH_INFO"] == "/caf\u00e9".encode().decode("latin-1") and seen["QUERY_STRING"] == "a=1"
    assert seen["REMOTE_ADDR"] == "10.0.0.1" and b"connection" not in answer_headers
    logged = json.loads(lines[0])
    assert logged["status"] == 200 and logged["request_id"] == "abc" and logged["path"] == "/caf\u00e9"


def test_a_chunked_body_gets_its_length_and_leading_zeros_are_read():
    app, _ = bridge()
    _, _, body = call(app, [(b"transfer-encoding", b"chunked")], [b"abc", b"def", b""])
    assert json.loads(body)["CONTENT_LENGTH"] == "6" and json.loads(body)["body"] == "abcdef"
    _, _, body = call(app, [(b"content-length", b"0" * 5000 + b"3")], [b"abc"])
    assert json.loads(body)["body"] == "abc"


def test_a_body_over_the_limit_is_not_read_and_the_connection_ends():
    app, _ = bridge(body_bytes=10)
    for headers, pieces in (([(b"content-length", b"11")], [b"x" * 11]), ([(b"transfer-encoding", b"chunked")], [b"x" * 6] * 3)):
        _, answer_headers, body = call(app, headers, pieces)
        seen = json.loads(body)
        assert int(seen["CONTENT_LENGTH"]) > 10 and seen["body"] == ""  # the app refuses it from its length
        assert answer_headers[b"connection"] == b"close"
    assert app.buffered == 0


def test_when_the_buffer_is_full_large_bodies_are_shed_and_small_ones_admitted():
    app, lines = bridge(total_bytes=1000, small_body=100, small_reserve=500)
    app.buffered = 450  # held by unfinished uploads on other connections
    status, headers, body = call(app, [(b"content-length", b"200")], [b"x" * 200])
    assert status == 503 and headers[b"retry-after"] == b"1" and "retry" in json.loads(body)["error"]
    status, _, _ = call(app, [(b"content-length", b"50")], [b"x" * 50])
    assert status == 200
    status, _, _ = call(app, [], [b""], method="GET")
    assert status == 200
    assert app.buffered == 450 and json.loads(lines[0])["status"] == 503


def test_gunicorns_own_error_answers_are_logged_as_json(capsys):
    """Gunicorn's error path hands the logger a response with a status line and no status_code."""
    config = Config()
    config.set("accesslog", "-")
    logger = JsonAccessLogger(config)
    response = Response(SimpleNamespace(version=(1, 1), method="GET", path="/x", headers=[]), None, config)
    response.status = "400 Bad Request"
    response.response_length = 11
    request = SimpleNamespace(peer_addr=("10.0.0.2", 7), method="GET", path="/x")
    logger.access(response, request, {}, datetime.timedelta(milliseconds=2))
    for handler in logging.getLogger("gunicorn.access").handlers:
        handler.flush()
    line = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert line["status"] == 400 and line["remote"] == "10.0.0.2" and line["path"] == "/x" and line["bytes"] == 11
