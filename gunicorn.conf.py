"""Gunicorn settings for mnist_flask and the worker class they name; each can be overridden on the command line."""

import json
import math
import os
import re
import selectors
import shutil
import tempfile
import time
from functools import partial

from gunicorn.glogging import Logger
from gunicorn.workers.gthread import ThreadWorker, TConn

# All interfaces so the server is reachable on a VM; PORT is the convention of PaaS hosts.
bind = f"0.0.0.0:{os.environ.get('PORT', '8000')}"
# One worker per core: a request is CPU-bound, so more workers than cores only queue (bench/).
workers = int(os.environ.get("WEB_CONCURRENCY", os.cpu_count() or 2))
# Gunicorn's threaded worker, with requests read whole by its event loop: `worker_class` at the end.
# Threads per worker: they only compute, so more than two only share one GIL (docs/performance.md).
threads = int(os.environ.get("GUNICORN_THREADS", "2"))
# Seconds a client gets to send a whole request (head and body) before it is answered 408.
request_arrival_timeout = float(os.environ.get("GUNICORN_REQUEST_TIMEOUT", "30"))
# Each worker imports the app after the fork and loads its own model: TensorFlow is not fork-safe.
preload_app = False
# A request takes milliseconds; a worker silent this long is stuck (or fed by a slow client) and is replaced.
timeout = 30
# On SIGTERM or HUP, in-flight requests get this long to finish before workers are killed.
graceful_timeout = 30
# Queue of connections waiting for a free worker: bursts wait instead of being refused.
backlog = 2048
# `make reload` sends HUP to the master found here, to roll out a new model version.
pidfile = os.environ.get("GUNICORN_PIDFILE")
# One JSON line per request on stdout (JsonAccessLogger below), errors and app logs on stderr.
accesslog = "-"
errorlog = "-"

# prometheus_client's multiprocess mode: every worker writes its samples to this directory and any
# worker's /metrics sums them. It must exist before the workers import prometheus_client.
metrics_dir = os.environ.get("PROMETHEUS_MULTIPROC_DIR") or tempfile.mkdtemp(prefix="mnist-flask-metrics-")
os.environ["PROMETHEUS_MULTIPROC_DIR"] = metrics_dir


def on_starting(server):
    """Samples left by an earlier run would be counted again: start from an empty directory."""
    shutil.rmtree(metrics_dir, ignore_errors=True)
    os.makedirs(metrics_dir, exist_ok=True)


def child_exit(server, worker):
    """A dead worker's live gauges must stop counting (its counters stay in the totals)."""
    from prometheus_client import multiprocess

    multiprocess.mark_process_dead(worker.pid)


class JsonAccessLogger(Logger):
    """Access log lines as JSON objects, so a log pipeline needs no parsing rules."""

    def access(self, resp, req, environ, request_time):
        if not self.cfg.accesslog:
            return
        self.access_log.info(
            json.dumps(
                {
                    "remote": environ.get("REMOTE_ADDR"),
                    "method": environ.get("REQUEST_METHOD"),
                    "path": environ.get("PATH_INFO"),
                    "status": resp.status_code,
                    "bytes": getattr(resp, "sent", None),
                    "duration_ms": round(request_time.total_seconds() * 1000, 3),
                    "request_id": dict(resp.headers).get("X-Request-ID"),
                    "pid": os.getpid(),
                }
            )
        )


logger_class = JsonAccessLogger


# A request head longer than this is answered 431 (nginx allows 32 KiB). A body longer than this goes
# to a thread as it comes, for the app to refuse: its MAX_CONTENT_LENGTH is 4 MiB.
BUFFERED_HEAD_LIMIT = 64 * 1024
BUFFERED_BODY_LIMIT = 8 * 1024 * 1024
# What one worker buffers at most over all its connections: a request that would take it past this
# is answered 503, so many large unfinished uploads cannot exhaust the memory.
BUFFERED_TOTAL_LIMIT = 64 * 1024 * 1024
CONTENT_LENGTH = re.compile(rb"\r\ncontent-length:[ \t]*(\d+)[ \t]*\r\n")
EXPECTS_CONTINUE = re.compile(rb"\r\nexpect:[ \t]*100-continue[ \t]*\r\n")


