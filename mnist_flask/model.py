"""The model store on disk and the per-worker classifier that serves from it.

Layout: ``<MODEL_DIR>/<name>/<version>/`` holds ``metadata.json`` and the file its runtime serves
(``model.tflite`` for LiteRT, ``model.onnx`` for ONNX Runtime); versions trained here also keep
``model.keras``, and versions added with ``mnist-flask models add`` keep what was added in ``original/``.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np
from flask import Flask, current_app
from werkzeug.exceptions import ServiceUnavailable

from .preprocessing import Digit, ImageError
from .runtimes import RUNTIMES, adapter

KERAS_FILE, TFLITE_FILE, METADATA_FILE = "model.keras", "model.tflite", "metadata.json"
EXTENSION = "mnist_classifier"
RUNTIME_MODULES = {"litert": "ai_edge_litert", "onnxruntime": "onnxruntime", "keras": "keras"}
RUNTIME_PACKAGES = {"litert": "ai-edge-litert", "onnxruntime": "onnxruntime", "keras": "tensorflow-cpu"}


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
    """Probabilities for a batch of 28x28 float32 fields (ink 1.0 on 0.0), whatever layout, pixel
    convention and output kind the model has; one instance per Gunicorn worker."""

    name: str
    version: int
    backend: str
    metadata: dict
    predict: Callable[[np.ndarray], np.ndarray] = field(repr=False)  # fields [N,28,28] -> probabilities [N,10]

    @property
    def label(self) -> str:
        return f"{self.name}:{self.version}"

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


def choose_backend(folder: Path, backend: str) -> str:
    """``auto``: the first runtime in :data:`RUNTIMES` whose file the version has and that is installed."""
    if backend != "auto":
        return backend
    servable = [name for name, (_, filename) in RUNTIMES.items() if (folder / filename).is_file()]
    for name in servable:
        if runtime_installed(name):
            return name
    if servable:
        wanted = [RUNTIME_PACKAGES[name] for name in servable]
        raise ModelNotFound(f"{folder} is served by {' or '.join(servable)}, not installed here: pip install {wanted[0]}")
    files = ", ".join(sorted(path.name for path in folder.iterdir()))
    raise ModelNotFound(f"{folder} has no file a runtime serves (has {files})")


def runtime_installed(name: str) -> bool:
    try:
        __import__(RUNTIME_MODULES[name])
    except ImportError:
        return False
    return True


def load_classifier(model_dir: Path, name: str, version: int | None, backend: str = "auto") -> Classifier:
    folder = version_dir(model_dir, name, version)
    backend = choose_backend(folder, backend)
    if backend not in RUNTIMES:
        raise ValueError(f"unknown model backend {backend!r}; choose one of auto, {', '.join(RUNTIMES)}")
    make_runner, filename = RUNTIMES[backend]
    metadata = read_metadata(folder)
    model_input, output = metadata.get("input") or {}, metadata.get("output") or {}
    classifier = Classifier(
        name=name,
        version=int(folder.name),
        backend=backend,
        metadata=metadata,
        predict=adapter(
            make_runner(folder / filename),
            model_input.get("convention", "unit"),
            output.get("kind", "probabilities"),
        ),
    )
    classifier.predict(np.zeros((1, 28, 28), np.float32))  # warm-up: the first request pays nothing
    return classifier


@dataclass
class ModelSlot:
    """This worker's model, the versions that failed to load and why, or why there is no model
    (readiness reports it instead of crash-looping)."""

    classifier: Classifier | None = None
    problem: str | None = None
    failures: dict[int, str] = field(default_factory=dict)


def init_app(app: Flask) -> None:
    """Load the model into this process; under Gunicorn that is each worker, after the fork.

    With no ``MODEL_VERSION`` the newest version that loads is served: a broken new version is
    reported (log, readiness, status, metric) while the one before it keeps answering, as TF Serving
    keeps its old version. A pinned version is served or nothing is.
    """
    model_dir, name, pinned = Path(app.config["MODEL_DIR"]), app.config["MODEL_NAME"], app.config["MODEL_VERSION"]
    slot = ModelSlot()
    app.extensions[EXTENSION] = slot
    candidates = [int(pinned)] if pinned is not None else list_versions(model_dir, name)[::-1]
    for version in candidates:
        try:
            slot.classifier = load_classifier(model_dir, name, version, app.config["MODEL_BACKEND"])
        except Exception as exc:  # any failure: report it and try the version before
            slot.failures[version] = f"{type(exc).__name__}: {exc}"
            app.logger.error("model %s:%s not loaded: %s", name, version, slot.failures[version])
            continue
        app.logger.info("serving %s with %s", slot.classifier.label, slot.classifier.backend)
        return
    if not candidates:
        slot.problem = f"model not loaded: {ModelNotFound(f'no versions of model {name!r} in {model_dir}')}"
    else:
        failed = "; ".join(f"{name}:{version}: {why}" for version, why in slot.failures.items())
        slot.problem = f"model not loaded: {failed}"
    app.logger.error("%s", slot.problem)


def model_slot() -> ModelSlot:
    return current_app.extensions[EXTENSION]


def get_classifier() -> Classifier:
    slot = model_slot()
    if slot.classifier is None:
        raise ServiceUnavailable(slot.problem)
    return slot.classifier
