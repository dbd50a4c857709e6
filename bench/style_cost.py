"""Per upload style, in one process: the cost of reading a picture, and the served model's accuracy.

    python -m bench.style_cost [--per-style 300] [--seed 0] [--held-out] [--styles notebook,form_field]
                               [--before main]

The pictures are those of ``make upload-accuracy`` (x_test digits only, seeded); each is read by
``prepare_upload`` and answered by the newest model as the server answers it (``Classifier.answers``,
second looks included): median microseconds of the thread's CPU time per picture, best of three
passes (on a shared machine it holds steadier than wall time). The 28x28 MNIST PNG is the baseline the other styles'
cost is compared with. ``--held-out`` draws the photo-of-paper styles from outside the parameter
ranges the preprocessing was tuned on. ``--before REF`` also times (and scores) the preprocessing
module of git revision REF on the same pictures, interleaved with the current one, so that both see
the same machine load.
"""

from __future__ import annotations

import argparse
import importlib.util
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from bench.harness import ROOT
from bench.upload_styles import STYLES, generate
from mnist_flask.model import load_classifier
from mnist_flask.preprocessing import prepare_upload

MAX_PIXELS = 40_000_000


def preprocessing_at(revision: str):
    """``prepare_upload`` as the package had it at a git revision (same compiled helpers)."""
    source = subprocess.run(
        ["git", "show", f"{revision}:mnist_flask/preprocessing.py"], cwd=ROOT, check=True, capture_output=True, text=True
    ).stdout
    path = Path(tempfile.mkdtemp()) / "preprocessing_before.py"
    path.write_text(source)
    spec = importlib.util.spec_from_file_location("mnist_flask._preprocessing_before", path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module.prepare_upload


def measure(style: str, images: np.ndarray, labels: np.ndarray, seed: int, held_out: bool, classifier, versions: dict) -> dict:
    """Per version of ``prepare_upload``: median µs of CPU per picture (best of 3 interleaved passes),
    accuracy and how often a digit was found."""
    pictures = generate(style, images, seed, held_out)
    timings = {name: [] for name in versions}
    for _ in range(3):
        for name, prepare in versions.items():
            passes = []
            for data, _ in pictures:
                start = time.thread_time()
                classifier.answers([prepare(data, MAX_PIXELS)])
                passes.append(time.thread_time() - start)
            timings[name].append(passes)
    rows = {}
    for name, prepare in versions.items():
        answers = classifier.answers([prepare(data, MAX_PIXELS) for data, _ in pictures])
        predictions = np.array([answer["prediction"] for answer in answers])
        rows[name] = {
            "microseconds": float(np.median(np.min(timings[name], axis=0))) * 1e6,
            "accuracy": float(np.mean(predictions == labels)),
            "found": float(np.mean([answer["digit_found"] for answer in answers])),
            "wrong": np.flatnonzero(predictions != labels)[:12].tolist(),
        }
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--per-style", type=int, default=300)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--held-out", action="store_true")
    parser.add_argument("--styles", default=",".join(STYLES))
    parser.add_argument("--before", help="git revision whose preprocessing to compare with")
    parser.add_argument("--version", type=int, help="model version to read with; default: the newest")
    args = parser.parse_args()
    with np.load(ROOT / "data" / "mnist.npz") as data:
        images, labels = data["x_test"], data["y_test"]
    chosen = np.random.default_rng(args.seed).choice(len(images), args.per_style, replace=False)
    classifier = load_classifier(ROOT / "models", "mnist", args.version, backend="litert")
    versions = {"now": prepare_upload, **({args.before: preprocessing_at(args.before)} if args.before else {})}
    columns = [f"{name}: {what}" for name in versions for what in ("µs", "x 28x28", "accuracy", "found")]
    print(f"| style ({args.per_style} x_test digits{', held-out ranges' if args.held_out else ''}) | " + " | ".join(columns) + " |")
    print("|---" * (1 + len(columns)) + "|")
    baseline = {}
    for style in ["mnist", *[s for s in args.styles.split(",") if s != "mnist"]]:
        rows = measure(style, images[chosen], labels[chosen], args.seed, args.held_out, classifier, versions)
        cells = []
        for name, row in rows.items():
            baseline.setdefault(name, row["microseconds"])
            cells += [f"{row['microseconds']:.0f}", f"{row['microseconds'] / baseline[name]:.1f}", f"{row['accuracy']:.2%}", f"{row['found']:.1%}"]
        print(f"| {style} | " + " | ".join(cells) + " |", flush=True)
        for name, row in rows.items():
            if row["wrong"]:
                print(f"<!-- {style} {name}: wrong at {row['wrong']} -->", flush=True)


if __name__ == "__main__":
    main()
