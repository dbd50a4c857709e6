"""A WSGI app whose /spin keeps its thread busy in Python for a minute, and whose other paths answer
at once: for checking that work stuck in a request is seen and ended (tests/test_attacks.py)."""

import time


def app(environ, start_response):
    if environ["PATH_INFO"] == "/spin":
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            pass
    start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", "2")])
    return [b"ok"]
