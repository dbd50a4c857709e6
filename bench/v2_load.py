"""Digits per second through each way of sending them, side by side: the Open Inference Protocol (V2)
with JSON tensors and with binary tensor data, TF Serving's ``:predict``, and ``/prediction`` uploads.

    python -m bench.v2_load [--seconds 5] [--rounds 3] [--concurrency 8]

One mnist_flask under Gunicorn (2 workers); wrk posts each way's body in turn, a round at a time, one
digit and 64 digits per request. The V2 bodies are the ones tritonclient builds itself
(``InferenceServerClient.generate_request_body``), and every body is checked first to get its digits
right. ``/prediction`` takes JPEG pictures and preprocesses them; the tensor routes take the model's
input, already preprocessed. Writes bench/results/v2.{md,json}.
"""

from __future__ import annotations

import argparse
import io
import json
import statistics
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import requests
import tritonclient.http as triton
from PIL import Image

from bench.harness import ROOT, gunicorn
from bench.run import COOL_DOWN, machine, one_picture, save, wrk
from bench.upload_mix import write_bodies
from mnist_flask.training import preprocess_all

BATCHES = (1, 64)
WAYS = {
    "prediction": "`POST /prediction`, multipart JPEGs (decoded and preprocessed by the server)",
    "tfserving": "`POST /v1/models/mnist:predict`, JSON `instances`",
    "v2_json": "`POST /v2/models/mnist/infer`, JSON tensors in and out",
    "v2_binary": "`POST /v2/models/mnist/infer`, binary tensor data in and out (tritonclient's default)",
}


def v2_body(fields: np.ndarray, binary: bool) -> tuple[bytes, int | None]:
    tensor = triton.InferInput("input", [*fields.shape, 1], "FP32")
    tensor.set_data_from_numpy(fields[..., None], binary_data=binary)
    output = triton.InferRequestedOutput("probabilities", binary_data=binary)
    return triton.InferenceServerClient.generate_request_body([tensor], outputs=[output])


