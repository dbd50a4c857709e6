"""How the workers read requests (``mnist_flask.server``), over raw sockets.

A request reaches the app only once it has fully arrived, however it is sent: in pieces, chunked,
after ``Expect: 100-continue``, or pipelined behind another; one that never arrives gets a 408.
(The attacks on this reading, and the buffer's limits, are in test_attacks.py.)
"""

from __future__ import annotations

import json
import time

import requests
from helpers import connect, encode, multipart, post_upload, read_response, upload, upload_head

from bench.harness import gunicorn

# The event loop's timers count whole milliseconds from the time it last read its clock, so a
# timeout may end a little before the test's own clock says it is due.
TIMER_SLACK = 0.02


def test_a_request_sent_in_pieces_is_answered(server, mnist_test):
    head, body = upload(encode(mnist_test[0][3]))
    request = head + body
    with connect(server) as connection:
        for start in range(0, len(request), 97):  # the head too is cut mid-line
            connection.sendall(request[start : start + 97])
            time.sleep(0.01)
        status, _, answer = read_response(connection.makefile("rb"))
    assert status == 200 and json.loads(answer)["prediction"] == mnist_test[1][3]


def test_pipelined_requests_are_answered_in_order(server, mnist_test):
    first, second = (b"".join(upload(encode(mnist_test[0][index]))) for index in (1, 2))
    with connect(server) as connection:
        connection.sendall(first + second)
        stream = connection.makefile("rb")
        answers = [read_response(stream) for _ in range(2)]
    assert [status for status, _, _ in answers] == [200, 200]
    assert [json.loads(answer)["prediction"] for _, _, answer in answers] == list(mnist_test[1][1:3])


def test_a_pipelined_request_that_arrives_late_is_answered(server, mnist_test):
    first, second = (b"".join(upload(encode(mnist_test[0][index]))) for index in (6, 7))
    with connect(server) as connection:
        connection.sendall(first + second[:150])
        stream = connection.makefile("rb")
        answers = [read_response(stream)]
        time.sleep(0.3)
        connection.sendall(second[150:])
        answers.append(read_response(stream))
    assert [status for status, _, _ in answers] == [200, 200]
    assert [json.loads(answer)["prediction"] for _, _, answer in answers] == list(mnist_test[1][6:8])


def test_stalled_pipelined_requests_hold_nothing(server, mnist_test):
    image = encode(mnist_test[0][9])
    request = b"".join(upload(image))
    stalled = [connect(server) for _ in range(8)]  # twice the threads of the two workers
    try:
        for connection in stalled:
            connection.sendall(request + request[:150])
            assert read_response(connection.makefile("rb"))[0] == 200
        for _ in range(5):
            response = post_upload(server.url, image, timeout=2)
            assert response.status_code == 200 and response.json()["prediction"] == mnist_test[1][9]
    finally:
        for connection in stalled:
            connection.close()


def test_expect_100_continue_is_answered_before_the_body_is_sent(server, mnist_test):
    head, body = upload(encode(mnist_test[0][4]), "Expect: 100-continue")
    with connect(server) as connection:
        connection.sendall(head)
        connection.settimeout(3)
        assert connection.recv(1024).startswith(b"HTTP/1.1 100 Continue\r\n\r\n")
        connection.sendall(body)
        status, _, answer = read_response(connection.makefile("rb"))
    assert status == 200 and json.loads(answer)["prediction"] == mnist_test[1][4]


def test_a_chunked_upload_is_answered(server, mnist_test):
    content_type, body = multipart(encode(mnist_test[0][5]))
    pieces = (body[start : start + 300] for start in range(0, len(body), 300))  # a generator: sent chunked
    response = requests.post(server.url + "/prediction", data=pieces, headers={"Content-Type": content_type}, timeout=10)
    assert response.request.headers["Transfer-Encoding"] == "chunked"
    assert response.status_code == 200 and response.json()["prediction"] == mnist_test[1][5]


def test_chunk_extensions_and_trailers_sent_in_pieces(server, mnist_test):
    content_type, body = multipart(encode(mnist_test[0][10]))
    chunks = b"".join(b"%x;piece=%d\r\n%s\r\n" % (len(body[i : i + 500]), i, body[i : i + 500]) for i in range(0, len(body), 500))
    request = upload_head(content_type, "Transfer-Encoding: chunked") + chunks + b"0\r\nX-Checksum: none\r\n\r\n"
    with connect(server) as connection:
        for start in range(0, len(request), 211):
            connection.sendall(request[start : start + 211])
            time.sleep(0.005)
        status, _, answer = read_response(connection.makefile("rb"))
    assert status == 200 and json.loads(answer)["prediction"] == mnist_test[1][10]


def test_a_head_that_never_ends_is_refused(server):
    with connect(server) as connection:
        connection.sendall(b"GET / HTTP/1.1\r\nHost: localhost\r\n" + b"X-Filler: " + b"a" * 100_000)
        status, _, answer = read_response(connection.makefile("rb"))
    assert status == 431 and "request head is over" in json.loads(answer)["error"]


def test_a_connection_that_sends_nothing_is_closed_after_the_keepalive_time(server, mnist_test):
    started = time.monotonic()
    with connect(server) as silent, connect(server) as late:
        time.sleep(1)  # within Gunicorn's keepalive (2 s): still open
        late.sendall(b"".join(upload(encode(mnist_test[0][11]))))
        status, _, answer = read_response(late.makefile("rb"))
        assert silent.recv(1) == b""  # closed without an answer
        waited = time.monotonic() - started
    assert status == 200 and json.loads(answer)["prediction"] == mnist_test[1][11]
    assert 2 - TIMER_SLACK <= waited < 5


def test_a_request_that_does_not_arrive_in_time_gets_408(tmp_path, mnist_test):
    head, body = upload(encode(mnist_test[0][6]))
    with gunicorn(tmp_path / "gunicorn.log", env={"GUNICORN_REQUEST_TIMEOUT": "2"}) as server:
        with connect(server) as stalled:
            stalled.sendall(head + body[:100])
            started = time.monotonic()
            status, headers, answer = read_response(stalled.makefile("rb"))
            waited = time.monotonic() - started
            assert stalled.recv(1) == b""  # and the connection is closed
        fine = post_upload(server.url, encode(mnist_test[0][6]))
    assert status == 408 and headers["content-type"] == "application/json"
    assert "did not arrive within 2 s" in json.loads(answer)["error"]
    assert 1 <= waited < 5
    assert fine.status_code == 200 and fine.json()["prediction"] == mnist_test[1][6]