def error_response(status: str, error: str) -> bytes:
    """A JSON error like the app's, for the requests the app never sees."""
    body = json.dumps({"error": error}).encode()
    head = f"HTTP/1.1 {status}\r\nContent-Type: application/json\r\nContent-Length: {len(body)}\r\nConnection: close\r\n\r\n"
    return head.encode() + body


TOO_SLOW = error_response("408 Request Timeout", f"the request did not arrive within {request_arrival_timeout:g} s")
HEAD_TOO_LARGE = error_response("431 Request Header Fields Too Large", f"the request head is over {BUFFERED_HEAD_LIMIT} bytes")
TOO_BUSY = error_response("503 Service Unavailable", "too many uploads are arriving at once; retry in a moment")


def request_has_arrived(received: bytearray) -> bool:
    """Whether ``received`` holds a whole HTTP/1 request, or enough of one for the parser to refuse it.

    Only the framing is read here (where the head ends, Content-Length or the chunk sizes); anything
    malformed counts as arrived, so that Gunicorn's own parser answers it with its 400.
    """
    head_end = received.find(b"\r\n\r\n")
    if head_end < 0:
        return False
    head = bytes(received[: head_end + 2]).lower()
    if b"\ntransfer-encoding:" in head:
        return chunked_body_has_arrived(received, head_end + 4) or len(received) > BUFFERED_BODY_LIMIT
    declared = CONTENT_LENGTH.search(head)
    length = int(declared[1]) if declared else 0
    return length > BUFFERED_BODY_LIMIT or len(received) >= head_end + 4 + length


def head_is_too_large(received: bytearray) -> bool:
    return len(received) > BUFFERED_HEAD_LIMIT and received.find(b"\r\n\r\n", 0, BUFFERED_HEAD_LIMIT + 4) < 0


def expects_continue(head: bytes) -> bool:
    """An HTTP/1.1 head (lower-cased) with ``Expect: 100-continue``; HTTP/1.0 ignores the header."""
    return head.split(b"\r\n", 1)[0].endswith(b" http/1.1") and EXPECTS_CONTINUE.search(head) is not None


def chunked_body_has_arrived(received: bytearray, position: int) -> bool:
    while (line_end := received.find(b"\r\n", position)) >= 0:
        try:
            size = int(bytes(received[position:line_end]).split(b";")[0], 16)
        except ValueError:
            return True
        if size == 0:
            return received.find(b"\r\n\r\n", line_end) >= 0  # the trailers' end
        position = line_end + 2 + size + 2
    return False


