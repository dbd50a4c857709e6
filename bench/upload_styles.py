"""Upload-style pictures made from MNIST digits, to measure what people actually send.

Each style turns one 28x28 MNIST digit (white ink on black) into the bytes of a picture a person
might upload: a black-on-white scan, a phone photo of paper, a canvas export with a transparent
background, and so on. Everything is seeded, so a style's images are the same on every run.
"""

from __future__ import annotations

import io
from typing import Callable

import cv2
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
    rows, cols = grid(shape)
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


# Photos of real paper (issue 16): ruled and squared notebook pages, printed boxes and form fields,
# a note on a desk, hard shadows and glare, coloured inks on coloured paper, camera blur and tilt,
# a digit near the picture's edge. Each draws every parameter from a wide range through ``Draw``,
# which can instead draw only from bands just outside those ranges (``held_out``), to check that
# the reading generalises beyond the pictures it was tuned on.


class Draw:
    """The style's random source. ``uniform(low, high)`` is the tuning range; held out, it draws
    from the bands a quarter of the range wide just below ``low`` and above ``high`` (within the
    physical limits ``floor`` and ``ceiling``) instead."""

    def __init__(self, rng: np.random.Generator, held_out: bool = False):
        self.rng, self.held_out = rng, held_out

    def uniform(self, low: float, high: float, floor: float = -np.inf, ceiling: float = np.inf) -> float:
        if not self.held_out:
            return float(self.rng.uniform(low, high))
        width = (high - low) / 4
        bands = [(max(low - width, floor), low), (high, min(high + width, ceiling))]
        bands = [band for band in bands if band[1] > band[0]] or [(low, high)]
        return float(self.rng.uniform(*bands[int(self.rng.integers(len(bands)))]))

    def __getattr__(self, name):  # integers, normal, choice, random: as the generator has them
        return getattr(self.rng, name)


PAPERS = {  # RGB of paper: white, cream, grey recycled, and the colours of notes and cards
    "white": (245, 245, 242), "cream": (242, 234, 210), "recycled": (215, 212, 205), "yellow": (250, 236, 125),
    "pink": (248, 190, 205), "blue": (190, 218, 245), "green": (200, 238, 190), "orange": (250, 205, 150),
}  # fmt: skip
INKS = {  # RGB of pens and pencils
    "black": (25, 25, 30), "blue": (30, 50, 160), "red": (165, 25, 35), "green": (20, 110, 55),
    "purple": (85, 35, 135), "pencil": (95, 95, 100), "brown": (90, 55, 30),
}  # fmt: skip
RULE_COLOURS = [(120, 160, 220), (150, 190, 230), (170, 170, 175), (120, 190, 150), (180, 150, 210), (110, 130, 190)]
MARGIN_COLOURS = [(220, 80, 90), (235, 140, 160), (200, 60, 60), (90, 170, 110), (90, 120, 210)]


def tint(colour, draw: Draw, spread: float = 12) -> np.ndarray:
    return np.clip(np.asarray(colour, np.float32) + draw.normal(0, spread, 3), 0, 255)


