"""The Gunicorn worker that serves the Flask app: uvicorn's event loop reads each request whole, then the app runs.

Gunicorn's master manages the pool (forks, HUP rollouts, replacing a dead or silent worker); each
worker is uvicorn's Gunicorn worker running :class:`HttpProtocol` (uvicorn's llhttp protocol, via
httptools, with the limits a server facing clients needs) and :class:`WsgiBridge`, which buffers a
request's body with a bound and then calls the Flask app in a pool of threads (or inline, in the
event loop's own thread, with one).

So the request framing is llhttp's, never this module's; a slow client costs a socket and a
buffer, never a thread; a slow reader is written to through the event loop with a bounded buffer;
and the heartbeat stops while a request has held the app too long, so work stuck in the app is
seen by the master's ``timeout`` like a stuck worker.
"""

from __future__ import annotations

import asyncio
import ctypes
import io
import json
import os
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import httptools
from gunicorn.glogging import Logger
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol
from uvicorn_worker import UvicornWorker


@dataclass(frozen=True)
class Limits:
    """What one worker holds for its clients at most, and how long it waits for them."""

    # A request head longer than this is answered 431 (nginx allows 32 KiB); so is one with more
    # header fields, or a longer one, than Gunicorn's limit_request_fields and _field_size allow,
    # and a request line over its limit_request_line gets 414 (the worker takes Gunicorn's values).
    head_bytes: int = 64 * 1024
    header_fields: int = 100
    header_field_bytes: int = 8190
    request_line_bytes: int = 4094
    # A body over this is refused with 413 before it is read (the app's MAX_CONTENT_LENGTH).
    body_bytes: int = 4 * 1024 * 1024
    # Bodies buffered at once over all the worker's connections: past it, 503 with Retry-After.
    total_bytes: int = 64 * 1024 * 1024
    # Bodies up to this size may use all of ``total_bytes``; larger ones only up to ``total_bytes -
    # small_reserve``, so unfinished large uploads never lock out small requests and health checks.
    small_body: int = 256 * 1024
    small_reserve: int = 8 * 1024 * 1024
    # Seconds a request has to arrive, head and body, from its first byte (then 408).
    arrival_seconds: float = 30.0
    # Seconds a connection may send nothing before its first request, and between requests.
    idle_seconds: float = 2.0
    # Seconds a client may leave an answer unread (the write buffer full) before it is cut off.
    write_seconds: float = 30.0
    # Connections per worker; one more is answered 503 and closed.
    connections: int = 1000
    # Requests one connection may have waiting behind the one being answered (HTTP/1.1 pipelining).
    # uvicorn queues every request it parses from a read, so a client that pipelines thousands and
    # never reads the answers would otherwise cost a request object each, and the loop's time:
    # the next one is answered 429 and the connection closed.
    pipelined: int = 16


def json_error(status: int, reason: str, message: str, *headers: str) -> bytes:
    """A whole HTTP/1.1 error answer, JSON like the app's own, closing the connection."""
    body = json.dumps({"error": message}).encode()
    head = [f"HTTP/1.1 {status} {reason}", "Content-Type: application/json", f"Content-Length: {len(body)}", *headers, "Connection: close"]
    return ("\r\n".join(head) + "\r\n\r\n").encode() + body


def access_record(remote, method, path, status, sent, seconds, request_id) -> str:
    """One access-log line: a JSON object, so a log pipeline needs no parsing rules."""
    return json.dumps(
        {"remote": remote, "method": method, "path": path, "status": status, "bytes": sent,
         "duration_ms": round(seconds * 1000, 3), "request_id": request_id, "pid": os.getpid()}  # fmt: skip
    )


