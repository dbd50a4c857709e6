"""The worker choice, measured: candidate ways to run mnist_flask's Flask app, and its FastAPI twin,
side by side in one run.

    python -m bench.workers [--seconds 5] [--rounds 3] [--concurrency 32] [--config NAME=PATH ...]

Each round drives every server in turn with wrk posting the 28x28 JPEG (as bench.run does), after a
short idle; the order rotates each round. Ratios to the FastAPI twin are taken within a round, then
the median; so is each server's CPU time per request (from /proc), which a busy neighbour changes
far less than throughput. ``--config NAME=PATH`` adds mnist_flask run with another gunicorn.conf.py (an earlier
worker design, for instance). Writes bench/results/workers.{md,json}.
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from contextlib import ExitStack
from pathlib import Path

from bench.harness import BIN, free_port, gunicorn_command, serving
from bench.run import RESULTS, UVICORN_TUNED, answers_correctly, one_picture, wrk
from bench.upload_mix import digit_jpeg

IDLE = 2.0


def candidates(port: int, extra: dict[str, str]) -> dict[str, list[str]]:
    base = gunicorn_command(port, 2)
    commands = {
        "flask, shipped worker (uvicorn worker + WsgiBridge)": base,
        "flask, Gunicorn's own asgi worker + WsgiBridge": base[:-1] + ["-k", "asgi", "bench.asgi_bridge_app:app"],
        "flask, stock gthread, 2 threads": base[:-1] + ["-k", "gthread", "--threads", "2", "wsgi:app"],
        "fastapi twin (uvicorn, uvloop, httptools, 2 workers)": [
            str(BIN / "uvicorn"), "--host", "127.0.0.1", "--port", str(port), *UVICORN_TUNED, "bench.fastapi_twin:app"],  # fmt: skip
    }
    twin = commands["fastapi twin (uvicorn, uvloop, httptools, 2 workers)"]
    commands["fastapi twin, async route on the event loop (same settings)"] = [*twin[:-1], "bench.fastapi_twin:async_app"]
    commands["flask floor: mnist_flask answering a constant, shipped worker"] = base[:-1] + ["bench.floor_app:app"]
    commands["fastapi floor: the twin answering a constant"] = [*twin[:-1], "bench.fastapi_twin:floor"]
    for name, path in extra.items():
        commands[name] = [str(BIN / "gunicorn"), "-c", path] + base[3:]
    return commands


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=int, default=5)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--config", action="append", default=[], help="NAME=PATH of another gunicorn.conf.py")
    parser.add_argument("--only", nargs="*", help="run only the candidates whose names start with these")
    args = parser.parse_args()
    extra = dict(item.split("=", 1) for item in args.config)
    image, label = digit_jpeg()
    runs: dict[str, list[dict]] = {}
    with tempfile.TemporaryDirectory() as logs, ExitStack() as stack:
        bodies = one_picture(Path(logs), image)
        servers = {}
        for name in candidates(0, extra):
            if args.only and not any(name.startswith(prefix) for prefix in args.only):
                continue
            port = free_port()
            command = candidates(port, extra)[name]
            log = Path(logs) / f"{len(servers)}.log"
            probe = answers_correctly((image, "image/jpeg"), None if "floor" in name else label)
            servers[name] = stack.enter_context(serving(command, port, log, probe=probe))
            runs[name] = []
        names = list(servers)
        for round_number in range(args.rounds):
            for name in names[round_number % len(names) :] + names[: round_number % len(names)]:
                time.sleep(IDLE)
                cpu_before = servers[name].cpu_seconds()
                run = wrk(servers[name].url, bodies, args.concurrency, args.seconds)
                run["cpu_ms_per_request"] = (servers[name].cpu_seconds() - cpu_before) * 1000 / max(run["requests"], 1)
                run["rss_mb"] = servers[name].rss_bytes() / 2**20
                runs[name].append(run)
                print(f"round {round_number + 1} {name:55s} {run['requests_per_s']:7.0f} req/s  p99 {run['p99_ms']:6.1f} ms"
                      f"  cpu {run['cpu_ms_per_request']:.3f} ms/req  errors {run['errors']}", flush=True)  # fmt: skip
    twin = next((name for name in names if name.startswith("fastapi twin")), None)
    lines = [f"wrk -c{args.concurrency}, 28x28 JPEG, {args.seconds} s runs, {args.rounds} interleaved rounds; medians, "
             "and ratios to the FastAPI twin taken within each round.", "",
             "| server (2 workers) | requests/s | p99 ms | server CPU ms per request | errors | throughput / twin | p99 / twin | CPU per request / twin | RSS MB |",
             "|---|---|---|---|---|---|---|---|---|"]  # fmt: skip
    for name in names:
        median = lambda key, values=runs[name]: statistics.median(run[key] for run in values)  # noqa: E731
        ratio = lambda key: statistics.median(a[key] / b[key] for a, b in zip(runs[name], runs[twin])) if twin else float("nan")  # noqa: E731
        lines.append(f"| {name} | {median('requests_per_s'):.0f} | {median('p99_ms'):.1f} | {median('cpu_ms_per_request'):.3f} | "
                     f"{sum(r['errors'] for r in runs[name])} | {ratio('requests_per_s'):.2f} | {ratio('p99_ms'):.2f} | "
                     f"{ratio('cpu_ms_per_request'):.2f} | {median('rss_mb'):.0f} |")  # fmt: skip
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "workers.json").write_text(json.dumps(runs, indent=2) + "\n")
    (RESULTS / "workers.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
