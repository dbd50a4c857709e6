"""Upload-style pictures made from MNIST digits, to measure what people actually send.

Each style turns one 28x28 MNIST digit (white ink on black) into the bytes of a picture a person
might upload: a black-on-white scan, a phone photo of paper, a canvas export with a transparent
background, and so on. Everything is seeded, so a style's images are the same on every run.
"""

from __future__ import annotations

import io
from typing import Callable

import numpy as np
from PIL import Image, ImageFilter

Render = Callable[[np.ndarray, np.random.Generator], tuple[bytes, str]]
ORIENTATION = 0x0112  # EXIF tag


def ink_image(digit: np.ndarray, height: int, rng: np.random.Generator) -> np.ndarray:
    """The digit's ink (0..1) upscaled so that its 28x28 field is ``height`` pixels tall."""
    width = max(1, round(height * rng.uniform(0.9, 1.1)))
    big = Image.fromarray(digit).resize((width, height), Image.Resampling.BICUBIC)
    return np.clip(np.asarray(big, dtype=np.float32) / 255, 0, 1)


def place(ink: np.ndarray, shape: tuple[int, int], rng: np.random.Generator) -> np.ndarray:
    """Put the ink somewhere in a larger empty field, anywhere it fits."""
    field = np.zeros(shape, np.float32)
    top = rng.integers(0, shape[0] - ink.shape[0] + 1)
    left = rng.integers(0, shape[1] - ink.shape[1] + 1)
    field[top : top + ink.shape[0], left : left + ink.shape[1]] = ink
    return field


def on_paper(ink: np.ndarray, paper: np.ndarray, pen: np.ndarray) -> np.ndarray:
    """Blend pen colour into paper colour by ink coverage; arrays broadcast to HxWx3."""
    ink = ink[..., None]
    return paper * (1 - ink) + pen * ink


def lighting(shape: tuple[int, int], rng: np.random.Generator, low: float) -> np.ndarray:
    """A smooth brightness gradient in one random direction, as from a lamp or window."""
    rows, cols = np.mgrid[0 : shape[0], 0 : shape[1]].astype(np.float32)
    angle = rng.uniform(0, 2 * np.pi)
    ramp = np.cos(angle) * rows / shape[0] + np.sin(angle) * cols / shape[1]
    ramp = (ramp - ramp.min()) / max(float(np.ptp(ramp)), 1e-6)
    return low + (1 - low) * ramp


def save(array: np.ndarray, mode: str, format: str, **options) -> bytes:
    buffer = io.BytesIO()
    image = Image.fromarray(np.clip(np.round(array), 0, 255).astype(np.uint8))
    image.convert(mode).save(buffer, format=format, **options)
    return buffer.getvalue()


def mnist(digit, rng):
    """MNIST itself: 28x28, white on black, PNG."""
    return save(digit, "L", "PNG"), "image/png"


def scan(digit, rng):
    """A flatbed scan: dark ink on off-white paper, a few hundred pixels, grey JPEG."""
    height = int(rng.integers(120, 320))
    ink = place(ink_image(digit, height, rng), (int(height * 1.3), int(height * 1.3)), rng)
    paper, pen = rng.uniform(215, 250), rng.uniform(10, 70)
    gray = paper * (1 - ink) + pen * ink + rng.normal(0, 4, ink.shape)
    return save(gray, "L", "JPEG", quality=int(rng.integers(80, 95))), "image/jpeg"


def photo(digit, rng):
    """A phone photo of a digit on paper: colour, uneven light, blur, noise, EXIF-rotated JPEG."""
    shape = (int(rng.integers(600, 900)), int(rng.integers(800, 1200)))
    ink = place(ink_image(digit, int(shape[0] * rng.uniform(0.3, 0.6)), rng), shape, rng)
    paper = np.array([rng.uniform(200, 245), rng.uniform(195, 240), rng.uniform(180, 225)], np.float32)
    pen = np.array([rng.uniform(10, 50), rng.uniform(10, 50), rng.uniform(30, 110)], np.float32)
    rgb = on_paper(ink, paper, pen) * lighting(shape, rng, rng.uniform(0.6, 0.9))[..., None]
    rgb += rng.normal(0, 6, rgb.shape)
    image = Image.fromarray(np.clip(rgb, 0, 255).astype(np.uint8)).filter(ImageFilter.GaussianBlur(rng.uniform(0.5, 2)))
    # The camera stores the pixels sideways and says so in EXIF; a viewer rotates them back.
    turns = {6: Image.Transpose.ROTATE_270, 8: Image.Transpose.ROTATE_90, 3: Image.Transpose.ROTATE_180}
    orientation = int(rng.choice(list(turns)))
    exif = Image.Exif()
    exif[ORIENTATION] = orientation
    buffer = io.BytesIO()
    image.transpose(inverse_turn(turns[orientation])).save(
        buffer, format="JPEG", quality=int(rng.integers(70, 90)), exif=exif
    )
    return buffer.getvalue(), "image/jpeg"


def inverse_turn(turn: Image.Transpose) -> Image.Transpose:
    return {
        Image.Transpose.ROTATE_270: Image.Transpose.ROTATE_90,
        Image.Transpose.ROTATE_90: Image.Transpose.ROTATE_270,
        Image.Transpose.ROTATE_180: Image.Transpose.ROTATE_180,
    }[turn]


