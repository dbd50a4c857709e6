"""Defaults; every key can be overridden by an ``MNIST_FLASK_<KEY>`` environment variable."""

from pathlib import Path

from flask import Config

ENV_PREFIX = "MNIST_FLASK"


class Defaults:
    MODEL_DIR = "models"  # the store, relative to the working directory (the checkout, or /app in the image)
    MODEL_NAME = "mnist"
    MODEL_VERSION = None  # None serves the newest version in MODEL_DIR/MODEL_NAME
    MODEL_BACKEND = "auto"  # auto: the version's LiteRT or ONNX file, in that order; or litert, onnxruntime, keras
    DATA = "data/mnist.npz"  # digits for `mnist-flask` train, evaluate and models add; missing: Keras downloads them

    API_TOKEN = None  # set it to require "Authorization: Bearer <token>" on the prediction endpoints

    MAX_CONTENT_LENGTH = 4 * 1024 * 1024  # bytes per request; larger bodies get 413
    MAX_BATCH = 64  # images (or tensor instances) per request
    MAX_FORM_PARTS = None  # multipart parts per request; None: MAX_BATCH + 6 (the images and a few form fields)
    MAX_IMAGE_PIXELS = 25_000_000  # width x height, checked from the header before decoding

    SWAGGER = {"title": "mnist_flask", "uiversion": 3, "specs_route": "/apidocs/"}  # flasgger


def load(overrides: dict | None = None) -> Config:
    """Defaults, then ``MNIST_FLASK_*`` variables (values parsed as JSON where they parse), then
    ``overrides``: the one loader behind both the app and the ``mnist-flask`` command."""
    settings = Config(Path(__file__).parent)
    settings.from_object(Defaults)
    settings.from_prefixed_env(ENV_PREFIX)
    settings.update(overrides or {})
    if settings["MAX_FORM_PARTS"] is None:
        settings["MAX_FORM_PARTS"] = settings["MAX_BATCH"] + 6
    return settings