class JsonAccessLogger(Logger):
    """Gunicorn's logger with JSON access lines, for the workers that log through it (``-k gthread``
    and ``sync``), including Gunicorn's own error answers (a 400 for a malformed request), whose
    response object has a status line but no ``status_code``."""

    def access(self, resp, req, environ, request_time):
        if not self.cfg.accesslog:
            return
        status = getattr(resp, "status_code", None) or int(str(resp.status).split(None, 1)[0])
        request_id = next((value for name, value in getattr(resp, "headers", ()) if name.lower() == "x-request-id"), None)
        remote = environ.get("REMOTE_ADDR") or (req.peer_addr[0] if isinstance(getattr(req, "peer_addr", None), tuple) else None)
        method, path = environ.get("REQUEST_METHOD", getattr(req, "method", None)), environ.get("PATH_INFO", getattr(req, "path", None))
        sent = getattr(resp, "sent", None) or getattr(resp, "response_length", None)
        self.access_log.info(access_record(remote, method, path, status, sent, request_time.total_seconds(), request_id))


class Refused(Exception):
    """Raised from a parser callback: the request is answered with this error and the connection closed."""

    def __init__(self, status: int, reason: str, message: str) -> None:
        super().__init__(message)
        self.answer = (status, reason, message)


# A chunked body may be cut into this many chunks, and beyond that into chunks of this average size
# at least: each chunk costs a parser callback, so a body of one-byte chunks costs a hundred times
# the CPU of the same bytes in large ones.
FREE_CHUNKS = 1024
MIN_AVERAGE_CHUNK = 16


class ClientGone(Exception):
    """The connection closed while an answer was being written."""


def deliverer(send):
    """``send``, except that writing to a connection the client (or a limit) has just closed ends
    the answer quietly instead of raising from the transport before uvicorn notices the close."""

    async def deliver(message) -> None:
        try:
            await send(message)
        except RuntimeError as error:
            if "closed" not in str(error):
                raise
            raise ClientGone from error

    return deliver


class HttpProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol (llhttp does all the framing) with the limits a server that
    faces clients directly needs, each answered with a JSON error like the app's:

    - a malformed request (bad framing, duplicate or conflicting Content-Length and
      Transfer-Encoding, bad chunk sizes, an oversized length) gets 400;
    - a head over ``Limits.head_bytes`` gets 431;
    - a request that has not fully arrived ``arrival_seconds`` after its first byte gets 408;
    - a connection that sends nothing for ``idle_seconds`` is closed, before its first request as
      between requests;
    - a client that leaves an answer unread for ``write_seconds`` is cut off (until then it holds
      its connection's bounded write buffer, nothing else);
    - on a graceful stop (SIGTERM, HUP), an idle kept-alive connection is not closed under a client
      that may be sending on it: its next answer says ``Connection: close``, or the idle timer ends it.
    """

    def connection_made(self, transport) -> None:
        super().connection_made(transport)
        self.limits: Limits = self.config.limits
        self.in_message = False
        self.head_bytes: int | None = None  # bytes of the head being read; None between heads
        self.chunk_size = 0
        self.began_with_chunk = False
        self.arrival = None
        self.stalled_write = None
        self.closing = False
        if len(self.connections) > self.limits.connections:
            transport.write(json_error(503, "Service Unavailable", "too many connections; retry in a moment", "Retry-After: 1"))
            transport.close()
            return
        self.timeout_keep_alive_task = self.loop.call_later(self.limits.idle_seconds, self.timeout_keep_alive_handler)

    def connection_lost(self, exc) -> None:
        for timer in (self.arrival, self.stalled_write):
            if timer is not None:
                timer.cancel()
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        self._unset_keepalive_if_required()
        self.chunk_size = len(data)
        self.began_with_chunk = not self.in_message
        if self.head_bytes is not None:
            self.head_bytes += len(data)
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserUpgrade:
            self.refuse(400, "Bad Request", "protocol upgrades are not supported")
        except httptools.HttpParserCallbackError as error:
            if isinstance(error.__context__, httptools.HttpParserInvalidURLError):  # uvicorn parses the target
                self.refuse(400, "Bad Request", f"malformed request target: {error.__context__}")
                return
            if not isinstance(error.__context__, Refused):
                raise
            self.refuse(*error.__context__.answer)
        except httptools.HttpParserError as error:
            self.refuse(400, "Bad Request", f"malformed HTTP request: {error}")
        else:
            if self.head_bytes is not None and self.head_bytes > self.limits.head_bytes:
                self.refuse_head()

    def refuse_head(self) -> None:
        self.refuse(*self.head_too_large().answer)

    def head_too_large(self) -> Refused:
        return Refused(431, "Request Header Fields Too Large", f"the request head is over {self.limits.head_bytes} bytes")

    def refuse(self, status: int, reason: str, message: str) -> None:
        """Answer a request the app never sees, and log it like the app's answers."""
        if self.transport.is_closing():
            return
        answer = json_error(status, reason, message)
        if self.cycle is None or not self.cycle.response_started or self.cycle.response_complete:  # never inside another answer
            self.transport.write(answer)
        self.pipeline.clear()  # what was queued behind it is never answered
        self.transport.close()
        method = self.scope.get("method") if self.in_message and self.scope else None
        path = self.scope.get("path") if self.in_message and self.scope else None
        self.config.access_log_line(access_record(self.client[0] if self.client else None, method, path, status, len(answer), 0.0, None))

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self.in_message = True
        self.head_bytes = self.chunk_size if self.began_with_chunk else 0
        self.head_parsed = 0  # the same, counted from what the parser has read of the head
        self.chunks = self.body_bytes = 0
        self.began_with_chunk = False
        self.arrival = self.loop.call_later(self.limits.arrival_seconds, self.arrival_expired)

    def on_url(self, url: bytes) -> None:
        super().on_url(url)
        self.count_head(len(url))
        if len(self.url) > self.limits.request_line_bytes:
            raise Refused(414, "URI Too Long", f"the request line is over {self.limits.request_line_bytes} bytes")

    def on_header(self, name: bytes, value: bytes) -> None:
        super().on_header(name, value)
        self.count_head(len(name) + len(value) + 4)
        if len(self.headers) > self.limits.header_fields or len(name) + len(value) + 2 > self.limits.header_field_bytes:
            raise Refused(431, "Request Header Fields Too Large", f"the request has over {self.limits.header_fields} "
                          f"header fields, or one over {self.limits.header_field_bytes} bytes")  # fmt: skip

    def count_head(self, size: int) -> None:
        self.head_parsed += size
        if self.head_parsed > self.limits.head_bytes:
            raise self.head_too_large()

    def on_headers_complete(self) -> None:
        self.head_bytes = None
        super().on_headers_complete()
        if self.closing:
            self.cycle.keep_alive = False
        if len(self.pipeline) > self.limits.pipelined:
            raise Refused(429, "Too Many Requests", f"more than {self.limits.pipelined} requests pipelined on one "
                          "connection while an answer is unread; send them as the answers come")  # fmt: skip

    def on_body(self, body: bytes) -> None:
        self.body_bytes += len(body)
        super().on_body(body)

    def on_chunk_header(self) -> None:
        self.chunks += 1
        if self.chunks > FREE_CHUNKS and self.chunks * MIN_AVERAGE_CHUNK > self.body_bytes:
            raise Refused(400, "Bad Request", f"the chunked body is cut into too many small chunks ({self.chunks} "
                          f"for {self.body_bytes} bytes; send chunks of {MIN_AVERAGE_CHUNK} bytes or more)")  # fmt: skip

    def on_message_complete(self) -> None:
        super().on_message_complete()
        self.in_message = False
        if self.arrival is not None:
            self.arrival.cancel()
            self.arrival = None

    def arrival_expired(self) -> None:
        self.arrival = None
        if self.cycle is not None and self.cycle.response_started and not self.cycle.response_complete:
            self.transport.close()  # an answer is being written: no room for another
        else:
            seconds = f"{self.limits.arrival_seconds:g}"
            self.refuse(408, "Request Timeout", f"the request did not arrive within {seconds} s")

    def pause_writing(self) -> None:
        super().pause_writing()
        if self.stalled_write is None:
            self.stalled_write = self.loop.call_later(self.limits.write_seconds, self.transport.abort)

    def resume_writing(self) -> None:
        super().resume_writing()
        if self.stalled_write is not None:
            self.stalled_write.cancel()
            self.stalled_write = None

    def shutdown(self) -> None:
        self.closing = True
        if self.cycle is not None and not self.cycle.response_complete:
            self.cycle.keep_alive = False
        elif not self.in_message and self.timeout_keep_alive_task is None:
            self.transport.close()


class WsgiBridge:
    """An ASGI app that reads a request's body into memory (within ``Limits``), calls a WSGI app
    with it, and sends the app's answer through the event loop.

    Small requests run inline, in the loop's own thread: on short CPU-bound work a hand-off to a
    thread only adds a switch. Larger ones run in a pool of Gunicorn's ``threads`` threads (with
    one, inline too), so that while one request decodes a large photo (libjpeg-turbo, OpenCV and
    LiteRT release the GIL) others go on: a shorter tail on mixed traffic (docs/performance.md).
    """

    # Requests with bodies up to this size run inline even with a pool: a 28x28 upload, a health check
    # or a tensor of a few digits costs about a millisecond, less than a hand-off to a thread and the
    # GIL's switches would add to it, and it cannot hold the loop long; any real picture is larger.
    INLINE_BYTES = 4096

    def __init__(self, app, limits: Limits, log_line, threads: int = 1) -> None:
        self.app = app
        self.limits = limits
        self.log_line = log_line
        self.buffered = 0  # body bytes held over all of this worker's connections
        self.pool = ThreadPoolExecutor(threads, thread_name_prefix="app") if threads > 1 else None
        self.running: dict[object, float] = {}  # calls in the pool, and when each began

    def room(self, size: int) -> int:
        """How full the worker's buffer may get for a body of ``size`` bytes: small ones may use all of it."""
        return self.limits.total_bytes - (0 if size <= self.limits.small_body else self.limits.small_reserve)

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] != "http":
            return
        started = time.perf_counter()
        declared, chunked = None, False
        for name, value in scope["headers"]:
            if name == b"content-length":
                # llhttp has checked it: digits only, under 2**64, one value, no Transfer-Encoding; but
                # leading zeros are allowed, and Python refuses int() on over 4,300 digits
                declared = int(value.lstrip(b"0") or b"0")
            elif name == b"transfer-encoding":
                chunked = True
        body = bytearray()
        complete = True
        try:
            if declared is not None and declared > self.limits.body_bytes:
                complete = False  # the app refuses it from its Content-Length, unread
            elif declared or chunked:
                if self.buffered + (declared or 0) > self.room(declared or 0):
                    await self.answer_busy(scope, send, started)
                    return
                while True:
                    message = await receive()
                    if message["type"] == "http.disconnect":
                        return
                    part = message.get("body", b"")
                    size = len(body) + len(part)
                    if size > self.limits.body_bytes:  # chunked, past the limit: the app refuses it
                        complete, declared = False, size
                        break
                    if self.buffered + len(part) > self.room(max(size, declared or 0)):
                        await self.answer_busy(scope, send, started)
                        return
                    self.buffered += len(part)
                    body += part
                    if not message.get("more_body", False):
                        break
            if not complete:
                self.buffered -= len(body)
                body = bytearray()
            await self.respond(scope, send, bytes(body), len(body) if complete else declared, complete, started)
        finally:
            self.buffered -= len(body)

    async def answer_busy(self, scope, send, started: float) -> None:
        body = json.dumps({"error": "too many uploads are arriving at once; retry in a moment"}).encode()
        headers = [(b"content-type", b"application/json"), (b"content-length", b"%d" % len(body)),
                   (b"retry-after", b"1"), (b"connection", b"close")]  # fmt: skip
        await send({"type": "http.response.start", "status": 503, "headers": headers})
        await send({"type": "http.response.body", "body": body})
        self.log(scope, 503, len(body), started, None)

    async def respond(self, scope, send, body: bytes, length: int, complete: bool, started: float) -> None:
        status, headers, answer = await self.run_app(self.environ(scope, body, length), len(body))
        request_id = None
        raw = []
        for name, value in headers:
            if name.lower() == "x-request-id":
                request_id = value
            raw.append((name.encode("latin-1"), value.encode("latin-1")))
        if not complete:  # the rest of the body was never read: this connection cannot go on
            raw.append((b"connection", b"close"))
        send = deliverer(send)
        sent = 0
        try:
            await send({"type": "http.response.start", "status": status, "headers": raw})
            await send({"type": "http.response.body", "body": answer})
            sent = len(answer)
        except ClientGone:
            pass  # the client hung up mid-answer: logged with what was sent
        self.log(scope, status, sent, started, request_id)

    async def run_app(self, environ: dict, size: int) -> tuple[int, list, bytes]:
        """The app's whole answer: inline for a body of up to ``INLINE_BYTES`` (or with no pool), else
        in the worker's thread pool, where the start of each call is kept so that a call stuck in a
        thread silences the heartbeat as an inline one does."""
        if self.pool is None or size <= self.INLINE_BYTES:
            return self.call_app(environ)
        call = object()
        self.running[call] = time.monotonic()
        try:
            return await asyncio.get_running_loop().run_in_executor(self.pool, self.call_app, environ)
        finally:
            del self.running[call]

    def call_app(self, environ: dict) -> tuple[int, list, bytes]:
        answer = []

        def start_response(status, headers, exc_info=None):
            answer[:] = [int(status[:3]), headers]
            return lambda data: None  # the legacy write(): unused by Flask

        result = self.app(environ, start_response)
        try:
            body = b"".join(result)
        finally:
            if hasattr(result, "close"):
                result.close()
        return answer[0], answer[1], body

    def longest_call(self) -> float:
        """Seconds the oldest call running in the pool has taken so far (0 with none, or inline)."""
        return time.monotonic() - min(self.running.values()) if self.running else 0.0

    def log(self, scope, status: int, sent: int, started: float, request_id) -> None:
        client = scope.get("client")
        self.log_line(access_record(client[0] if client else None, scope["method"], scope["path"], status, sent,
                                    time.perf_counter() - started, request_id))  # fmt: skip

    @staticmethod
    def environ(scope, body: bytes, length: int) -> dict:
        server = scope.get("server") or ("localhost", 80)
        client = scope.get("client")
        environ = {
            "REQUEST_METHOD": scope["method"],
            "SCRIPT_NAME": scope.get("root_path", "").encode().decode("latin-1"),
            "PATH_INFO": scope["path"].encode().decode("latin-1"),
            "QUERY_STRING": scope["query_string"].decode("latin-1"),
            "SERVER_NAME": server[0],
            "SERVER_PORT": str(server[1]),
            "SERVER_PROTOCOL": "HTTP/" + scope["http_version"],
            "REMOTE_ADDR": client[0] if client else "",
            "REMOTE_PORT": str(client[1]) if client else "",
            "wsgi.version": (1, 0),
            "wsgi.url_scheme": scope.get("scheme", "http"),
            "wsgi.input": io.BytesIO(body),
            "wsgi.errors": sys.stderr,
            "wsgi.multithread": False,
            "wsgi.multiprocess": True,
            "wsgi.run_once": False,
            "wsgi.input_terminated": True,
        }
        if length or scope["method"] in ("POST", "PUT", "PATCH"):
            environ["CONTENT_LENGTH"] = str(length)
        for name, value in scope["headers"]:
            if name == b"content-type":
                environ["CONTENT_TYPE"] = value.decode("latin-1")
            elif name in (b"content-length", b"transfer-encoding"):
                continue  # the body is whole: its length is CONTENT_LENGTH
            else:
                key = "HTTP_" + name.decode("latin-1").upper().replace("-", "_")
                value = value.decode("latin-1")
                environ[key] = f"{environ[key]},{value}" if key in environ else value
        return environ


