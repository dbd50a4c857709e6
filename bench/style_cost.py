"""Per upload style, in one process: preprocessing cost and accuracy of the served model.

    python -m bench.style_cost [--per-style 300] [--seed 0] [--held-out] [--styles notebook,form_field]

The pictures are those of ``make upload-accuracy`` (x_test digits only, seeded); each is read and
brought to the model's input by ``prepare_upload`` alone (median microseconds per picture, best of
three passes), then all go to the newest model in one batch. The 28x28 MNIST PNG is the baseline the
other styles' cost is compared with. ``--held-out`` draws the photo-of-paper styles from outside
the parameter ranges the preprocessing was tuned on.
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from bench.harness import ROOT
from mnist_flask.model import load_classifier
from mnist_flask.preprocessing import prepare_upload
from mnist_flask.upload_styles import STYLES, generate

MAX_PIXELS = 40_000_000


def measure(style: str, images: np.ndarray, labels: np.ndarray, seed: int, held_out: bool, classifier) -> dict:
    pictures = generate(style, images, seed, held_out)
    timings = []
    for _ in range(3):
        passes = []
        for data, _ in pictures:
            start = time.perf_counter()
            digit = prepare_upload(data, MAX_PIXELS)
            passes.append(time.perf_counter() - start)
        timings.append(passes)
    digits = [prepare_upload(data, MAX_PIXELS) for data, _ in pictures]
    predictions = classifier.predict(np.stack([digit.pixels for digit in digits])).argmax(axis=1)
    wrong = np.flatnonzero(predictions != labels)
    return {
        "style": style,
        "microseconds": float(np.median(np.min(timings, axis=0))) * 1e6,
        "accuracy": float(np.mean(predictions == labels)),
        "found": float(np.mean([digit.found for digit in digits])),
        "wrong": wrong[:12].tolist(),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--per-style", type=int, default=300)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--held-out", action="store_true")
    parser.add_argument("--styles", default=",".join(STYLES))
    args = parser.parse_args()
    with np.load(ROOT / "data" / "mnist.npz") as data:
        images, labels = data["x_test"], data["y_test"]
    chosen = np.random.default_rng(args.seed).choice(len(images), args.per_style, replace=False)
    classifier = load_classifier(ROOT / "models", "mnist", None, backend="litert")
    print(f"| style ({args.per_style} x_test digits{', held-out ranges' if args.held_out else ''}) "
          "| preprocessing µs (median) | x the 28x28 input | accuracy | digit found |")
    print("|---|---|---|---|---|")
    baseline = None
    for style in ["mnist", *[s for s in args.styles.split(",") if s != "mnist"]]:
        row = measure(style, images[chosen], labels[chosen], args.seed, args.held_out, classifier)
        baseline = baseline or row["microseconds"]
        print(f"| {style} | {row['microseconds']:.0f} | {row['microseconds'] / baseline:.1f} | "
              f"{row['accuracy']:.2%} | {row['found']:.1%} |", flush=True)
        if row["wrong"]:
            print(f"<!-- {style}: wrong at {row['wrong']} -->", flush=True)


if __name__ == "__main__":
    main()
