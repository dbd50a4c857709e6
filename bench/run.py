"""mnist_flask against its peers, on the 28x28 JPEG, on each upload style and on a realistic mix.

    python -m bench.run [--seconds 5] [--rounds 3] [--per-style 32] [--peers NAME ...] [--workloads NAME ...]

The peers (PEERS) run on loopback at once, but only one is under load at a time: for each round and
workload, wrk drives each peer in turn (the order rotates each round) with the same bodies, so all
see the same machine. Each cell reports the median over the rounds; every ratio is taken within a
round (the two servers ran back to back), then the median, since the machine is shared and noisy.
The mix is also sent at 64 connections, to count errors. Writes bench/results/benchmark.{md,json,png};
a shorter run: ``--seconds 2 --rounds 1``, or fewer ``--peers`` and ``--workloads``.
"""

from __future__ import annotations

import argparse
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

import requests

from bench.harness import BIN, ROOT, bentoml_command, free_port, gunicorn_command, serving
from bench.same_work import SETTINGS, served_version
from bench.upload_mix import DIGIT_JPEG, MIX, MULTIPART, STYLES, multipart_body, workloads, write_bodies
from mnist_flask.model import KERAS_FILE, version_dir

RESULTS = ROOT / "bench" / "results"
LUA = ROOT / "bench" / "post_image.lua"
BATCH = 64
CONCURRENCY, CHECK_CONCURRENCY = 32, 64
# TensorFlow's thread pools keep spinning for a while after a load ends; the next server must not
# pay for the previous one, so each run starts on a machine idle for this long.
COOL_DOWN = 3.0
UVICORN_TUNED = ["--workers", "2", "--loop", "uvloop", "--http", "httptools", "--no-access-log"]
PEERS = {
    "lecture_fastapi": "the lecture's FastAPI app: eager Keras, Pillow resize, 1 uvicorn process",
    "fastapi_twin": "FastAPI twin, bare work: mnist_flask's preprocessing + LiteRT, def route (the faster), uvicorn 2 workers, uvloop, httptools",
    "fastapi_twin_duties": "FastAPI twin, same duties: + X-Request-ID, security headers, JSON access log, Prometheus multiprocess metrics",
    "bentoml_batching": "BentoML 1.4, same preprocessing + LiteRT, adaptive batching on, 2 workers",
    "bentoml_no_batching": "BentoML 1.4, same preprocessing + LiteRT, adaptive batching off, 2 workers",
    "mnist_flask": "mnist_flask as shipped (Gunicorn, 2 workers, the app in a pool of 4 threads each)",
    "mnist_flask_inline": "mnist_flask with the app inline in each worker's event loop (GUNICORN_THREADS=1)",
    "mnist_flask_8_threads": "mnist_flask with a pool of 8 threads per worker (GUNICORN_THREADS=8, the default before)",
    "app_floor": "floor: mnist_flask answering a constant (everything but decoding and inference)",
    "flask_floor": "floor: bare Flask, one route answering a constant, same Gunicorn settings",
    "decode_floor": "floor: mnist_flask decoding each upload as it does, then answering a constant (no search, no model)",
}
FLOORS = ("app_floor", "flask_floor", "decode_floor")  # they answer a constant
PICTURELESS = ("app_floor", "flask_floor")  # they never look at the picture: the 28x28 JPEG only


def server_command(port: int, name: str, work: Path) -> tuple[list[str], dict]:
    """How each peer is started, and the environment it needs beyond ours."""
    uvicorn = [str(BIN / "uvicorn"), "--host", "127.0.0.1", "--port", str(port)]
    if name == "lecture_fastapi":
        model = version_dir(SETTINGS["MODEL_DIR"], SETTINGS["MODEL_NAME"], served_version()) / KERAS_FILE
        return uvicorn + ["bench.reference_fastapi:app"], {"MODEL_PATH": str(model)}
    if name == "fastapi_twin":
        return uvicorn + UVICORN_TUNED + ["bench.fastapi_twin:app"], {}
    if name == "fastapi_twin_duties":
        metrics = work / "twin-metrics"
        metrics.mkdir(exist_ok=True)
        return uvicorn + UVICORN_TUNED + ["bench.fastapi_duties:app"], {"PROMETHEUS_MULTIPROC_DIR": str(metrics)}
    if name.startswith("bentoml"):
        service = "Batched" if name == "bentoml_batching" else "Unbatched"
        return bentoml_command(port, f"bench.bentoml_service:{service}"), {"BENTOML_HOME": str(work / "bentoml"), "BENTOML_DO_NOT_TRACK": "True"}
    if name == "mnist_flask":
        return gunicorn_command(port, 2), {}
    if name == "mnist_flask_inline":
        return gunicorn_command(port, 2), {"GUNICORN_THREADS": "1"}
    if name == "mnist_flask_8_threads":
        return gunicorn_command(port, 2), {"GUNICORN_THREADS": "8"}
    target = {"app_floor": "bench.floor_app:app", "flask_floor": "bench.bare_flask_app:app", "decode_floor": "bench.decode_floor_app:app"}[name]
    return gunicorn_command(port, 2)[:-1] + [target], {}


