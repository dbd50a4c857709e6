"""The request bodies wrk sends (bench/post_image.lua): multipart uploads of pictures as people send
them, per upload style and as a mix, written to a temporary folder at bench time.

Each style's bodies are ``per_style`` distinct pictures made by bench.upload_styles from x_test
digits (seeded: the same on every run), so no server answers one cached picture over and over.
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from bench.harness import ROOT
from bench.upload_styles import generate

BOUNDARY = "----mnistflaskbench"
MULTIPART = f"multipart/form-data; boundary={BOUNDARY}"
DIGIT_JPEG = "digit_jpeg"  # the one 28x28 JPEG the benchmark always posted: the baseline of the ratios
STYLES = {
    "mnist": "MNIST itself, 28x28 PNG",
    "canvas": "canvas export, 280x280 RGBA PNG",
    "phone_photo": "phone photo of a page, 1-3 MP JPEG with EXIF rotation",
    "scan": "flatbed scan, grey JPEG",
    "small_offcentre": "small digit off-centre in a large PNG",
}
# What a day's uploads might be, the mix's share of each style: the upload page's canvas and
# phone photos from people's pockets make up most; scans and crops of forms (small, off-centre)
# follow; the MNIST form itself comes from API clients and tests. Real pictures are 80 % of it,
# so that the mix shows what preprocessing costs, not what the 28x28 shortcut saves.
MIX = {"canvas": 0.30, "phone_photo": 0.25, "mnist": 0.20, "scan": 0.15, "small_offcentre": 0.10}
MIX_LENGTH = 200  # requests before the mix repeats


@dataclass
class Workload:
    """A list of body files wrk cycles through, and one of its pictures with its label, to check a
    server reads it right before it is measured."""

    bodies: Path
    sample: tuple[bytes, str]
    label: int


def multipart_body(pictures: list[tuple[bytes, str]]) -> bytes:
    """One upload field ``image`` per ``(bytes, content type)``, as ``curl -F image=@...`` sends."""
    parts = [
        f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="image"; filename="upload"\r\n'
        f"Content-Type: {content_type}\r\n\r\n".encode() + data + b"\r\n"
        for data, content_type in pictures
    ]
    return b"".join(parts) + f"--{BOUNDARY}--\r\n".encode()


def write_bodies(directory: Path, name: str, bodies: list[bytes]) -> Path:
    """Each body in its own file, and the list of them (one path a line) that post_image.lua reads."""
    folder = directory / name
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for index, body in enumerate(bodies):
        paths.append(folder / f"{index}.body")
        paths[-1].write_bytes(body)
    listing = directory / f"{name}.list"
    listing.write_text("".join(f"{path}\n" for path in paths))
    return listing


def test_digits(count: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    with np.load(ROOT / "data" / "mnist.npz") as data:
        images, labels = data["x_test"], data["y_test"]
    chosen = np.random.default_rng(seed).choice(len(images), count, replace=False)
    return images[chosen], labels[chosen]


def digit_jpeg() -> tuple[bytes, int]:
    """An MNIST test digit as a 28x28 JPEG, the classic ``curl -F image=@1.jpg`` upload."""
    with np.load(ROOT / "data" / "mnist.npz") as data:
        image, label = data["x_test"][0], int(data["y_test"][0])
    buffer = io.BytesIO()
    Image.fromarray(image).save(buffer, "JPEG", quality=90)
    return buffer.getvalue(), label


def mix_order(per_style: int, seed: int) -> list[tuple[str, int]]:
    """MIX_LENGTH (style, picture) picks, each style in its MIX share, in a seeded shuffled order."""
    rng = np.random.default_rng(seed)
    counts = {style: round(share * MIX_LENGTH) for style, share in MIX.items()}
    picks = [(style, int(rng.integers(per_style))) for style, count in counts.items() for _ in range(count)]
    return [picks[index] for index in rng.permutation(len(picks))]


def workloads(directory: Path, per_style: int = 32, seed: int = 0, names: list[str] | None = None) -> dict[str, Workload]:
    """The 28x28 JPEG, each style and the mix, as body lists in ``directory``; ``names`` picks some
    (the 28x28 JPEG is always made: the peers' readiness probe posts it)."""
    names = names or [DIGIT_JPEG, *STYLES, "mix"]
    image, label = digit_jpeg()
    made = {DIGIT_JPEG: Workload(write_bodies(directory, DIGIT_JPEG, [multipart_body([(image, "image/jpeg")])]), (image, "image/jpeg"), label)}
    digits, labels = test_digits(per_style, seed)
    pictures = {style: generate(style, digits, seed) for style in STYLES if style in names or "mix" in names}
    for style, made_pictures in pictures.items():
        bodies = [multipart_body([picture]) for picture in made_pictures]
        made[style] = Workload(write_bodies(directory, style, bodies), made_pictures[0], int(labels[0]))
    if "mix" in names:
        order = mix_order(per_style, seed)
        bodies = [multipart_body([pictures[style][index]]) for style, index in order]
        first_style, first_index = order[0]
        made["mix"] = Workload(write_bodies(directory, "mix", bodies), pictures[first_style][first_index], int(labels[first_index]))
    return {name: made[name] for name in dict.fromkeys([DIGIT_JPEG, *names])}
