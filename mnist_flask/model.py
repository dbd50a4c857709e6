"""The model store on disk and the per-worker classifier that serves from it.

Layout: ``<MODEL_DIR>/<name>/<version>/`` holds ``metadata.json`` and the file its runtime serves
(``model.tflite`` for LiteRT, ``model.onnx`` for ONNX Runtime); versions trained here also keep
``model.keras``, and versions added with ``mnist-flask models add`` keep what was added in ``original/``.
"""

from __future__ import annotations

import json
import os
import random
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np
from flask import Flask, current_app
from werkzeug.exceptions import NotFound, ServiceUnavailable

from . import likeness
from .preprocessing import LIKELY_DIGIT, SURE_DIGIT, Digit, ImageError
from .runtimes import RUNTIMES, adapter

KERAS_FILE, TFLITE_FILE, METADATA_FILE = "model.keras", "model.tflite", "metadata.json"
LABELS_FILE = "labels.json"  # in <MODEL_DIR>/<name>/: version labels such as stable and canary
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


def readable_metadata(folder: Path) -> dict:
    """A version's metadata, or an empty one where it is not a JSON object (hand-made, damaged)."""
    try:
        meta = read_metadata(folder)
    except (OSError, ValueError):
        return {}
    return meta if isinstance(meta, dict) else {}


def field_of(meta: dict, *keys: str, default="unknown"):
    for key in keys:
        if not isinstance(meta, dict) or key not in meta:
            return default
        meta = meta[key]
    return meta


def describe_version(folder: Path) -> dict:
    """What `models list` and the /models page show of a version; versions trained here (they record
    their training) are Keras models served by LiteRT. Fields a version lacks are "unknown"."""
    meta = readable_metadata(folder)
    trained_here = "training" in meta
    return {
        "created": field_of(meta, "created"),
        "format": field_of(meta, "source", "format", default="keras" if trained_here else "unknown"),
        "runtime": field_of(meta, "runtime", default="litert" if trained_here else "unknown"),
        "accuracy": field_of(meta, "evaluation", "accuracy", default=None),
        "source": field_of(meta, "source", "location", default=field_of(meta, "training_data", "source")),
    }


SECOND_LOOK_BELOW = 0.99  # a first reading the model is less sure of is read again, where the picture allows
CLEAR_OF_EDGE_SURE = 0.9  # a second look clear of the picture's edge replaces a first at it when the model is this sure of it


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
        """One model call for the whole batch (and one more for second looks), then the API's
        answer for each digit."""
        digits, probabilities = self.second_looks(digits, self.predict(np.array([digit.pixels for digit in digits])))
        return [self.answer(digit, row) for digit, row in zip(digits, rounded_probabilities(probabilities))]

    def second_looks(self, digits: list[Digit], probabilities: np.ndarray) -> tuple[list[Digit], np.ndarray]:
        """Where a digit was not found, or its strokes reach the picture's edge, or the model gives
        it less than ``SECOND_LOOK_BELOW``, or it looks like no digit (``LIKELY_DIGIT``: a digit's
        part the model is sure of), and the picture can be read other ways
        (:attr:`Digit.second_look`): the reading the model prefers (:func:`preference`). The
        other readings are made only here, for the few pictures in doubt."""
        readable = [index for index, digit in enumerate(digits) if digit.second_look]
        looks = dict(zip(readable, likenesses([digits[index] for index in readable])))
        doubtful = [
            index for index in readable
            if not digits[index].found or digits[index].at_edge or probabilities[index].max() < SECOND_LOOK_BELOW or looks[index] < LIKELY_DIGIT
        ]  # fmt: skip
        looked = [(index, other) for index in doubtful for other in digits[index].second_look()]
        if not looked:
            return digits, probabilities
        again = self.predict(np.array([other.pixels for _, other in looked]))
        digits, probabilities = list(digits), probabilities.copy()
        first = {index: (digits[index].at_edge, looks[index] < LIKELY_DIGIT) for index in doubtful}
        rank = {index: preference(digits[index], probabilities[index], looks[index], *first[index]) for index in doubtful}
        for (index, other), row, other_likeness in zip(looked, again, likenesses([other for _, other in looked])):
            other_rank = preference(other, row, other_likeness, *first[index])
            if other_rank > rank[index]:
                digits[index], probabilities[index], rank[index] = other, row, other_rank
        return digits, probabilities

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


