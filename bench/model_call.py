"""What one model call costs per digit, by serving path, on this machine.

    python -m bench.model_call [--calls 300]

Keras eager ``model(x)`` and ``model.predict`` (what tutorials do), a ``tf.function`` with a fixed
input signature (the Keras fallback backend), and the LiteRT interpreter (the default backend),
all on the shipped model and the same preprocessed test digit. Prints a Markdown table.
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from bench.harness import ROOT
from mnist_flask.config import Defaults
from mnist_flask.model import KERAS_FILE, load_classifier, version_dir
from mnist_flask.training import preprocess_all


def per_call_us(call, calls: int) -> float:
    for _ in range(min(20, calls)):
        call()
    started = time.perf_counter()
    for _ in range(calls):
        call()
    return (time.perf_counter() - started) / calls * 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=300)
    args = parser.parse_args()
    with np.load(ROOT / "data" / "mnist.npz") as data:
        batch = preprocess_all(data["x_test"][:1])[..., None]
    litert = load_classifier(Defaults.MODEL_DIR, Defaults.MODEL_NAME, None, "litert")
    traced = load_classifier(Defaults.MODEL_DIR, Defaults.MODEL_NAME, None, "keras")
    import keras

    model = keras.saving.load_model(version_dir(Defaults.MODEL_DIR, Defaults.MODEL_NAME) / KERAS_FILE)
    paths = {
        "Keras `model.predict(x)`": lambda: model.predict(batch, verbose=0),
        "Keras eager `model(x)`": lambda: model(batch, training=False).numpy(),
        "`tf.function`, fixed signature (backend `keras`)": lambda: traced.predict(batch),
        "LiteRT interpreter (backend `litert`)": lambda: litert.predict(batch),
    }
    print(f"| serving path ({litert.label}, one digit) | µs per call |\n|---|---|")
    for name, call in paths.items():
        calls = args.calls if "predict(x)" not in name else max(20, args.calls // 10)
        print(f"| {name} | {per_call_us(call, calls):,.0f} |")


if __name__ == "__main__":
    main()
