"""Turn any picture of one handwritten digit into what the model was trained on.

MNIST's own recipe: ink as bright pixels on black, the digit's bounding box scaled to fit 20x20
keeping its aspect ratio, placed in a 28x28 field by its centre of mass. Training, evaluation and
the HTTP endpoints all go through :func:`to_mnist`, so the model never sees a different recipe.
"""

from __future__ import annotations

import functools
import io
from dataclasses import dataclass, field, replace
from functools import partial
from typing import Callable, Iterator, NamedTuple

import cv2
import numpy as np
import simplejpeg
from PIL import Image, ImageOps, UnidentifiedImageError

try:
    from ._mnist_form import mnist_form_field
except ImportError:  # not compiled (no C compiler where it was installed): the same check in NumPy
    from .mnist_form import mnist_form_field
from . import likeness

# One thread per call: the server runs a worker per core, and OpenCV's own thread pool only makes
# requests wait for each other (an operation on a picture of WORK_SIDE pixels is too small to split).
cv2.setNumThreads(1)

SUPPORTED_FORMATS = ("PNG", "JPEG", "GIF", "BMP", "WEBP", "TIFF")
MIN_SIDE = 8
WORK_SIDE = 256  # long side the digit is searched at: small digits survive, big photos stay cheap
FIELD, BOX = 28, 20
MIN_CONTRAST = 40 / 255  # below this much ink/background difference the picture is blank
EDGE_INK_RATIO = 0.5  # a digit leaves the picture's edges emptier than its middle; noise does not

# Pillow's own bomb check would raise before ours with a different message; ours is the limit.
Image.MAX_IMAGE_PIXELS = None

ALPHA_MODES = ("RGBA", "LA", "PA", "La", "RGBa")

