"""Defaults; every key can be overridden by an ``MNIST_FLASK_<KEY>`` environment variable."""

from pathlib import Path

ENV_PREFIX = "MNIST_FLASK"


class Defaults:
    MODEL_DIR = str(Path(__file__).resolve().parent.parent / "models")
    MODEL_NAME = "mnist"
    MODEL_VERSION = None  # None serves the newest version in MODEL_DIR/MODEL_NAME
    MODEL_BACKEND = "auto"  # auto: LiteRT when the .tflite file and runtime exist, else Keras

    API_TOKEN = None  # set it to require "Authorization: Bearer <token>" on the prediction endpoints

    MAX_CONTENT_LENGTH = 4 * 1024 * 1024  # bytes per request; larger bodies get 413
    MAX_BATCH = 64  # images (or tensor instances) per request
    MAX_FORM_PARTS = MAX_BATCH + 6  # multipart parts per request: the images and a few form fields
    MAX_IMAGE_PIXELS = 25_000_000  # width x height, checked from the header before decoding

    SWAGGER = {"title": "mnist_flask", "uiversion": 3, "specs_route": "/apidocs/"}  # flasgger