def limits_from_environment(app) -> Limits:
    """The defaults, with the app's own body limit, and ``GUNICORN_REQUEST_TIMEOUT`` and
    ``GUNICORN_WRITE_TIMEOUT`` (seconds) for a request to arrive and an answer to be taken."""
    return Limits(
        body_bytes=getattr(app, "config", {}).get("MAX_CONTENT_LENGTH") or Limits.body_bytes,
        arrival_seconds=float(os.environ.get("GUNICORN_REQUEST_TIMEOUT", Limits.arrival_seconds)),
        write_seconds=float(os.environ.get("GUNICORN_WRITE_TIMEOUT", Limits.write_seconds)),
    )


M_ARENA_MAX = -8  # glibc's mallopt() parameter for the number of malloc arenas


def limit_malloc_arenas(arenas: int = 2) -> None:
    """glibc gives threads that allocate at once arenas of their own, each keeping the memory freed
    in it: a pool of threads decoding photos grew a worker by tens of MB. Two arenas keep it near
    what one thread holds (docs/performance.md). Without glibc this does nothing."""
    try:
        libc = ctypes.CDLL("libc.so.6")
    except OSError:
        return
    libc.mallopt(M_ARENA_MAX, arenas)


class FlaskWorker(UvicornWorker):
    """uvicorn's Gunicorn worker (uvloop, :class:`HttpProtocol`) serving a WSGI app through :class:`WsgiBridge`."""

    # The Server header names the server the operator runs, without a version, as Gunicorn's does.
    # No proxy-header rewriting (Gunicorn's workers never rewrote REMOTE_ADDR either; a proxy in front
    # is trusted through the app's own settings); it would be one more layer on every request.
    # The heartbeat goes out every second (uvicorn's default is half the timeout): with the app in the
    # loop's thread, the master's timeout then measures how long one request has held it (a call in
    # the pool gets twice that: :meth:`callback_notify`).
    CONFIG_KWARGS = {"loop": "uvloop", "http": HttpProtocol, "lifespan": "off", "access_log": False,
                     "server_header": False, "headers": [("Server", "gunicorn")], "timeout_notify": 1, "proxy_headers": False}  # fmt: skip

    def init_process(self) -> None:
        if self.cfg.threads > 1:
            limit_malloc_arenas()
        super().init_process()

    def load_wsgi(self) -> None:
        super().load_wsgi()
        limits = limits_from_environment(self.wsgi)
        limits = Limits(**{**limits.__dict__, "idle_seconds": max(self.cfg.keepalive, 2),
                           "connections": self.cfg.worker_connections, "header_fields": self.cfg.limit_request_fields,
                           "header_field_bytes": self.cfg.limit_request_field_size,
                           "request_line_bytes": self.cfg.limit_request_line})  # fmt: skip
        log_line = self.log.access_log.info if self.cfg.accesslog else (lambda line: None)
        self.config.limits = limits
        self.config.access_log_line = log_line
        self.wsgi = WsgiBridge(self.wsgi, limits, log_line, self.cfg.threads)

    async def callback_notify(self) -> None:
        """The heartbeat, held back once a call in the pool has run for ``timeout`` seconds: the master
        replaces the worker ``timeout`` seconds later. Not sooner, because eight threads sharing the
        GIL can stretch a legitimate call to several times its CPU time."""
        if self.wsgi.longest_call() < self.cfg.timeout:
            self.notify()
