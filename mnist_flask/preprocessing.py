"""Turn any picture of one handwritten digit into what the model was trained on.

MNIST's own recipe: ink as bright pixels on black, the digit's bounding box scaled to fit 20x20
keeping its aspect ratio, placed in a 28x28 field by its centre of mass. Training, evaluation and
the HTTP endpoints all go through :func:`to_mnist`, so the model never sees a different recipe.
"""

from __future__ import annotations

import io
from dataclasses import dataclass

import numpy as np
import simplejpeg
from PIL import Image, ImageOps, UnidentifiedImageError
from scipy import ndimage

try:
    from ._mnist_form import mnist_form_field
except ImportError:  # not compiled (no C compiler where it was installed): the same check in NumPy
    from .mnist_form import mnist_form_field

SUPPORTED_FORMATS = ("PNG", "JPEG", "GIF", "BMP", "WEBP", "TIFF")
MIN_SIDE = 8
COARSE_SIDE = 48  # resolution of the background estimate: lighting and paper vary slowly
WORK_SIDE = 256  # long side the digit is searched at: small digits survive, big photos stay cheap
FIELD, BOX = 28, 20
MIN_CONTRAST = 40 / 255  # below this much ink/background difference the picture is blank
EDGE_INK_RATIO = 0.5  # a digit leaves the picture's edges emptier than its middle; noise does not

# Pillow's own bomb check would raise before ours with a different message; ours is the limit.
Image.MAX_IMAGE_PIXELS = None

EIGHT_NEIGHBOURS = np.ones((3, 3), bool)
ALPHA_MODES = ("RGBA", "LA", "PA", "La", "RGBa")

JPEG_START = b"\xff\xd8"
# Segments that can rotate a JPEG (EXIF, XMP): such files take Pillow's path, which honours them.
ORIENTATION_MARKERS = (b"Exif\x00\x00", b"http://ns.adobe.com/xap/1.0/")
JPEG_TO_GRAY = ("Gray", "YCbCr")  # colour spaces libjpeg-turbo turns into luminance itself
# A progressive JPEG is decoded once per scan, each scan walking every block of the picture (about
# 25-60 ms per scan at 25 megapixels), and nothing in the format limits the scans: a 100 KB file can
# declare 1,000 of them and take a minute. Encoders write 1 (baseline) to 10 (libjpeg's progressive
# script for colour); so scans are counted before decoding (libjpeg-turbo's -maxscans does the same)
# and refused over a count, or over a budget of scans times pixels: 10 scans at the 25-megapixel limit.
MAX_JPEG_SCANS = 32
JPEG_SCAN_PIXEL_BUDGET = 250_000_000
START_OF_SCAN = b"\xff\xda"


class ImageError(ValueError):
    """An upload that cannot be read as a digit picture; ``status`` is the HTTP answer for it."""

    status = 400
    kind = "bad_image"


class ImageTooLarge(ImageError):
    status = 413
    kind = "image_too_large"


def check_jpeg_scans(data: bytes, width: int, height: int) -> None:
    """Refuse a JPEG whose scans would take too long to decode (see ``MAX_JPEG_SCANS``).

    Inside a scan's coded data a 0xFF byte is always followed by 0x00 or a restart marker, so every
    0xFF 0xDA in the file starts a scan, or sits in a metadata segment (an EXIF thumbnail's scan):
    the count never misses a scan and at most overcounts a few.
    """
    scans = data.count(START_OF_SCAN)
    if scans > MAX_JPEG_SCANS or scans * width * height > JPEG_SCAN_PIXEL_BUDGET:
        raise ImageTooLarge(
            f"the JPEG has {scans} scans at {width}x{height}: too costly to decode (the limits are "
            f"{MAX_JPEG_SCANS} scans, and {JPEG_SCAN_PIXEL_BUDGET} scans x pixels)"
        )


@dataclass(frozen=True)
class Digit:
    """A 28x28 float32 field in [0, 1] and whether a digit-like shape was found in the picture."""

    pixels: np.ndarray
    found: bool


