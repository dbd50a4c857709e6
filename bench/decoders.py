"""What decoding an upload costs, by decoder: the floor under each real style's preprocessing.

    python -m bench.decoders [--per-style 32]

For the benchmark's PNG styles (canvas exports, small off-centre digits) and JPEG styles (phone
photos, scans), in one process: mnist_flask's own reading of the pixels (``read_upright``: decode,
EXIF rotation, luminance, shrinking to 256 px), then each decoder alone, at the size mnist_flask
decodes to (a JPEG DCT-scaled as :func:`draft_scale` says, a PNG whole: PNG has no reduced
decoding), none of them rotating. Per picture the best of 5 decodes in the thread's CPU time, then
the median over the pictures, in µs. ``pyspng`` (libspng) and ``imagecodecs`` (libpng) are here
only to be compared (requirements-bench.txt). Writes bench/results/decoders.md.
"""

from __future__ import annotations

import argparse
import io
import statistics
import time

import cv2
import imagecodecs
import numpy as np
import pyspng
import simplejpeg
from PIL import Image

from bench.run import RESULTS
from bench.upload_mix import test_digits
from bench.upload_styles import generate
from mnist_flask.preprocessing import draft_luminance, draft_scale, read_upright

PNG_STYLES, JPEG_STYLES = ("canvas", "small_offcentre"), ("phone_photo", "scan")


def pillow(data: bytes) -> None:
    image = Image.open(io.BytesIO(data))
    draft_luminance(image)
    image.load()


def opencv(data: bytes) -> None:
    cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_UNCHANGED | cv2.IMREAD_IGNORE_ORIENTATION)


def libjpeg_turbo_scaled(data: bytes) -> None:
    height, width = simplejpeg.decode_jpeg_header(data)[:2]
    scale = draft_scale(width, height)
    simplejpeg.decode_jpeg(data, colorspace="GRAY", min_width=-(-width // scale), min_height=-(-height // scale))


def opencv_jpeg_scaled(data: bytes) -> None:
    height, width = simplejpeg.decode_jpeg_header(data)[:2]
    flag = {1: cv2.IMREAD_GRAYSCALE, 2: cv2.IMREAD_REDUCED_GRAYSCALE_2, 4: cv2.IMREAD_REDUCED_GRAYSCALE_4}
    cv2.imdecode(np.frombuffer(data, np.uint8), flag.get(draft_scale(width, height), cv2.IMREAD_REDUCED_GRAYSCALE_8) | cv2.IMREAD_IGNORE_ORIENTATION)


DECODERS = {
    "png": {"Pillow": pillow, "OpenCV imdecode": opencv, "pyspng (libspng)": pyspng.load, "imagecodecs (libpng)": imagecodecs.png_decode},
    "jpeg": {"Pillow, draft": pillow, "OpenCV, reduced grey": opencv_jpeg_scaled, "simplejpeg (libjpeg-turbo), scaled grey": libjpeg_turbo_scaled},
}


def cpu_per_picture(decode, pictures: list[bytes]) -> float:
    """Per picture the best of 5 decodes in thread CPU time; the median over the pictures, in µs."""
    best = []
    for data in pictures:
        decode(data)
        times = []
        for _ in range(5):
            start = time.thread_time()
            decode(data)
            times.append(time.thread_time() - start)
        best.append(min(times))
    return statistics.median(best) * 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--per-style", type=int, default=32)
    args = parser.parse_args()
    digits, _ = test_digits(args.per_style, 0)
    lines = ["| style | decoder | µs CPU per picture |", "|---|---|---|"]
    for style in (*PNG_STYLES, *JPEG_STYLES):
        pictures = [data for data, _ in generate(style, digits, 0)]
        own = cpu_per_picture(lambda data: read_upright(data, 25_000_000), pictures)
        lines.append(f"| {style} | mnist_flask's read_upright (decode, rotate, luminance, shrink) | {own:.0f} |")
        for name, decode in DECODERS["png" if style in PNG_STYLES else "jpeg"].items():
            lines.append(f"| {style} | {name} | {cpu_per_picture(decode, pictures):.0f} |")
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "decoders.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
