"""Shared fixtures: the app from its factory, real MNIST test digits, and a real Gunicorn."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image

from bench.harness import ROOT, gunicorn
from mnist_flask import create_app

DATA = ROOT / "data" / "mnist.npz"


@pytest.fixture(scope="session")
def mnist_test():
    """Official MNIST test digits (evaluation only) with their labels."""
    with np.load(DATA) as data:
        return data["x_test"], data["y_test"]


def encode(pixels: np.ndarray, format: str = "PNG", mode: str = "L", **save_args) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(np.asarray(pixels, dtype=np.uint8)).convert(mode).save(buffer, format=format, **save_args)
    return buffer.getvalue()


@pytest.fixture
def app():
    return create_app({"TESTING": True})


@pytest.fixture
def client(app):
    return app.test_client()


@pytest.fixture(scope="session")
def server(tmp_path_factory):
    """One real Gunicorn with two workers for the whole session."""
    with gunicorn(tmp_path_factory.mktemp("gunicorn") / "gunicorn.log") as started:
        yield started
