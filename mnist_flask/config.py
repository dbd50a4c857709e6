"""Defaults; every key can be overridden by an ``MNIST_FLASK_<KEY>`` environment variable."""

from pathlib import Path

ENV_PREFIX = "MNIST_FLASK"


class Defaults:
    MODEL_DIR = str(Path(__file__).resolve().parent.parent / "models")
    MODEL_NAME = "mnist"
    MODEL_VERSION = None  # None serves the newest version in MODEL_DIR/MODEL_NAME
    MODEL_BACKEND = "auto"  # auto: LiteRT when the .tflite file and runtime exist, else Keras

    MAX_CONTENT_LENGTH = 4 * 1024 * 1024  # bytes per request; larger bodies get 413
    MAX_FORM_PARTS = 70  # multipart parts per request (files and fields)
    MAX_IMAGE_PIXELS = 25_000_000  # width x height, checked from the header before decoding

    SWAGGER = {
        "title": "mnist_flask",
        "uiversion": 3,
        "openapi": None,
        "specs_route": "/apidocs/",
    }
