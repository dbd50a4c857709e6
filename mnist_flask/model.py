"""The model store on disk and the per-worker classifier that serves from it.

Layout: ``<MODEL_DIR>/<name>/<version>/`` holds ``model.keras`` (the source of truth),
``model.tflite`` (TensorFlow's own conversion of it, for serving) and ``metadata.json``.
"""

from __future__ import annotations

import json
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np
from flask import Flask, current_app
from werkzeug.exceptions import ServiceUnavailable

from .preprocessing import Digit, ImageError

KERAS_FILE, TFLITE_FILE, METADATA_FILE = "model.keras", "model.tflite", "metadata.json"
EXTENSION = "mnist_classifier"


class ModelNotFound(LookupError):
    pass


def list_versions(model_dir: Path, name: str) -> list[int]:
    """Versions are integer folder names holding metadata, oldest first."""
    root = Path(model_dir) / name
    if not root.is_dir():
        return []
    return sorted(
        int(path.name)
        for path in root.iterdir()
        if path.name.isdigit() and (path / METADATA_FILE).is_file()
    )


def version_dir(model_dir: Path, name: str, version: int | None = None) -> Path:
    """The folder of ``version``, or of the newest version when it is None."""
    versions = list_versions(model_dir, name)
    if not versions:
        raise ModelNotFound(f"no versions of model {name!r} in {model_dir}")
    chosen = versions[-1] if version is None else int(version)
    if chosen not in versions:
        raise ModelNotFound(f"model {name!r} has no version {chosen} in {model_dir} (has {versions})")
    return Path(model_dir) / name / str(chosen)


def read_metadata(path: Path) -> dict:
    return json.loads((Path(path) / METADATA_FILE).read_text())


@dataclass
class Classifier:
    """Probabilities for a batch of 28x28 float32 fields; one instance per Gunicorn worker."""

    name: str
    version: int
    backend: str
    metadata: dict
    run: Callable[[np.ndarray], np.ndarray] = field(repr=False)

    @property
    def label(self) -> str:
        return f"{self.name}:{self.version}"

    def predict(self, fields: np.ndarray) -> np.ndarray:
        batch = np.ascontiguousarray(fields, dtype=np.float32).reshape(-1, 28, 28, 1)
        return self.run(batch)

    def answers(self, digits: list[Digit]) -> list[dict]:
        """One model call for the whole batch, then the API's answer for each digit."""
        rounded = rounded_probabilities(self.predict(np.array([digit.pixels for digit in digits])))
        return [self.answer(digit, row) for digit, row in zip(digits, rounded)]

    def answer(self, digit: Digit, probabilities: list[float]) -> dict:
        best = probabilities.index(max(probabilities))
        return {
            "prediction": best,
            "confidence": probabilities[best],
            "probabilities": probabilities,
            "digit_found": digit.found,
            "box": digit.where(),
            "model": self.label,
        }


def classify_each(items: list, decode: Callable[..., Digit], classify: Callable[[list[Digit]], list[dict]]) -> list[dict]:
    """Answers in input order from one model call; an unreadable picture gets its own error
    (``{"error", "status"}``) and spoils no other."""
    digits: dict[int, Digit] = {}
    failures: dict[int, dict] = {}
    for index, item in enumerate(items):
        try:
            digits[index] = decode(item)
        except ImageError as error:
            failures[index] = {"error": str(error), "status": error.status}
    answers = dict(zip(digits, classify(list(digits.values())))) if digits else {}
    return [answers.get(index) or failures[index] for index in range(len(items))]


def rounded_probabilities(probabilities: np.ndarray) -> list[list[float]]:
    """Six decimals, so that JSON shows 0.99999, not 0.9999899864196777."""
    return np.round(probabilities.astype(np.float64), 6).tolist()


def litert_runner(path: Path) -> Callable[[np.ndarray], np.ndarray]:
    """A LiteRT interpreter: microseconds per digit and no TensorFlow import in the worker."""
    from ai_edge_litert.interpreter import Interpreter

    interpreter = Interpreter(model_path=str(path), num_threads=1)
    interpreter.allocate_tensors()
    model_input = interpreter.get_input_details()[0]
    input_index, allocated_shape = model_input["index"], tuple(model_input["shape"])
    output_index = interpreter.get_output_details()[0]["index"]
    lock = threading.Lock()  # one interpreter, so threaded workers take turns

    def run(batch: np.ndarray) -> np.ndarray:
        nonlocal allocated_shape
        with lock:
            if allocated_shape != batch.shape:
                interpreter.resize_tensor_input(input_index, batch.shape)
                interpreter.allocate_tensors()
                allocated_shape = batch.shape
            interpreter.set_tensor(input_index, batch)
            interpreter.invoke()
            return interpreter.get_tensor(output_index)  # a copy, safe to use after the lock

    return run


def keras_runner(path: Path) -> Callable[[np.ndarray], np.ndarray]:
    """The Keras model itself, traced once with a fixed signature instead of eager calls."""
    import keras
    import tensorflow as tf

    model = keras.saving.load_model(path, compile=False)
    traced = tf.function(
        lambda x: model(x, training=False),
        input_signature=[tf.TensorSpec([None, 28, 28, 1], tf.float32)],
    )
    return lambda batch: traced(batch).numpy()


def choose_backend(folder: Path, backend: str) -> str:
    if backend != "auto":
        return backend
    if not (folder / TFLITE_FILE).is_file():
        return "keras"
    try:
        import ai_edge_litert.interpreter  # noqa: F401
    except ImportError:
        return "keras"
    return "litert"


RUNNERS = {"litert": (litert_runner, TFLITE_FILE), "keras": (keras_runner, KERAS_FILE)}


def load_classifier(model_dir: Path, name: str, version: int | None, backend: str = "auto") -> Classifier:
    folder = version_dir(model_dir, name, version)
    backend = choose_backend(folder, backend)
    if backend not in RUNNERS:
        raise ValueError(f"unknown model backend {backend!r}; choose one of auto, {', '.join(RUNNERS)}")
    make_runner, filename = RUNNERS[backend]
    classifier = Classifier(
        name=name,
        version=int(folder.name),
        backend=backend,
        metadata=read_metadata(folder),
        run=make_runner(folder / filename),
    )
    classifier.predict(np.zeros((1, 28, 28), np.float32))  # warm-up: the first request pays nothing
    return classifier


@dataclass
class ModelSlot:
    """This worker's model, or why there is none (readiness reports it instead of crash-looping)."""

    classifier: Classifier | None = None
    problem: str | None = None


def init_app(app: Flask) -> None:
    """Load the model into this process; under Gunicorn that is each worker, after the fork."""
    try:
        classifier = load_classifier(
            Path(app.config["MODEL_DIR"]),
            app.config["MODEL_NAME"],
            app.config["MODEL_VERSION"],
            app.config["MODEL_BACKEND"],
        )
    except Exception as exc:  # any failure: the worker stays up, not ready, and says why
        app.logger.error("model not loaded: %s", exc)
        app.extensions[EXTENSION] = ModelSlot(problem=f"model not loaded: {exc}")
        return
    app.extensions[EXTENSION] = ModelSlot(classifier=classifier)
    app.logger.info("serving %s with %s", classifier.label, classifier.backend)


def model_slot() -> ModelSlot:
    return current_app.extensions[EXTENSION]


def get_classifier() -> Classifier:
    slot = model_slot()
    if slot.classifier is None:
        raise ServiceUnavailable(slot.problem)
    return slot.classifier
