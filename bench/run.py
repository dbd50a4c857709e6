"""mnist_flask against the FastAPI original and against its own framework floor, side by side.

    python -m bench.run [--seconds 5] [--rounds 5] [--concurrency 1 8 32 64]

All servers run on loopback at once but only one is under load at a time: for each round and
concurrency, wrk drives each server in turn with the same multipart JPEG, so all see the same
machine; each cell reports the median over the rounds (the machine is shared and noisy).
Writes bench/results/benchmark.{md,json,png}.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import platform
import statistics
import subprocess
import tempfile
import time
from contextlib import ExitStack
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import requests
from PIL import Image

from bench.harness import BIN, ROOT, free_port, gunicorn_command, serving
from mnist_flask.config import Defaults
from mnist_flask.model import KERAS_FILE, version_dir

RESULTS = ROOT / "bench" / "results"
LUA = ROOT / "bench" / "post_image.lua"
BATCH = 64
# TensorFlow's thread pools keep spinning for a while after a load ends; the next server must not
# pay for the previous one, so each run starts on a machine idle for this long.
COOL_DOWN = 3.0


def bench_image() -> tuple[bytes, int]:
    """An MNIST test digit as a 28x28 JPEG, the classic ``curl -F image=@1.jpg`` upload."""
    with np.load(ROOT / "data" / "mnist.npz") as data:
        image, label = data["x_test"][0], int(data["y_test"][0])
    buffer = io.BytesIO()
    Image.fromarray(image).save(buffer, "JPEG", quality=90)
    return buffer.getvalue(), label


def answers_correctly(image: bytes, label: int | None):
    def probe(url: str) -> bool:
        response = requests.post(url + "/prediction", files={"image": ("digit.jpg", image, "image/jpeg")}, timeout=5)
        return response.ok and (label is None or response.json()["prediction"] == label)

    return probe


def server_commands(port: int, name: str) -> tuple[list[str], dict]:
    if name == "reference_fastapi":
        model = version_dir(Defaults.MODEL_DIR, Defaults.MODEL_NAME) / KERAS_FILE
        command = [str(BIN / "uvicorn"), "bench.reference_fastapi:app", "--host", "127.0.0.1", "--port", str(port)]
        return command, {"MODEL_PATH": str(model)}
    if name == "mnist_flask":
        return gunicorn_command(port, 2), {}
    target = {"app_floor": "bench.floor_app:app", "flask_floor": "bench.bare_flask_app:app"}[name]
    return gunicorn_command(port, 2)[:-1] + [target], {}


def wrk(url: str, image_path: Path | None, concurrency: int, seconds: int, fields: int = 1, path: str = "/prediction", **script: str) -> dict:
    """wrk posting the picture at ``image_path`` (``fields`` times in one upload) to ``url + path``, or,
    with ``image_path`` None, the body post_image.lua's ``script`` variables name (BENCH_BODY, ...)."""
    threads = min(2, concurrency)
    upload = {"BENCH_IMAGE": str(image_path), "BENCH_FIELDS": str(fields)} if image_path else {}
    result = subprocess.run(
        ["wrk", f"-t{threads}", f"-c{concurrency}", f"-d{seconds}s", "--timeout", "10s", "-s", str(LUA), url + path],
        capture_output=True, text=True, check=True, env={**os.environ, **upload, **script},
    )  # fmt: skip
    summary = json.loads(result.stdout.strip().splitlines()[-1])
    errors = sum(summary[kind] for kind in ("connect", "read", "write", "status", "timeout"))
    return {
        "requests_per_s": summary["requests"] / summary["seconds"],
        "p50_ms": summary["p50_ms"],
        "p99_ms": summary["p99_ms"],
        "errors": errors,
        "requests": summary["requests"],
    }


def machine() -> str:
    cpu = next((line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                if line.startswith("model name")), platform.processor())  # fmt: skip
    return f"{os.cpu_count()} cores, {cpu}, Python {platform.python_version()}, {platform.system()} {platform.release()}"


