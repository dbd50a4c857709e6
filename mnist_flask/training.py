"""Train, export and evaluate the digit classifier.

TensorFlow is imported here and in the Keras serving fallback only: a LiteRT worker never loads it.
"""

from __future__ import annotations

import hashlib
import json
import platform
from datetime import datetime, timezone
from pathlib import Path

import numpy as np

from .model import KERAS_FILE, METADATA_FILE, TFLITE_FILE, list_versions
from .preprocessing import to_mnist
from .runtimes import litert_runner

VALIDATION_SIZE = 1000  # held out of x_train to watch training; x_test is never seen in training


def load_mnist(path: str | None):
    """``(x_train, y_train), (x_test, y_test)`` from a local ``mnist.npz`` or Keras' downloader."""
    if path:
        with np.load(path) as data:
            return (data["x_train"], data["y_train"]), (data["x_test"], data["y_test"])
    import keras

    return keras.datasets.mnist.load_data()


def sha256_of(path: str) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def preprocess_all(images: np.ndarray) -> np.ndarray:
    """The serving recipe applied to a stack of images, so training sees what the server sends."""
    return np.stack([to_mnist(image).pixels for image in images])


def build_model():
    """A small CNN: 40k parameters, about 16 µs per digit in LiteRT with 8-bit weights, and on a
    1,000-digit validation split as accurate as a CNN with eight times the compute, while smaller
    float networks lost accuracy (docs/performance.md)."""
    import keras
    from keras import layers

    def conv(filters, padding="same"):
        return [layers.Conv2D(filters, 3, padding=padding, use_bias=False), layers.BatchNormalization(), layers.ReLU()]

    return keras.Sequential(
        [
            keras.Input((28, 28, 1)),
            *conv(16),
            layers.MaxPooling2D(),
            *conv(32),
            layers.MaxPooling2D(),
            *conv(64, padding="valid"),
            layers.Flatten(),
            layers.Dropout(0.3),
            layers.Dense(10, activation="softmax"),
        ],
        name="mnist_cnn",
    )


def augmenter(seed: int):
    """What preprocessing cannot undo: slant, slight rotation, size and stroke width."""
    import keras
    import tensorflow as tf
    from keras import layers

    geometry = keras.Sequential(
        [
            layers.RandomRotation(0.04, fill_mode="constant", seed=seed),
            layers.RandomZoom((-0.12, 0.12), fill_mode="constant", seed=seed + 1),
            layers.RandomTranslation(0.08, 0.08, fill_mode="constant", seed=seed + 2),
        ]
    )
    generator = tf.random.Generator.from_seed(seed)

    def stroke_width(images):
        thicker = tf.nn.max_pool2d(images, 2, 1, "SAME")
        thinner = -tf.nn.max_pool2d(-images, 2, 1, "SAME")
        choice = generator.uniform([tf.shape(images)[0], 1, 1, 1])
        return tf.where(choice < 0.2, thicker, tf.where(choice < 0.3, thinner, images))

    def augment(images, labels):
        images = geometry(images, training=True)
        return tf.clip_by_value(stroke_width(images), 0.0, 1.0), labels

    return augment


