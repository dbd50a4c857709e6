"""The digit-likeness network shipped with the preprocessing, and how it is trained."""

from __future__ import annotations

import io

import cv2
import numpy as np
import pytest
from helpers import PICTURES
from PIL import Image

from bench import digit_likeness, upload_styles
from mnist_flask import preprocessing
from mnist_flask.likeness import LAYERS, shipped
from mnist_flask.preprocessing import fit_to_field, prepare_upload, read_upright, to_mnist


def drawn(shape: str, size: int = 120) -> np.ndarray:
    """A shape that is not a digit, in MNIST's form: drawn white on black, then boxed and centred
    as the search renders every candidate."""
    canvas = np.zeros((size, size), np.uint8)
    if shape == "wedge":  # a shadow's narrow tip
        cv2.fillPoly(canvas, [np.array([[50, 5], [70, 5], [58, 115]])], 255)
    elif shape == "triangle":  # a shadow's corner
        cv2.fillPoly(canvas, [np.array([[5, 5], [115, 5], [5, 115]])], 255)
    elif shape == "block":  # a desk's corner, a dark note
        cv2.rectangle(canvas, (20, 30), (100, 90), 255, -1)
    elif shape == "bracket":  # the end of a comb of boxes
        cv2.polylines(canvas, [np.array([[40, 5], [70, 5], [70, 115], [40, 115]])], False, 255, 6)
    return fit_to_field(cv2.GaussianBlur(canvas.astype(np.float32) / 255, (5, 5), 1))


def test_mnist_test_digits_look_like_digits(mnist_test):
    """x_test, never seen in training, in the model's own form: nearly every digit, "1"s too."""
    images, labels = mnist_test
    fields = np.array([to_mnist(image).pixels for image in images[:2000]])
    chance = shipped()(fields)
    assert np.mean(chance > 0.5) >= 0.97
    assert np.mean(chance[labels[:2000] == 1] > 0.5) >= 0.9  # a "1" is the shape a shadow's narrow tip takes


@pytest.mark.parametrize("shape", ["wedge", "triangle", "block"])
def test_a_shadow_s_tip_or_a_surface_s_corner_does_not_look_like_a_digit(shape):
    assert shipped()(drawn(shape)[None])[0] < 0.5


def test_a_note_whose_desk_outweighs_its_digit_is_found_by_the_digit_s_likeness(classifier, monkeypatch):
    """A note on a desk (``note_on_desk``, x_test's digit 7090, a "5"): by the rules alone the
    desk's grain beside the note outweighs the digit and nothing leads; weighed by likeness, the
    digit is found, inside the picture, and read. (The grain is smooth nowhere, so the note is
    also a sheet by its smoothness, on which the rules alone find the digit: the rules are
    checked without it.)"""
    data = (PICTURES / "note_found_by_its_likeness.jpg").read_bytes()
    digit = prepare_upload(data, 25_000_000)
    answer = classifier.answers([digit])[0]
    box, (width, height) = answer["box"], Image.open(io.BytesIO(data)).size
    assert answer["prediction"] == 5 and digit.found and not digit.at_edge
    assert 0 < box["x"] and box["x"] + box["width"] < width and 0 < box["y"] and box["y"] + box["height"] < height
    for rule_alone in ("LIKENESS_CHECKS", "EDGE_NO_DIGIT", "NO_DIGIT"):
        monkeypatch.setattr(preprocessing, rule_alone, 0)
    monkeypatch.setattr(preprocessing, "SURE_DIGIT", 2)  # no likeness reaches it
    monkeypatch.setattr(preprocessing, "TEXTURED", 0)  # the note a sheet by its brightness alone
    assert not prepare_upload(data, 25_000_000).found


