"""Start an HTTP server on a free loopback port, wait until it answers, measure it, stop it.

Shared by the tests and the benchmarks, so both start servers exactly as a user would.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

import requests

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
BENTOML_VENV = ROOT / ".venv-bentoml"  # BentoML's own venv (make bench), apart from the project's pins


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@dataclass
class Server:
    url: str
    process: subprocess.Popen
    log: Path
    seconds_to_first_answer: float

    @property
    def address(self) -> tuple[str, int]:
        """The host and port to open a socket to, for requests sent by hand."""
        parts = urlsplit(self.url)
        return parts.hostname, parts.port

    def access_log(self) -> str:
        return self.log.read_text()

    def workers(self) -> list[int]:
        """Gunicorn's workers, in order: the processes whose parent is the master (whatever a
        worker may start itself is no worker). Read from each process's own ``stat``: the kernel's
        ``children`` lists can miss a child that is running while they are read."""
        found = []
        for stat in Path("/proc").glob("[0-9]*/stat"):
            try:
                parent = int(stat.read_text().rsplit(")", 1)[1].split()[1])  # after "pid (name)": state, parent
            except (OSError, IndexError, ValueError):
                continue  # the process ended meanwhile
            if parent == self.process.pid:
                found.append(int(stat.parent.name))
        return sorted(found)

    def wait_for_workers(self, count: int, seconds: float = 10) -> list[int]:
        """The workers once ``count`` of them run: the first worker can answer before the master
        has forked the last."""
        deadline = time.monotonic() + seconds
        while len(workers := self.workers()) < count and time.monotonic() < deadline:
            time.sleep(0.05)
        return workers

    def pids(self) -> list[int]:
        """The server process and all its descendants (Gunicorn's master and workers)."""
        found, queue = [], [self.process.pid]
        while queue:
            pid = queue.pop()
            found.append(pid)
            for task in Path(f"/proc/{pid}/task").glob("*"):
                queue += [int(child) for child in (task / "children").read_text().split()]
        return found

    def cpu_seconds(self) -> float:
        """User and system CPU time used so far, summed over the server's processes."""
        ticks = 0
        for pid in self.pids():
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            ticks += int(fields[11]) + int(fields[12])  # utime and stime (stat fields 14 and 15)
        return ticks / os.sysconf("SC_CLK_TCK")

    def rss_bytes(self) -> int:
        """Resident memory summed over the server's processes."""
        return sum(rss_bytes(pid) for pid in self.pids())


def rss_bytes(pid: int) -> int:
    """One process's resident memory, from the kernel's own count (``VmRSS``, in KiB)."""
    status = Path(f"/proc/{pid}/status").read_text()
    return int(next(line for line in status.splitlines() if line.startswith("VmRSS:")).split()[1]) * 1024


def wait_until(process: subprocess.Popen, probe, seconds: float) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"server exited with {process.returncode}")
        try:
            if probe():
                return
        except (requests.ConnectionError, requests.Timeout):  # not listening yet, or busy starting up
            pass
        time.sleep(0.05)
    raise TimeoutError(f"server did not answer within {seconds}s")


def stop(process: subprocess.Popen, seconds: float = 30) -> None:
    """SIGTERM (a graceful shutdown), then SIGKILL if it does not finish in time."""
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=seconds)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


@contextmanager
def serving(command: list[str], port: int, log: Path, probe=None, env: dict | None = None, seconds: float = 120):
    """Run ``command`` (which must listen on ``port``) until the block ends.

    ``probe(url)`` says when the server is ready; by default any answer to ``GET /``.
    """
    url = f"http://127.0.0.1:{port}"
    probe = probe or (lambda base: requests.get(base + "/", timeout=2).status_code < 500)
    started = time.monotonic()
    process = subprocess.Popen(
        command, cwd=ROOT, stdout=log.open("w"), stderr=subprocess.STDOUT, env={**os.environ, **(env or {})}
    )
    try:
        wait_until(process, lambda: probe(url), seconds)
        yield Server(url, process, log, time.monotonic() - started)
    finally:
        stop(process)


def gunicorn_command(port: int, workers: int = 2, *extra: str) -> list[str]:
    """``gunicorn -c gunicorn.conf.py wsgi:app`` as the README runs it, on a loopback port."""
    return [str(BIN / "gunicorn"), "-c", "gunicorn.conf.py", "-b", f"127.0.0.1:{port}", "-w", str(workers), *extra, "wsgi:app"]


@contextmanager
def gunicorn(log: Path, workers: int = 2, *extra: str, env: dict | None = None, probe=None):
    port = free_port()
    with serving(gunicorn_command(port, workers, *extra), port, log, probe=probe, env=env) as server:
        server.wait_for_workers(workers)
        yield server


def bentoml_command(port: int, service: str) -> list[str]:
    """``bentoml serve MODULE:SERVICE`` from BentoML's venv, on a loopback port."""
    return [str(BENTOML_VENV / "bin" / "bentoml"), "serve", service, "--host", "127.0.0.1", "--port", str(port)]
