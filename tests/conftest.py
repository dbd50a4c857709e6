"""Shared fixtures: the app from its factory, real MNIST test digits, and a real Gunicorn."""

from __future__ import annotations

import numpy as np
import pytest
from helpers import DATA, ROOT

from bench.harness import gunicorn
from mnist_flask import create_app
from mnist_flask.model import load_classifier


@pytest.fixture(scope="session")
def mnist_test():
    """Official MNIST test digits (evaluation only) with their labels."""
    with np.load(DATA) as data:
        return data["x_test"], data["y_test"]


@pytest.fixture(scope="session")
def classifier():
    """The shipped model, loaded once."""
    return load_classifier(ROOT / "models", "mnist", None)


@pytest.fixture(scope="session")
def model_4():
    """Model 4, one network: sure of some wrong shapes that model 5's averaged networks doubt, so
    the rules that overrule such a reading are shown with it."""
    return load_classifier(ROOT / "models", "mnist", 4)


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