def answers_correctly(picture: tuple[bytes, str], label: int | None):
    """A readiness probe that also checks the answer: ``label`` for a peer that classifies, any 200
    for a floor. A batching BentoML answers a list, one answer per upload."""

    def probe(url: str) -> bool:
        response = requests.post(url + "/prediction", files={"image": ("upload", *picture)}, timeout=5)
        if not response.ok or label is None:
            return response.ok
        answer = response.json()
        return (answer[0] if isinstance(answer, list) else answer)["prediction"] == label

    return probe


def wrk(url: str, bodies: Path, concurrency: int, seconds: int, path: str = "/prediction",
        content_type: str = MULTIPART, json_length: int | None = None) -> dict:  # fmt: skip
    """wrk sending the bodies listed in ``bodies`` in turn to ``url + path`` (post_image.lua)."""
    threads = min(2, concurrency)
    script = {"BENCH_BODIES": str(bodies), "BENCH_CONTENT_TYPE": content_type,
              **({"BENCH_JSON_LENGTH": str(json_length)} if json_length else {})}  # fmt: skip
    result = subprocess.run(
        ["wrk", f"-t{threads}", f"-c{concurrency}", f"-d{seconds}s", "--timeout", "10s", "-s", str(LUA), url + path],
        capture_output=True, text=True, check=True, env={**os.environ, **script},
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


def one_picture(directory: Path, picture: bytes, content_type: str = "image/jpeg", copies: int = 1) -> Path:
    """The body list of a single upload of ``copies`` times the same picture."""
    return write_bodies(directory, f"one-{copies}", [multipart_body([(picture, content_type)] * copies)])


def machine() -> str:
    cpu = next((line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                if line.startswith("model name")), platform.processor())  # fmt: skip
    return f"{os.cpu_count()} cores, {cpu}, Python {platform.python_version()}, {platform.system()} {platform.release()}"


def median_run(runs: list[dict]) -> dict:
    """The run with the median throughput, with errors summed over all rounds."""
    middle = sorted(runs, key=lambda run: run["requests_per_s"])[len(runs) // 2]
    return {**middle, "errors": sum(run["errors"] for run in runs), "rounds": len(runs)}


def loads_of(name: str, names: list[str]) -> list[str]:
    """The workloads a peer is measured on: a floor that reads no picture, only the 28x28 JPEG."""
    return [DIGIT_JPEG] if name in PICTURELESS else names


def start_peers(stack: ExitStack, peers: list[str], work: Path, sample) -> dict:
    """Started one after another, so start-up times do not overlap; each must answer the 28x28 JPEG right."""
    servers = {}
    for name in peers:
        port = free_port()
        command, env = server_command(port, name, work)
        probe = answers_correctly(sample.sample, None if name in FLOORS else sample.label)
        servers[name] = stack.enter_context(serving(command, port, work / f"{name}.log", probe=probe, env=env))
    return servers


def check_reading(servers: dict, loads: dict, load_names: list[str]) -> None:
    """Before anything is timed, every peer doing mnist_flask's work reads one picture of each workload
    right; the lecture's app (which misreads most real pictures) and the floors must answer 200."""
    for name, server in servers.items():
        for load_name in loads_of(name, load_names):
            load = loads[load_name]
            label = None if name in FLOORS or name == "lecture_fastapi" else load.label
            if not answers_correctly(load.sample, label)(server.url):
                raise AssertionError(f"{name} answers a {load_name} picture wrong")


def timed_run(server, bodies: Path, concurrency: int, seconds: int) -> dict:
    time.sleep(COOL_DOWN)
    cpu_before = server.cpu_seconds()
    run = wrk(server.url, bodies, concurrency, seconds)
    run["cpu_ms_per_request"] = (server.cpu_seconds() - cpu_before) * 1000 / max(run["requests"], 1)
    run["rss_mb"] = server.rss_bytes() / 2**20
    return run


def measure(peers: list[str], load_names: list[str], seconds: int, rounds: int, per_style: int, work: Path) -> dict:
    loads = workloads(work, per_style, names=load_names)
    results = {"machine": machine(), "date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
               "seconds_per_run": seconds, "rounds": rounds, "per_style": per_style, "servers": {}}  # fmt: skip
    with ExitStack() as stack:
        servers = start_peers(stack, peers, work, loads[DIGIT_JPEG])
        check_reading(servers, loads, load_names)
        steps = [(load, CONCURRENCY) for load in load_names] + [("mix", CHECK_CONCURRENCY)] * ("mix" in load_names)
        runs = {(name, load, c): [] for load, c in steps for name in peers if load in loads_of(name, load_names)}
        for round_number in range(rounds):
            order = peers[round_number % len(peers) :] + peers[: round_number % len(peers)]  # rotate who goes first
            for load, concurrency in steps:
                for name in (name for name in order if (name, load, concurrency) in runs):
                    run = timed_run(servers[name], loads[load].bodies, concurrency, seconds)
                    runs[name, load, concurrency].append(run)
                    print(f"round {round_number + 1} {load:16s} c={concurrency:<3} {name:20s} {run['requests_per_s']:8.0f} req/s  "
                          f"p99 {run['p99_ms']:7.1f} ms  cpu {run['cpu_ms_per_request']:.2f} ms/req  errors {run['errors']}  "
                          f"rss {run['rss_mb']:.0f} MB", flush=True)  # fmt: skip
        for name in peers:
            results["servers"][name] = {"seconds_to_first_answer": servers[name].seconds_to_first_answer, "runs": {}, "rounds": {}}
        for (name, load, concurrency), measured in runs.items():
            key = load if concurrency == CONCURRENCY else f"{load}@{concurrency}"
            results["servers"][name]["runs"][key] = median_run(measured)
            results["servers"][name]["rounds"][key] = measured
        if "mnist_flask" in servers:
            batch = wrk(servers["mnist_flask"].url, one_picture(work, loads[DIGIT_JPEG].sample[0], copies=BATCH), 2, seconds)
            results["batch"] = {"images_per_request": BATCH, "images_per_s": batch["requests_per_s"] * BATCH, **batch}
    return results


def paired(results: dict, ours: tuple[str, str], other: tuple[str, str], key: str = "requests_per_s") -> float | None:
    """(peer, workload) against (peer, workload), within each round, then the median; None if either is missing."""
    servers = results["servers"]
    try:
        pairs = zip(servers[ours[0]]["rounds"][ours[1]], servers[other[0]]["rounds"][other[1]])
    except KeyError:
        return None
    return statistics.median(a[key] / b[key] for a, b in pairs)


def peak_rss(server: dict) -> float:
    return max(run["rss_mb"] for run in server["runs"].values())


def measured_loads(results: dict) -> list[str]:
    """The workloads measured at CONCURRENCY, in the order they ran."""
    runs = (load for server in results["servers"].values() for load in server["runs"])
    return [load for load in dict.fromkeys(runs) if "@" not in load]


def shown(value: float | None, target=None) -> str:
    """A ratio, in bold where it misses its target (a predicate), n/a where a peer was not run."""
    if value is None:
        return "n/a"
    return f"{value:.2f}" if target is None or target(value) else f"**{value:.2f}**"


# Issue 15's goals per workload at CONCURRENCY: (column, ours, other, key, target, test).
GOALS = [
    ("req/s ÷ twin", "mnist_flask", "fastapi_twin", "requests_per_s", "≥ 1", lambda v: v >= 1),
    ("p99 ÷ twin", "mnist_flask", "fastapi_twin", "p99_ms", "≤ 1", lambda v: v <= 1),
    ("req/s ÷ twin with duties", "mnist_flask", "fastapi_twin_duties", "requests_per_s", "≥ 1", lambda v: v >= 1),
    ("p99 ÷ twin with duties", "mnist_flask", "fastapi_twin_duties", "p99_ms", "≤ 1", lambda v: v <= 1),
    ("req/s ÷ BentoML batching", "mnist_flask", "bentoml_batching", "requests_per_s", "≥ 5", lambda v: v >= 5),
    ("req/s ÷ lecture app", "mnist_flask", "lecture_fastapi", "requests_per_s", "", None),
]


def pivot(results: dict, key: str, digits: int) -> list[str]:
    """One measure at CONCURRENCY (the median round): a row per workload, a column per peer."""
    servers, loads = results["servers"], measured_loads(results)
    lines = ["| workload | " + " | ".join(servers) + " |", "|---" * (len(servers) + 1) + "|"]
    for load in loads:
        cells = [f"{server['runs'][load][key]:.{digits}f}" if load in server["runs"] else "" for server in servers.values()]
        lines.append(f"| {load} | " + " | ".join(cells) + " |")
    return lines


def goal_table(results: dict) -> list[str]:
    """mnist_flask against each peer the goals name, per workload, and each workload against its 28x28 JPEG."""
    head = [f"{column} ({target})" if target else column for column, *_, target, _ in GOALS]
    head += ["req/s ÷ own 28x28 JPEG (≥ 0.4)", "ceiling: decode_floor ÷ mnist_flask's 28x28 JPEG", "ceiling: decode_floor ÷ BentoML batching"]
    lines = ["| workload | " + " | ".join(head) + " |", "|---" * (len(head) + 1) + "|"]
    for load in measured_loads(results):
        cells = [shown(paired(results, (ours, load), (other, load), key), test) for _, ours, other, key, _, test in GOALS]
        own = None if load == DIGIT_JPEG else paired(results, ("mnist_flask", load), ("mnist_flask", DIGIT_JPEG))
        cells.append("1" if load == DIGIT_JPEG else shown(own, lambda v: v >= 0.4))
        cells.append(shown(paired(results, ("decode_floor", load), ("mnist_flask", DIGIT_JPEG))))
        cells.append(shown(paired(results, ("decode_floor", load), ("bentoml_batching", load))))
        lines.append(f"| {load} | " + " | ".join(cells) + " |")
    return lines


def whole_server_rows(results: dict) -> list[str]:
    """Memory, start-up and errors under 64 connections, against their targets; the floors for reference."""
    servers, rows = results["servers"], []
    if "mnist_flask" in servers and "lecture_fastapi" in servers:
        ours, lecture = servers["mnist_flask"], servers["lecture_fastapi"]
        rss = peak_rss(ours) / peak_rss(lecture)
        start = ours["seconds_to_first_answer"] / lecture["seconds_to_first_answer"]
        rows += [f"| RSS (master + 2 workers) ÷ the lecture app's | {shown(rss, lambda v: v <= 0.5)} | ≤ 0.5 |",
                 f"| launch to first answer ÷ the lecture app's | {shown(start, lambda v: v <= 1)} | ≤ 1 |"]  # fmt: skip
    crowded = servers.get("mnist_flask", {}).get("runs", {}).get(f"mix@{CHECK_CONCURRENCY}")
    if crowded:
        errors = str(crowded["errors"]) if crowded["errors"] == 0 else f"**{crowded['errors']}**"
        rows.append(f"| errors, mix at {CHECK_CONCURRENCY} connections, all rounds | {errors} | 0 |")
    for floor in FLOORS:
        rows.append(f"| req/s ÷ {floor}, 28x28 JPEG | {shown(paired(results, ('mnist_flask', DIGIT_JPEG), (floor, DIGIT_JPEG)))} | (shown) |")
    return ["| mnist_flask, whole server | measured | target |", "|---|---|---|", *rows] if rows else []


MARGIN = 1.05  # a peer "wins" by more than this factor: closer than that is within a run's noise


def where_peers_win(results: dict) -> list[str]:
    """Per workload, each peer that beats mnist_flask on throughput or p99 (medians) by more than MARGIN."""
    servers = results["servers"]
    if "mnist_flask" not in servers:
        return []
    lines = []
    for load, ours in servers["mnist_flask"]["runs"].items():
        wins = []
        for name, server in servers.items():
            theirs = server["runs"].get(load)
            if name == "mnist_flask" or name in FLOORS or theirs is None:
                continue
            what = []
            if theirs["requests_per_s"] > ours["requests_per_s"] * MARGIN:
                what.append(f"{theirs['requests_per_s']:.0f} req/s against {ours['requests_per_s']:.0f}")
            if theirs["p99_ms"] * MARGIN < ours["p99_ms"]:
                what.append(f"p99 {theirs['p99_ms']:.0f} ms against {ours['p99_ms']:.0f}")
            if what:
                wins.append(f"{name} ({', '.join(what)})")
        if wins:
            lines.append(f"- {load}: " + "; ".join(wins) + ".")
    return lines or ["- No peer beats mnist_flask on throughput or p99 on any workload."]


def markdown(results: dict) -> str:
    servers = results["servers"]
    lines = [
        f"Machine: {results['machine']}. {results['date']}. wrk at {CONCURRENCY} connections (the mix also at "
        f"{CHECK_CONCURRENCY}), {results['seconds_per_run']} s per run; each cell is the median of {results['rounds']} "
        f"rounds, errors are summed over all rounds. Each style is {results['per_style']} distinct pictures from x_test, "
        "sent in turn; the mix is " + ", ".join(f"{share:.0%} {style}" for style, share in MIX.items()) + ".",
        "",
    ]
    for title, key, digits in (("requests/s", "requests_per_s", 0), ("p99 ms", "p99_ms", 0), ("server CPU ms per request", "cpu_ms_per_request", 2)):
        lines += [f"{title}:", "", *pivot(results, key, digits), ""]
    crowded = f"mix@{CHECK_CONCURRENCY}"
    lines += [f"| peer | RSS MB (all processes, peak) | launch to first answer s | errors, all runs | mix at {CHECK_CONCURRENCY} "
              "connections: req/s | p99 ms |", "|---|---|---|---|---|---|"]  # fmt: skip
    for name, server in servers.items():
        errors = sum(run["errors"] for run in server["runs"].values())
        at_64 = server["runs"].get(crowded)
        tail = f"{at_64['requests_per_s']:.0f} | {at_64['p99_ms']:.0f}" if at_64 else "| "
        lines.append(f"| {name} | {peak_rss(server):.0f} | {server['seconds_to_first_answer']:.2f} | {errors} | {tail} |")
    if "batch" in results:
        batch = results["batch"]
        lines += ["", f"mnist_flask, {batch['images_per_request']} images per request, 2 connections: "
                  f"**{batch['images_per_s']:.0f} images/s** ({batch['errors']} errors)."]  # fmt: skip
    lines += ["", f"mnist_flask against the goals at {CONCURRENCY} connections (ratios within each round, median of the "
              "rounds; bold: the target is missed):", "", *goal_table(results), "", *whole_server_rows(results),
              "", f"Where a peer wins (by more than {MARGIN - 1:.0%}):", *where_peers_win(results), "", "Peers:",
              *[f"- `{name}`: {what}" for name, what in PEERS.items() if name in servers],
              *[f"- `{style}`: {what}" for style, what in STYLES.items() if style in measured_loads(results)],
              "", "Reproduce: `make bench` (or `python -m bench.run`)."]  # fmt: skip
    return "\n".join(lines) + "\n"


def chart(results: dict, path: Path) -> None:
    """Throughput per workload, one bar per peer (log scale: the peers differ by orders of magnitude)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    servers = {name: server for name, server in results["servers"].items() if name not in FLOORS}
    loads = [load for load in dict.fromkeys(load for s in servers.values() for load in s["runs"]) if "@" not in load]
    figure, axis = plt.subplots(figsize=(11, 4.5))
    width = 0.8 / max(len(servers), 1)
    for index, (name, server) in enumerate(servers.items()):
        values = [server["runs"].get(load, {}).get("requests_per_s", 0) for load in loads]
        axis.bar(np.arange(len(loads)) + index * width, values, width, label=name)
    axis.set_xticks(np.arange(len(loads)) + 0.4 - width / 2, loads)
    axis.set(title=f"throughput at {CONCURRENCY} connections", ylabel="requests/s", yscale="log")
    axis.grid(alpha=0.3, axis="y")
    axis.legend(fontsize=8, ncol=2)
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
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--per-style", type=int, default=32, help="distinct pictures per upload style")
    parser.add_argument("--peers", nargs="+", default=list(PEERS), choices=list(PEERS))
    parser.add_argument("--workloads", nargs="+", default=[DIGIT_JPEG, *STYLES, "mix"], choices=[DIGIT_JPEG, *STYLES, "mix"])
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as work:
        results = measure(args.peers, args.workloads, args.seconds, args.rounds, args.per_style, Path(work))
    save(results, "benchmark", markdown(results))
    chart(results, RESULTS / "benchmark.png")


if __name__ == "__main__":
    main()
