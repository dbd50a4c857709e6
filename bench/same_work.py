"""mnist_flask's work per upload, for the peers that do it on another web library (the FastAPI twins,
BentoML): the package's own ``prepare_upload``, the classifier its loader gives for the version the
server answers with by default, and the same JSON answer.

Everything here is mnist_flask's code, so a peer differs from mnist_flask only in what serves HTTP.
"""

from __future__ import annotations

from mnist_flask import config
from mnist_flask.model import CANARY, list_versions, load_classifier, read_labels
from mnist_flask.preprocessing import Digit, ImageError, prepare_upload

SETTINGS = config.load()  # mnist_flask's defaults and MNIST_FLASK_* variables, as the server reads them


def served_version() -> int | None:
    """The version a fresh ``gunicorn wsgi:app`` answers with when a request names none: the pinned
    one, else the newest not labelled canary (mnist_flask.model.init_app's rule)."""
    if SETTINGS["MODEL_VERSION"] is not None:
        return int(SETTINGS["MODEL_VERSION"])
    versions = list_versions(SETTINGS["MODEL_DIR"], SETTINGS["MODEL_NAME"])
    canary = read_labels(SETTINGS["MODEL_DIR"], SETTINGS["MODEL_NAME"]).get(CANARY)
    held_back = [version for version in versions if version != canary]
    return max(held_back or versions, default=None)


def served_classifier():
    """That version's classifier, through mnist_flask's own loader and runtime choice."""
    return load_classifier(SETTINGS["MODEL_DIR"], SETTINGS["MODEL_NAME"], served_version(), SETTINGS["MODEL_BACKEND"])


def read_upload(data: bytes) -> Digit | ImageError:
    """The model's input, or the error mnist_flask would answer with."""
    try:
        return prepare_upload(data, SETTINGS["MAX_IMAGE_PIXELS"])
    except ImageError as error:
        return error


def answer_uploads(classifier, uploads: list[bytes]) -> list[tuple[dict, int]]:
    """(JSON answer, status) per upload: the readable ones go to the model in one call, as
    mnist_flask's multi-image requests and a batching server do."""
    read = [read_upload(data) for data in uploads]
    digits = [item for item in read if isinstance(item, Digit)]
    answers = iter(classifier.answers(digits) if digits else [])
    return [({"error": str(item)}, item.status) if isinstance(item, ImageError) else (next(answers), 200) for item in read]
