"""HTML pages for people: the upload form at ``/``, the result of a form post, and ``/models``."""

from __future__ import annotations

import base64
import io

from pathlib import Path

import numpy as np
from flask import Blueprint, current_app, render_template, request
from PIL import Image

from .metrics import requests_by_version
from .model import ModelSlot, describe_version, model_slot
from .preprocessing import Digit

bp = Blueprint("web", __name__)


def wants_html() -> bool:
    """True for browsers (they rank text/html first); curl's ``*/*`` and API clients get JSON."""
    if "html" not in request.headers.get("Accept", ""):  # most API calls: skip parsing the header
        return False
    return request.accept_mimetypes.best_match(["application/json", "text/html"]) == "text/html"


def index_page():
    return render_template("index.html", versions=sorted(model_slot().loaded))


@bp.get("/models")
def models_page():
    """Every version in the store: where it came from, how well it does, and the traffic it gets."""
    slot = model_slot()
    counts = requests_by_version()
    total = sum(counts.values())
    folder = Path(current_app.config["MODEL_DIR"]) / current_app.config["MODEL_NAME"]
    rows = []
    for version in sorted({*slot.loaded, *slot.failures, *slot.not_loaded}, reverse=True):
        classifier = slot.loaded.get(version)
        rows.append({
            "version": version,
            "label": f"{current_app.config['MODEL_NAME']}:{version}",
            "state": "serving" if classifier else "failed" if version in slot.failures else "not loaded",
            "problem": slot.failures.get(version) or slot.not_loaded.get(version),
            "labels": slot.labels_of(version),
            "about": describe_version(folder / str(version)),
            "runtime": classifier.backend if classifier else None,
            "requests": counts.get(version, 0),
            "observed_share": counts.get(version, 0) / total if total else None,
            "share": configured_share(slot, version),
        })  # fmt: skip
    return render_template("models.html", rows=rows, total=total, canary_percent=slot.canary_percent)


def configured_share(slot: ModelSlot, version: int) -> str:
    """The share of requests naming no version that this version gets, from MNIST_FLASK_CANARY_PERCENT."""
    canary = slot.canary
    if canary is not None and canary.version == version:
        return f"{slot.canary_percent:g} % (canary)"
    if slot.classifier is not None and slot.classifier.version == version:
        return f"{100 - slot.canary_percent if canary else 100:g} % (default)"
    return "0 % (named only)"


def result_page(answer: dict):
    return render_template("result.html", answer=answer)


def error_page(status: int, message: str):
    return render_template("error.html", status=status, message=message)


def model_input_data_url(digit: Digit) -> str:
    """The 28x28 field the model saw, as a PNG data URL, so a wrong answer can be understood."""
    buffer = io.BytesIO()
    Image.fromarray(np.uint8(np.round(digit.pixels * 255))).save(buffer, format="PNG")
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")