def canvas(digit, rng):
    """An HTML canvas export: black strokes on a transparent background, 280x280 RGBA PNG."""
    ink = place(ink_image(digit, int(rng.integers(180, 250)), rng), (280, 280), rng)
    rgba = np.zeros((280, 280, 4), np.float32)
    rgba[..., 3] = ink * 255
    return save(rgba, "RGBA", "PNG"), "image/png"


def small_offcentre(digit, rng):
    """A small digit far from the centre of a large, otherwise empty picture."""
    shape = (int(rng.integers(300, 500)), int(rng.integers(300, 600)))
    ink = place(ink_image(digit, int(rng.integers(28, 60)), rng), shape, rng)
    gray = 245 - 215 * ink + rng.normal(0, 3, shape)
    return save(gray, "L", "PNG"), "image/png"


def noisy_paper(digit, rng):
    """Grainy, blotchy paper under uneven light, saved as a low-quality JPEG."""
    shape = (int(rng.integers(200, 400)),) * 2
    ink = place(ink_image(digit, int(shape[0] * rng.uniform(0.5, 0.8)), rng), shape, rng)
    blotches = Image.fromarray(rng.uniform(0, 255, (6, 6)).astype(np.uint8)).resize(shape[::-1], Image.Resampling.BICUBIC)
    paper = 200 + 40 * np.asarray(blotches, np.float32) / 255
    gray = (paper * (1 - ink) + 40 * ink) * lighting(shape, rng, 0.75) + rng.normal(0, 12, shape)
    return save(gray, "L", "JPEG", quality=int(rng.integers(35, 60))), "image/jpeg"


def light_on_dark(digit, rng):
    """Chalk on a blackboard: light ink on a dark grey, not black, background."""
    shape = (int(rng.integers(150, 300)),) * 2
    ink = place(ink_image(digit, int(shape[0] * rng.uniform(0.6, 0.9)), rng), shape, rng)
    board = rng.uniform(30, 80)
    gray = board + (rng.uniform(180, 240) - board) * ink + rng.normal(0, 5, shape)
    return save(gray, "RGB", "PNG"), "image/png"


# (mode, format) pairs that Pillow can write, covering every mode and format the server accepts.
MODE_FORMATS = [
    ("L", "PNG"), ("LA", "PNG"), ("RGB", "JPEG"), ("RGBA", "WEBP"), ("P", "GIF"), ("P", "PNG"),
    ("1", "BMP"), ("I;16", "PNG"), ("I;16", "TIFF"), ("CMYK", "JPEG"), ("CMYK", "TIFF"), ("RGB", "BMP"),
]  # fmt: skip


def modes(digit, rng):
    """Dark on light in each Pillow mode and file format, chosen in turn by the generator."""
    mode, format = MODE_FORMATS[int(rng.integers(len(MODE_FORMATS)))]
    return encode_mode(255 - place(ink_image(digit, 80, rng), (100, 110), rng) * 255, mode, format), f"image/{format.lower()}"


def encode_mode(gray: np.ndarray, mode: str, format: str) -> bytes:
    """A grey picture in the given Pillow mode; transparent modes get a transparent background."""
    buffer = io.BytesIO()
    gray = np.clip(gray, 0, 255)
    if mode == "I;16":
        image = Image.fromarray((gray * 257).astype(np.uint16))
    elif mode in ("LA", "RGBA"):
        ink = 1 - gray / 255
        image = Image.fromarray(np.stack([np.zeros_like(gray), ink * 255], -1).astype(np.uint8), "LA").convert(mode)
    elif mode == "P":
        image = Image.fromarray(gray.astype(np.uint8)).convert("P")
        image.info["transparency"] = int(image.getpixel((0, 0)))
    elif mode == "1":  # a bilevel scan is thresholded, not dithered
        image = Image.fromarray(gray.astype(np.uint8)).convert(mode, dither=Image.Dither.NONE)
    else:
        image = Image.fromarray(gray.astype(np.uint8)).convert(mode)
    image.save(buffer, format=format, **({"transparency": image.info["transparency"]} if mode == "P" else {}))
    return buffer.getvalue()


STYLES: dict[str, Render] = {
    "mnist": mnist,
    "scan": scan,
    "photo": photo,
    "canvas": canvas,
    "small_offcentre": small_offcentre,
    "noisy_paper": noisy_paper,
    "light_on_dark": light_on_dark,
    "modes": modes,
}


def generate(style: str, digits: np.ndarray, seed: int = 0):
    """``(bytes, content_type)`` for each digit, the same for the same style, digits and seed."""
    rng = np.random.default_rng([seed, list(STYLES).index(style)])
    return [STYLES[style](digit, rng) for digit in digits]


def no_digit_pictures(seed: int = 0) -> dict[str, bytes]:
    """Pictures with no digit in them, which must come back with ``digit_found: false``."""
    rng = np.random.default_rng(seed)
    return {
        "blank_white": save(np.full((200, 200), 255), "L", "PNG"),
        "blank_black": save(np.zeros((28, 28)), "L", "PNG"),
        "uniform_grey": save(np.full((120, 160), 128), "RGB", "JPEG"),
        "noise": save(rng.integers(0, 256, (150, 150)), "L", "PNG"),
        "colour_noise": save(rng.integers(0, 256, (100, 100, 3)), "RGB", "PNG"),
        "transparent": save(np.zeros((64, 64, 4)), "RGBA", "PNG"),
    }