def train(
    data: str | None,
    model_dir: Path,
    name: str,
    version: int | None,
    epochs: int,
    seed: int = 1,
    limit: int | None = None,
    log=print,
) -> Path:
    """Train on x_train only, export Keras + LiteRT into a new version folder, return it."""
    import keras
    import tensorflow as tf

    keras.utils.set_random_seed(seed)
    (x_train, y_train), (x_test, y_test) = load_mnist(data)
    if limit:
        x_train, y_train = x_train[:limit], y_train[:limit]
    log(f"preprocessing {len(x_train)} training digits")
    x = preprocess_all(x_train)[..., None]
    order = np.random.default_rng(seed).permutation(len(x))
    valid, fit = order[: min(VALIDATION_SIZE, len(x) // 10)], order[min(VALIDATION_SIZE, len(x) // 10) :]

    dataset = (
        tf.data.Dataset.from_tensor_slices((x[fit], y_train[fit]))
        .shuffle(len(fit), seed=seed)
        .batch(64)
        .map(augmenter(seed), num_parallel_calls=tf.data.AUTOTUNE)
        .prefetch(tf.data.AUTOTUNE)
    )
    model = build_model()
    model.compile(
        optimizer=keras.optimizers.AdamW(keras.optimizers.schedules.CosineDecay(3e-3, epochs * len(dataset))),
        loss="sparse_categorical_crossentropy",
        metrics=["accuracy"],
    )
    model.fit(
        dataset,
        epochs=epochs,
        validation_data=(x[valid], y_train[valid]),
        verbose=2,
    )
    folder = Path(model_dir) / name / str(version or (max(list_versions(model_dir, name), default=0) + 1))
    export(model, folder)
    evaluation = evaluate_export(model, folder, preprocess_all(x_test), y_test)
    metadata = {
        "name": name,
        "version": int(folder.name),
        "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "training_data": {
            "source": str(data) if data else "keras.datasets.mnist.load_data()",
            "sha256": sha256_of(data) if data else None,
            "split": "x_train",
            "samples": int(len(fit)),
            "validation_samples": int(len(valid)),
        },
        "training": {"epochs": epochs, "seed": seed, "augmentation": "rotation, zoom, shift, stroke width"},
        "evaluation": {"split": "x_test", "samples": int(len(x_test)), **evaluation},
        "input": {"shape": [28, 28], "dtype": "float32", "range": [0.0, 1.0], "ink": "bright on black"},
        "output": {"shape": [10], "meaning": "softmax probabilities of the digits 0-9"},
        "files": {"keras": KERAS_FILE, "tflite": TFLITE_FILE},
        "conversion": {"tflite": "TFLiteConverter.from_keras_model, Optimize.DEFAULT (8-bit weights, float input/output)"},
        "versions": {"tensorflow": tf.__version__, "keras": keras.__version__, "python": platform.python_version()},
    }
    (folder / METADATA_FILE).write_text(json.dumps(metadata, indent=2) + "\n")
    log(
        f"version {folder.name}: accuracy on x_test {evaluation['accuracy']:.4%} served (LiteRT), "
        f"{evaluation['keras_accuracy']:.4%} Keras, same digit for {evaluation['litert_keras_agreement']:.4%}; "
        f"written to {folder}"
    )
    return folder


def export(model, folder: Path) -> None:
    """Keras file as the source of truth, and TensorFlow's own LiteRT conversion of it for serving.

    The conversion stores the weights in 8 bits (``Optimize.DEFAULT``, dynamic range): a digit
    takes ~16 µs instead of ~37 µs at the same accuracy; input and output stay float32 and the Keras
    file keeps the exact weights (docs/performance.md).
    """
    import tensorflow as tf

    folder.mkdir(parents=True, exist_ok=True)
    model.save(folder / KERAS_FILE)
    converter = tf.lite.TFLiteConverter.from_keras_model(model)
    converter.optimizations = [tf.lite.Optimize.DEFAULT]
    (folder / TFLITE_FILE).write_bytes(converter.convert())


def evaluate_export(model, folder: Path, fields: np.ndarray, labels: np.ndarray) -> dict:
    """Accuracy of what is served (LiteRT) and of the Keras source, and how often they agree."""
    keras_probabilities = model.predict(fields[..., None], verbose=0)
    litert_probabilities = litert_runner(folder / TFLITE_FILE).run(fields[..., None])
    return {
        "accuracy": round(accuracy(litert_probabilities, labels), 5),
        "keras_accuracy": round(accuracy(keras_probabilities, labels), 5),
        "litert_keras_agreement": round(float((litert_probabilities.argmax(1) == keras_probabilities.argmax(1)).mean()), 5),
        "litert_keras_max_difference": round(float(np.abs(litert_probabilities - keras_probabilities).max()), 5),
    }


def accuracy(probabilities: np.ndarray, labels: np.ndarray) -> float:
    return float((np.argmax(probabilities, axis=1) == labels).mean())
