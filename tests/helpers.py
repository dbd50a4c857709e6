"""What the tests share: MNIST digits and uploads, the `mnist-flask` command, a steady load that
keeps every answer, copies of the shipped store, and HTTP by hand over raw sockets (for requests no
client library would send) with a prober that checks normal service goes on while they are sent."""

from __future__ import annotations

import io
import os
import shutil
import socket
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import requests
import urllib3
from PIL import Image

from bench.harness import ROOT

PROBE_EVERY = 0.25  # seconds between normal uploads
PROBE_LIMIT = 1.5  # seconds within which each must be answered right


def post_image(client, *images: bytes, path: str = "/prediction", field: str = "image", **kwargs):
    """``images`` uploaded in one form field through Flask's test client, encoded as HTTP clients do."""
    content_type, body = multipart(*images, field=field)
    return client.post(path, data=body, content_type=content_type, **kwargs)


def post_upload(url: str, *images: bytes, path: str = "/prediction", session=requests, timeout: float = 10, **kwargs):
    """``images`` uploaded in the form field ``image`` to a real server at ``url``, as ``requests`` sends them."""
    files = [("image", (f"{i}.png", image)) for i, image in enumerate(images)]
    return session.post(url + path, files=files, timeout=timeout, **kwargs)


def multipart(*images: bytes, field: str = "image") -> tuple[str, bytes]:
    """The Content-Type and body of an upload as HTTP clients encode it (urllib3's encoder, which
    ``requests`` uses): Werkzeug's test client writes an empty file with no line break before the
    closing boundary, which no client sends."""
    body, content_type = urllib3.encode_multipart_formdata([(field, (f"{i}.png", image, "image/png")) for i, image in enumerate(images)])
    return content_type, body


def form_part(name: str, data: bytes, filename: str | None = None, boundary: str = "B") -> bytes:
    """One part of a multipart form, written out by hand, so that a test can put together a form
    that is odd on purpose (a wrong boundary, thousands of parts, no closing line)."""
    disposition = f'form-data; name="{name}"' + ("" if filename is None else f'; filename="{filename}"')
    return f"--{boundary}\r\nContent-Disposition: {disposition}\r\n\r\n".encode() + data + b"\r\n"


def form(*parts: tuple, boundary: str = "B") -> tuple[str, bytes]:
    """The Content-Type and body of a whole form of :func:`form_part` arguments (name, data, file name)."""
    body = b"".join(form_part(*part, boundary=boundary) for part in parts)
    return f"multipart/form-data; boundary={boundary}", body + f"--{boundary}--\r\n".encode()


def upload_head(content_type: str, *headers: str) -> bytes:
    """The head of a ``POST /prediction``, to send by hand; ``headers`` say how the body is framed."""
    lines = ["POST /prediction HTTP/1.1", "Host: localhost", f"Content-Type: {content_type}", *headers]
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


def upload(image: bytes, *extra_headers: str) -> tuple[bytes, bytes]:
    """The head and body of an upload, to send by hand."""
    content_type, body = multipart(image)
    return upload_head(content_type, f"Content-Length: {len(body)}", *extra_headers), body


def read_response(stream) -> tuple[int, dict, bytes]:
    """One final response (1xx ones skipped) from a socket's file, leaving what follows unread."""
    while True:
        status = int(stream.readline().split()[1])
        headers = {}
        while (line := stream.readline()) != b"\r\n":
            name, value = line.decode().split(":", 1)
            headers[name.strip().lower()] = value.strip()
        if status >= 200:
            return status, headers, stream.read(int(headers.get("content-length", 0)))


def connect(server, timeout: float = 10) -> socket.socket:
    return socket.create_connection(server.address, timeout=timeout)


def repeat_for(seconds: float):
    """Yield round numbers until ``seconds`` have passed (at least once), so a quick attack is kept up."""
    deadline, round_number = time.monotonic() + seconds, 0
    while round_number == 0 or time.monotonic() < deadline:
        yield round_number
        round_number += 1


def closed_within(connection: socket.socket, seconds: float) -> bool:
    """Whether the server closes the connection (after whatever it still sends) within ``seconds``."""
    connection.settimeout(seconds)
    deadline = time.monotonic() + seconds
    try:
        while time.monotonic() < deadline:
            if not connection.recv(65536):
                return True
    except ConnectionResetError:
        return True
    except OSError:
        return False
    return False


