"""Pictures as people send them: each style and each Pillow mode, end to end."""

from __future__ import annotations

import io

import numpy as np
import pytest
import requests
from PIL import Image

from mnist_flask.upload_styles import MODE_FORMATS, STYLES, encode_mode, generate, no_digit_pictures

PER_STYLE = 10


def post(server, data: bytes, content_type: str) -> dict:
    response = requests.post(server.url + "/prediction", files={"image": ("upload", data, content_type)}, timeout=10)
    assert response.status_code == 200, response.text
    return response.json()


@pytest.mark.parametrize("style", STYLES)
def test_style_is_read_right_through_gunicorn(server, mnist_test, style):
    images, labels = mnist_test
    chosen = np.random.default_rng(11).choice(len(images), PER_STYLE, replace=False)
    answers = [post(server, data, kind) for data, kind in generate(style, images[chosen], seed=11)]
    assert all(answer["digit_found"] for answer in answers)
    correct = sum(answer["prediction"] == label for answer, label in zip(answers, labels[chosen]))
    assert correct >= PER_STYLE - 1


@pytest.mark.parametrize("name", no_digit_pictures())
def test_pictures_without_a_digit_are_flagged(server, name):
    answer = post(server, no_digit_pictures()[name], "image/png")
    assert answer["digit_found"] is False
    assert len(answer["probabilities"]) == 10


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
        answer = client.post("/prediction", data={"image": (io.BytesIO(data), "x")}).json
        assert answer["prediction"] == labels[index]


def test_light_strokes_on_a_transparent_background(client, mnist_test):
    images, labels = mnist_test
    rgba = np.zeros((140, 140, 4), np.uint8)
    rgba[..., :3] = 255
    rgba[..., 3] = np.asarray(Image.fromarray(images[4]).resize((140, 140)))
    buffer = io.BytesIO()
    Image.fromarray(rgba, "RGBA").save(buffer, "PNG")
    answer = client.post("/prediction", data={"image": (io.BytesIO(buffer.getvalue()), "x.png")}).json
    assert answer["prediction"] == labels[4]


def test_animated_gif_is_read_from_its_first_frame(client, mnist_test):
    images, labels = mnist_test
    first, second = 0, next(i for i in range(len(labels)) if labels[i] != labels[0])
    frames = [Image.fromarray(images[first]).convert("P"), Image.fromarray(images[second]).convert("P")]
    buffer = io.BytesIO()
    frames[0].save(buffer, "GIF", save_all=True, append_images=frames[1:], duration=100)
    assert Image.open(io.BytesIO(buffer.getvalue())).n_frames == 2
    answer = client.post("/prediction", data={"image": (io.BytesIO(buffer.getvalue()), "x.gif")}).json
    assert answer["prediction"] == labels[first]


def test_exif_orientation_is_applied(client, mnist_test):
    images, labels = mnist_test
    index = next(i for i in range(len(labels)) if labels[i] == 7)
    upright = Image.fromarray(255 - images[index]).resize((112, 112))
    exif = Image.Exif()
    exif[0x0112] = 6  # "rotate 90° clockwise to view"
    buffer = io.BytesIO()
    upright.transpose(Image.Transpose.ROTATE_90).save(buffer, "JPEG", quality=95, exif=exif)
    answer = client.post("/prediction", data={"image": (io.BytesIO(buffer.getvalue()), "x.jpg")}).json
    assert answer["prediction"] == 7
