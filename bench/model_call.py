"""What one model call costs per digit, by serving path, on this machine.

    python -m bench.model_call [--calls 300]

Keras eager ``model(x)`` and ``model.predict`` (what tutorials do), a ``tf.function`` with a fixed
input signature (the Keras fallback backend), and the LiteRT interpreter (the default backend),
all on the shipped model and the same preprocessed test digit. Then the two runtimes that serve
added models, LiteRT and ONNX Runtime, on one network with the same weights (the lecture's MLP, as
Keras converts it and as PyTorch exports it), per digit at batch 1 and 64. Prints Markdown tables.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np

from bench.harness import ROOT
from mnist_flask.config import Defaults
from mnist_flask.model import KERAS_FILE, load_classifier, version_dir
from mnist_flask.runtimes import Runner, litert_runner, onnx_runner
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
    batch = preprocess_all(data_digits(1))[..., None]
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
    with tempfile.TemporaryDirectory() as folder:
        runtimes = same_network_in_each_runtime(Path(folder))
        fields = preprocess_all(data_digits(64))
        outputs = [runner.run(fields) for runner in runtimes.values()]
        print(f"\n| runtime (lecture MLP, same weights; largest difference {np.abs(outputs[0] - outputs[1]).max():.1e}) "
              "| µs per digit, batch 1 | µs per digit, batch 64 |\n|---|---|---|")
        for name, runner in runtimes.items():
            one = per_call_us(lambda: runner.run(fields[:1]), args.calls)
            many = per_call_us(lambda: runner.run(fields), max(20, args.calls // 10)) / len(fields)
            print(f"| {name} | {one:,.1f} | {many:,.2f} |")


def data_digits(count: int) -> np.ndarray:
    with np.load(ROOT / "data" / "mnist.npz") as data:
        return data["x_test"][:count]


def same_network_in_each_runtime(folder: Path) -> dict[str, Runner]:
    """The lecture's MLP built in Keras and converted to LiteRT as `models add` converts it, and the
    same network with the same weights in PyTorch, exported to ONNX as a PyTorch user would."""
    import keras
    import tensorflow as tf
    import torch

    keras.utils.set_random_seed(0)
    mlp = keras.Sequential([keras.Input((28, 28)), keras.layers.Flatten(), keras.layers.Dense(128, activation="relu"),
                            keras.layers.Dense(10, activation="softmax")])  # fmt: skip
    (folder / "mlp.tflite").write_bytes(tf.lite.TFLiteConverter.from_keras_model(mlp).convert())
    net = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(784, 128), torch.nn.ReLU(), torch.nn.Linear(128, 10),
                              torch.nn.Softmax(dim=1))  # fmt: skip
    with torch.no_grad():
        for layer, dense in ((net[1], mlp.layers[1]), (net[3], mlp.layers[2])):
            kernel, bias = dense.get_weights()
            layer.weight.copy_(torch.from_numpy(kernel.T))
            layer.bias.copy_(torch.from_numpy(bias))
    net.eval()
    torch.onnx.export(net, (torch.zeros(1, 28, 28),), str(folder / "mlp.onnx"), input_names=["input"],
                      dynamic_shapes=({0: torch.export.Dim("batch")},))  # fmt: skip
    return {"LiteRT": litert_runner(folder / "mlp.tflite"), "ONNX Runtime": onnx_runner(folder / "mlp.onnx")}


if __name__ == "__main__":
    main()
