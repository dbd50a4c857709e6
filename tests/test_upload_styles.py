"""Pictures as people send them: each style and each Pillow mode, end to end."""

from __future__ import annotations

import io

import cv2
import numpy as np
import pytest
from helpers import post_image, post_upload
from PIL import Image

from bench.upload_styles import MODE_FORMATS, STYLES, centre_keeping_in_frame, encode_mode, generate, no_digit_pictures, page_to_picture

PER_STYLE = 10


def post(server, data: bytes) -> dict:
    response = post_upload(server.url, data)
    assert response.status_code == 200, response.text
    return response.json()


@pytest.mark.parametrize("style", STYLES)
def test_style_is_read_right_through_gunicorn(server, mnist_test, style):
    images, labels = mnist_test
    chosen = np.random.default_rng(11).choice(len(images), PER_STYLE, replace=False)
    answers = [post(server, data) for data, _ in generate(style, images[chosen], seed=11)]
    assert all(answer["digit_found"] for answer in answers)
    correct = sum(answer["prediction"] == label for answer, label in zip(answers, labels[chosen]))
    assert correct >= PER_STYLE - 1


@pytest.mark.parametrize("centre", [(0.5, 0.5), (0.97, 0.5), (0.05, 0.02), (0.6, 1.0)])
def test_a_note_partly_out_of_frame_keeps_its_digit_in_the_picture(centre):
    """A note may be laid partly outside the picture, never so far that its digit is cut off (a
    cut-off digit has no right answer); a digit already inside stays where it was drawn."""
    page, picture, box, turn, tilt, scale = (300, 400), (600, 800), (250, 100, 120, 150), 0.2, 0.05, 1.3
    moved = centre_keeping_in_frame(box, page, picture, turn, tilt, scale, centre)
    x, y, w, h = box
    corners = np.float32([[[x, y]], [[x + w, y]], [[x + w, y + h]], [[x, y + h]]])
    mapped = cv2.perspectiveTransform(corners, page_to_picture(page, picture, turn, tilt, scale, moved))[:, 0]
    assert mapped[:, 0].min() >= -1e-3 and mapped[:, 0].max() <= picture[1] + 1e-3
    assert mapped[:, 1].min() >= -1e-3 and mapped[:, 1].max() <= picture[0] + 1e-3
    if centre == (0.5, 0.5):
        assert moved == centre


@pytest.mark.parametrize("name", no_digit_pictures())
def test_pictures_without_a_digit_are_flagged(server, name):
    answer = post(server, no_digit_pictures()[name])
    assert answer["digit_found"] is False
    assert answer["box"] is None
    assert len(answer["probabilities"]) == 10


def overlap(a: dict, b: tuple[int, int, int, int]) -> float:
    """Intersection over union of two (x, y, width, height) boxes."""
    ax, ay, aw, ah = a["x"], a["y"], a["width"], a["height"]
    bx, by, bw, bh = b
    inter = max(0, min(ax + aw, bx + bw) - max(ax, bx)) * max(0, min(ay + ah, by + bh) - max(ay, by))
    return inter / (aw * ah + bw * bh - inter)


TURN_TO_STORE = {1: None, 6: Image.Transpose.ROTATE_90, 8: Image.Transpose.ROTATE_270, 3: Image.Transpose.ROTATE_180}


@pytest.mark.parametrize("orientation", TURN_TO_STORE, ids=[f"exif-{o}" for o in TURN_TO_STORE])
def test_box_is_where_the_digit_was_written(server, mnist_test, orientation):
    """A digit written at a known place on a ruled page, in a JPEG stored sideways as cameras do:
    the box is around the digit's ink in the upright picture, whatever the rules and the turn."""
    images, labels = mnist_test
    index = 21
    page = np.full((480, 640), 235.0)
    page[::40] = 150  # rules every 40 pixels
    ink = np.kron(images[index], np.ones((5, 5))) / 255
    top, left = 290, 430
    page[top : top + 140, left : left + 140] = page[top : top + 140, left : left + 140] * (1 - ink) + 30 * ink
    rows, cols = np.nonzero(ink > 0.5)
    drawn = (left + cols.min(), top + rows.min(), np.ptp(cols) + 1, np.ptp(rows) + 1)
    upright = Image.fromarray(page.astype(np.uint8))
    exif = Image.Exif()
    exif[0x0112] = orientation
    stored = upright if TURN_TO_STORE[orientation] is None else upright.transpose(TURN_TO_STORE[orientation])
    buffer = io.BytesIO()
    stored.save(buffer, "JPEG", quality=90, exif=exif)
    answer = post(server, buffer.getvalue())
    assert answer["prediction"] == labels[index]
    assert overlap(answer["box"], drawn) > 0.7


def test_box_of_a_digit_in_mnist_form_is_its_ink(server, mnist_test):
    images, _ = mnist_test
    answer = post(server, encode_mode(images[5], "L", "PNG"))
    rows, cols = np.nonzero(images[5])
    assert answer["box"] == {"x": cols.min(), "y": rows.min(), "width": np.ptp(cols) + 1, "height": np.ptp(rows) + 1}


def dark_on_light(digit: np.ndarray) -> np.ndarray:
    page = np.full((60, 70), 255.0)
    page[10:50, 15:55] = 255 - np.asarray(Image.fromarray(digit).resize((40, 40)), dtype=np.float32)
    return page


@pytest.mark.parametrize(("mode", "format"), MODE_FORMATS, ids=[f"{m}-{f}" for m, f in MODE_FORMATS])
def test_every_mode_and_format(client, mnist_test, mode, format):
    images, labels = mnist_test
    for index in (0, 1, 2):
        data = encode_mode(dark_on_light(images[index]), mode, format)
        assert Image.open(io.BytesIO(data)).mode.startswith(mode.split(";")[0])
        answer = post_image(client, data).json
        assert answer["prediction"] == labels[index]


def test_light_strokes_on_a_transparent_background(client, mnist_test):
    images, labels = mnist_test
    rgba = np.zeros((140, 140, 4), np.uint8)
    rgba[..., :3] = 255
    rgba[..., 3] = np.asarray(Image.fromarray(images[4]).resize((140, 140)))
    buffer = io.BytesIO()
    Image.fromarray(rgba, "RGBA").save(buffer, "PNG")
    answer = post_image(client, buffer.getvalue()).json
    assert answer["prediction"] == labels[4]


def test_animated_gif_is_read_from_its_first_frame(client, mnist_test):
    images, labels = mnist_test
    first, second = 0, next(i for i in range(len(labels)) if labels[i] != labels[0])
    frames = [Image.fromarray(images[first]).convert("P"), Image.fromarray(images[second]).convert("P")]
    buffer = io.BytesIO()
    frames[0].save(buffer, "GIF", save_all=True, append_images=frames[1:], duration=100)
    assert Image.open(io.BytesIO(buffer.getvalue())).n_frames == 2
    answer = post_image(client, buffer.getvalue()).json
    assert answer["prediction"] == labels[first]


def test_exif_orientation_is_applied(client, mnist_test):
    images, labels = mnist_test
    index = next(i for i in range(len(labels)) if labels[i] == 7)
    upright = Image.fromarray(255 - images[index]).resize((112, 112))
    exif = Image.Exif()
    exif[0x0112] = 6  # "rotate 90° clockwise to view"
    buffer = io.BytesIO()
    upright.transpose(Image.Transpose.ROTATE_90).save(buffer, "JPEG", quality=95, exif=exif)
    answer = post_image(client, buffer.getvalue()).json
    assert answer["prediction"] == 7