def open_image(data: bytes, max_pixels: int) -> Image.Image:
    """Decode an upload, refusing what is not a supported picture before paying for its pixels."""
    if not data:
        raise ImageError("the uploaded file is empty")
    try:
        image = Image.open(io.BytesIO(data), formats=SUPPORTED_FORMATS)
    except UnidentifiedImageError:
        raise ImageError(
            "the upload is not an image this server reads; send one of: " + ", ".join(SUPPORTED_FORMATS)
        ) from None
    except Exception as exc:  # Pillow raises many types for malformed headers
        raise ImageError(f"the image header is corrupt: {exc}") from None
    check_dimensions(image.size, max_pixels)
    if image.format == "JPEG":
        check_jpeg_scans(data, *image.size)
    image.draft("RGB" if image.mode == "CMYK" else image.mode, (WORK_SIDE, WORK_SIDE))
    try:
        image.load()
    except Exception as exc:
        raise ImageError(f"the image is corrupt or truncated: {exc}") from None
    return image


def check_dimensions(size: tuple[int, int], max_pixels: int) -> None:
    width, height = size
    if width * height > max_pixels:
        raise ImageTooLarge(
            f"the image is {width}x{height} = {width * height} pixels; the limit is {max_pixels} pixels"
        )
    if min(width, height) < MIN_SIDE:
        raise ImageError(f"the image is {width}x{height}; each side must be at least {MIN_SIDE} pixels")


def to_grayscale(image: Image.Image) -> np.ndarray:
    """Luminance in 0..255 as float32, with transparency composited onto a contrasting background.

    A canvas export is dark strokes on a *transparent* background: compositing onto black would
    erase the strokes, so the background is chosen against the colour of the opaque pixels. A
    palette's transparent index, by contrast, still names the real background colour, so it is kept.
    """
    if may_be_rotated(image):
        image = ImageOps.exif_transpose(image)
    if max(image.size) > WORK_SIDE:
        image = shrink(image)
    if image.mode in ("I", "I;16", "I;16B", "I;16L", "I;16N", "F"):
        return stretch(np.asarray(image, dtype=np.float32))
    if image.mode in ALPHA_MODES:
        rgba = image.convert("RGBA")
        alpha = np.asarray(rgba.getchannel("A"), dtype=np.float32) / 255
        luminance = np.asarray(rgba.convert("L"), dtype=np.float32)
        if alpha.min() < 1:
            ink_level = float((luminance * alpha).sum() / max(alpha.sum(), 1e-6))
            background = 255.0 if ink_level < 128 else 0.0
            return luminance * alpha + background * (1 - alpha)
        return luminance
    if image.mode == "P":  # through RGB, so the palette's colours (not its indices) become luminance
        image = image.convert("RGB")
    return np.asarray(image if image.mode == "L" else image.convert("L"), dtype=np.float32)


def may_be_rotated(image: Image.Image) -> bool:
    """Only pictures carrying EXIF or XMP metadata (or TIFF tags) can say they are rotated."""
    return image.format == "TIFF" or not image.info.keys().isdisjoint({"exif", "xmp", "XML:com.adobe.xmp"})


def shrink(image: Image.Image) -> Image.Image:
    if image.mode in ("P", "1", "CMYK"):
        image = image.convert("RGB")
    scale = WORK_SIDE / max(image.size)
    size = (max(1, round(image.width * scale)), max(1, round(image.height * scale)))
    return image.resize(size, Image.Resampling.BOX)