def jpeg(image: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(image).save(buffer, "JPEG", quality=90)
    return buffer.getvalue()


def requests_for(batch: int, work: Path) -> tuple[dict[str, dict], dict[str, tuple[str, dict]], list[int]]:
    """For each way: wrk's arguments, and the same request (path, requests' arguments) for a check;
    and the digits' labels.

    One picture per upload field, so ``/prediction`` at 64 is 64 copies of the first digit (as
    bench.run's batch row), while the tensor routes get 64 different digits."""
    with np.load(ROOT / "data" / "mnist.npz") as data:
        images, labels = data["x_test"][:batch], data["y_test"][:batch].tolist()
    fields = preprocess_all(images).astype(np.float32)
    picture = jpeg(images[0])
    runs = {"prediction": {"bodies": one_picture(work, picture, copies=batch)}}
    checks = {"prediction": ("/prediction", {"files": [("image", ("digit.jpg", picture, "image/jpeg"))] * batch})}
    tfserving = json.dumps({"instances": fields.tolist()}).encode()
    bodies = {"tfserving": ("/v1/models/mnist:predict", tfserving, None)}
    for name, binary in (("v2_json", False), ("v2_binary", True)):
        body, json_length = v2_body(fields, binary)
        bodies[name] = ("/v2/models/mnist/infer", body, json_length)
    for name, (path, body, json_length) in bodies.items():
        content_type = "application/octet-stream" if json_length else "application/json"
        headers = {"Content-Type": content_type}
        if json_length:
            headers["Inference-Header-Content-Length"] = str(json_length)
        bodies = write_bodies(work, f"{name}-{batch}", [body])
        runs[name] = {"bodies": bodies, "path": path, "content_type": content_type, "json_length": json_length}
        checks[name] = (path, {"data": body, "headers": headers})
    return runs, checks, labels


def predicted(name: str, response: requests.Response) -> list[int]:
    """The digits an answer gives, read as each way's own client would."""
    response.raise_for_status()
    if name == "prediction":
        answer = response.json()
        return [item["prediction"] for item in answer.get("predictions", [answer])]
    if name == "tfserving":
        return np.argmax(response.json()["predictions"], axis=1).tolist()
    length = response.headers.get("Inference-Header-Content-Length")
    result = triton.InferenceServerClient.parse_response_body(response.content, header_length=length and int(length))
    return result.as_numpy("probabilities").argmax(axis=1).tolist()


def measure(seconds: int, rounds: int, concurrency: int, work: Path) -> dict:
    results = {"machine": machine(), "date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
               "seconds_per_run": seconds, "rounds": rounds, "concurrency": concurrency, "batches": {}}  # fmt: skip
    with gunicorn(work / "gunicorn.log") as server:
        session = requests.Session()
        for batch in BATCHES:
            runs, checks, labels = requests_for(batch, work)
            for name, (path, arguments) in checks.items():
                answer = predicted(name, session.post(server.url + path, timeout=10, **arguments))
                expected = np.array([labels[0]] * batch if name == "prediction" else labels)
                assert len(answer) == batch and (np.array(answer) == expected).mean() >= 0.95, (name, answer)
            measured = {name: [] for name in WAYS}
            for round_number in range(rounds):
                order = list(WAYS)[round_number % len(WAYS) :] + list(WAYS)[: round_number % len(WAYS)]
                for name in order:  # rotate who goes first
                    time.sleep(COOL_DOWN)
                    cpu_before = server.cpu_seconds()
                    run = wrk(server.url, concurrency=concurrency, seconds=seconds, **runs[name])
                    run["images_per_s"] = run["requests_per_s"] * batch
                    run["cpu_ms_per_image"] = (server.cpu_seconds() - cpu_before) * 1000 / max(run["requests"] * batch, 1)
                    measured[name].append(run)
                    print(f"batch {batch:<3} round {round_number + 1} {name:12s} {run['images_per_s']:9.0f} images/s  "
                          f"p99 {run['p99_ms']:7.1f} ms  cpu {run['cpu_ms_per_image']:.3f} ms/image  errors {run['errors']}", flush=True)  # fmt: skip
            results["batches"][str(batch)] = measured
    return results


def ratio(runs: dict, ours: str, other: str, key: str = "images_per_s") -> float:
    """Within each round (the two ran back to back), then the median over the rounds."""
    return statistics.median(a[key] / b[key] for a, b in zip(runs[ours], runs[other]))


def markdown(results: dict) -> str:
    lines = [
        f"Machine: {results['machine']}. {results['date']}. One mnist_flask (Gunicorn, 2 workers), wrk at "
        f"{results['concurrency']} connections, {results['seconds_per_run']} s per run, {results['rounds']} rounds; "
        "each cell is the median round, errors are summed; ratios are taken within a round, then the median.",
        "",
        "| way | digits per request | images/s | p99 ms | errors | server CPU ms per image | images/s ÷ V2 binary's | CPU per image ÷ V2 binary's |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for batch, runs in results["batches"].items():
        for name in WAYS:
            median = sorted(runs[name], key=lambda run: run["images_per_s"])[len(runs[name]) // 2]
            errors = sum(run["errors"] for run in runs[name])
            lines.append(
                f"| {name} | {batch} | {median['images_per_s']:.0f} | {median['p99_ms']:.2f} | {errors} | "
                f"{median['cpu_ms_per_image']:.3f} | {ratio(runs, name, 'v2_binary'):.2f} | "
                f"{ratio(runs, name, 'v2_binary', 'cpu_ms_per_image'):.2f} |"
            )
    lines += ["", *[f"- `{name}`: {what}" for name, what in WAYS.items()]]
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=int, default=5)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--concurrency", type=int, default=8)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as work:
        results = measure(args.seconds, args.rounds, args.concurrency, Path(work))
    save(results, "v2", markdown(results))


if __name__ == "__main__":
    main()