@dataclass
class Prober:
    """Posts a normal upload (a new connection each time) every ``PROBE_EVERY`` seconds while running."""

    server: object
    image: bytes
    label: int
    results: list = field(default_factory=list)

    def __enter__(self):
        self.stop = threading.Event()
        self.workers_before = self.server.workers()
        self.thread = threading.Thread(target=self.run, daemon=True)
        self.thread.start()
        return self

    def run(self) -> None:
        deadline = time.monotonic() + 120  # bounded even if the test fails midway
        while not self.stop.is_set() and time.monotonic() < deadline:
            started = time.monotonic()
            try:
                response = post_upload(self.server.url, self.image)
                right = response.status_code == 200 and response.json()["prediction"] == self.label
                self.results.append((right, time.monotonic() - started, response.status_code))
            except requests.RequestException as error:
                self.results.append((False, time.monotonic() - started, repr(error)))
            self.stop.wait(max(0.0, PROBE_EVERY - (time.monotonic() - started)))

    def __exit__(self, *exc) -> None:
        self.stop.set()
        self.thread.join()

    def assert_served(self, at_least: int = 4) -> None:
        """Every probe answered right within the limit, and no worker died or was replaced meanwhile."""
        assert len(self.results) >= at_least, self.results
        late_or_wrong = [result for result in self.results if not result[0] or result[1] > PROBE_LIMIT]
        assert not late_or_wrong, f"{len(late_or_wrong)} of {len(self.results)} probes: {late_or_wrong[:5]}"
        assert self.server.workers() == self.workers_before, "a worker was replaced"


DATA = ROOT / "data" / "mnist.npz"
PICTURES = ROOT / "tests" / "pictures"  # uploads kept as made, each named for what its test shows
CLI = Path(sys.executable).parent / "mnist-flask"
SHIPPED_STORE = ROOT / "models" / "mnist"


def encode(pixels: np.ndarray, format: str = "PNG", mode: str = "L", **save_args) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(np.asarray(pixels, dtype=np.uint8)).convert(mode).save(buffer, format=format, **save_args)
    return buffer.getvalue()


def cli(*args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    """``mnist-flask ARGS`` as a user runs it, from the checkout."""
    return subprocess.run(
        [str(CLI), *args], cwd=ROOT, capture_output=True, text=True, timeout=600, env={**os.environ, **(env or {})}
    )


def copy_store(target: Path) -> None:
    """The shipped versions 1, 2 and 3 (three differently trained networks), without their Keras files."""
    for version in (1, 2, 3):
        shutil.copytree(SHIPPED_STORE / str(version), target / "mnist" / str(version), ignore=shutil.ignore_patterns("*.keras"))


class Load:
    """Threads posting one image in a loop until stopped, or until their deadline, whichever first.
    Every answer is kept in order as (status, or the exception's name; the model that answered)."""

    def __init__(self, url: str, image: bytes, threads: int = 4, seconds: float = 60, path: str = "/prediction"):
        self.url, self.image, self.seconds, self.path = url, image, seconds, path
        self.answers: list[tuple[int | str, str | None]] = []
        self.stop = threading.Event()
        self.lock = threading.Lock()
        self.threads = [threading.Thread(target=self.run) for _ in range(threads)]

    def run(self) -> None:
        session = requests.Session()
        deadline = time.monotonic() + self.seconds
        while not self.stop.is_set() and time.monotonic() < deadline:
            try:
                response = post_upload(self.url, self.image, path=self.path, session=session)
                answer = (response.status_code, response.json().get("model"))
            except (requests.RequestException, ValueError) as error:
                answer = (type(error).__name__, None)
            with self.lock:
                self.answers.append(answer)

    @property
    def ok(self) -> int:
        return sum(status == 200 for status, _ in self.answers)

    @property
    def failed(self) -> list:
        return [status for status, _ in self.answers if status != 200]

    @property
    def models(self) -> list[str | None]:
        return [model for _, model in self.answers]

    def wait_for(self, model: str, count: int, seconds: float = 30) -> None:
        """Until ``count`` answers came from ``model`` (or ``seconds`` pass)."""
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline and self.models.count(model) < count:
            time.sleep(0.1)

    def __enter__(self):
        for thread in self.threads:
            thread.start()
        return self

    def __exit__(self, *exc):
        self.stop.set()
        for thread in self.threads:
            thread.join()
