"""HTTP by hand over raw sockets, for requests no client library would send, and a prober that
checks normal service goes on while they are sent."""

from __future__ import annotations

import socket
import threading
import time
from dataclasses import dataclass, field

import requests

PROBE_EVERY = 0.25  # seconds between normal uploads
PROBE_LIMIT = 1.5  # seconds within which each must be answered right


def multipart(image: bytes) -> tuple[str, bytes]:
    """The Content-Type and body of an upload as requests encodes it."""
    prepared = requests.Request("POST", "http://localhost/prediction", files={"image": ("digit.png", image)}).prepare()
    return prepared.headers["Content-Type"], prepared.body


def upload(image: bytes, *extra_headers: str) -> tuple[bytes, bytes]:
    """The head and body of an upload, to send by hand."""
    content_type, body = multipart(image)
    lines = ["POST /prediction HTTP/1.1", "Host: localhost", f"Content-Type: {content_type}",
             f"Content-Length: {len(body)}", *extra_headers]  # fmt: skip
    return ("\r\n".join(lines) + "\r\n\r\n").encode(), body


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
    return socket.create_connection(("127.0.0.1", int(server.url.rsplit(":", 1)[1])), timeout=timeout)


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
        self.workers_before = sorted(self.server.pids()[1:])
        self.thread = threading.Thread(target=self.run, daemon=True)
        self.thread.start()
        return self

    def run(self) -> None:
        deadline = time.monotonic() + 120  # bounded even if the test fails midway
        while not self.stop.is_set() and time.monotonic() < deadline:
            started = time.monotonic()
            try:
                response = requests.post(self.server.url + "/prediction", files={"image": ("d.png", self.image)}, timeout=10)
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
        assert sorted(self.server.pids()[1:]) == self.workers_before, "a worker was replaced"
