"""Shared fixtures: the app from its factory, real MNIST test digits, and a real Gunicorn."""

from __future__ import annotations

import io
import os
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
import requests
from PIL import Image

from mnist_flask import create_app

ROOT = Path(__file__).resolve().parent.parent
DATA = ROOT / "data" / "mnist.npz"
GUNICORN = Path(sys.executable).parent / "gunicorn"


@pytest.fixture(scope="session")
def mnist_test():
    """Official MNIST test digits (evaluation only) with their labels."""
    with np.load(DATA) as data:
        return data["x_test"], data["y_test"]


def encode(pixels: np.ndarray, format: str = "PNG", mode: str = "L", **save_args) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(np.asarray(pixels, dtype=np.uint8)).convert(mode).save(buffer, format=format, **save_args)
    return buffer.getvalue()


@pytest.fixture
def app():
    return create_app({"TESTING": True})


@pytest.fixture
def client(app):
    return app.test_client()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@dataclass
class Server:
    url: str
    process: subprocess.Popen
    log: Path

    def access_log(self) -> str:
        return self.log.read_text()


def wait_until_serving(url: str, process: subprocess.Popen, seconds: float = 90) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"gunicorn exited with {process.returncode}")
        try:
            if requests.get(url, timeout=2).ok:
                return
        except requests.ConnectionError:
            pass
        time.sleep(0.2)
    raise TimeoutError(f"gunicorn did not answer at {url} within {seconds}s")


def start_gunicorn(log: Path, workers: int = 2, env: dict | None = None, *extra: str) -> Server:
    """``gunicorn -c gunicorn.conf.py wsgi:app`` on a free loopback port, as a user starts it."""
    port = free_port()
    process = subprocess.Popen(
        [str(GUNICORN), "-c", "gunicorn.conf.py", "-b", f"127.0.0.1:{port}", "-w", str(workers), *extra, "wsgi:app"],
        cwd=ROOT,
        stdout=log.open("w"),
        stderr=subprocess.STDOUT,
        env={**os.environ, **(env or {})},
    )
    url = f"http://127.0.0.1:{port}"
    try:
        wait_until_serving(url + "/", process)
    except Exception:
        stop(process)
        raise
    return Server(url, process, log)


def stop(process: subprocess.Popen) -> None:
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


@pytest.fixture(scope="session")
def server(tmp_path_factory):
    started = start_gunicorn(tmp_path_factory.mktemp("gunicorn") / "gunicorn.log")
    yield started
    stop(started.process)
