"""Accuracy per upload style through the real HTTP endpoint of a real Gunicorn.

    python -m bench.upload_accuracy [--per-style 1000] [--seed 0]

Digits come from x_test only; each style renders them as a person's upload would look
(mnist_flask/upload_styles.py). Writes bench/results/upload_accuracy.md and prints it.
"""

from __future__ import annotations

import argparse
import tempfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import requests

from bench.harness import ROOT, gunicorn
from mnist_flask.upload_styles import STYLES, generate, no_digit_pictures

TARGETS = {"mnist": 0.99}
DEFAULT_TARGET = 0.97


def post_all(url: str, pictures: list[tuple[bytes, str]]) -> list[dict]:
    session = requests.Session()

    def post(picture):
        data, content_type = picture
        response = session.post(url + "/prediction", files={"image": ("upload", data, content_type)}, timeout=30)
        response.raise_for_status()
        return response.json()

    with ThreadPoolExecutor(4) as pool:
        return list(pool.map(post, pictures))


def measure(url: str, per_style: int, seed: int) -> list[tuple[str, float, float, float]]:
    with np.load(ROOT / "data" / "mnist.npz") as data:
        images, labels = data["x_test"], data["y_test"]
    chosen = np.random.default_rng(seed).choice(len(images), per_style, replace=False)
    rows = []
    for style in STYLES:
        answers = post_all(url, generate(style, images[chosen], seed))
        correct = np.mean([a["prediction"] == label for a, label in zip(answers, labels[chosen])])
        found = np.mean([a["digit_found"] for a in answers])
        rows.append((style, correct, found, TARGETS.get(style, DEFAULT_TARGET)))
    return rows


def table(rows, no_digit: dict[str, bool], per_style: int) -> str:
    lines = [
        f"| style | accuracy ({per_style} x_test digits) | digit found | target |",
        "|---|---|---|---|",
        *[f"| {style} | {acc:.2%} | {found:.1%} | ≥ {target:.0%} {'✓' if acc >= target else '✗'} |" for style, acc, found, target in rows],
        "",
        "| picture with no digit | digit_found |",
        "|---|---|",
        *[f"| {name} | {str(found).lower()} |" for name, found in no_digit.items()],
    ]
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--per-style", type=int, default=2000)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp, gunicorn(Path(tmp) / "gunicorn.log") as server:
        rows = measure(server.url, args.per_style, args.seed)
        pictures = no_digit_pictures(args.seed)
        flags = post_all(server.url, [(data, "image/png") for data in pictures.values()])
        no_digit = {name: answer["digit_found"] for name, answer in zip(pictures, flags)}
    report = table(rows, no_digit, args.per_style)
    out = ROOT / "bench" / "results" / "upload_accuracy.md"
    out.parent.mkdir(exist_ok=True)
    out.write_text(report)
    print(report)


if __name__ == "__main__":
    main()
