"""The shared preprocessing recipe on real MNIST digits and on pictures that are not MNIST-shaped."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import encode

from mnist_flask.preprocessing import ImageError, ImageTooLarge, open_image, prepare_upload, to_mnist


def correlation(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.corrcoef(a.ravel(), b.ravel())[0, 1])


def test_mnist_digits_come_out_nearly_unchanged(mnist_test):
    """MNIST digits were made by this recipe, so applying it again must change them very little."""
    images = mnist_test[0][:200]
    scores = [correlation(to_mnist(image).pixels, image / 255) for image in images]
    assert np.median(scores) > 0.9


def test_dark_ink_on_light_paper_is_inverted(mnist_test):
    image = mnist_test[0][5]
    assert correlation(to_mnist(255 - image).pixels, to_mnist(image).pixels) > 0.99


def test_large_off_centre_digit_is_centred(mnist_test):
    image = mnist_test[0][6]
    page = np.full((400, 300), 230, np.uint8)
    page[250:362, 20:132] = 230 - np.kron(image, np.ones((4, 4), np.uint8)) * 0.8
    field = to_mnist(page).pixels
    assert correlation(field, to_mnist(image).pixels) > 0.9


@pytest.mark.parametrize(
    "picture",
    [np.zeros((28, 28)), np.full((64, 64), 255), np.full((40, 90), 128)],
    ids=["black", "white", "grey"],
)
def test_blank_pictures_are_flagged(picture):
    assert not to_mnist(picture).found


def test_noise_is_flagged():
    noise = np.random.default_rng(7).integers(0, 256, (120, 120))
    assert not to_mnist(noise).found


@pytest.mark.parametrize("shape", [(8, 3000), (3000, 8), (9, 257)])
def test_very_elongated_pictures(shape):
    """Found by the decoder fuzzer: a strip this thin once shrank to zero rows in the lighting estimate."""
    strip = np.full(shape, 255.0)
    strip[2:6, 2:6] = 0
    digit = to_mnist(strip)
    assert digit.pixels.shape == (28, 28) and np.isfinite(digit.pixels).all()


def test_pixel_limit_is_checked_before_decoding():
    with pytest.raises(ImageTooLarge, match="limit"):
        open_image(encode(np.zeros((300, 300))), max_pixels=300 * 299)


@pytest.mark.parametrize("data", [b"", b"GIF89a", b"\x89PNG\r\n\x1a\n" + b"\0" * 40, b"plain text"])
def test_unreadable_bytes_raise_image_error(data):
    with pytest.raises(ImageError):
        prepare_upload(data, max_pixels=10**6)