class BufferingThreadWorker(ThreadWorker):
    """Gunicorn's gthread worker, except that a thread gets a request only once all of it has arrived.

    Stock gthread hands a connection to a thread as soon as it is readable, and the thread then waits
    for the rest of the request: a client that sends slowly holds a thread for as long as it likes,
    so slow clients can only be outlasted with many threads, and many threads sharing one GIL make
    the latency tail several times longer (docs/performance.md). Here the worker's event loop reads
    each request into a buffer (what nginx in front would do), so a slow client costs a socket and
    a buffer, never a thread. A connection that sends nothing for `keepalive` seconds (at least 2) is
    closed, as between requests, and a request that does not arrive within `request_arrival_timeout`
    of its first byte is answered 408. TLS and HTTP/2 connections are served the stock way.
    """

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        # connection -> deadline, each in deadline order: for a first byte, and for the whole request
        self.silent: dict[TConn, float] = {}
        self.arriving: dict[TConn, float] = {}
        self.buffered = 0  # bytes held over all connections
        self.buffering = not self.cfg.is_ssl and "h2" not in self.cfg.http_protocols
        self.first_byte_timeout = max(self.cfg.keepalive, 2)  # keepalive 0 turns keep-alive off

    def enqueue_req(self, conn):
        """Where stock gthread hands a connection to a thread (just accepted, kept alive and readable
        again, or holding bytes read ahead with the last request), start reading its request instead."""
        if not self.buffering:
            return super().enqueue_req(conn)
        conn.sock.setblocking(False)
        self.poller.register(conn.sock, selectors.EVENT_READ, partial(self.receive, conn))
        conn.received = bytearray()
        conn.continued = False
        self.silent[conn] = time.monotonic() + self.first_byte_timeout
        read_ahead = conn.parser.unreader.take_buffered() if conn.parser else b""
        if read_ahead:
            self.take(conn, read_ahead)
        else:  # a kept-alive connection is readable already: read now, not a loop turn later
            self.receive(conn, conn.sock)

    def receive(self, conn: TConn, client) -> None:
        try:
            data = conn.sock.recv(256 * 1024)
        except (BlockingIOError, InterruptedError):
            return
        except OSError:
            data = b""
        if not data:
            self.drop(conn)
            return
        self.take(conn, data)

    def take(self, conn: TConn, data: bytes) -> None:
        if self.silent.pop(conn, None) is not None:
            self.arriving[conn] = time.monotonic() + request_arrival_timeout
        if self.buffered + len(data) > BUFFERED_TOTAL_LIMIT:
            self.drop(conn, TOO_BUSY)
            return
        conn.received += data
        self.buffered += len(data)
        if head_is_too_large(conn.received):
            self.drop(conn, HEAD_TOO_LARGE)
        elif request_has_arrived(conn.received):
            self.hand_to_thread(conn)
        elif not conn.continued and (head_end := conn.received.find(b"\r\n\r\n")) >= 0:
            conn.continued = True
            if expects_continue(bytes(conn.received[: head_end + 2]).lower()):
                self.send_continue(conn)

    def send_continue(self, conn: TConn) -> None:
        """A client that asks to be told to go on (``Expect: 100-continue``, curl's habit for uploads
        over 1 MB) would otherwise wait a second before sending its body. Gunicorn says it again when
        the thread reads the request; clients take any number of 100 responses (RFC 9110, 15.2)."""
        try:
            conn.sock.send(b"HTTP/1.1 100 Continue\r\n\r\n")
        except OSError:
            pass

    def stop_waiting(self, conn: TConn) -> None:
        self.poller.unregister(conn.sock)
        self.buffered -= len(conn.received)
        if self.silent.pop(conn, None) is None:
            del self.arriving[conn]

    def hand_to_thread(self, conn: TConn) -> None:
        self.stop_waiting(conn)
        received, conn.received = bytes(conn.received), None
        conn.init()  # the parser, the first time; the thread reads from its buffer before the socket
        conn.sock.setblocking(True)
        conn.parser.unreader.unread(received)
        super().enqueue_req(conn)

    def drop(self, conn: TConn, answer: bytes = b"") -> None:
        self.stop_waiting(conn)
        if answer:
            try:
                conn.sock.send(answer)
            except OSError:
                pass
        self.nr_conns -= 1
        conn.close()

    def murder_pending(self):
        """Also close silent connections and answer 408 to requests that have not arrived in time
        (called once a loop turn); a stopping worker closes silent connections at once."""
        super().murder_pending()
        now = time.monotonic()
        self.expire(self.silent, b"", now if self.alive else math.inf)
        self.expire(self.arriving, TOO_SLOW, now)

    def expire(self, waiting: dict[TConn, float], answer: bytes, now: float) -> None:
        while waiting:
            conn, deadline = next(iter(waiting.items()))
            if deadline > now:
                return
            self.drop(conn, answer)


worker_class = BufferingThreadWorker
