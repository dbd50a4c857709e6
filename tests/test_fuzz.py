"""Fuzzing: the API from its own OpenAPI spec (schemathesis), and the image decoder (Hypothesis)."""

from __future__ import annotations

import numpy as np
import schemathesis
from helpers import encode
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from schemathesis.specs.openapi.checks import positive_data_acceptance

from mnist_flask import create_app
from mnist_flask.preprocessing import FIELD, ImageError, prepare_upload

SPEC = create_app().test_client().get("/apispec_1.json").json
schema = schemathesis.openapi.from_dict(SPEC)


@schema.parametrize()
@settings(max_examples=30, deadline=None, derandomize=True, suppress_health_check=list(HealthCheck))
def test_api_matches_its_spec_and_never_fails(case, server):
    """No 5xx, and every answer's status, content type and body match the documented schema.

    A schema cannot say "a picture of a digit", so schema-valid bytes that are no picture are
    rightly refused with a 400: the positive-data-acceptance check does not apply here.
    """
    case.call_and_validate(base_url=server.url, timeout=10, excluded_checks=[positive_data_acceptance])


def valid_images() -> list[bytes]:
    rng = np.random.default_rng(3)
    digit = (rng.random((28, 28)) > 0.8) * 255
    return [encode(digit, fmt, quality=90) if fmt == "JPEG" else encode(digit, fmt) for fmt in ("PNG", "JPEG", "GIF", "BMP", "WEBP", "TIFF")]


def check_decoder(data: bytes) -> None:
    """Either a 28x28 field in [0, 1], or the documented ImageError: nothing else may escape."""
    try:
        digit = prepare_upload(data, max_pixels=4_000_000)
    except ImageError as error:
        assert error.status in (400, 413) and str(error)
        return
    assert digit.pixels.shape == (FIELD, FIELD) and digit.pixels.dtype == np.float32
    assert np.isfinite(digit.pixels).all() and digit.pixels.min() >= 0 and digit.pixels.max() <= 1


@given(st.binary(max_size=4096))
@settings(max_examples=300, deadline=None, derandomize=True)
def test_random_bytes_only_raise_image_error(data):
    check_decoder(data)


@given(st.sampled_from(valid_images()), st.lists(st.tuples(st.integers(0, 10**6), st.integers(0, 255)), max_size=12), st.integers(0, 10**6))
@settings(max_examples=400, deadline=None, derandomize=True)
def test_mutated_images_only_raise_image_error(image, flips, cut):
    data = bytearray(image)
    for position, value in flips:
        data[position % len(data)] = value
    check_decoder(bytes(data[: max(1, len(data) - cut % len(data))]))