def preference(digit: Digit, probabilities: np.ndarray, likeness: float, first_at_edge: bool, first_unlike: bool) -> tuple[bool, bool, bool, bool, float]:
    """How a reading ranks among a picture's readings: found first; then one that does not span
    the picture (the desk around a note, taken in with the digit, reads as a confident "2");
    then, where the first reading reaches the picture's edge, a reading clear of it that the model
    is ``CLEAR_OF_EDGE_SURE`` of (a shadow's tip at the edge reads as a confident "1"); then,
    where the first reading looks like no digit, one whose ``likeness`` reaches ``SURE_DIGIT``
    and that the model is as sure of (a digit's stem, its loop lost, reads as a confident "1");
    then the model's confidence. Likeness alone does not rank readings: a digit cut by a
    shadow's edge can look more like a digit than the whole one."""
    sure = probabilities.max() >= CLEAR_OF_EDGE_SURE
    clear = first_at_edge and not digit.at_edge and sure
    likely = first_unlike and sure and likeness >= SURE_DIGIT
    return digit.found, not digit.spans, clear, likely, float(probabilities.max())


def likenesses(digits: list[Digit]) -> np.ndarray:
    """How much each reading looks like a digit (:mod:`mnist_flask.likeness`), 0 where nothing was
    found: one pass of the likeness network for them all."""
    if not digits:
        return np.zeros(0)
    found = np.array([digit.found for digit in digits])
    return np.where(found, likeness.shipped()(np.array([digit.pixels for digit in digits])), 0.0)


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


LABEL_PATTERN = re.compile(r"[A-Za-z][A-Za-z0-9_.-]{0,62}")
CANARY = "canary"


def read_labels(model_dir: Path, name: str) -> dict[str, int]:
    """``labels.json`` in the model's folder: ``{"stable": 3, "canary": 4}``; none when it is missing."""
    path = Path(model_dir) / name / LABELS_FILE
    if not path.is_file():
        return {}
    labels = json.loads(path.read_text())
    if not isinstance(labels, dict) or not all(isinstance(v, int) and not isinstance(v, bool) for v in labels.values()):
        raise ValueError(f"{path} must map label names to version numbers, e.g. {{\"stable\": 3}}")
    return labels


def write_label(model_dir: Path, name: str, label: str, version: int | None) -> dict[str, int]:
    """Point ``label`` at an existing ``version`` (None: remove it): written to a temporary file, then
    renamed over the old one, so a worker starting meanwhile reads the old labels or the new ones."""
    if not LABEL_PATTERN.fullmatch(label):
        raise ValueError(f"label {label!r}: use a letter, then letters, digits, '_', '.' or '-' (e.g. stable, canary)")
    if version is not None and version not in list_versions(model_dir, name):
        raise ModelNotFound(f"model {name!r} has no version {version} in {model_dir} (has {list_versions(model_dir, name)})")
    labels = {**read_labels(model_dir, name), label: version}
    if version is None:
        del labels[label]
    path = Path(model_dir) / name / LABELS_FILE
    staging = path.with_name(f".{LABELS_FILE}.{os.getpid()}")
    staging.write_text(json.dumps(dict(sorted(labels.items())), indent=2) + "\n")
    os.replace(staging, path)
    return labels


def versions_to_load(available: list[int], policy) -> list[int]:
    """``MODEL_VERSIONS_LOADED``: ``"all"``, or ``N`` / ``"latest N"`` for the newest N versions."""
    if policy in (None, "all"):
        return list(available)
    text = str(policy).removeprefix("latest").strip()
    if not text.isdigit() or int(text) < 1:
        raise ValueError(f"MODEL_VERSIONS_LOADED={policy!r}: use all, a number N or latest N (N >= 1)")
    return available[-int(text):]


def canary_percent(value) -> float:
    """``CANARY_PERCENT``: a number from 0 to 100."""
    try:
        percent = float(value or 0)
    except (TypeError, ValueError):
        percent = -1.0
    if not 0 <= percent <= 100:
        raise ValueError(f"CANARY_PERCENT={value!r}: use a number from 0 to 100")
    return percent


class UnknownVersion(NotFound):
    """A version or label this server does not have: 404 naming the ones it has."""