def median_run(runs: list[dict]) -> dict:
    """The run with the median throughput, with errors summed over all rounds."""
    middle = sorted(runs, key=lambda run: run["requests_per_s"])[len(runs) // 2]
    return {**middle, "errors": sum(run["errors"] for run in runs), "rounds": len(runs)}


def measure(concurrencies: list[int], seconds: int, rounds: int, log_dir: Path) -> dict:
    image, label = bench_image()
    image_path = log_dir / "digit.jpg"
    image_path.write_bytes(image)
    names = ["reference_fastapi", "mnist_flask", "app_floor", "flask_floor"]
    results = {"machine": machine(), "date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
               "seconds_per_run": seconds, "rounds": rounds, "servers": {}}  # fmt: skip
    with ExitStack() as stack:
        servers = {}
        for name in names:  # started one after another, so start-up times do not overlap
            port = free_port()
            command, env = server_commands(port, name)
            probe = answers_correctly(image, None if name.endswith("floor") else label)
            servers[name] = stack.enter_context(serving(command, port, log_dir / f"{name}.log", probe=probe, env=env))
            results["servers"][name] = {"seconds_to_first_answer": servers[name].seconds_to_first_answer, "runs": {}}
        runs = {(name, c): [] for name in names for c in concurrencies}
        for round_number in range(1, rounds + 1):
            for concurrency in concurrencies:
                for name in names[round_number - 1 :] + names[: round_number - 1]:  # rotate who goes first
                    time.sleep(COOL_DOWN)
                    cpu_before = servers[name].cpu_seconds()
                    run = wrk(servers[name].url, image_path, concurrency, seconds)
                    run["cpu_ms_per_request"] = (servers[name].cpu_seconds() - cpu_before) * 1000 / max(run["requests"], 1)
                    run["rss_mb"] = servers[name].rss_bytes() / 2**20
                    runs[name, concurrency].append(run)
                    print(f"round {round_number} c={concurrency:<3} {name:18s} {run['requests_per_s']:8.0f} req/s  "
                          f"p99 {run['p99_ms']:7.1f} ms  cpu {run['cpu_ms_per_request']:.2f} ms/req  errors {run['errors']}  "
                          f"rss {run['rss_mb']:.0f} MB", flush=True)  # fmt: skip
        for (name, concurrency), measured in runs.items():
            results["servers"][name]["runs"][str(concurrency)] = median_run(measured)
            results["servers"][name].setdefault("rounds", {})[str(concurrency)] = measured
        batch = wrk(servers["mnist_flask"].url, image_path, 2, seconds, fields=BATCH)
        results["batch"] = {"images_per_request": BATCH, "images_per_s": batch["requests_per_s"] * BATCH, **batch}
    return results


def ratios(results: dict, concurrency: str = "32") -> dict:
    """Each ratio is taken within a round (the two servers ran back to back), then the median."""
    servers = results["servers"]

    def paired(ours: str, other: str, key: str) -> float:
        pairs = zip(servers[ours]["rounds"][concurrency], servers[other]["rounds"][concurrency])
        return statistics.median(a[key] / b[key] for a, b in pairs)

    rss = {name: max(r["rss_mb"] for r in server["runs"].values()) for name, server in servers.items()}
    return {
        "throughput_vs_reference": paired("mnist_flask", "reference_fastapi", "requests_per_s"),
        "p99_vs_reference": paired("mnist_flask", "reference_fastapi", "p99_ms"),
        "throughput_vs_floor": paired("mnist_flask", "app_floor", "requests_per_s"),
        "throughput_vs_bare_flask": paired("mnist_flask", "flask_floor", "requests_per_s"),
        "floor_cpu_share": paired("app_floor", "mnist_flask", "cpu_ms_per_request"),
        "rss_vs_reference": rss["mnist_flask"] / rss["reference_fastapi"],
        "startup_vs_reference": servers["mnist_flask"]["seconds_to_first_answer"]
        / servers["reference_fastapi"]["seconds_to_first_answer"],
    }


def markdown(results: dict) -> str:
    lines = [
        f"Machine: {results['machine']}. {results['date']}. wrk posting the same 28x28 JPEG (multipart "
        f"field `image`), {results['seconds_per_run']} s per run; each cell is the median of "
        f"{results['rounds']} rounds, errors are summed over all rounds.",
        "",
        "| server | concurrency | requests/s | p50 ms | p99 ms | errors | server CPU ms per request | RSS MB (all processes) | launch to first answer s |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for name, server in results["servers"].items():
        for concurrency, run in server["runs"].items():
            lines.append(
                f"| {name} | {concurrency} | {run['requests_per_s']:.0f} | {run['p50_ms']:.2f} | {run['p99_ms']:.2f} | "
                f"{run['errors']} | {run['cpu_ms_per_request']:.2f} | {run['rss_mb']:.0f} | {server['seconds_to_first_answer']:.2f} |"
            )
    batch = results["batch"]
    r = ratios(results)
    lines += [
        "",
        f"Batch: {batch['images_per_request']} images per request, 2 connections: "
        f"**{batch['images_per_s']:.0f} images/s** ({batch['errors']} errors).",
        "",
        "| at c=32 (ratios within each round, median of the rounds) | measured | target |",
        "|---|---|---|",
        f"| throughput / reference | {r['throughput_vs_reference']:.1f}x | ≥ 7x |",
        f"| p99 / reference p99 | {r['p99_vs_reference']:.3f} | ≤ 0.2 |",
        f"| throughput / framework floor (this app, constant answer) | {r['throughput_vs_floor']:.0%} | ≥ 70 % |",
        f"| server CPU per request: framework floor / this app | {r['floor_cpu_share']:.0%} | (shown for reference) |",
        f"| throughput / bare Flask floor (one route, no metrics, logs or headers) | {r['throughput_vs_bare_flask']:.0%} | (shown for reference) |",
        f"| RSS (master + 2 workers) / reference RSS | {r['rss_vs_reference']:.2f} | ≤ 0.5 |",
        f"| launch to first answer / reference | {r['startup_vs_reference']:.2f} | ≤ 1 |",
    ]
    return "\n".join(lines) + "\n"


def chart(results: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, (left, right) = plt.subplots(1, 2, figsize=(10, 4))
    for name, server in results["servers"].items():
        levels = [int(c) for c in server["runs"]]
        left.plot(levels, [r["requests_per_s"] for r in server["runs"].values()], marker="o", label=name)
        right.plot(levels, [r["p99_ms"] for r in server["runs"].values()], marker="o", label=name)
    left.set(title="throughput", xlabel="concurrent connections", ylabel="requests/s", xscale="log")
    right.set(title="p99 latency", xlabel="concurrent connections", ylabel="ms", xscale="log", yscale="log")
    for axis in (left, right):
        axis.set_xticks([int(c) for c in next(iter(results["servers"].values()))["runs"]])
        axis.get_xaxis().set_major_formatter(matplotlib.ticker.ScalarFormatter())
        axis.grid(alpha=0.3)
    left.legend()
    figure.tight_layout()
    figure.savefig(path, dpi=110)


def save(results: dict, name: str, table: str) -> None:
    """bench/results/<name>.json and .md, and the table on standard output."""
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / f"{name}.json").write_text(json.dumps(results, indent=2) + "\n")
    (RESULTS / f"{name}.md").write_text(table)
    print(table)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=int, default=5)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--concurrency", type=int, nargs="+", default=[1, 8, 32, 64])
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as logs:
        results = measure(args.concurrency, args.seconds, args.rounds, Path(logs))
    save(results, "benchmark", markdown(results))
    chart(results, RESULTS / "benchmark.png")


if __name__ == "__main__":
    main()
