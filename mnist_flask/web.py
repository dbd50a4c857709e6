"""HTML pages for people: the upload form at ``/`` and the result of a form post."""

from __future__ import annotations

import base64
import io

import numpy as np
from flask import render_template, request
from PIL import Image

from .preprocessing import Digit


def wants_html() -> bool:
    """True for browsers (they rank text/html first); curl's ``*/*`` and API clients get JSON."""
    if "html" not in request.headers.get("Accept", ""):  # most API calls: skip parsing the header
        return False
    return request.accept_mimetypes.best_match(["application/json", "text/html"]) == "text/html"


def index_page():
    return render_template("index.html")


def result_page(answer: dict):
    return render_template("result.html", answer=answer)


def error_page(status: int, message: str):
    return render_template("error.html", status=status, message=message)


def model_input_data_url(digit: Digit) -> str:
    """The 28x28 field the model saw, as a PNG data URL, so a wrong answer can be understood."""
    buffer = io.BytesIO()
    Image.fromarray(np.uint8(np.round(digit.pixels * 255))).save(buffer, format="PNG")
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")