JPEG_START = b"\xff\xd8"
# Segments that can rotate a JPEG (EXIF, XMP): such files take Pillow's path, which honours them.
ORIENTATION_MARKERS = (b"Exif\x00\x00", b"http://ns.adobe.com/xap/1.0/")
JPEG_TO_GRAY = ("Gray", "YCbCr")  # colour spaces libjpeg-turbo turns into luminance itself
EXIF_ORIENTATION = 0x0112
# A progressive JPEG is decoded once per scan, each scan walking every block of the picture, and
# nothing in the format limits the scans: a 100 KB file can declare 1,000 of them and hold a worker
# for a thousand decodes. Encoders write 1 (baseline) to 10 (libjpeg's progressive
# script for colour); so scans are counted before decoding (libjpeg-turbo's -maxscans does the same)
# and refused over a count, or over a budget of scans times pixels: 10 scans at the 25-megapixel limit.
MAX_JPEG_SCANS = 32
JPEG_SCAN_PIXEL_BUDGET = 250_000_000
START_OF_SCAN = b"\xff\xda"
# Other formats are decoded whole, and their cost follows the raw bytes, not the pixels: at the pixel
# limit a grey PNG is 25 MB to inflate and unfilter, a 16-bit RGBA one 200 MB (and more work
# interlaced). A picture that would decode to more than this is refused before decoding, so that a
# handful of the costliest accepted uploads cannot keep a worker from everyone else (docs/performance.md).
DECODED_BYTES_BUDGET = 40 * 1024 * 1024


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
    """A 28x28 float32 field in [0, 1], whether a digit-like shape was found in the picture, and
    where: ``box`` is (x, y, width, height) of its strokes in the picture's pixels, None if not found.

    ``second_look``, when set, reads the picture again in other ways (a photo split by a hard
    shadow, read with each side's paper apart; a "sheet" read as a page in shadow): the digits
    found, none where those ways read the same. The classifier looks when the model doubts the
    first reading (``Classifier.answers``), or when the strokes read reach the picture's edge
    (``at_edge``), where shadows' tips and surfaces lie and a confident reading may be of one of
    them, and keeps the reading it is surest of. Strokes from one edge to the opposite one
    (``spans``) are most often the desk around a note or a band of shadow taken in with the digit
    (a digit itself spans only a tight crop): any other reading found is preferred to them."""

    pixels: np.ndarray
    found: bool
    box: tuple[int, int, int, int] | None = None
    second_look: Callable[[], list[Digit]] | None = field(default=None, compare=False, repr=False)
    at_edge: bool = False
    spans: bool = False

    def where(self) -> dict | None:
        """The box as the API states it."""
        return None if self.box is None else dict(zip(("x", "y", "width", "height"), self.box))

    def scaled(self, from_shape: tuple[int, int], to_size: tuple[int, int]) -> Digit:
        """The same digit with its box moved from a picture of ``from_shape`` (rows, columns) to
        the same picture at ``to_size`` (width, height)."""
        second_look = self.second_look and (lambda: [other.scaled(from_shape, to_size) for other in self.second_look()])
        if self.box is None:
            return replace(self, second_look=second_look)
        sx, sy = to_size[0] / from_shape[1], to_size[1] / from_shape[0]
        x, y, w, h = self.box
        left, top = int(x * sx), int(y * sy)
        right, bottom = min(to_size[0], -int(-(x + w) * sx // 1)), min(to_size[1], -int(-(y + h) * sy // 1))
        return replace(self, box=(left, top, right - left, bottom - top), second_look=second_look)


NOT_FOUND = Digit(np.zeros((28, 28), np.float32), found=False)


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
    else:
        check_decoded_bytes(image, data)
    draft_luminance(image)
    try:
        image.load()
    except Exception as exc:
        raise ImageError(f"the image is corrupt or truncated: {exc}") from None
    return image


def draft_luminance(image: Image.Image) -> None:
    """Ask Pillow to decode a JPEG at a reduced scale (:func:`draft_scale`), as luminance where
    libjpeg can compute it itself (the colour is thrown away anyway); a no-op for other formats."""
    scale = draft_scale(*image.size)
    image.draft("L" if image.mode in ("RGB", "L") else "RGB", (image.width // scale, image.height // scale))


def check_decoded_bytes(image: Image.Image, data: bytes) -> None:
    """Refuse a non-JPEG whose raw pixels exceed ``DECODED_BYTES_BUDGET`` (JPEGs are decoded at
    reduced scale, and their scans are counted instead)."""
    sixteen_bit = image.mode.startswith("I;16") or (image.format == "PNG" and len(data) > 24 and data[24] == 16)
    decoded = image.width * image.height * len(image.getbands()) * (2 if sixteen_bit else 1)
    if decoded > DECODED_BYTES_BUDGET:
        raise ImageTooLarge(
            f"the {image.format} image is {image.width}x{image.height} {image.mode}"
            f"{' 16-bit' if sixteen_bit and not image.mode.startswith('I;16') else ''}: {decoded} bytes to decode, "
            f"too costly (the limit is {DECODED_BYTES_BUDGET} bytes; send a JPEG, or a smaller or greyscale picture)"
        )


def check_dimensions(size: tuple[int, int], max_pixels: int) -> None:
    width, height = size
    if width * height > max_pixels:
        raise ImageTooLarge(
            f"the image is {width}x{height} = {width * height} pixels; the limit is {max_pixels} pixels"
        )
    if min(width, height) < MIN_SIDE:
        raise ImageError(f"the image is {width}x{height}; each side must be at least {MIN_SIDE} pixels")


def to_grayscale(image: Image.Image) -> np.ndarray:
    """Luminance in 0..255 (bytes, or float32 for 16-bit and float pictures), with transparency
    composited onto a contrasting background.

    A canvas export is dark strokes on a *transparent* background: compositing onto black would
    erase the strokes, so the background is chosen against the colour of the opaque pixels. A
    palette's transparent index, by contrast, still names the real background colour, so it is kept.
    """
    if may_be_rotated(image):
        image = ImageOps.exif_transpose(image)
    return fit_within(luminance(shrink(image)), WORK_SIDE)


def luminance(image: Image.Image) -> np.ndarray:
    """:func:`to_grayscale` of an upright picture, at its size."""
    if image.mode in ("I", "I;16", "I;16B", "I;16L", "I;16N", "F"):
        return stretch(np.asarray(image, dtype=np.float32))
    if image.mode in ALPHA_MODES:
        return composited(image.convert("RGBA"))
    if image.mode == "P":  # through RGB, so the palette's colours (not its indices) become luminance
        image = image.convert("RGB")
    return np.asarray(image if image.mode == "L" else image.convert("L"))


def composited(rgba: Image.Image) -> np.ndarray:
    """The luminance (uint8) of a picture with transparency, over white where its opaque pixels are
    dark (on average, weighted by their opacity) and over black where they are light. In bytes,
    with OpenCV's saturating arithmetic: a canvas export costs a fraction of the same in floats."""
    alpha, gray = np.asarray(rgba.getchannel("A")), np.asarray(rgba.convert("L"))
    if alpha.min() == 255:
        return gray
    ink_level = cv2.sumElems(cv2.multiply(gray, alpha, dtype=cv2.CV_32F))[0] / max(float(cv2.sumElems(alpha)[0]), 1.0)
    if ink_level < 128:  # over white: 255 - (255 - gray) * alpha
        return 255 - cv2.multiply(255 - gray, alpha, scale=1 / 255)
    return cv2.multiply(gray, alpha, scale=1 / 255)


def may_be_rotated(image: Image.Image) -> bool:
    """Only pictures carrying EXIF or XMP metadata (or TIFF tags) can say they are rotated."""
    return image.format == "TIFF" or not image.info.keys().isdisjoint({"exif", "xmp", "XML:com.adobe.xmp"})


def shrink(image: Image.Image) -> Image.Image:
    """A large picture averaged down by a whole factor (Pillow's ``reduce``, its cheapest resampling)
    to under twice ``WORK_SIDE``; OpenCV's area averaging brings the grey array to the size after."""
    factor = max(image.size) // WORK_SIDE
    if factor < 2:
        return image
    if image.mode in ("P", "PA", "1", "CMYK"):  # averaged as colours, not palette indices
        image = image.convert("RGBA" if image.mode == "PA" else "RGB")
    elif image.mode.startswith("I;16"):
        image = image.convert("I")
    return image.reduce(factor)


def draft_scale(width: int, height: int) -> int:
    """The JPEG decoding scale: the largest of 8, 4, 2 and 1 that leaves the longer side at least
    ``WORK_SIDE`` (Pillow's ``draft`` picks the same when asked for the sides divided by it)."""
    fits = max(width, height) // WORK_SIDE
    return next(scale for scale in (8, 4, 2, 1) if scale <= max(fits, 1))


def stretch(values: np.ndarray) -> np.ndarray:
    low, high = float(values.min()), float(values.max())
    if high <= low:
        return np.zeros_like(values, dtype=np.float32)
    return ((values - low) * (255 / (high - low))).astype(np.float32)


def ink_map(gray: np.ndarray) -> np.ndarray:
    """Ink as bright values on zero, whichever way round the picture was, in a picture no larger
    than twice MNIST's field (larger ones go through :func:`find_digit`).

    The background is the border's median (a digit covers little of the border).
    """
    ink = 255 - gray if np.median(on_border(gray)) > 127 else gray
    return np.clip(ink - np.median(ink), 0, None) / 255


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
    count, labels, stats, _ = cv2.connectedComponentsWithStats(mask.view(np.uint8), connectivity=8)
    if count > 2:
        sizes = stats[:, cv2.CC_STAT_AREA]
        mask = (sizes >= 0.1 * sizes[1:].max())[labels] & mask
    return mask


def looks_like_noise(mask: np.ndarray) -> bool:
    """Texture or noise fills the picture's outer frame as densely as its middle; a digit does not."""
    width = max(1, min(mask.shape) // 10)
    frame = np.ones_like(mask)
    frame[width:-width, width:-width] = False
    return mask[frame].mean() > EDGE_INK_RATIO * mask.mean() and mask[frame].mean() > 0.02


def fit_to_field(ink: np.ndarray) -> np.ndarray:
    """Scale the bounding box to fit 20x20 and place it in 28x28 by its centre of mass."""
    x, y, w, h = ink_box(ink)
    crop = ink[y : y + h, x : x + w]
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


# Finding the digit in a photo of paper (pictures larger than 2x MNIST's field). The steps, all in
# OpenCV on a copy at most ANALYSIS_SIDE long: find a sheet lying on a darker or textured surface;
# the ink as each pixel's darkness relative to the paper around it (a morphological closing, which follows hard
# shadow edges and glare exactly); remove long thin straight lines (rules, margins, printed frames);
# of what is left, keep the most digit-like component and the strokes near it (a small digit's
# strokes read again from the <= WORK_SIDE picture). Where a sheet lies on a surface or a hard
# shadow falls, a second look closes each area's paper apart, when the model doubts the first.
SHEET_SIDE = 64  # resolution at which a sheet is told from the surface it lies on
SHEET_SMALLEST = 0.05  # the least share of the picture a sheet covers
SHEET_SMALL = 0.12  # a sheet covering less lies inside the picture, ...
SHEET_SMALL_BORDER = 0.1  # ... covering at most this share of the picture's border (a lit corner, cut by two edges, is no sheet)
TEXTURED = 0.06  # local contrast (over the mean) above which a surface is textured (smooth_area)
SMOOTH_WINDOW = 5  # ... over this window (pixels at the analysis size)
STRIPED_WINDOW = 9  # ... and, where no sheet is smooth over that, over this one as well: a wide stripe's crest is smooth over the narrower only
STROKE_FILL = 0.11  # the closing (fraction of the longer side) that fills a digit's strokes back into its smooth sheet
TEXTURED_SHARE = 0.5  # ... and at least this share of a smooth sheet's surround is textured
SURFACE_SHARE = 0.25  # ... which covers at least this share of the picture
SHEET_NARROWEST = 0.3  # the least share of the picture's shorter side a sheet's box spans each way
PAPER_KERNEL = 0.2  # closing kernel, as a fraction of the picture's shorter side: wider than any stroke
LINE_SEGMENT = 1 / 16  # a printed line's straight runs are at least this long (fraction of the longer side)
LINE_SHORTEST = 0.12  # ... and it is at least this long in all, unless it reaches the picture's edge
LINE_THICKEST = 0.05  # ... at most this thick (a bold printed frame, 0.04 of the picture, is a line)
LINE_RATIO = 10  # ... and this many times longer than thick
BAND_RATIO = 1.5 * LINE_RATIO  # ... or this many, for a band of a run that is no line as a whole
LINE_TILT = 0.1  # ... tilted by at most about this slope (6 degrees)
BULGE = 1  # a stroke lies along a line where the line is more than this many pixels thicker than itself and than it usually is nearby (strokes_along)
NEARBY = 0.5  # ... within this share of the picture's longer side: light thickens a line over longer stretches
FRAME_SMALLEST = 0.05  # a printed frame's cell is at least this wide and tall (fraction of the longer side)
FRAME_COVERED = 0.9  # ... and ink lines this share of each of its sides (frame_side)
FRAME_RAGGED = 0.5  # ... a side with ink a pixel inside it along more than this share is a stroke's ragged edge
FRAME_FILLED = 0.75  # ... and the hole fills this share of that rectangle (a digit touching the frame inside takes the rest)
FRAME_CELLS = 12  # more cells than this are a grid, not a form's frames
FAINTEST = 0.06  # relative darkness below which nothing counts as ink or printed line
DENSE_LINES = 0.25  # a page whose printed lines cover more than this share is ruled too densely to cut them out (line_level)
NOISE_LEAD = 4  # in a picture as busy as noise, the digit must be this much more digit-like than anything else
SURE_DIGIT = 0.95  # ... but a shape that looks like a digit this much is read though it leads nothing (dark ink, clear of the edge)
THICKER = 3  # a shape near the digit whose widest point is this many times the digit's is no stroke of it (without_strays), nor a part of the chosen shape that much wider than its strokes (without_thick_parts)
RIVAL = 0.5  # ... and a best shape that looks like no digit gives way if it is that much thicker than one scoring this share of it (choose_digit)
NEAR_DIGIT = 0.3  # strokes this close to the chosen one (fraction of its height) belong to the digit
ANALYSIS_SIDE = 192  # long side of the copy the digit is searched in: sheet, paper, lines and strokes
FINER_PAPER = 128  # where nothing is found there, the search at the picture's own size, on a picture mostly of paper: its median grey at least this
DETAILED_DIGIT = 2 * BOX  # a digit found smaller than this there is read from the larger picture
SHADE_SHARE = 0.08  # a hard shadow covers at least this share of the paper, and leaves as much lit
SHADE_RATIO = 1.25  # ... and the lit side is at least this much brighter
LIKENESS_CHECKS = 4  # the best components weighed by how much they look like a digit (likeness_weights)
LIKENESS_FLOOR = 0.1  # ... by at least this much
EDGE_NO_DIGIT = 0.02  # chosen strokes at the picture's edge less digit-like than this are passed over (to_pass_over); a light-ink reading anywhere is read again as dark ink (find_digit)
NO_DIGIT = 0.001  # ... and anywhere, less than this
LIKELY_DIGIT = 0.5  # ... for what is found without them, which must look like a digit at least this much
TIP_CHECKS = 3  # the most digit-like components checked for fading out (a shadow's edge), best first
FADING = 0.2  # an outline with a slope below this share of its steepest (90th percentile) has no edge there
FADED_SHARE = 0.25  # ... and a shadow's edge has none on more than this share of its outline
SHEET_SQUARE = 0.9  # a sheet's sides agree on its turn this much (1: all alike) for its digit to be turned upright with it (sheet_turn) ...
SHEET_CORNER = 0.2  # ... and its sides square to each other take this share of them each (the lit part of a page has one, a shadow's edge)
LEAST_TURN = 5  # ... turned by at least this many degrees (less, the model reads the digit as it is; the lit part of a page notched by its digit turns by a few)
SEAM = 2  # pixels either side of a shadow's (a sheet's) edge that its blur can cover
DIM_PAPER = 190 / 255  # paper darker than this is in dim light: its ink's contrast is measured against it
DIMMEST_INK = 24 / 255  # ... but the ink must still stand out this far on the full scale


def sheet_region(gray: np.ndarray, by_smoothness: bool = True) -> np.ndarray | None:
    """Where a sheet (paper, note, card) lies on a surface that frames it, or None when the
    picture shows no such surface: then the whole picture is paper (or board). The surface is
    darker than the sheet, or else (``by_smoothness``) textured (:func:`smooth_area`): a striped
    or patterned fabric whose bright stripes are as bright as the note on it."""
    height, width = gray.shape
    scale = SHEET_SIDE / max(height, width)
    size = (max(1, round(width * scale)), max(1, round(height * scale)))
    if min(size) < 8:
        return None
    coarse = cv2.resize(gray, size, interpolation=cv2.INTER_AREA)
    sheet = sheet_by_brightness(coarse)
    if sheet is None and by_smoothness:
        sheet = sheet_by_smoothness(gray, size)
    return None if sheet is None else cv2.resize(sheet, (width, height), interpolation=cv2.INTER_NEAREST).astype(bool)


def sheet_by_brightness(coarse: np.ndarray) -> np.ndarray | None:
    """The sheet (uint8 0/1, at ``SHEET_SIDE``) brighter than the surface around it, by Otsu's threshold."""
    threshold, bright = cv2.threshold(coarse, 0, 1, cv2.THRESH_BINARY + cv2.THRESH_OTSU)
    if on_border(bright).mean() > 0.75 or bright.all() or not bright.any():
        return None
    dark_level, bright_level = coarse[bright == 0].mean(), coarse[bright == 1].mean()
    if bright_level - dark_level < 40:
        return None
    def has_edge(filled: np.ndarray) -> bool:  # not a glare or a lit patch
        ring = np.ones((5, 5), np.uint8)
        inside, outside = filled & ~cv2.erode(filled, ring), cv2.dilate(filled, ring) & ~filled
        return outside.any() and coarse[inside == 1].mean() - coarse[outside == 1].mean() >= 0.5 * (bright_level - dark_level)
    return sheet_in(bright, has_edge)


def on_textured_surface(filled: np.ndarray, smooth: np.ndarray) -> bool:
    """Whether what lies around a smooth sheet (``filled``, uint8 0/1) is a textured surface: a
    ``SURFACE_SHARE`` of the picture at least, smooth over less than ``TEXTURED_SHARE`` of it. A
    plain page is smooth all over but for its digit."""
    around = filled == 0
    return around.mean() >= SURFACE_SHARE and smooth[around].mean() <= 1 - TEXTURED_SHARE


def sheet_in(paper: np.ndarray, framed: Callable[[np.ndarray], bool]) -> np.ndarray | None:
    """The sheet (uint8 0/1) that the largest area of ``paper`` (uint8 0/1) is, or None when it is
    too small, too thin, not convex or not mostly paper, or ``framed`` (given the sheet) finds no
    surface framing it."""
    size = paper.shape[::-1]
    closed = cv2.morphologyEx(paper, cv2.MORPH_CLOSE, np.ones((5, 5), np.uint8))
    count, labels, stats, _ = cv2.connectedComponentsWithStats(closed, connectivity=4)
    if count < 2:
        return None
    largest = 1 + int(np.argmax(stats[1:, cv2.CC_STAT_AREA]))
    x, y, w, h, area = stats[largest]
    if area < SHEET_SMALLEST * paper.size or min(w, h) < SHEET_NARROWEST * min(size):
        return None
    region = (labels == largest).astype(np.uint8)
    if area < SHEET_SMALL * paper.size and on_border(region).mean() > SHEET_SMALL_BORDER:
        return None
    contours, _ = cv2.findContours(region, cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)
    contour = max(contours, key=cv2.contourArea)
    hull = cv2.convexHull(contour)
    if cv2.erode(region, stroke_proof_kernel(size, (w, h), hull)).sum() < 0.3 * area:
        return None
    filled = np.zeros_like(paper)
    cv2.drawContours(filled, [contour], -1, 1, thickness=cv2.FILLED)
    solidity = filled.sum() / max(cv2.contourArea(hull), 1)
    if solidity < 0.85 or paper[filled == 1].mean() < 0.75:  # a sheet is convex and mostly paper
        return None
    if not framed(filled):
        return None
    return cv2.erode(filled, np.ones((3, 3), np.uint8))  # its edge is no ink


def sheet_by_smoothness(gray: np.ndarray, size: tuple[int, int]) -> np.ndarray | None:
    """The sheet (uint8 0/1, at ``size``) that is the largest smooth area framed by a textured
    surface (:func:`on_textured_surface`), smooth over ``SMOOTH_WINDOW`` or else, where that finds
    none, over ``STRIPED_WINDOW`` too (:func:`smooth_areas`)."""
    for smooth in smooth_areas(gray, size):
        sheet = sheet_in(smooth.view(np.uint8), lambda filled: on_textured_surface(filled, smooth))
        if sheet is not None:
            return sheet
    return None


def smooth_areas(gray: np.ndarray, size: tuple[int, int]) -> Iterator[np.ndarray]:
    """Where a sheet may be by its smoothness (bool, at ``size``): smooth over ``SMOOTH_WINDOW``
    (:func:`smooth_area`); then, asked again where that finds no sheet, over ``STRIPED_WINDOW``
    too. A fabric's stripes wider than the narrower window have crests smooth over it, which join
    the note lying on them into one shape no sheet has; over the wider window only the note is
    smooth, notched by its digit, which a square closing of ``STROKE_FILL`` fills (smooth paper
    all round it) so that a small note with a large digit stays a sheet. Slivers a pixel wide are
    dropped before the closing (specks on the stripes) and after (along the picture's edge, where
    the window mirrors a stripe). The wider window alone loses notes the narrower finds: the
    rounder outline it leaves a small note on zigzag fabric is eroded as a bold digit's would be
    (:func:`sheet_in`)."""
    narrow = smooth_area(gray, SMOOTH_WINDOW)
    yield cv2.resize(narrow.astype(np.float32), size, interpolation=cv2.INTER_AREA) > 0.5
    sliver = np.ones((3, 3), np.uint8)
    smooth = cv2.morphologyEx((narrow & smooth_area(gray, STRIPED_WINDOW)).view(np.uint8), cv2.MORPH_OPEN, sliver)
    side = max(3, round(STROKE_FILL * max(gray.shape)) | 1)
    filled = cv2.morphologyEx(smooth, cv2.MORPH_CLOSE, np.ones((side, side), np.uint8))
    coarse = (cv2.resize(filled.astype(np.float32), size, interpolation=cv2.INTER_AREA) > 0.5).view(np.uint8)
    yield cv2.morphologyEx(coarse, cv2.MORPH_OPEN, sliver).view(bool)


def smooth_area(gray: np.ndarray, window: int) -> np.ndarray:
    """Where the picture is smooth (bool): its local contrast (the standard deviation over
    ``window`` pixels, against the mean) is under ``TEXTURED``. A note is smooth but for its
    strokes; a fabric's stripes or weave are not."""
    values = gray.astype(np.float32)
    mean = cv2.blur(values, (window, window))
    spread = np.sqrt(np.maximum(cv2.blur(values * values, (window, window)) - mean * mean, 0))
    return spread < TEXTURED * (mean + 16)


def on_border(picture: np.ndarray) -> np.ndarray:
    """The pixels along a picture's four edges, in one row."""
    return np.concatenate([picture[0], picture[-1], picture[:, 0], picture[:, -1]])


def stroke_proof_kernel(size: tuple[int, int], box: tuple[int, int], hull: np.ndarray) -> np.ndarray:
    """What a sheet must survive an erosion by: a square a fifth of the picture's shorter side,
    wider than any stroke, so a bold digit on a board (which the closing fills) vanishes. A
    four-sided shape (its ``hull`` within 2 % of its outline has at most five corners, six where
    two picture edges cut it; such a digit is rounder) is eroded by a disc at most a third of its
    own shorter side (``box``) instead, so a small note turned on a desk stays."""
    x, y = hull[:, 0].T
    edges = int(x.min() == 0) + int(x.max() == size[0] - 1) + int(y.min() == 0) + int(y.max() == size[1] - 1)
    if len(cv2.approxPolyDP(hull, 0.02 * cv2.arcLength(hull, True), True)) > (6 if edges >= 2 else 5):
        side = max(3, round(0.2 * min(size)) | 1)
        return np.ones((side, side), np.uint8)
    side = max(3, round(min(0.2 * min(size), 0.3 * min(box))) | 1)
    return cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (side, side))


def dark_on_light(gray: np.ndarray, within: np.ndarray | None = None) -> bool:
    """Whether the ink is darker than the paper: the darkest pixels lie further below the picture's
    median than the brightest lie above it, measured as ratios (shadows and light multiply); with
    ``within``, among those pixels only."""
    smooth = cv2.blur(gray, (3, 3))
    if within is not None:
        smooth = smooth[within]
    low, high, median = float(smooth.min()) + 8, float(smooth.max()) + 8, float(np.median(smooth)) + 8
    return median / low >= high / median


def light_ink_on(small: np.ndarray, sheet: np.ndarray | None, kernel: int) -> bool:
    """Whether the ink is lighter than the paper (chalk on a board). A sheet on a surface always
    has dark ink. A page mostly in a hard shadow looks like a dark board with its lit part as the
    light ink, so where the picture seems light on dark and a shadow is found, the question is
    asked again of the largest area alone (:func:`lit_regions`)."""
    if sheet is not None or dark_on_light(small):
        return False
    regions = lit_regions(small, kernel, None)
    return regions is None or not dark_on_light(small, regions == np.argmax(np.bincount(regions.ravel())))


def relative_ink(gray: np.ndarray, light_ink: bool, side: int, regions: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """The ink as (darkness relative to the paper around it, absolute contrast), both 0..1.

    The paper's level is a closing ``side`` wide, wider than any stroke (an opening for light ink on a dark
    board): it follows gradients, glare and a shadow's straight hard edge, so none of them looks
    like ink. Given areas whose paper has a level of its own (``regions``, :func:`lit_regions`),
    each is closed apart (:func:`paper_level_by_region`)."""
    kernel = cv2.getStructuringElement(cv2.MORPH_RECT, (side, side))
    if regions is None:
        level = cv2.morphologyEx(gray, cv2.MORPH_OPEN if light_ink else cv2.MORPH_CLOSE, kernel)
    else:
        level = paper_level_by_region(gray, regions, kernel, light_ink)
    if light_ink:
        paper, darkness = 255 - level, cv2.subtract(gray, level)
    else:
        paper, darkness = level, cv2.subtract(level, gray)
    paper = cv2.blur(paper, (3, 3)).astype(np.float32)
    darkness = darkness.astype(np.float32)
    return darkness / np.maximum(paper, 16), darkness / 255


def paper_level_by_region(gray: np.ndarray, regions: np.ndarray, kernel: np.ndarray, light_ink: bool) -> np.ndarray:
    """The paper's level with each area closed on its own: across a hard shadow's edge (or a
    sheet's), the closing would fill the narrow tip of the darker area with the brighter one's
    level, and the tip would look like ink. On the seams, where a blurred edge passes from one
    level to the other, the paper is the darkest level nearby: the edge is no ink, and a stroke
    crossing it still is."""
    seam = np.ones((2 * SEAM + 1,) * 2, np.uint8)
    areas = (cv2.erode((regions == label).view(np.uint8), seam).astype(bool) for label in range(int(regions.max()) + 1))
    insides = [inside for inside in areas if inside.any()]
    levels = [closed_within(gray, inside, kernel, light_ink) for inside in insides]
    level = functools.reduce(np.maximum if light_ink else np.minimum, levels)
    for inside, own in zip(insides, levels):
        level[inside] = own[inside]
    return level


def closed_within(gray: np.ndarray, inside: np.ndarray, kernel: np.ndarray, opening: bool) -> np.ndarray:
    """A closing (an opening) of the picture that looks only at pixels ``inside`` a region: the
    others take the value each step ignores (black for the maximum, white for the minimum). Near
    the region, outside it, the result is the region's level there; further away, the ignored value."""
    first, second = (cv2.erode, cv2.dilate) if opening else (cv2.dilate, cv2.erode)
    ignored_first, ignored_second = (255, 0) if opening else (0, 255)
    step = first(np.where(inside, gray, ignored_first).astype(np.uint8), kernel)
    reach = cv2.dilate(inside.astype(np.uint8), kernel).astype(bool)  # pixels whose first step saw the region
    return second(np.where(reach, step, ignored_second).astype(np.uint8), kernel)


def lit_regions(gray: np.ndarray, kernel: int, sheet: np.ndarray | None) -> np.ndarray | None:
    """Areas of the picture whose paper has a level of its own, numbered from 0: where a sheet lies
    on a surface, the surface (0) and the sheet (1); where a hard shadow falls on the sheet (or on
    the whole picture), its shaded part (the next number). None when the picture is one area."""
    regions = np.zeros(gray.shape, np.uint8) if sheet is None else sheet.astype(np.uint8)
    shadow = shadow_within(gray, np.ones(gray.shape, bool) if sheet is None else sheet, kernel)
    if shadow is not None:
        regions[shadow] = regions.max() + 1
    return regions if regions.max() > 0 else None


def shadow_within(gray: np.ndarray, area: np.ndarray, kernel: int) -> np.ndarray | None:
    """Where a hard shadow darkens a large part of ``area`` (the paper), leaving a large part lit;
    None when it does not. Found at ``SHEET_SIDE``, where strokes vanish, and traced at full size,
    where an opening half the paper's ``kernel`` wide, and a minimum size, keep strokes out of it."""
    height, width = gray.shape
    scale = SHEET_SIDE / max(height, width)
    size = (max(1, round(width * scale)), max(1, round(height * scale)))
    if min(size) < 8:
        return None
    coarse = cv2.resize(gray, size, interpolation=cv2.INTER_AREA)
    within = cv2.resize(area.view(np.uint8), size, interpolation=cv2.INTER_NEAREST).astype(bool)
    if within.sum() < 64:
        return None
    threshold, dark = cv2.threshold(coarse[within].reshape(1, -1), 0, 1, cv2.THRESH_BINARY_INV + cv2.THRESH_OTSU)
    shaded = np.zeros_like(coarse)
    shaded[within] = dark.ravel()
    shaded = cv2.morphologyEx(shaded, cv2.MORPH_OPEN, np.ones((3, 3), np.uint8)).astype(bool) & within
    if not SHADE_SHARE <= shaded.sum() / within.sum() <= 1 - SHADE_SHARE:
        return None
    if coarse[within & ~shaded].mean() < SHADE_RATIO * coarse[shaded].mean() + 8:
        return None
    below = ((cv2.blur(gray, (3, 3)) < threshold) & area).view(np.uint8)
    below = cv2.morphologyEx(below, cv2.MORPH_OPEN, cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (kernel // 2 | 1,) * 2))
    count, labels, stats, _ = cv2.connectedComponentsWithStats(below, connectivity=4)
    large = stats[:, cv2.CC_STAT_AREA] >= SHADE_SHARE / 2 * area.sum()  # a thick digit is no shadow
    large[0] = False
    return large[labels] if large.any() else None


def remove_lines(mask: np.ndarray, loose: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The mask without printed lines (rules, margins, frames, table lines, horizontal or vertical
    within a few degrees), and all the lines' pixels, strokes crossing or running along them included.

    Lines are found in ``loose`` (the ink at a lower threshold, where faint rules are unbroken):
    pixels on straight runs of at least ``LINE_SEGMENT`` along the line's direction, with gaps
    shorter than a segment bridged. Such a run, longer than ``LINE_SHORTEST`` of the picture or
    reaching its edge (a rule cut short by the digit), can be a printed line: see
    :func:`printed_lines`. A digit's straight strokes are thicker for their length.

    A stroke keeps its pixels on a line where it crosses it (it is longer across than the line is
    thick; lines the other way are no such strokes, so a grid leaves no dots where its lines
    cross), where it meets the line from both sides (a slanted stroke is cut otherwise), and where
    it runs along the line (:func:`strokes_along`), unless the lines cover more than
    ``DENSE_LINES`` of the picture (a dense grid bulges wherever a stroke touches it).
    """
    height, width = mask.shape
    side = max(height, width)
    segment = segment_length(side)
    runs = {}
    directions = {True: (1, segment), False: (segment, 1)}  # horizontal lines run along a row
    straights = {horizontal: straight_runs(loose, along) for horizontal, along in directions.items()}
    for horizontal, along in directions.items():
        straight = straights[horizontal]
        joined = cv2.morphologyEx(straight, cv2.MORPH_CLOSE, np.ones(along, np.uint8))
        count, labels, stats, _ = cv2.connectedComponentsWithStats(joined, connectivity=8)
        x, y, w, h = (stats[:, i] for i in range(4))
        length = w if horizontal else h
        touches = (x == 0) | (y == 0) | (x + w == width) | (y + h == height)
        candidate = (length >= LINE_SHORTEST * side) | (touches & (length >= 2 * segment))
        candidate[0] = False
        if not candidate.any():
            continue
        found, under_strokes, thickest = printed_lines(straight, straights[not horizontal], labels, candidate, length, horizontal, side)
        if thickest:
            runs[horizontal] = (found, under_strokes, thickest)
    for horizontal, (sides, thickness) in printed_frames(loose, side).items():
        found, under_strokes, thickest = runs.get(horizontal, (np.zeros_like(mask), np.zeros_like(mask), 0))
        runs[horizontal] = (found | sides, under_strokes, max(thickest, thickness))
    found_any = functools.reduce(np.bitwise_or, (found for found, _, _ in runs.values()), np.zeros_like(mask))
    dense = found_any.mean() > DENSE_LINES
    crossings = [np.ones((round(t) + 4, 1) if horizontal else (1, round(t) + 4), np.uint8) for horizontal, (_, _, t) in runs.items()]
    lines = np.zeros_like(mask)
    for (found, under_strokes, _), across in zip(runs.values(), crossings):  # strokes crossing the lines keep their pixels: they are longer across than a line is thick
        strokes = mask & ~(found_any & ~found)  # lines the other way cross them too, but are no strokes
        removable = found if dense else found & ~under_strokes
        lines |= removable & ~cv2.morphologyEx(strokes, cv2.MORPH_OPEN, across)
    kept = mask & ~lines & 1
    for across in crossings:  # a stroke cut by a line it meets from both sides is joined again
        kept |= cv2.morphologyEx(kept, cv2.MORPH_CLOSE, across) & lines
    return kept, found_any


def segment_length(side: int) -> int:
    """The shortest straight run of a printed line, in pixels, in a picture ``side`` long (``LINE_SEGMENT``)."""
    return max(9, int(LINE_SEGMENT * side))


def straight_runs(loose: np.ndarray, along: tuple[int, int]) -> np.ndarray:
    """The pixels of ``loose`` on straight runs at least ``along`` (rows, columns) long, lines
    tilted by a pixel or two included."""
    widened = cv2.dilate(loose, np.ones((3, 1) if along[0] == 1 else (1, 3), np.uint8))
    return cv2.morphologyEx(widened, cv2.MORPH_OPEN, np.ones(along, np.uint8)) & loose


def printed_frames(loose: np.ndarray, side: int) -> dict[bool, tuple[np.ndarray, float]]:
    """The sides of printed rectangles (a box, the cells of a comb field) whose lines are too short
    to be found as lines: by direction (True: horizontal), their pixels and the thickest side's
    thickness. A rectangle is a hole in the ink, at least ``FRAME_SMALLEST`` of the picture
    across, that fills ``FRAME_FILLED`` of its least rectangle, and whose four sides
    :func:`frame_side` finds printed; a digit's loops are round, so ink lines their box only where
    it touches. A digit touching the frame from inside leaves the hole's box the cell's. More
    than ``FRAME_CELLS`` holes that large are a grid, whose lines are found as lines (and checking
    every cell would cost a notebook milliseconds)."""
    contours, hierarchy = cv2.findContours(loose, cv2.RETR_CCOMP, cv2.CHAIN_APPROX_SIMPLE)
    holes = [contour for contour, parent in zip(contours, () if hierarchy is None else hierarchy[0, :, 3]) if parent >= 0]
    holes = [hole for hole in holes if min(cv2.boundingRect(hole)[2:]) >= FRAME_SMALLEST * side]
    if len(holes) > FRAME_CELLS:
        return {}
    outlines: dict[bool, list[np.ndarray]] = {True: [], False: []}
    thickest = {True: 0.0, False: 0.0}
    for hole in holes:
        least = cv2.minAreaRect(hole)
        if cv2.contourArea(hole) < FRAME_FILLED * least[1][0] * least[1][1]:
            continue
        corners = cv2.boxPoints(least)
        sides = [frame_side(loose, start, end, corners.mean(axis=0), side) for start, end in zip(corners, np.roll(corners, -1, axis=0))]
        if any(found is None for found in sides):
            continue
        for horizontal, outline, thickness in sides:
            outlines[horizontal].append(outline)
            thickest[horizontal] = max(thickest[horizontal], thickness)
    frames = {}
    for horizontal, drawn in outlines.items():
        if drawn:
            pixels = np.zeros_like(loose)
            for outline in drawn:  # one by one: fillPoly would cancel where two cells' bands overlap
                cv2.fillConvexPoly(pixels, outline, 1)
            frames[horizontal] = (pixels & loose, thickest[horizontal])
    return frames


def frame_side(loose: np.ndarray, start: np.ndarray, end: np.ndarray, centre: np.ndarray, side: int) -> tuple[bool, np.ndarray, float] | None:
    """For one side of a hole's least rectangle (from corner ``start`` to ``end``): whether it is
    horizontal, the outline of the ink lining it (out to its thickness, over the corners), and
    that thickness. None unless ink lines ``FRAME_COVERED`` of it (its ends left out, where
    corners round) in a solid band with a straight inner edge (ink a pixel inside it along at
    most ``FRAME_RAGGED``: a stroke's edge wavers), tilted by at most ``LINE_TILT``, and no thicker
    than the lesser of ``LINE_THICKEST`` and a third of its length."""
    direction = end - start
    length = float(np.hypot(*direction))
    horizontal = abs(direction[0]) >= abs(direction[1])
    if length < 3 or abs(direction[1 if horizontal else 0]) > LINE_TILT * length:
        return None
    outward = np.array([-direction[1], direction[0]]) / length
    if outward @ ((start + end) / 2 - centre) < 0:
        outward = -outward
    offsets = np.arange(-1, int(LINE_THICKEST * side) + 2)
    along = start + np.linspace(0.1, 0.9, max(8, int(length)))[:, None] * direction
    x, y = np.round(along[None] + offsets[:, None, None] * outward).astype(int).transpose(2, 0, 1)
    inside = (x >= 0) & (x < loose.shape[1]) & (y >= 0) & (y < loose.shape[0])
    covered = inside.all(axis=1, keepdims=True) & (loose[y.clip(0, loose.shape[0] - 1), x.clip(0, loose.shape[1] - 1)] > 0)
    inner, covered = covered[0], covered[1:]
    if (covered[0] | covered[1]).mean() < FRAME_COVERED or inner.mean() > FRAME_RAGGED:
        return None
    thickness = float(np.argmin(np.append(covered.mean(axis=1) >= FRAME_COVERED, False)[1:]) + 1)
    if thickness > min(LINE_THICKEST * side, length / 3):
        return None
    reach = outward * (thickness + 0.5)
    outline = np.array([start - 0.5 * outward, end - 0.5 * outward, end + reach, start + reach])
    outline += np.array([-direction, direction, direction, -direction]) / length * thickness
    return horizontal, np.round(outline).astype(np.int32), thickness


def printed_lines(
    straight: np.ndarray, crossing_runs: np.ndarray, labels: np.ndarray, candidate: np.ndarray, length: np.ndarray, horizontal: bool, side: int
) -> tuple[np.ndarray, np.ndarray, float]:
    """The pixels of the candidate runs (``length`` long, by label) that are printed lines (see
    :func:`fit_lines`), those of them where a stroke runs along the line (:func:`strokes_along`;
    ``crossing_runs`` holds the straight runs the other way), and the thickest line's thickness (0
    when there is none).

    A run that is no line as a whole can still hold lines, in bands across it (two parallel lines
    joined by a digit touching both are one run; a line with a digit's stroke along it): each band
    is tried on its own. All runs are measured at once, in tables of pixel counts per run and column (row)."""
    rows, cols = np.nonzero(straight)
    label = labels[rows, cols]
    mine = candidate[label]
    group = (np.cumsum(candidate) - 1)[label[mine]]  # the run's index among the candidates
    along, across = (cols[mine], rows[mine]) if horizontal else (rows[mine], cols[mine])
    on_line, thickness = fit_lines(group, along, across, int(candidate.sum()), side)
    uncrossed = crossing_runs[rows[mine], cols[mine]] == 0
    under_stroke = on_line & strokes_along(group, along, uncrossed, thickness, side)
    thickest = float(np.nanmax(thickness, initial=0))
    band = bands_of_runs(group, across, length[candidate], failed=np.isnan(thickness))
    if band is not None:
        in_band = band >= 0
        ids, sub = np.unique(band[in_band], return_inverse=True)
        # a band's thickness is measured on the rows that span the run, so it reads thinner than the
        # whole: a stroke's straight part passes as a band only if much longer still
        on_band, band_thickness = fit_lines(sub, along[in_band], across[in_band], len(ids), side, BAND_RATIO)
        on_line[np.flatnonzero(in_band)[on_band]] = True
        thickest = max(thickest, float(np.nanmax(band_thickness, initial=0)))
    found, under_strokes = np.zeros_like(straight), np.zeros_like(straight)
    for pixels, on in ((found, on_line), (under_strokes, under_stroke)):
        pixels[(across[on], along[on]) if horizontal else (along[on], across[on])] = 1
    return found, under_strokes, thickest


def fit_lines(
    group: np.ndarray, along: np.ndarray, across: np.ndarray, groups: int, side: int, ratio: float = LINE_RATIO
) -> tuple[np.ndarray, np.ndarray]:
    """For pixels of straight runs (their run, and their coordinates along and across its
    direction): whether each lies on a printed line, and each run's thickness (NaN when it is no
    line). A printed line is thin, ``ratio`` times longer than thick, its middle straight and tilted by at
    most ``LINE_TILT``; thickness and middle come from the run's clean columns (rows), those no
    stroke touches. The pixels within half its thickness of the middle (plus a margin) are on it.
    A line's pixels in a column are also close together: two parallel lines joined into one run
    (by a digit between them) are far apart, and no line, however few their pixels."""
    length = int(along.max()) + 1
    cell = group * length + along
    counts = np.bincount(cell, minlength=groups * length).reshape(groups, length).astype(np.float64)
    middles = np.bincount(cell, weights=across, minlength=groups * length).reshape(groups, length) / np.maximum(counts, 1)
    present = counts > 0
    spans = present.sum(axis=1)
    thickness = row_median(counts, spans)
    spread_across = row_median(extents(cell, across, groups * length).reshape(groups, length), spans)
    clean = present & (counts <= 1.5 * thickness[:, None] + 1)
    cleans = clean.sum(axis=1)
    slope, intercept = line_fit(clean, middles)
    residual = np.where(clean, middles - (intercept[:, None] + slope[:, None] * np.arange(length)), np.finfo(np.float64).max)
    residual.sort(axis=1)
    rows = np.arange(groups)
    spread = residual[rows, cleans * 9 // 10] - residual[rows, cleans // 10]
    line = (
        (thickness <= LINE_THICKEST * side) & (spans >= ratio * thickness) & (cleans >= 0.6 * spans)
        & (np.abs(slope) <= LINE_TILT) & (spread <= 2) & (spread_across <= 1.5 * thickness + 2)
    )  # fmt: skip
    on_line = line[group] & (np.abs(across - (intercept[group] + slope[group] * along)) <= thickness[group] / 2 + 1.5)
    return on_line, np.where(line, thickness, np.nan)


def strokes_along(group: np.ndarray, along: np.ndarray, uncrossed: np.ndarray, thickness: np.ndarray, side: int) -> np.ndarray:
    """For pixels of straight runs (their run, their coordinate along it, whether they lie on no
    straight run the other way): whether a stroke lies along the run's line there. The run is
    counted across at each position, its ``uncrossed`` pixels only (a crossing line adds nothing);
    a stroke makes it more than ``BULGE`` pixels thicker than the line's ``thickness`` and than the
    run usually is nearby (an opening along it ``NEARBY`` of the picture's ``side`` long: light
    thickens a line over longer stretches). A stroke lying along a line for longer than that is
    not found."""
    groups, length = len(thickness), int(along.max()) + 1
    cell = group * length + along
    counts = np.bincount(cell[uncrossed], minlength=groups * length).reshape(groups, length).astype(np.float32)
    window = np.ones((1, int(NEARBY * side) | 1), np.uint8)
    usual = cv2.morphologyEx(np.where(counts > 0, counts, np.float32(np.inf)), cv2.MORPH_OPEN, window)
    return (counts > np.maximum(usual, np.round(thickness)[:, None]) + BULGE).ravel()[cell]


def extents(cell: np.ndarray, across: np.ndarray, cells: int) -> np.ndarray:
    """Per cell, the distance spanned by its pixels' ``across`` coordinates, ends included (0 where empty)."""
    high, low = np.full(cells, -1, np.int64), np.full(cells, np.iinfo(np.int64).max, np.int64)
    np.maximum.at(high, cell, across)
    np.minimum.at(low, cell, across)
    return np.where(high >= 0, high - low + 1, 0).astype(np.float64)


def row_median(counts: np.ndarray, present: np.ndarray) -> np.ndarray:
    """The median of each row's nonzero entries (``present`` of them), all entries being >= 0."""
    ordered = np.sort(counts, axis=1)
    last, rows = counts.shape[1] - 1, np.arange(len(counts))
    start = counts.shape[1] - present
    low = ordered[rows, np.minimum(start + (present - 1) // 2, last)]
    high = ordered[rows, np.minimum(start + present // 2, last)]
    return (low + high) / 2


def line_fit(weight: np.ndarray, values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Least-squares line (slope, intercept) through each row's ``values`` where ``weight`` is
    set, against the column index; flat through the value when a row has a single point."""
    position = np.arange(values.shape[1], dtype=np.float64)
    n = weight.sum(axis=1)
    sx, sy = weight @ position, (weight * values).sum(axis=1)
    sxx, sxy = weight @ position**2, (weight * values) @ position
    denominator = n * sxx - sx**2
    slope = np.where(denominator > 0, (n * sxy - sx * sy) / np.where(denominator > 0, denominator, 1), 0.0)
    return slope, (sy - slope * sx) / np.maximum(n, 1)


def bands_of_runs(group: np.ndarray, across: np.ndarray, spans: np.ndarray, failed: np.ndarray) -> np.ndarray | None:
    """For runs (``spans`` long) that are no line as a whole: each pixel's band, a stretch of rows
    (for horizontal runs) that each span most of the run, numbered apart from every other run's;
    -1 outside bands and in other runs (a single band: a line that a digit's strokes run along).
    None when no failed run has a band."""
    length = int(across.max()) + 1
    counts = np.bincount(group * length + across, minlength=len(spans) * length).reshape(len(spans), length)
    spanning = counts >= 0.85 * spans[:, None]  # a line spans the run; strokes rarely do
    starts = spanning.copy()
    starts[:, 1:] &= ~spanning[:, :-1]
    banded = failed & starts.any(axis=1)
    if not banded.any():
        return None
    bands = np.where(spanning & banded[:, None], np.cumsum(starts, axis=1) - 1, -1)
    before, after = np.full_like(bands, -1), np.full_like(bands, -1)
    before[:, 1:], after[:, :-1] = bands[:, :-1], bands[:, 1:]
    band = np.where(bands >= 0, bands, np.maximum(before, after))[group, across]  # and a row either side, for blurred edges
    return np.where(band >= 0, group * length + band, -1)


def widest_points(labels: np.ndarray, mask: np.ndarray, count: int) -> np.ndarray:
    """Each component's largest distance from its outline (half its widest point), label 1 on."""
    where = np.flatnonzero(mask)
    owner = labels.ravel()[where]
    order = np.argsort(owner, kind="stable")
    distances = cv2.distanceTransform(mask, cv2.DIST_L2, 3).ravel()[where][order]
    starts = np.searchsorted(owner[order], np.arange(1, count))
    return np.maximum.reduceat(distances, starts)


def choose_digit(mask: np.ndarray, ink: np.ndarray, sheet: np.ndarray | None, lead: float = 0) -> tuple[np.ndarray | None, bool]:
    """The most digit-like component and the strokes near it (None when nothing is digit-like),
    and whether it leads: (in a noisy picture) is ``lead`` times as digit-like as the next best
    and clear of the picture's edge. One ranking serves both the leader and, where none leads,
    the best shape all the same.

    Digit-likeness: ink mass, discounted for shapes no digit has (much wider than tall; a solid
    blob, whose widest point is far wider than a stroke; a speck), for lying off the sheet or
    touching the picture's edge, where shadows and surfaces are; then the best few weighed by how
    much they look like a digit to a network trained on photos (:func:`likeness_weights`), the
    best discounted if it is a thick shape unlike a digit beside a thinner rival
    (:func:`thicker_than_a_rival`), and discounted for fading out rather than ending at an edge
    (:func:`fades_out`)."""
    height, width = mask.shape
    count, labels, stats, _ = cv2.connectedComponentsWithStats(mask, connectivity=8)
    if count < 2:
        return None, False
    x, y, w, h, area = (stats[1:, i].astype(np.float64) for i in range(5))
    mass = np.bincount(labels.ravel(), weights=ink.ravel(), minlength=count)[1:]
    widest = widest_points(labels, mask, count)
    blob = widest / np.maximum(w, h)
    score = mass * np.minimum(1, 1.6 * h / w)  # digits are at most as wide as tall, "1" far narrower
    score *= np.where(blob > 0.2, 0.1, 1) * np.where(np.maximum(w, h) < 0.04 * max(height, width), 0.1, 1)
    edge = (x == 0) | (y == 0) | (x + w == width) | (y + h == height)
    score *= np.where(edge, 0.35, 1)
    if sheet is not None:
        on_sheet = np.bincount(labels.ravel(), weights=sheet.ravel(), minlength=count)[1:] / area
        score *= np.where(on_sheet < 0.5, 0.02, on_sheet)
    weights = likeness_weights(score, labels, ink, stats[1:], mass)
    score *= weights
    best = int(np.argmax(score))
    if thicker_than_a_rival(best, score, weights, widest):
        score[best] *= 0.1
        best = int(np.argmax(score))
    for _ in range(TIP_CHECKS):
        if score[best] <= 0 or not fades_out(labels, ink, best + 1, stats[best + 1]):
            break
        score[best] *= 0.1
        best = int(np.argmax(score))
    if h[best] < 6 or area[best] < 20 or score[best] <= 0:
        return None, False
    leads = not lead or not (edge[best] or (len(score) > 1 and score[best] < lead * np.partition(score, -2)[-2]))
    group = without_strays(group_of(best, labels, stats[1:], mass, score), best + 1, labels, stats, widest, edge, ink)
    return without_thick_parts(group, ink), leads


def thicker_than_a_rival(best: int, score: np.ndarray, weights: np.ndarray, widest: np.ndarray) -> bool:
    """Whether the best shape looks like no digit (its likeness weight under ``LIKELY_DIGIT``) and
    is over ``THICKER`` times as thick as a shape scoring at least ``RIVAL`` of it: a shadow's
    narrow wedge beside a digit split in pieces (none of which looks like a digit alone) outweighs
    each piece by its ink, but no stroke is that much thicker than the others."""
    if weights[best] >= LIKENESS_FLOOR + (1 - LIKENESS_FLOOR) * LIKELY_DIGIT:
        return False
    return bool(((score >= RIVAL * score[best]) & (THICKER * widest < widest[best])).any())


def without_strays(
    group: np.ndarray, label: int, labels: np.ndarray, stats: np.ndarray, widest: np.ndarray, edge: np.ndarray, ink: np.ndarray
) -> np.ndarray:
    """The strokes chosen (``group``: component ``label`` and the strokes near it) without the
    shapes near it that are no strokes: one whose widest point is over ``THICKER`` times the
    digit's (the wedge of desk between a note and a shadow); one longer than the digit that
    fades out (a shadow's edge, :func:`fades_out`) when the rest looks more like a digit without
    it (a stroke cut by a printed line fades out at the cut, and looks like a digit's part); and,
    for a digit clear of the picture's edge, the shapes that reach the edge (a shadow's wedge)
    when the rest looks at least as much like a digit without them. Such a wedge kept the digit
    from leading (a shape at the edge leads nothing) and from being read as a sure digit.
    ``stats``: OpenCV's rows, background's included; ``widest`` and ``edge`` (whether it reaches
    the picture's edge): each component's, label 1 on."""
    members = [other for other in np.flatnonzero(np.bincount(labels[group], minlength=len(stats))) if other != label]
    thick = [other for other in members if widest[other - 1] > THICKER * max(widest[label - 1], 1)]
    if thick:
        group = group & ~np.isin(labels, thick)
    longest = stats[:, 2:4].max(axis=1)
    faded = [other for other in members if other not in thick and longest[other] > longest[label] and fades_out(labels, ink, other, stats[other])]
    if faded:
        without = group & ~np.isin(labels, faded)
        if strokes_likeness(without, ink) > strokes_likeness(group, ink):
            group = without
    if not edge[label - 1]:
        at_edge = [other for other in members if other not in thick and other not in faded and edge[other - 1]]
        if at_edge:
            without = group & ~np.isin(labels, at_edge)
            if without.any() and strokes_likeness(without, ink) >= strokes_likeness(group, ink):
                group = without
    return group


def without_thick_parts(group: np.ndarray, ink: np.ndarray) -> np.ndarray:
    """The chosen strokes without their parts over ``THICKER`` times as wide as the strokes
    usually are, when the strokes look like no digit with them and like one without
    (``LIKELY_DIGIT``): a shadow's wedge merged with a stroke is one shape, which
    :func:`without_strays` (whole shapes) keeps. The strokes' usual half-width is the median
    distance to the background along their ridge (the distance transform's local maxima); the
    thick parts are the discs that wide which fit in the shape (an opening). Only thick parts that
    reach the picture's edge, as a desk or a shadow comes in from outside the frame (a digit stays
    inside it): elsewhere the thick parts may be a bold digit, and the thin rest its printed box."""
    distance = cv2.distanceTransform(group.view(np.uint8), cv2.DIST_L2, 3)
    ridge = group & (distance >= cv2.dilate(distance, np.ones((3, 3), np.uint8)))
    if not ridge.any():
        return group
    half_width = float(np.median(distance[ridge]))
    core = (distance > THICKER * half_width).view(np.uint8)
    if not core.any():
        return group
    side = int(2 * THICKER * half_width + 1) | 1
    thick = group & cv2.dilate(core, cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (side, side))).view(bool)
    without = group & ~thick
    if not without.any() or not reaches_edge(ink_box(thick.view(np.uint8)), thick.shape):
        return group  # the edge before the likeness, which is a network call
    if strokes_likeness(group, ink) >= LIKELY_DIGIT:
        return group
    return without if strokes_likeness(without, ink) >= LIKELY_DIGIT else group


def group_of(index: int, labels: np.ndarray, stats: np.ndarray, mass: np.ndarray, score: np.ndarray) -> np.ndarray:
    """The pixels of component ``index`` (0-based, ``labels`` counting from 1) and of the strokes
    near it: what is read as the digit if it is chosen. ``stats``: OpenCV's rows, background's out."""
    x, y, w, h = (stats[:, i].astype(np.float64) for i in range(4))
    reach = NEAR_DIGIT * max(h[index], w[index])
    near = (
        (x <= x[index] + w[index] + reach) & (x + w >= x[index] - reach)
        & (y <= y[index] + h[index] + reach) & (y + h >= y[index] - reach)
        & (mass >= 0.08 * mass[index]) & (score >= 0.05 * score[index])
    )  # fmt: skip
    return np.concatenate([[False], near])[labels]


def likeness_weights(score: np.ndarray, labels: np.ndarray, ink: np.ndarray, stats: np.ndarray, mass: np.ndarray) -> np.ndarray:
    """A weight for each component's score: for the ``LIKENESS_CHECKS`` best, how much each, with
    the strokes near it, looks like a digit in MNIST's form (:mod:`mnist_flask.likeness`), since a
    shadow's wedge or a comb's end that the rules let through reads as a confident "1"; at least
    ``LIKENESS_FLOOR``, so that ink mass still counts where the network is unsure, and that floor
    for the rest, which were not looked at. All 1 where there is only one shape to choose."""
    candidates = [int(index) for index in np.argsort(-score)[:LIKENESS_CHECKS] if score[index] > 0]
    if len(candidates) < 2:
        return np.ones(len(score))
    weights = np.full(len(score), LIKENESS_FLOOR)
    weights[candidates] += (1 - LIKENESS_FLOOR) * likeness.shipped()(candidate_fields(candidates, labels, ink, stats, mass, score))
    return weights


def candidate_fields(candidates: list[int], labels: np.ndarray, ink: np.ndarray, stats: np.ndarray, mass: np.ndarray, score: np.ndarray) -> np.ndarray:
    """Each candidate component with the strokes near it by the rules' ``score``, in MNIST's 28x28
    form (N, 28, 28). The one chosen is read with the strokes near it by the weighed scores: those
    that look least like a digit (a shadow's edge beside it) may drop out."""
    return np.array([fit_to_field(with_edges(ink, group_of(index, labels, stats, mass, score))) for index in candidates])


def fades_out(labels: np.ndarray, ink: np.ndarray, label: int, stats: np.ndarray) -> bool:
    """Whether much of a component's outline (``label``, OpenCV's ``stats`` row) has no edge in
    the ink. Where the paper's closing spans a shadow's soft edge or narrow tip, the shadow looks
    like ink that fades out where the closing stops reaching across; a stroke stands out from its
    paper all around."""
    x, y, w, h = (int(v) for v in stats[:4])
    window = slice(max(0, y - 1), y + h + 1), slice(max(0, x - 1), x + w + 1)
    inside = labels[window] == label
    outline = inside & ~cv2.erode(inside.view(np.uint8), np.ones((3, 3), np.uint8)).view(bool)
    ink = ink[window].astype(np.float32)
    slope = cv2.magnitude(cv2.Sobel(ink, cv2.CV_32F, 1, 0, ksize=3), cv2.Sobel(ink, cv2.CV_32F, 0, 1, ksize=3))[outline]
    steep = np.partition(slope, 9 * len(slope) // 10)[9 * len(slope) // 10]
    return np.count_nonzero(slope < FADING * steep) > FADED_SHARE * len(slope)


def ink_box(ink: np.ndarray) -> tuple[int, int, int, int]:
    """(x, y, width, height) of the nonzero pixels (OpenCV's: one pass in C over a byte image)."""
    if ink.dtype == bool:
        ink = ink.view(np.uint8)
    elif ink.dtype != np.uint8:
        ink = (ink > 0).view(np.uint8)
    return tuple(int(v) for v in cv2.boundingRect(ink))


def to_mnist(gray: np.ndarray) -> Digit:
    """The recipe itself, on a 2-D luminance array (0..255) of any size."""
    gray = np.asarray(gray)
    if gray.dtype not in (np.uint8, np.float32):
        gray = gray.astype(np.float32)
    field = mnist_form_field(gray, FIELD, BOX, MIN_CONTRAST * 255)
    if field is not None:  # already the recipe's output: MNIST's own digits, the model's format
        return Digit(field, found=True, box=ink_box(gray))  # the same pixels are nonzero
    if max(gray.shape) > 2 * FIELD:
        gray = gray if gray.dtype == np.uint8 else np.clip(np.rint(gray), 0, 255).astype(np.uint8)
        return read_clean(gray) or find_digit(gray)
    return read_small(np.asarray(gray, dtype=np.float32))


def read_small(gray: np.ndarray) -> Digit:
    """The recipe on a picture no larger than twice MNIST's field: the ink against the border's
    level, the strokes above Otsu's threshold."""
    ink = ink_map(gray)
    if ink.max() < MIN_CONTRAST:
        return NOT_FOUND
    mask = digit_mask(ink)
    if looks_like_noise(mask):
        return NOT_FOUND
    return Digit(fit_to_field(with_edges(ink, mask)), found=True, box=ink_box(mask))


# A clean picture (a canvas export, a scan, a photo of a sheet filling the frame: ink on paper
# whose level changes smoothly if at all, nothing at the edges, no printed line, frame or
# surface) is read from a crop around its ink, at a fraction of a photo's cost. Whatever the
# checks below doubt, and whatever the model doubts, takes the photo's path (find_digit).
CLEAN_SIDE = 64  # resolution at which a picture is checked for being clean
CLEAN_FLAT = 10  # grey levels the paper may differ from its own level there (noise averages out)
CLEAN_STEP = 8  # ... and the most its level may change between neighbouring pixels (no shadow's edge)
CLEAN_MARGIN = 0.15  # paper kept around the ink, as a fraction of its box's longer side
CLEAN_CROP = 4 * BOX  # longest side the crop is read at: detail enough for the 20-pixel box
CLEAN_COMPONENT = 12  # components at least this long there are checked for being solid


def read_clean(gray: np.ndarray) -> Digit | None:
    """The digit of a clean picture (:func:`clean_ink`), with the photo's reading as its second
    look; None for a picture that is not clean. The strokes are read as the photo's are, relative
    to the paper around them, in a crop at a few times MNIST's box. ``gray`` is uint8."""
    clean = clean_ink(gray)
    if clean is None:
        return None
    (left, top, width, height), light_ink, kernel = clean
    small = fit_within(gray[top : top + height, left : left + width], CLEAN_CROP)
    relative, _ = relative_ink(small, light_ink, max(3, round(kernel * small.shape[1] / width) | 1))
    chosen, _ = choose_digit(above_peak(relative, float(cv2.blur(relative, (3, 3)).max())), relative, None)
    if chosen is None:
        return None
    digit = Digit(fit_to_field(with_edges(relative, chosen)), True, ink_box(chosen)).scaled(small.shape, (width, height))
    x, y, w, h = digit.box
    return replace(digit, box=(x + left, y + top, w, h), second_look=partial(read_fully, gray))


def read_fully(gray: np.ndarray) -> list[Digit]:
    """A clean picture's other reading: the photo's (:func:`find_digit`), if it finds a digit."""
    digit = find_digit(gray)
    return [digit] if digit.found else []


def clean_ink(gray: np.ndarray) -> tuple[tuple[int, int, int, int], bool, float] | None:
    """Where the ink of a clean picture is (a box with a margin), whether it is lighter than the
    paper, and the paper's closing width in ``gray``'s pixels; None for a picture that is not clean.

    At ``CLEAN_SIDE``, the paper's level is a closing as in :func:`relative_ink`. The picture is
    clean when that level has no step (a shadow's or a sheet's edge), the paper is within
    ``CLEAN_FLAT`` of it away from the ink, and the ink is clear of the edges, in one cluster, with
    no component solid (a card, a note) or a frame (:func:`one_cluster`)."""
    coarse = fit_within(gray, CLEAN_SIDE)
    if min(coarse.shape) < 8:
        return None
    light_ink = not dark_on_light(coarse)
    kernel = max(3, int(PAPER_KERNEL * min(coarse.shape)) | 1)
    operation = cv2.MORPH_OPEN if light_ink else cv2.MORPH_CLOSE
    level = cv2.morphologyEx(coarse, operation, cv2.getStructuringElement(cv2.MORPH_RECT, (kernel, kernel)))
    away = cv2.subtract(coarse, level) if light_ink else cv2.subtract(level, coarse)
    if int(away.max()) < MIN_CONTRAST * 255 or largest_step(level) > CLEAN_STEP:
        return None
    ink = (away > max(CLEAN_FLAT, int(away.max()) // 4)).astype(np.uint8)
    near = cv2.dilate(ink, np.ones((5, 5), np.uint8)).astype(bool)
    if np.count_nonzero(away[~near] > CLEAN_FLAT) > 0.01 * away.size:
        return None
    x, y, w, h = cv2.boundingRect(ink)
    if x == 0 or y == 0 or x + w == coarse.shape[1] or y + h == coarse.shape[0] or not one_cluster(ink):
        return None
    margin = 1 + CLEAN_MARGIN * max(w, h)
    scale_x, scale_y = gray.shape[1] / coarse.shape[1], gray.shape[0] / coarse.shape[0]
    left, top = max(0, int((x - margin) * scale_x)), max(0, int((y - margin) * scale_y))
    right, bottom = min(gray.shape[1], int((x + w + margin) * scale_x)), min(gray.shape[0], int((y + h + margin) * scale_y))
    return (left, top, right - left, bottom - top), light_ink, kernel * scale_x


def largest_step(level: np.ndarray) -> int:
    """The largest difference between neighbouring pixels of the paper's level."""
    level = level.astype(np.int16)
    return int(max(np.abs(np.diff(level, axis=0)).max(), np.abs(np.diff(level, axis=1)).max()))


def one_cluster(ink: np.ndarray) -> bool:
    """Whether the ink's components (all but specks) lie near the largest, as a digit's strokes
    do, and none is solid (a card, a note: its widest point far wider than a stroke, or filling
    most of its box) or a frame (a box's outline: nearly all its pixels on its box's edges)."""
    count, labels, stats, _ = cv2.connectedComponentsWithStats(ink, connectivity=8)
    x, y, w, h, area = (stats[1:, i] for i in range(5))
    longest = np.maximum(w, h)
    blob = widest_points(labels, ink, count) / longest
    largest = int(np.argmax(area))
    reach = NEAR_DIGIT * longest[largest]
    for index in np.flatnonzero(area >= 0.1 * area[largest]):
        if (x[index] > x[largest] + w[largest] + reach or x[index] + w[index] < x[largest] - reach
                or y[index] > y[largest] + h[largest] + reach or y[index] + h[index] < y[largest] - reach):
            return False
        filled = area[index] > 0.6 * w[index] * h[index] and min(w[index], h[index]) > 0.5 * longest[index]
        if longest[index] >= CLEAN_COMPONENT and (blob[index] > 0.2 or filled):
            return False
        if min(w[index], h[index]) >= 6 and frame_share(labels[y[index] : y[index] + h[index], x[index] : x[index] + w[index]] == index + 1) > 0.75:
            return False
    return True


def frame_share(component: np.ndarray) -> float:
    """The share of a component's pixels (a boolean array of its bounding box) within two pixels of the box's edges."""
    inner = component[2:-2, 2:-2]
    return 1 - float(inner.sum()) / max(float(component.sum()), 1)


class Analysis(NamedTuple):
    """What both readings of a photo start from: the picture at ``ANALYSIS_SIDE``, the sheet in it
    (or None), whether its ink is lighter than the paper, and the paper's closing width."""

    small: np.ndarray
    sheet: np.ndarray | None
    light_ink: bool
    kernel: int


def analyse(gray: np.ndarray, side: int = ANALYSIS_SIDE) -> Analysis:
    small = fit_within(gray, side)
    sheet = sheet_region(small)
    kernel = max(3, int(PAPER_KERNEL * min(small.shape)) | 1)
    return Analysis(small, sheet, light_ink_on(small, sheet, kernel), kernel)


def find_digit(gray: np.ndarray) -> Digit:
    """The digit in a picture larger than MNIST's field: see the steps above :func:`sheet_region`.

    The first reading closes the paper across the whole picture (:func:`read_digit`); the second
    look, taken when the model doubts the first, reads each area apart (:func:`read_by_areas`).
    Light ink in which nothing digit-like is found, or only a shape that looks like no digit
    (``EDGE_NO_DIGIT``), is read again as dark ink, and that reading kept if it finds anything: a
    page or a note in shadow but for a lit strip too narrow to count as a shadow's lit side
    (``SHADE_SHARE``) looks like a dark board with the strip as its chalk. Where still nothing
    is found on a picture mostly of paper (``FINER_PAPER``), the search runs again at the
    picture's own size and keeps what looks like a digit (``LIKELY_DIGIT``): a small digit on a
    page ruled or squared as densely as its strokes are long blurs into the rules at
    ``ANALYSIS_SIDE``. At that size a squared page's lines and an empty note's edges are found
    too, as shapes that look like no digit, and a bare desk's grain as shapes that do. ``gray``
    is uint8, as :func:`to_mnist` passes it."""
    analysis = analyse(gray)
    digit = read_digit(gray, analysis, regions=None)
    if analysis.light_ink and (not digit.found or field_likeness(digit.pixels) < EDGE_NO_DIGIT):
        as_dark = analysis._replace(light_ink=False)
        again = read_digit(gray, as_dark, regions=None)
        if again.found or not digit.found:
            analysis, digit = as_dark, again
    if not digit.found and max(gray.shape) > ANALYSIS_SIDE and np.median(gray) >= FINER_PAPER:
        finer = analyse(gray, max(gray.shape))
        again = read_digit(gray, finer, regions=None)
        if again.found and field_likeness(again.pixels) >= LIKELY_DIGIT:
            analysis, digit = finer, again
    return replace(digit, second_look=partial(read_by_areas, gray, analysis))


def read_by_areas(gray: np.ndarray, analysis: Analysis) -> list[Digit]:
    """The digit read with each area's paper apart, where a sheet lies on a surface or a hard
    shadow falls (:func:`lit_regions`): that removes the tips of shadows and surfaces that a closing
    across their edge takes for ink, but can lose a stroke on the edge, so it is a second look.
    A sheet half in shadow is found with the shadow evened out (:func:`sheet_under_shadow`).
    Where a sheet was found, the "surface" may also be the page itself under a shadow darker than
    the lit part (:func:`read_as_shaded`): both readings are given, and the model's surer one
    kept. Nothing for a picture of one area, where they would read the same as the first. The
    hard shadow across the whole picture is found once, for all three."""
    shade = lit_regions(analysis.small, analysis.kernel, None)
    analysis = sheet_under_shadow(analysis, shade) or analysis
    regions = shade if analysis.sheet is None else lit_regions(analysis.small, analysis.kernel, analysis.sheet)
    readings = [] if regions is None else [read_digit(gray, analysis, regions)]
    if analysis.sheet is not None:
        readings.append(read_as_shaded(gray, analysis, shade))
    return [digit for digit in readings if digit is not None and digit.found]


def sheet_under_shadow(analysis: Analysis, shade: np.ndarray | None) -> Analysis | None:
    """The analysis with the sheet found once a hard shadow across the picture (``shade``, the areas
    of :func:`lit_regions` without a sheet) is evened out, when
    that sheet is larger than the one found without: a shadow over part of a note on a desk makes
    that part as dark as the desk, so by brightness alone the sheet is its lit part, or nothing.
    Each area's paper is brought to the lit paper's level (its 90th percentile), which keeps
    the desk darker than the note within each; the sheet is then told by its brightness alone. None when there is no shadow or no larger sheet."""
    if shade is None:
        return None
    levels = np.array([np.percentile(analysis.small[shade == label], 90) for label in range(int(shade.max()) + 1)])
    gains = (levels.max() / np.maximum(levels, 1)).astype(np.float32)
    evened = cv2.multiply(analysis.small, gains[shade], dtype=cv2.CV_8U)
    sheet = sheet_region(evened, by_smoothness=False)
    if sheet is None or (analysis.sheet is not None and sheet.sum() <= analysis.sheet.sum()):
        return None
    return analysis._replace(sheet=sheet, light_ink=False)


def read_as_shaded(gray: np.ndarray, analysis: Analysis, shade: np.ndarray | None) -> Digit | None:
    """The digit read as on one page whose darker part is a shadow (``shade``), not a surface: a
    shadow over most of the page leaves a lit part that looks like a sheet, and a digit in the
    shadow then lies off it and stands out from the shadowed paper only (its contrast is measured
    there)."""
    return None if shade is None else read_digit(gray, analysis._replace(sheet=None, light_ink=False), shade)


def read_digit(gray: np.ndarray, analysis: Analysis, regions: np.ndarray | None) -> Digit:
    """One reading of a grey picture (uint8), with the paper closed over ``regions`` apart or whole.

    The search runs on the analysis's copy (at most ``ANALYSIS_SIDE`` long, or the picture's own
    size); a digit found smaller than ``DETAILED_DIGIT`` there is read from the larger picture
    (:func:`strokes_in_detail`). A second pass, with the paper's closing only a few stroke widths
    wide, when the strokes found are much thinner than the first pass allowed for: the wide
    closing also fills the narrow tips of shadows and surfaces between bright paper, which then
    look like ink next to the digit. Such tips
    reaching the picture's edge make it as busy as noise, where no shape may lead by
    ``NOISE_LEAD``: then the best shape all the same sets the second pass's width, and that pass,
    in which the tips are paper again, must find a leader itself. Where no pass finds one, the
    best shape is still read if it looks like a digit by ``SURE_DIGIT``: a desk's grain and a
    shadow's edges keep a digit on a note from leading. Not at the picture's edge (a shadow's
    wedge), nor in light ink, where the best shape can be the paper between a digit's strokes."""
    small, sheet, light_ink, kernel = analysis
    best, leads = strokes_in(small, sheet, light_ink, kernel, regions, or_best=True)
    if best is None:
        return NOT_FOUND
    found = best if leads else None
    width = 2 * float(np.percentile(cv2.distanceTransform(best[0].astype(np.uint8), cv2.DIST_L2, 3)[best[0]], 90))
    narrower = max(5, round(3 * width + 3) | 1)
    if narrower < 0.6 * kernel and (narrow := strokes_in(small, sheet, light_ink, narrower, regions)[0]) is not None:
        found, kernel = narrow, narrower
    if found is None and not light_ink and not reaches_edge(ink_box(best[0]), small.shape) and strokes_likeness(*best) >= SURE_DIGIT:
        found = best
    if found is None:
        return NOT_FOUND
    chosen, relative = found
    box = ink_box(chosen)
    if small.shape == gray.shape or max(box[2:]) >= DETAILED_DIGIT:
        strokes = with_edges(relative, chosen)
    else:
        strokes = strokes_in_detail(gray, chosen, box, light_ink, kernel, regions)
    if sheet is not None:
        strokes = turned(strokes, sheet_turn(sheet))
    digit = Digit(fit_to_field(strokes), True, box, at_edge=reaches_edge(box, small.shape), spans=spans_picture(box, small.shape))
    return digit.scaled(small.shape, gray.shape[::-1])


def sheet_turn(sheet: np.ndarray) -> float:
    """How far a sheet is turned from upright, in degrees (counter-clockwise as seen, within 45),
    from its outline's straight sides, those along the picture's edge left out (a sheet partly
    out of frame); 0 unless the sides agree on it (``SHEET_SQUARE``: a rectangle's four sides
    turn alike), include sides square to each other (``SHEET_CORNER``: the lit part of a page
    under a shadow is framed by the shadow's edge alone), and it is at least ``LEAST_TURN``. A
    digit is written square to its note or card, so it turns with it, and a "1" slanted further
    by the turn reads as an "8"."""
    contours, _ = cv2.findContours(sheet.view(np.uint8), cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)
    if not contours:
        return 0.0
    outline = max(contours, key=cv2.contourArea)
    corners = cv2.approxPolyDP(outline, 0.02 * cv2.arcLength(outline, True), True)[:, 0].astype(np.float64)
    ends = np.roll(corners, -1, axis=0)
    height, width = sheet.shape
    along_edge = ((corners[:, 0] <= 1) & (ends[:, 0] <= 1)) | ((corners[:, 1] <= 1) & (ends[:, 1] <= 1))
    along_edge |= ((corners[:, 0] >= width - 2) & (ends[:, 0] >= width - 2)) | ((corners[:, 1] >= height - 2) & (ends[:, 1] >= height - 2))
    sides = (ends - corners)[~along_edge]
    if not len(sides):
        return 0.0
    lengths, angles = np.hypot(sides[:, 0], sides[:, 1]), np.arctan2(sides[:, 1], sides[:, 0])
    fourfold = (lengths * np.exp(4j * angles)).sum() / lengths.sum()  # sides 90 degrees apart count alike
    across = np.abs(np.sin(angles - np.angle(fourfold) / 4)) > 0.5  # the sides square to the first ones
    corner = min(lengths[across].sum(), lengths[~across].sum()) >= SHEET_CORNER * lengths.sum()
    turn = -float(np.degrees(np.angle(fourfold) / 4))
    return turn if corner and abs(fourfold) >= SHEET_SQUARE and abs(turn) >= LEAST_TURN else 0.0


def turned(strokes: np.ndarray, turn: float) -> np.ndarray:
    """The strokes of a sheet turned ``turn`` degrees counter-clockwise (as seen) brought back
    upright: turned as far clockwise about their centre, on a canvas that holds them."""
    if not turn:
        return strokes
    x, y, w, h = ink_box(strokes)
    side = int(np.hypot(w, h)) + 3
    canvas = np.zeros((side, side), np.float32)
    canvas[(side - h) // 2 : (side - h) // 2 + h, (side - w) // 2 : (side - w) // 2 + w] = strokes[y : y + h, x : x + w]
    rotation = cv2.getRotationMatrix2D((side / 2, side / 2), -turn, 1.0)
    return cv2.warpAffine(canvas, rotation, (side, side), flags=cv2.INTER_LINEAR)


def reaches_edge(box: tuple[int, int, int, int], shape: tuple[int, int]) -> bool:
    """Whether a box (x, y, width, height) touches the edge of a picture of ``shape`` (rows, columns)."""
    x, y, w, h = box
    return x == 0 or y == 0 or x + w == shape[1] or y + h == shape[0]


def spans_picture(box: tuple[int, int, int, int], shape: tuple[int, int]) -> bool:
    """Whether a box (x, y, width, height) reaches from one edge of a picture of ``shape`` to the opposite one."""
    x, y, w, h = box
    return (x == 0 and x + w == shape[1]) or (y == 0 and y + h == shape[0])


def fit_within(gray: np.ndarray, side: int) -> np.ndarray:
    """The picture shrunk (by area averaging) so that its longer side is at most ``side``."""
    scale = side / max(gray.shape)
    if scale >= 1:
        return gray
    size = (max(1, round(gray.shape[1] * scale)), max(1, round(gray.shape[0] * scale)))
    return cv2.resize(gray, size, interpolation=cv2.INTER_AREA)


def strokes_in_detail(
    gray: np.ndarray, chosen: np.ndarray, box: tuple[int, int, int, int], light_ink: bool, kernel: int, regions: np.ndarray | None
) -> np.ndarray:
    """The relative ink of the strokes ``chosen`` in the shrunk copy, read from ``gray`` itself in
    a window around them: a small digit keeps the detail the model needs, and only its window pays
    for the larger picture's pixels."""
    scale_y, scale_x = gray.shape[0] / chosen.shape[0], gray.shape[1] / chosen.shape[1]
    x, y, w, h = box
    margin = max(w, h)
    left, top = max(0, x - margin), max(0, y - margin)
    right, bottom = min(chosen.shape[1], x + w + margin), min(chosen.shape[0], y + h + margin)
    window = gray[round(top * scale_y) : round(bottom * scale_y), round(left * scale_x) : round(right * scale_x)]
    near = cv2.dilate(chosen[top:bottom, left:right].astype(np.uint8), np.ones((3, 3), np.uint8))
    near = cv2.resize(near, window.shape[::-1], interpolation=cv2.INTER_NEAREST)
    if regions is not None:
        regions = cv2.resize(regions[top:bottom, left:right], window.shape[::-1], interpolation=cv2.INTER_NEAREST)
    relative, _ = relative_ink(window, light_ink, max(3, round(kernel * scale_x) | 1), regions)
    return relative * near


def above_peak(relative: np.ndarray, peak: float) -> np.ndarray:
    """The pixels (uint8 0/1) dark enough to be strokes: over a share of the darkest strokes' level."""
    return (relative > max(0.1, 0.35 * peak)).astype(np.uint8)


def with_edges(ink: np.ndarray, strokes: np.ndarray) -> np.ndarray:
    """The ink of the strokes and of the pixels next to them (their anti-aliased edges), zero elsewhere."""
    return ink * cv2.dilate(strokes.astype(np.uint8), np.ones((3, 3), np.uint8))


def strokes_in(
    gray: np.ndarray, sheet: np.ndarray | None, light_ink: bool, kernel: int, regions: np.ndarray | None, or_best: bool = False
) -> tuple[tuple[np.ndarray, np.ndarray] | None, bool]:
    """The digit's pixels and the relative ink map, with the paper's closing ``kernel`` wide, and
    whether the shape leads as :func:`strokes_among` asks; with ``or_best``, where none leads in a
    picture as busy as noise, the best shape all the same (not leading), from the same ink map."""
    relative, darkness = relative_ink(gray, light_ink, kernel, regions)
    faint = (relative > FAINTEST).astype(np.uint8)
    unlined, lines = remove_lines(faint, faint)  # before the threshold: a dark printed line must not set it
    levelled = None
    for noise_lead in (True, False) if or_best else (True,):
        found = strokes_among(relative, darkness, unlined, lines, sheet, regions, noise_lead)
        if found is None and lines.mean() > DENSE_LINES:
            if levelled is None:
                levelled = np.clip(relative - line_level(relative), 0, None)
            found = strokes_among(levelled, darkness, (levelled > FAINTEST).astype(np.uint8), np.zeros_like(lines), sheet, regions, noise_lead)
        if found is not None:
            return found, noise_lead
    return None, True


def strokes_among(
    relative: np.ndarray, darkness: np.ndarray, unlined: np.ndarray, lines: np.ndarray, sheet: np.ndarray | None, regions: np.ndarray | None, noise_lead: bool,
    pass_over: bool = True, noisy: bool = False,
) -> tuple[np.ndarray, np.ndarray] | None:
    """The digit's pixels among the ink left once printed lines are out (``unlined``; ``lines``,
    and the pixels next to them where their blurred edges lie, may not set the threshold), and
    the relative ink map: see :func:`strokes_in`. With ``pass_over``, strokes that look like no
    digit (:func:`to_pass_over`) are passed over once, and what is found without them is taken if
    it looks like a digit (``LIKELY_DIGIT``). In a picture as busy as noise where no shape leads,
    the best shape all the same is passed over if it looks like no digit (and does not span the
    picture, as a page shaded alike does), and what is found without it must still lead
    (``noisy``)."""
    near_lines = cv2.dilate(lines, np.ones((3, 3), np.uint8)) if lines.any() else lines
    peak = float(cv2.blur(relative * ((1 - near_lines) if sheet is None else (1 - near_lines) * sheet), (3, 3)).max())
    if peak <= 0:
        return None
    mask = above_peak(relative, peak) & unlined
    noisy = noisy or (noise_lead and sheet is None and looks_like_noise(mask.astype(bool)))
    best, leads = choose_digit(mask, relative, sheet, lead=NOISE_LEAD if noisy else 0)
    chosen = best if leads else None
    passable = chosen
    if passable is None and noisy and pass_over and best is not None and not spans_picture(ink_box(best), best.shape):
        passable = best  # none leads: the best shape all the same
    if pass_over and passable is not None and to_pass_over(passable, relative):
        passed_over = cv2.dilate(passable.view(np.uint8), np.ones((5, 5), np.uint8))
        again = strokes_among(relative, darkness, unlined & (1 - passed_over), lines | passed_over, sheet, regions, noise_lead, False, chosen is None)
        if again is not None and strokes_likeness(again[0], relative) >= LIKELY_DIGIT:
            return again
    if chosen is None or contrast(chosen, relative, darkness, regions, sheet) < MIN_CONTRAST:
        return None
    return chosen, as_dark_as_strokes(relative, chosen, lines)


def as_dark_as_strokes(relative: np.ndarray, chosen: np.ndarray, lines: np.ndarray) -> np.ndarray:
    """The relative ink with the chosen strokes' pixels on printed lines (where they cross or run
    along one) no darker than the darkest of the strokes elsewhere: a dark line under a faint
    digit's stroke would be the brightest part of the model's input."""
    if not lines.any():
        return relative
    on_lines = chosen & (lines > 0)
    off_lines = chosen & ~on_lines
    if not on_lines.any() or not off_lines.any():
        return relative
    return np.where(on_lines, np.minimum(relative, relative[off_lines].max()), relative)


def to_pass_over(chosen: np.ndarray, relative: np.ndarray) -> bool:
    """Whether the strokes chosen look like no digit at all: a likeness under ``EDGE_NO_DIGIT``
    where they reach the picture's edge (where shadows' wedges and surfaces are), under
    ``NO_DIGIT`` elsewhere (a wedge's tip inside the picture). Such a shape, darker than a faint
    digit, sets the threshold that hides the digit."""
    floor = EDGE_NO_DIGIT if reaches_edge(ink_box(chosen), chosen.shape) else NO_DIGIT
    return strokes_likeness(chosen, relative) < floor


def strokes_likeness(strokes: np.ndarray, ink: np.ndarray) -> float:
    """How much strokes (with their edges in ``ink``) look like a digit in MNIST's form."""
    return field_likeness(fit_to_field(with_edges(ink, strokes)))


def field_likeness(field: np.ndarray) -> float:
    """The digit-likeness (:mod:`mnist_flask.likeness`) of one field in MNIST's form."""
    return float(likeness.shipped()(field[None])[0])


def line_level(relative: np.ndarray) -> np.ndarray:
    """The ink of printed lines alone, in a page ruled too densely for :func:`remove_lines`: an
    opening along a line ``LINE_SEGMENT`` long, across and down the page, keeps what lies along a
    line and drops what crosses it. Where a grid's lines are a few pixels apart, a digit's strokes
    join them into one run and would go with them; taken off by level instead, the strokes
    (darker than the lines) are left."""
    length = segment_length(max(relative.shape))
    across = cv2.morphologyEx(relative, cv2.MORPH_OPEN, np.ones((1, length), np.uint8))
    return np.maximum(across, cv2.morphologyEx(relative, cv2.MORPH_OPEN, np.ones((length, 1), np.uint8)))


def contrast(chosen: np.ndarray, relative: np.ndarray, darkness: np.ndarray, regions: np.ndarray | None, sheet: np.ndarray | None) -> float:
    """How far the strokes stand out, on the full scale; against the paper itself where the paper
    is dark: strokes in a hard shadow (read with each area apart), and strokes on a page with no
    sheet in dim light (:func:`in_dim_light`). Ink takes a share of the light that paper reflects,
    so under half the light it stands out half as far on the full scale. Not so on a surface
    around a sheet: a desk's grain stands out from its dark wood as much as ink. A picture as busy
    as noise counts as a page too: a shape that leads there by ``NOISE_LEAD`` is no grain."""
    shadow = 1 + (sheet is not None)  # the shadow's number among the areas (see lit_regions)
    in_shadow = regions is not None and np.median(regions[chosen]) == shadow
    dim = sheet is None and in_dim_light(chosen, relative, darkness)
    return float((relative if in_shadow or dim else darkness)[chosen].max())


def in_dim_light(chosen: np.ndarray, relative: np.ndarray, darkness: np.ndarray) -> bool:
    """Whether strokes lie on paper darker than ``DIM_PAPER`` and still stand out ``DIMMEST_INK``
    on the full scale, clear of the picture's edge (where a dark surface's texture reaches in).
    The paper's level under the strokes is their darkness over their relative darkness."""
    if reaches_edge(ink_box(chosen), chosen.shape):
        return False
    strokes = chosen & (relative > 0)
    if not strokes.any() or float(darkness[chosen].max()) < DIMMEST_INK:
        return False
    return float(np.median(darkness[strokes] / relative[strokes])) < DIM_PAPER


def prepare_upload(data: bytes, max_pixels: int) -> Digit:
    """Bytes of an uploaded picture to the model's input, its box in the picture's upright pixels."""
    gray, size = read_upright(data, max_pixels)
    return to_mnist(gray).scaled(gray.shape, size)


def read_luminance(data: bytes, max_pixels: int) -> np.ndarray:
    """The picture as luminance (0..255): plain JPEGs through libjpeg-turbo straight to grey, the
    rest through Pillow. The common upload then skips Pillow's per-file overhead, which costs more
    than the decoding (docs/performance.md); both give the same pixels (tests/test_preprocessing.py)."""
    return read_upright(data, max_pixels)[0]


def read_upright(data: bytes, max_pixels: int) -> tuple[np.ndarray, tuple[int, int]]:
    """:func:`read_luminance` and the picture's upright (width, height) before any shrinking."""
    gray = read_jpeg_luminance(data, max_pixels) if plain_jpeg(data) else None
    if gray is not None:
        height, width = simplejpeg.decode_jpeg_header(data)[:2]
        return gray, (width, height)
    image = open_image(data, max_pixels)
    return to_grayscale(image), upright_size(image, data)


def upright_size(image: Image.Image, data: bytes) -> tuple[int, int]:
    """The stored size (before a JPEG's draft scaling), turned as the EXIF orientation says."""
    width, height = image.size
    if image.format == "JPEG":
        try:
            height, width = simplejpeg.decode_jpeg_header(data)[:2]
        except ValueError:
            scale = getattr(image, "decoderconfig", (1,))[0] or 1
            width, height = width * scale, height * scale
    if may_be_rotated(image) and image.getexif().get(EXIF_ORIENTATION) in (5, 6, 7, 8):
        width, height = height, width
    return width, height


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
    return fit_within(gray[..., 0], WORK_SIDE)