@dataclass
class ModelSlot:
    """This worker's versions: every one that loaded, the one unpinned traffic goes to (``classifier``),
    the labels, the versions that failed to load and why, and why there is no default if there is none
    (readiness reports it instead of crash-looping)."""

    classifier: Classifier | None = None
    problem: str | None = None
    failures: dict[int, str] = field(default_factory=dict)
    loaded: dict[int, Classifier] = field(default_factory=dict)
    not_loaded: dict[int, str] = field(default_factory=dict)  # left out by MODEL_VERSIONS_LOADED
    labels: dict[str, int] = field(default_factory=dict)
    canary_percent: float = 0.0

    @property
    def canary(self) -> Classifier | None:
        """The version labelled ``canary`` when it loaded, a share is set and it is not the default."""
        canary = self.loaded.get(self.labels.get(CANARY))
        if canary is None or self.canary_percent <= 0 or canary is self.classifier:
            return None
        return canary

    def choose(self) -> Classifier:
        """The classifier for a request that names no version: the canary for its share, else the default."""
        canary = self.canary
        if canary is not None and random.random() * 100 < self.canary_percent:
            return canary
        if self.classifier is None:
            raise ServiceUnavailable(self.problem)
        return self.classifier

    def version(self, version: int | str) -> Classifier:
        text = str(version)
        if text.isdigit() and int(text) in self.loaded:
            return self.loaded[int(text)]
        if text.isdigit() and int(text) in self.failures:
            raise ServiceUnavailable(f"version {text} failed to load: {self.failures[int(text)]}")
        raise UnknownVersion(f"no version {text!r}; versions served: {[str(v) for v in sorted(self.loaded)]}")

    def labelled(self, label: str) -> Classifier:
        if label not in self.labels:
            raise UnknownVersion(f"no label {label!r}; labels: {self.labels or 'none'}")
        return self.version(self.labels[label])

    def named(self, version: int | str | None, label: str | None) -> Classifier:
        return self.version(version) if version is not None else self.labelled(label)

    def labels_of(self, version: int) -> list[str]:
        return sorted(label for label, labelled in self.labels.items() if labelled == version)


def init_app(app: Flask) -> None:
    """Load the model's versions into this process; under Gunicorn that is each worker, after the fork.

    Every version ``MODEL_VERSIONS_LOADED`` asks for is loaded, plus the pinned and the labelled ones.
    Unpinned traffic goes to ``MODEL_VERSION``, or else the newest version that loaded and is not
    labelled ``canary`` (the canary gets ``CANARY_PERCENT`` of it): a broken new
    version is reported (log, readiness, status, metric) while the one before it keeps answering, as
    TF Serving keeps its old version; if none of the wanted versions loads, older ones are tried. A
    pinned version that fails leaves no default (503), while the other versions still answer by name.
    """
    model_dir, name, pinned = Path(app.config["MODEL_DIR"]), app.config["MODEL_NAME"], app.config["MODEL_VERSION"]
    slot = ModelSlot()
    app.extensions[EXTENSION] = slot
    try:
        slot.canary_percent = canary_percent(app.config["CANARY_PERCENT"])
        available = list_versions(model_dir, name)
        wanted = set(versions_to_load(available, app.config["MODEL_VERSIONS_LOADED"]))
    except ValueError as exc:  # a setting's typo: not ready, saying which, rather than a crash loop
        slot.problem = f"model not loaded: {exc}"
        app.logger.error("%s", slot.problem)
        return
    try:
        slot.labels = read_labels(model_dir, name)
    except ValueError as exc:
        app.logger.error("labels not read: %s", exc)
    wanted |= set(slot.labels.values())
    if pinned is not None:
        wanted.add(int(pinned))
    for version in sorted(set(available) | wanted, reverse=True):
        if version not in wanted and (slot.loaded or pinned is not None):
            slot.not_loaded[version] = f"not loaded: MODEL_VERSIONS_LOADED={app.config['MODEL_VERSIONS_LOADED']}"
            continue
        try:
            slot.loaded[version] = load_classifier(model_dir, name, version, app.config["MODEL_BACKEND"])
        except Exception as exc:  # any failure: report it, and serve the others
            slot.failures[version] = f"{type(exc).__name__}: {exc}"
            app.logger.error("model %s:%s not loaded: %s", name, version, slot.failures[version])
    if pinned is not None:
        slot.classifier = slot.loaded.get(int(pinned))
    elif slot.loaded:  # the newest, but a canary gets only its share (unless it is all there is)
        held_back = [version for version in slot.loaded if version != slot.labels.get(CANARY)]
        slot.classifier = slot.loaded[max(held_back or slot.loaded)]
    if slot.classifier is not None:
        served = ", ".join(f"{c.label} ({c.backend})" for c in slot.loaded.values())
        app.logger.info("serving %s by default; loaded %s", slot.classifier.label, served)
        return
    if not available and pinned is None:
        slot.problem = f"model not loaded: {ModelNotFound(f'no versions of model {name!r} in {model_dir}')}"
    else:
        failed = "; ".join(f"{name}:{version}: {why}" for version, why in slot.failures.items() if pinned is None or int(pinned) == version)
        slot.problem = f"model not loaded: {failed}"
    app.logger.error("%s", slot.problem)


def model_slot() -> ModelSlot:
    return current_app.extensions[EXTENSION]


def get_classifier() -> Classifier:
    """The default version (``MODEL_VERSION`` or the newest loaded), or 503 saying why there is none."""
    slot = model_slot()
    if slot.classifier is None:
        raise ServiceUnavailable(slot.problem)
    return slot.classifier