def draft_scale(width: int, height: int) -> int:
    """Pillow's draft rule: the largest of 8, 4, 2 and 1 that leaves both sides at least ``WORK_SIDE``."""
    fits = min(width // WORK_SIDE, height // WORK_SIDE)
    return next(scale for scale in (8, 4, 2, 1) if scale <= max(fits, 1))


def stretch(values: np.ndarray) -> np.ndarray:
    low, high = float(values.min()), float(values.max())
    if high <= low:
        return np.zeros_like(values, dtype=np.float32)
    return ((values - low) * (255 / (high - low))).astype(np.float32)


def ink_map(gray: np.ndarray) -> np.ndarray:
    """Ink as bright values on zero, whichever way round the picture was and however lit.

    The background is the border's median (a digit covers little of the border). On a picture
    larger than MNIST's, uneven paper or lighting is removed too: see :func:`paper_level`.
    """
    border = np.concatenate([gray[0], gray[-1], gray[:, 0], gray[:, -1]])
    ink = 255 - gray if np.median(border) > 127 else gray
    if max(ink.shape) > 2 * FIELD:
        ink = ink - paper_level(ink)
    return np.clip(ink - np.median(ink), 0, None) / 255


def paper_level(ink: np.ndarray) -> np.ndarray:
    """A smooth estimate of the background under the ink, from the pixels that are not ink.

    Otsu's split marks likely ink; the background is a normalised blur of everything else (ink
    pixels get no weight), so thick strokes are never mistaken for uneven paper. All of it runs on
    a coarse copy, since paper and light vary slowly.
    """
    scale = COARSE_SIDE / max(ink.shape)
    coarse = ndimage.zoom(ink, [max(scale, 1 / side) for side in ink.shape], order=1, grid_mode=True, mode="nearest")
    level = np.full_like(coarse, np.median(coarse))
    for _ in range(2):  # the second pass re-marks ink once the first has flattened the lighting
        residual = (coarse - level) / 255
        weight = ~ndimage.maximum_filter(residual > otsu_threshold(residual), size=3)
        level = normalised_blur(coarse, weight, sigma=COARSE_SIDE / 8)
    zoom = (ink.shape[0] / level.shape[0], ink.shape[1] / level.shape[1])
    return ndimage.zoom(level, zoom, order=1, grid_mode=True, mode="nearest")[: ink.shape[0], : ink.shape[1]]


def normalised_blur(values: np.ndarray, weight: np.ndarray, sigma: float) -> np.ndarray:
    """A Gaussian blur that only averages the pixels with weight, filling the others in."""
    weight = weight.astype(np.float32)
    return ndimage.gaussian_filter(values * weight, sigma) / np.maximum(ndimage.gaussian_filter(weight, sigma), 1e-3)


def otsu_threshold(values: np.ndarray, bins: int = 64) -> float:
    """The grey level that best splits ``values`` (in 0..1) into two classes (Otsu's method)."""
    levels = values[(values >= 0) & (values <= 1)]
    histogram = np.bincount(np.minimum((levels * bins).astype(np.intp), bins - 1), minlength=bins)
    centres = (np.arange(bins) + 0.5) / bins
    below = np.cumsum(histogram)
    above = below[-1] - below
    mass_below = np.cumsum(histogram * centres)
    mean_below = mass_below / np.maximum(below, 1)
    mean_above = (mass_below[-1] - mass_below) / np.maximum(above, 1)
    return float((np.argmax(below * above * (mean_below - mean_above) ** 2) + 1) / bins)


def digit_mask(ink: np.ndarray) -> np.ndarray:
    """Pixels of the strokes: above Otsu's threshold, in components big enough to be strokes."""
    mask = ink > max(otsu_threshold(ink), 0.1 * ink.max())
    labels, count = ndimage.label(mask, structure=EIGHT_NEIGHBOURS)
    if count > 1:
        sizes = np.bincount(labels.ravel())[1:]
        keep = np.flatnonzero(sizes >= 0.1 * sizes.max()) + 1
        mask = np.isin(labels, keep)
    return mask


def looks_like_noise(mask: np.ndarray) -> bool:
    """Texture or noise fills the picture's outer frame as densely as its middle; a digit does not."""
    width = max(1, min(mask.shape) // 10)
    frame = np.ones_like(mask)
    frame[width:-width, width:-width] = False
    return mask[frame].mean() > EDGE_INK_RATIO * mask.mean() and mask[frame].mean() > 0.02


def fit_to_field(ink: np.ndarray) -> np.ndarray:
    """Scale the bounding box to fit 20x20 and place it in 28x28 by its centre of mass."""
    rows, cols = np.nonzero(ink)
    crop = ink[rows.min() : rows.max() + 1, cols.min() : cols.max() + 1]
    scale = BOX / max(crop.shape)
    size = (max(1, round(crop.shape[1] * scale)), max(1, round(crop.shape[0] * scale)))
    box = np.asarray(Image.fromarray(crop).resize(size, Image.Resampling.LANCZOS))
    box = np.clip(box, 0, None)
    total = max(float(box.sum()), 1e-6)
    cy = float(box.sum(axis=1) @ np.arange(box.shape[0])) / total
    cx = float(box.sum(axis=0) @ np.arange(box.shape[1])) / total
    top = int(np.clip(round(FIELD / 2 - cy), 0, FIELD - box.shape[0]))
    left = int(np.clip(round(FIELD / 2 - cx), 0, FIELD - box.shape[1]))
    field = np.zeros((FIELD, FIELD), dtype=np.float32)
    field[top : top + box.shape[0], left : left + box.shape[1]] = box
    return field / max(float(field.max()), 1e-6)


def to_mnist(gray: np.ndarray) -> Digit:
    """The recipe itself, on a 2-D luminance array (0..255) of any size."""
    gray = np.asarray(gray)
    if gray.dtype not in (np.uint8, np.float32):
        gray = gray.astype(np.float32)
    field = mnist_form_field(gray, FIELD, BOX, MIN_CONTRAST * 255)
    if field is not None:  # already the recipe's output: MNIST's own digits, the model's format
        return Digit(field, found=True)
    ink = ink_map(np.asarray(gray, dtype=np.float32))
    if ink.max() < MIN_CONTRAST:
        return Digit(np.zeros((FIELD, FIELD), np.float32), found=False)
    mask = digit_mask(ink)
    if looks_like_noise(mask):
        return Digit(np.zeros((FIELD, FIELD), np.float32), found=False)
    strokes = ink * ndimage.maximum_filter(mask, size=3)
    return Digit(fit_to_field(strokes), found=True)


def prepare_upload(data: bytes, max_pixels: int) -> Digit:
    """Bytes of an uploaded picture to the model's input."""
    return to_mnist(read_luminance(data, max_pixels))


def read_luminance(data: bytes, max_pixels: int) -> np.ndarray:
    """The picture as luminance (0..255): plain JPEGs through libjpeg-turbo straight to grey, the
    rest through Pillow. The common upload then costs a few microseconds instead of ~50 of Pillow's
    per-file overhead (docs/performance.md); both give the same pixels (tests/test_preprocessing.py)."""
    gray = read_jpeg_luminance(data, max_pixels) if plain_jpeg(data) else None
    return to_grayscale(open_image(data, max_pixels)) if gray is None else gray


def plain_jpeg(data: bytes) -> bool:
    """A JPEG that cannot carry a rotation: no EXIF or XMP segment anywhere in it."""
    return data.startswith(JPEG_START) and not any(marker in data for marker in ORIENTATION_MARKERS)


def read_jpeg_luminance(data: bytes, max_pixels: int) -> np.ndarray | None:
    """libjpeg-turbo's own grey output, DCT-scaled exactly as Pillow's ``draft`` would; None for
    what it leaves to Pillow: colour spaces it does not turn into grey (CMYK, YCCK, RGB) and files
    it is strict about but Pillow reads (an unknown JFIF revision, stray bytes before a marker)."""
    try:
        height, width, colour_space, _ = simplejpeg.decode_jpeg_header(data)
    except ValueError:
        return None
    if colour_space not in JPEG_TO_GRAY:
        return None
    check_dimensions((width, height), max_pixels)
    check_jpeg_scans(data, width, height)
    scale = draft_scale(width, height)
    try:
        gray = simplejpeg.decode_jpeg(data, colorspace="GRAY", min_width=-(-width // scale), min_height=-(-height // scale))
    except ValueError:
        return None
    if max(gray.shape) > WORK_SIDE:
        return np.asarray(shrink(Image.fromarray(gray[..., 0])))
    return gray[..., 0]