def test_a_shadow_beside_a_digit_is_passed_over_for_the_digit(classifier, model_4, monkeypatch):
    """A page under a hard shadow (``hard_shadow``, x_test's digit 6639, a "6"): the first reading
    takes in the shadow and the model doubts it; of the second looks, the rules alone choose a
    piece of the shadow's edge, which model 4 reads as a confident "1" (model 5's two networks
    are less sure of it than of the digit), and the weighing chooses the digit."""
    data = (PICTURES / "shadow_read_beside_its_digit.jpg").read_bytes()
    for model in (classifier, model_4):
        assert model.answers([prepare_upload(data, 25_000_000)])[0]["prediction"] == 6
    for rule_alone in ("LIKENESS_CHECKS", "EDGE_NO_DIGIT", "NO_DIGIT"):
        monkeypatch.setattr(preprocessing, rule_alone, 0)
    assert model_4.answers([prepare_upload(data, 25_000_000)])[0]["prediction"] == 1


def test_the_network_runs_as_keras_runs_it():
    """The NumPy forward pass gives Keras' own answers with the shipped weights."""
    network = digit_likeness.build_network()
    weights = shipped().weights
    for layer in LAYERS:
        network.get_layer(layer).set_weights([weights[f"{layer}_kernel"], weights[f"{layer}_bias"]])
    fields = np.random.default_rng(0).random((16, 28, 28), dtype=np.float32) * (np.random.default_rng(1).random((16, 28, 28)) > 0.7)
    fields = np.concatenate([fields, np.array([drawn("wedge"), drawn("bracket")])])
    assert np.allclose(shipped()(fields), network.predict(fields[..., None], verbose=0)[:, 0], atol=1e-5)


def test_the_shipped_weights_are_every_layer_s_kernel_and_bias_in_float32():
    weights = shipped().weights
    assert set(weights) == {f"{layer}_{part}" for layer in LAYERS for part in ("kernel", "bias")}
    assert all(value.dtype == np.float32 for value in weights.values())


def test_the_digit_is_where_a_photo_and_its_twin_without_ink_differ(mnist_test):
    """The twin is the same photo but for the digit's ink: they differ in one compact place, the
    shapes the search weighs there are labelled digits, and those of the twin are not."""
    digits = mnist_test[0][:4]
    photos = upload_styles.generate("hard_shadow", digits, 99)
    with digit_likeness.ink_left_off():
        twins = upload_styles.generate("hard_shadow", digits, 99)
    labels, twin_labels = [], []
    for (photo, _), (twin, _) in zip(photos, twins):
        gray, bare = (read_upright(upload, 25_000_000)[0] for upload in (photo, twin))
        digit = digit_likeness.digit_where(gray, bare)
        x, y, w, h = cv2.boundingRect(digit.view(np.uint8))
        assert 0 < digit.sum() and w * h < 0.5 * digit.size
        assert not digit_likeness.digit_where(bare, bare).any()
        labels += [digit_likeness.shape_label(group, digit) for _, group in digit_likeness.weighed_shapes(gray)]
        twin_labels += [digit_likeness.shape_label(group, digit) for _, group in digit_likeness.weighed_shapes(bare)]
    assert 1 in labels and 0 in twin_labels and 1 not in twin_labels


def test_harvested_shapes_come_labelled_both_ways():
    fields, labels = digit_likeness.harvest(("hard_shadow", 4, 99))
    assert fields.shape[1:] == (28, 28) and fields.dtype == np.uint8 and set(labels) == {0, 1}


def test_shape_labels():
    digit = np.zeros((50, 50), bool)
    digit[10:30, 10:20] = True
    on, part, off, half = (np.zeros_like(digit) for _ in range(4))
    on[10:30, 10:20] = True
    part[10:14, 10:20] = True  # a fifth of the digit
    off[40:48, 40:48] = True
    half[10:30, 10:20] = half[30:50, 30:50] = True  # the digit joined to twice as much of something else
    even = np.zeros_like(digit)
    even[10:30, 10:20] = even[40:50, 30:50] = True  # ... or to as much: half of it on the digit
    assert digit_likeness.shape_label(on, digit) == 1
    assert digit_likeness.shape_label(off, digit) == 0
    assert digit_likeness.shape_label(part, digit) is None
    assert digit_likeness.shape_label(on, None) == 0
    assert digit_likeness.shape_label(half, digit) is None
    assert digit_likeness.shape_label(even, digit) == 1
