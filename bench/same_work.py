"""mnist_flask's work per upload, for the peers that do it on another web library (the FastAPI twins,
BentoML): the package's own ``prepare_upload``, the classifier its loader gives for the version the
server answers with by default, and the same JSON answer.

Everything here is mnist_flask's code, so a peer differs from mnist_flask only in what serves HTTP.
"""

from __future__ import annotations

from mnist_flask.config import Defaults
from mnist_flask.model import load_classifier
from mnist_flask.preprocessing import Digit, ImageError, prepare_upload


def served_classifier():
    """The version a fresh ``gunicorn wsgi:app`` answers with when a request names none."""
    return load_classifier(Defaults.MODEL_DIR, Defaults.MODEL_NAME, Defaults.MODEL_VERSION)


def read_upload(data: bytes) -> Digit | ImageError:
    """The model's input, or the error mnist_flask would answer with."""
    try:
        return prepare_upload(data, Defaults.MAX_IMAGE_PIXELS)
    except ImageError as error:
        return error


def answer_uploads(classifier, uploads: list[bytes]) -> list[tuple[dict, int]]:
    """(JSON answer, status) per upload: the readable ones go to the model in one call, as
    mnist_flask's multi-image requests and a batching server do."""
    read = [read_upload(data) for data in uploads]
    digits = [item for item in read if isinstance(item, Digit)]
    answers = iter(classifier.answers(digits) if digits else [])
    return [({"error": str(item)}, item.status) if isinstance(item, ImageError) else (next(answers), 200) for item in read]