def noise(draw: Draw, sigma: float, shape) -> np.ndarray:
    """Gaussian noise: a 97x89 tile repeated (far cheaper than drawing millions, and as invisible)."""
    tile = draw.rng.standard_normal((97, 89, *shape[2:]), dtype=np.float32) * np.float32(sigma)
    reps = (-(-shape[0] // 97), -(-shape[1] // 89), *[1] * (len(shape) - 2))
    return np.tile(tile, reps)[: shape[0], : shape[1]]


def grid(shape: tuple[int, int]) -> tuple[np.ndarray, np.ndarray]:
    """Row and column coordinates as float32 arrays that broadcast to ``shape``."""
    return np.arange(shape[0], dtype=np.float32)[:, None], np.arange(shape[1], dtype=np.float32)[None, :]


def sheet(shape: tuple[int, int], paper: np.ndarray, draw: Draw) -> np.ndarray:
    """Paper of one colour with a faint fibre texture."""
    grain = noise(draw, draw.uniform(1, 5, floor=0), shape)
    return paper.astype(np.float32)[None, None, :] + grain[..., None]


def stroke(mask: np.ndarray, rgb: np.ndarray, colour: np.ndarray, opacity: float = 1.0) -> None:
    """Paint ``colour`` where ``mask`` (0..1) is, in place."""
    alpha = (mask * np.float32(opacity))[..., None]
    rgb += alpha * (colour.astype(np.float32) - rgb)


def line_mask(shape: tuple[int, int], positions, thickness: float, vertical: bool, tilt: float = 0.0, period: float = 0.0) -> np.ndarray:
    """Anti-aliased straight lines across the whole picture at the given offsets, slightly tilted;
    with a ``period``, one line every ``period`` pixels from the first offset on."""
    rows, cols = grid(shape)
    along, across = (rows, cols) if vertical else (cols, rows)
    across = across - np.float32(np.tan(tilt)) * along
    if period:
        distance = np.abs((across - np.float32(positions[0]) + period / 2) % np.float32(period) - period / 2)
    else:
        distance = np.min([np.abs(across - np.float32(position)) for position in positions], axis=0)
    return np.clip(np.float32(thickness / 2 + 0.5) - distance, 0, 1)


def digit_ink(digit: np.ndarray, height: int, draw: Draw, pencil: bool) -> np.ndarray:
    """The digit's ink at ``height`` pixels; pencil is lighter and grainy."""
    ink = ink_image(digit, height, draw.rng)
    if pencil:
        ink = ink * draw.uniform(0.45, 0.8, floor=0.3, ceiling=1) * np.clip(draw.normal(1, 0.15, ink.shape), 0, 1.3)
    return np.clip(ink, 0, 1).astype(np.float32)


def write_digit(rgb: np.ndarray, digit: np.ndarray, draw: Draw, height: int, where: tuple[int, int], ink: str | None = None):
    """Write the digit with its field's top-left at ``where``; returns the digit's ink box (x, y, w, h)."""
    name = ink or str(draw.choice(["black", "blue", "blue", "pencil", "red", "green", "purple"]))
    ink_field = digit_ink(digit, height, draw, pencil=name == "pencil")
    ink_field = ink_field[max(0, -where[0]) :, max(0, -where[1]) :]  # a field starting above or left of the page
    top, left = max(0, where[0]), max(0, where[1])
    bottom, right = min(top + ink_field.shape[0], rgb.shape[0]), min(left + ink_field.shape[1], rgb.shape[1])
    region = ink_field[: bottom - top, : right - left]
    stroke(region, rgb[top:bottom, left:right], tint(INKS[name], draw, 10))
    rows, cols = np.nonzero(region > 0.2)
    return (left + int(cols.min()), top + int(rows.min()), int(np.ptp(cols)) + 1, int(np.ptp(rows)) + 1)


def rules(rgb: np.ndarray, draw: Draw, spacing: float, squared: bool) -> None:
    """Notebook rules (horizontal lines, a margin line) or a squared grid, printed over the page."""
    shape = rgb.shape[:2]
    thickness = draw.uniform(0.8, 2.5, floor=0.6) * max(shape) / 600
    colour = tint(RULE_COLOURS[int(draw.integers(len(RULE_COLOURS)))], draw, 10)
    tilt = draw.uniform(-0.02, 0.02)
    ruled = line_mask(shape, [draw.uniform(0, spacing)], thickness, False, tilt, period=spacing)
    if squared:
        ruled = np.maximum(ruled, line_mask(shape, [draw.uniform(0, spacing)], thickness, True, -tilt, period=spacing))
    stroke(ruled, rgb, colour, draw.uniform(0.6, 1, 0.4, 1))
    if draw.random() < 0.75:  # the margin: one or two coloured vertical lines
        margin = tint(MARGIN_COLOURS[int(draw.integers(len(MARGIN_COLOURS)))], draw, 10)
        x = draw.uniform(0.05, 0.95) * shape[1]
        positions = [x] if draw.random() < 0.6 else [x, x + draw.uniform(3, 8) * thickness]
        stroke(line_mask(shape, positions, thickness * draw.uniform(1, 1.8), True, -tilt), rgb, margin)


def printed_frame(rgb: np.ndarray, box: tuple[int, int, int, int], draw: Draw) -> None:
    """A form field, table cell or row of boxes printed around the digit, touching it or not."""
    x, y, w, h = box
    shape = rgb.shape[:2]
    side = max(w, h)
    thickness = max(1.0, draw.uniform(0.01, 0.04, floor=0.004) * side)
    colour = tint((40, 40, 45), draw, 25) if draw.random() < 0.7 else tint(RULE_COLOURS[0], draw, 20)
    pads = [draw.uniform(-0.08, 0.3, floor=-0.12) * side for _ in range(4)]  # negative: the frame cuts the digit
    left, right = x - pads[0], x + w + pads[1]
    top, bottom = y - pads[2], y + h + pads[3]
    kind = draw.choice(["box", "comb", "table", "underline"], p=[0.4, 0.2, 0.25, 0.15])
    mask = np.zeros(shape, np.float32)
    if kind in ("box", "comb"):  # a closed rectangle; a comb field repeats it sideways
        step = right - left
        lefts = [left] if kind == "box" else [left + k * step for k in range(-3, 4)]
        mask = np.maximum(line_mask(shape, [top, bottom], thickness, False), 0)
        across = np.zeros(shape, np.float32)
        across[int(max(top, 0)) : int(max(bottom, 0)) + 1] = 1
        mask = mask * ((np.arange(shape[1]) >= min(lefts)) & (np.arange(shape[1]) <= max(lefts) + step))[None, :]
        mask = np.maximum(mask, line_mask(shape, [*lefts, max(lefts) + step], thickness, True) * across)
    elif kind == "table":  # lines across the whole picture
        mask = np.maximum(line_mask(shape, [top, bottom], thickness, False), line_mask(shape, [left, right], thickness, True))
    else:  # a line to write on, under or through the digit's foot
        mask = line_mask(shape, [y + h * draw.uniform(0.8, 1.15)], thickness, False)
    stroke(mask, rgb, colour)


def desk(shape: tuple[int, int], draw: Draw) -> np.ndarray:
    """A darker surface: wood grain, or fabric, or a plain dark table."""
    kind = draw.choice(["wood", "fabric", "plain"])
    rows, cols = grid(shape)
    if kind == "wood":
        base = np.array([draw.uniform(90, 170), draw.uniform(55, 110), draw.uniform(25, 70)], np.float32)
        angle = draw.uniform(0, np.pi)
        along = np.cos(angle) * rows + np.sin(angle) * cols
        wobble = np.sin(along / draw.uniform(20, 80) + draw.normal(0, 1)) * draw.uniform(5, 30)
        grain = np.sin((np.sin(angle) * rows - np.cos(angle) * cols + wobble) / draw.uniform(2, 8))
        texture = 1 + draw.uniform(0.05, 0.25) * grain
    else:
        base = np.full(3, draw.uniform(25, 110), np.float32) + draw.normal(0, 20, 3)
        speckle = draw.normal(0, 1, (max(2, shape[0] // 4), max(2, shape[1] // 4))).astype(np.float32)
        texture = 1 + (0.15 if kind == "fabric" else 0.04) * cv2.resize(speckle, shape[::-1], interpolation=cv2.INTER_LINEAR)
    return np.clip(base[None, None, :] * texture[..., None], 0, 255)


def page_to_picture(page_shape, picture_shape, rotation: float, tilt: float, scale: float, centre) -> np.ndarray:
    """The 3x3 map of a page rotated, seen at a slant (perspective), scaled and centred at ``centre``
    (fractions of the picture). Moving the centre moves every mapped point by the same amount."""
    h, w = page_shape[:2]
    corners = np.float32([[0, 0], [w, 0], [w, h], [0, h]])
    cx, cy = centre[0] * picture_shape[1], centre[1] * picture_shape[0]
    cos, sin = np.cos(rotation), np.sin(rotation)
    moved = []
    for index, (x, y) in enumerate(corners - [w / 2, h / 2]):
        squeeze = 1 + tilt * (1 if index in (2, 3) else -1)  # the far edge looks shorter
        x, y = x * scale * squeeze, y * scale
        moved.append([cx + cos * x - sin * y, cy + sin * x + cos * y])
    return cv2.getPerspectiveTransform(corners, np.float32(moved))


def centre_keeping_in_frame(box, page_shape, picture_shape, rotation: float, tilt: float, scale: float, centre):
    """``centre`` moved just enough that the page's ``box`` (x, y, w, h) lies inside the picture:
    a note may be partly out of frame, the digit on it may not (a cut-off digit has no right answer)."""
    x, y, w, h = box
    corners = np.float32([[[x, y]], [[x + w, y]], [[x + w, y + h]], [[x, y + h]]])
    mapped = cv2.perspectiveTransform(corners, page_to_picture(page_shape, picture_shape, rotation, tilt, scale, centre))[:, 0]
    shift = [np.clip(0, -mapped[:, axis].min(), size - mapped[:, axis].max()) for axis, size in ((0, picture_shape[1]), (1, picture_shape[0]))]
    return centre[0] + shift[0] / picture_shape[1], centre[1] + shift[1] / picture_shape[0]


def warp_onto(page: np.ndarray, background: np.ndarray, draw: Draw, rotation: float, tilt: float, scale: float, centre) -> tuple[np.ndarray, np.ndarray]:
    """Lay the page on the background as :func:`page_to_picture` maps it. Returns the picture and the map."""
    h, w = page.shape[:2]
    matrix = page_to_picture(page.shape, background.shape, rotation, tilt, scale, centre)
    size = (background.shape[1], background.shape[0])
    warped = cv2.warpPerspective(page, matrix, size, flags=cv2.INTER_AREA)
    cover = cv2.warpPerspective(np.ones((h, w), np.float32), matrix, size, flags=cv2.INTER_LINEAR)[..., None]
    return background * (1 - cover) + warped * cover, matrix


def shade(rgb: np.ndarray, draw: Draw, hard: bool) -> np.ndarray:
    """Uneven light from a random direction; a hard-edged shadow (of a hand, a phone) across part of
    the picture; sometimes a glare spot. The light is computed at half size: it varies slowly."""
    full = rgb.shape[:2]
    shape = ((full[0] + 1) // 2, (full[1] + 1) // 2)
    light = lighting(shape, draw.rng, draw.uniform(0.55, 0.95, floor=0.4, ceiling=1))
    if hard:
        rows, cols = grid(shape)
        angle = draw.uniform(0, 2 * np.pi)
        distance = np.cos(angle) * (cols / shape[1] - 0.5) + np.sin(angle) * (rows / shape[0] - 0.5)
        cut = draw.uniform(-0.3, 0.3)
        if draw.random() < 0.4:  # a corner shadow: two edges
            angle2 = angle + draw.uniform(0.8, 2.2)
            other = np.cos(angle2) * (cols / shape[1] - 0.5) + np.sin(angle2) * (rows / shape[0] - 0.5)
            distance = np.minimum(distance - cut, other - draw.uniform(-0.3, 0.1)) + cut
        soft = draw.uniform(0.002, 0.02, floor=0.0005)
        shadow = np.clip((distance - cut) / soft, 0, 1)
        light = light * (1 - draw.uniform(0.3, 0.65, floor=0.15, ceiling=0.8) * shadow)
    glare = np.zeros(shape, np.float32)
    if draw.random() < (0.5 if hard else 0.2):
        rows, cols = grid(shape)
        cy, cx = draw.uniform(0, shape[0]), draw.uniform(0, shape[1])
        radius = draw.uniform(0.05, 0.25) * max(shape)
        glare = np.exp(-((rows - cy) ** 2 + (cols - cx) ** 2) / (2 * radius**2)) * np.float32(draw.uniform(0.2, 0.6, ceiling=0.75))
    light, glare = (cv2.resize(np.ascontiguousarray(a, np.float32), full[::-1], interpolation=cv2.INTER_LINEAR)[..., None] for a in (light, glare))
    rgb = rgb * light
    return rgb + (255 - rgb) * glare


def camera(rgb: np.ndarray, draw: Draw, blur: tuple[float, float] = (0.3, 1.5), quality: tuple[int, int] = (70, 92), turned: float = 0.3) -> bytes:
    """Sensor noise, lens blur (sometimes a little motion), JPEG, an EXIF rotation in a ``turned`` share."""
    rgb = rgb + noise(draw, draw.uniform(2, 7, floor=0), rgb.shape)
    image = np.clip(rgb, 0, 255).astype(np.uint8)
    sigma = draw.uniform(*blur, floor=0)
    if sigma > 0.1:
        image = cv2.GaussianBlur(image, (0, 0), sigma)
    if draw.random() < 0.2:  # a little camera shake: a short straight smear
        length = int(draw.integers(3, 3 + max(image.shape) // 100))
        kernel = np.zeros((length, length), np.float32)
        kernel[length // 2] = 1 / length
        matrix = cv2.getRotationMatrix2D((length / 2 - 0.5, length / 2 - 0.5), draw.uniform(0, 180), 1)
        image = cv2.filter2D(image, -1, cv2.warpAffine(kernel, matrix, (length, length)))
    picture = Image.fromarray(image)
    buffer = io.BytesIO()
    quality_value = int(draw.integers(*quality))
    if draw.random() < turned:
        turns = {6: Image.Transpose.ROTATE_270, 8: Image.Transpose.ROTATE_90, 3: Image.Transpose.ROTATE_180}
        orientation = int(draw.choice(list(turns)))
        exif = Image.Exif()
        exif[ORIENTATION] = orientation
        picture.transpose(inverse_turn(turns[orientation])).save(buffer, format="JPEG", quality=quality_value, exif=exif)
    else:
        picture.save(buffer, format="JPEG", quality=quality_value)
    return buffer.getvalue()


def page_with_digit(digit, draw: Draw, shape, height, where=None, paper="white", ink=None):
    """A sheet of ``paper`` with the digit written at ``where`` (random if None); (rgb, box)."""
    rgb = sheet(shape, tint(PAPERS[paper], draw, 6), draw)
    width = int(height * 1.1)
    if where is None:
        where = (int(draw.integers(0, max(1, shape[0] - height))), int(draw.integers(0, max(1, shape[1] - width))))
    return rgb, write_digit(rgb, digit, draw, height, where, ink)


def picture_shape(draw: Draw, low: int = 500, high: int = 1100) -> tuple[int, int]:
    long_side = int(draw.integers(low, high))
    short_side = int(long_side * draw.uniform(0.6, 1.0))
    return (short_side, long_side) if draw.random() < 0.5 else (long_side, short_side)


def notebook(digit, draw: Draw):
    """A digit written on a ruled (or squared) notebook page, crossing the lines, photographed."""
    shape = picture_shape(draw)
    height = int(min(shape) * draw.uniform(0.2, 0.55, floor=0.1, ceiling=0.8))
    paper = str(draw.choice(["white", "white", "cream", "recycled"]))
    rgb = sheet(shape, tint(PAPERS[paper], draw, 6), draw)
    rules(rgb, draw, spacing=height * draw.uniform(0.3, 0.7, floor=0.2), squared=draw.random() < 0.3)
    top, left = int(draw.integers(0, shape[0] - height)), int(draw.integers(0, shape[1] - int(height * 1.1)))
    ink = str(draw.choice(["pencil", "pencil", "black", "blue", "red", "green"]))
    write_digit(rgb, digit, draw, height, (top, left), ink)
    return camera(shade(rgb, draw, hard=False), draw), "image/jpeg"


def form_field(digit, draw: Draw):
    """A digit written in a printed box, a row of boxes, a table cell or on a line, touching it."""
    shape = picture_shape(draw, 300, 900)
    height = int(min(shape) * draw.uniform(0.25, 0.6, floor=0.15, ceiling=0.75))
    rgb, box = page_with_digit(digit, draw, shape, height, paper=str(draw.choice(["white", "white", "cream"])))
    margin = int(0.15 * height)
    if box[0] < margin or box[1] < margin or box[0] + box[2] > shape[1] - margin or box[1] + box[3] > shape[0] - margin:
        rgb, box = page_with_digit(
            digit, draw, shape, height, where=((shape[0] - height) // 2, (shape[1] - height) // 2), paper="white"
        )
    printed_frame(rgb, box, draw)
    return camera(shade(rgb, draw, hard=False), draw, blur=(0, 1.2)), "image/jpeg"


def note_on_desk(digit, draw: Draw):
    """A sticky note, card or sheet on a darker desk or fabric, rotated, sometimes partly out of frame."""
    shape = picture_shape(draw)
    note_side = int(draw.integers(200, 400))
    paper = str(draw.choice(["yellow", "yellow", "pink", "blue", "green", "orange", "white", "cream"]))
    note_shape = (note_side, int(note_side * draw.uniform(1.0, 1.5)))
    height = int(note_side * draw.uniform(0.45, 0.75, floor=0.3, ceiling=0.85))
    where = (int((note_side - height) * draw.uniform(0.2, 0.8)), int((note_shape[1] - height * 1.1) * draw.uniform(0.2, 0.8)))
    page, box = page_with_digit(digit, draw, note_shape, height, where, paper, str(draw.choice(["black", "blue", "blue", "red", "purple"])))
    scale = min(shape) / note_side * draw.uniform(0.55, 1.0, floor=0.4, ceiling=1.3)
    centre = (draw.uniform(0.3, 0.7, floor=0.15, ceiling=0.85), draw.uniform(0.3, 0.7, floor=0.15, ceiling=0.85))
    rotation = np.radians(draw.uniform(-15, 15))
    background, tilt = desk(shape, draw), draw.uniform(-0.08, 0.08)
    centre = centre_keeping_in_frame(box, page.shape, shape, rotation, tilt, scale, centre)
    rgb, _ = warp_onto(page, background, draw, rotation, tilt, scale, centre)
    return camera(shade(rgb, draw, hard=draw.random() < 0.3), draw), "image/jpeg"


def hard_shadow(digit, draw: Draw):
    """A page under a lamp: a hard shadow across part of it, uneven light, sometimes a glare spot."""
    shape = picture_shape(draw)
    height = int(min(shape) * draw.uniform(0.25, 0.6, floor=0.15, ceiling=0.8))
    rgb, _ = page_with_digit(digit, draw, shape, height, paper=str(draw.choice(["white", "cream", "recycled"])))
    return camera(shade(rgb, draw, hard=True), draw), "image/jpeg"


def coloured_paper(digit, draw: Draw):
    """Coloured ink on coloured paper or card."""
    shape = picture_shape(draw, 300, 900)
    height = int(min(shape) * draw.uniform(0.3, 0.7, floor=0.15, ceiling=0.85))
    paper = str(draw.choice(["yellow", "pink", "blue", "green", "orange", "cream"]))
    ink = str(draw.choice(["blue", "red", "green", "purple", "black", "brown"]))
    rgb, _ = page_with_digit(digit, draw, shape, height, paper=paper, ink=ink)
    return camera(shade(rgb, draw, hard=False), draw), "image/jpeg"


def blur_tilt(digit, draw: Draw):
    """A page photographed at a slant (perspective) and out of focus."""
    shape = picture_shape(draw)
    page_shape = (int(shape[0] * 1.1), int(shape[1] * 1.1))
    height = int(min(shape) * draw.uniform(0.25, 0.55, floor=0.15, ceiling=0.75))
    where = (int(draw.integers(page_shape[0] // 6, page_shape[0] - height - page_shape[0] // 6)),
             int(draw.integers(page_shape[1] // 6, page_shape[1] - int(height * 1.1) - page_shape[1] // 6)))  # fmt: skip
    page, _ = page_with_digit(digit, draw, page_shape, height, where, str(draw.choice(["white", "cream"])))
    background = np.broadcast_to(page.mean(axis=(0, 1)), (*shape, 3)).astype(np.float32)
    rotation = np.radians(draw.uniform(-8, 8))
    rgb, _ = warp_onto(page, background, draw, rotation, draw.uniform(-0.2, 0.2, -0.35, 0.35), 1.0, (0.5, 0.5))
    sigma = draw.uniform(1.0, 3.0, floor=0.5) * max(shape) / 800
    return camera(shade(rgb, draw, hard=False), draw, blur=(sigma, sigma * 1.01)), "image/jpeg"


def near_edge(digit, draw: Draw):
    """The digit a few pixels from (or touching) one edge or corner of the picture."""
    shape = picture_shape(draw, 200, 800)
    height = int(min(shape) * draw.uniform(0.2, 0.6, floor=0.12, ceiling=0.8))
    width = int(height * 1.1)
    gap = lambda: int(draw.uniform(-0.06, 0.06, floor=-0.08) * height)  # noqa: E731 (the field has a margin)
    top = gap() if draw.random() < 0.5 else shape[0] - height - gap()
    left = int(draw.integers(0, shape[1] - width))
    if draw.random() < 0.5:  # a side edge instead, or a corner
        left = gap() if draw.random() < 0.5 else shape[1] - width - gap()
        if draw.random() < 0.5:
            top = int(draw.integers(0, shape[0] - height))
    rgb, _ = page_with_digit(digit, draw, shape, height, (top, left), str(draw.choice(["white", "cream", "recycled"])))
    return camera(shade(rgb, draw, hard=False), draw), "image/jpeg"


def phone_photo(digit, draw: Draw):
    """A phone camera's full-size picture of a digit on a page: 1-3 megapixels at 4:3, stored sideways
    with the EXIF orientation that turns it upright, as phones save the shots they take."""
    long_side = int(draw.integers(1200, 2000))
    shape = (long_side * 3 // 4, long_side) if draw.random() < 0.5 else (long_side, long_side * 3 // 4)
    height = int(min(shape) * draw.uniform(0.2, 0.5, floor=0.1, ceiling=0.8))
    rgb, _ = page_with_digit(digit, draw, shape, height, paper=str(draw.choice(["white", "cream", "recycled"])))
    return camera(shade(rgb, draw, hard=False), draw, turned=1.0), "image/jpeg"


STYLES: dict[str, Render] = {
    "mnist": mnist,
    "scan": scan,
    "photo": photo,
    "canvas": canvas,
    "small_offcentre": small_offcentre,
    "noisy_paper": noisy_paper,
    "light_on_dark": light_on_dark,
    "modes": modes,
    "notebook": notebook,
    "form_field": form_field,
    "note_on_desk": note_on_desk,
    "hard_shadow": hard_shadow,
    "coloured_paper": coloured_paper,
    "blur_tilt": blur_tilt,
    "near_edge": near_edge,
    "phone_photo": phone_photo,
}
PAPER_STYLES = ("notebook", "form_field", "note_on_desk", "hard_shadow", "coloured_paper", "blur_tilt", "near_edge", "phone_photo")


def generate(style: str, digits: np.ndarray, seed: int = 0, held_out: bool = False):
    """``(bytes, content_type)`` for each digit, the same for the same style, digits and seed.
    ``held_out``: the photo-of-paper styles draw their parameters from outside their usual ranges."""
    rng = np.random.default_rng([seed, list(STYLES).index(style), *([1] if held_out else [])])
    source = Draw(rng, held_out) if style in PAPER_STYLES else rng
    return [STYLES[style](digit, source) for digit in digits]


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
        **paper_without_digit(Draw(rng)),
    }


def paper_without_digit(draw: Draw) -> dict[str, bytes]:
    """Photos of paper with nothing written on it: ruled and squared pages, an empty printed box,
    a bare desk, an empty note on a desk."""

    def page(shape=(600, 800), paper="white"):
        return sheet(shape, tint(PAPERS[paper], draw, 4), draw)

    ruled, squared, box = page(), page(), page((400, 500))
    rules(ruled, draw, spacing=40, squared=False)
    rules(squared, draw, spacing=30, squared=True)
    printed_frame(box, (200, 120, 110, 150), draw)
    shape = (600, 800)
    note, _ = warp_onto(page((300, 360), "yellow"), desk(shape, draw), draw, 0.2, 0.05, 1.2, (0.5, 0.5))
    pictures = {"ruled_page": ruled, "squared_page": squared, "empty_box": box, "bare_desk": desk(shape, draw), "empty_note_on_desk": note}
    return {name: camera(shade(rgb, draw, hard=False), draw) for name, rgb in pictures.items()}
