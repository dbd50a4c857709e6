"""Train the photo search's digit-likeness network (:mod:`mnist_flask.likeness`).

    python -m bench.digit_likeness [--per-style 1600] [--epochs 12] [--out mnist_flask/digit_likeness.npz]

Examples are the shapes the search itself weighs (``preprocessing.candidate_fields``) in the photo-
of-paper styles of :mod:`bench.upload_styles`, drawn with ``x_train`` digits (never ``x_test``)
and the styles' tuning ranges (never the held-out ones). Each photo is drawn twice from the same
seed, once with the digit's ink left off: where the two differ is the digit, so a shape is a
digit when it covers at least half of that difference and at least half of it lies on it, and
not one when it lies off it; shapes in between (a digit joined to a larger frame's remnant, a
piece of a digit) are left out. While harvesting, the search ranks by its rules alone (every
shape weighs 1), so that a new network learns from the same shapes whatever network is shipped.
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import os
from multiprocessing import Pool
from pathlib import Path

import cv2
import numpy as np

from bench import upload_styles
from bench.harness import ROOT
from mnist_flask import likeness, preprocessing, training

DIFFERENCE = 12  # grey levels by which a photo and its twin without ink must differ to be the digit
COVERS, ON_DIGIT, OFF_DIGIT = 0.5, 0.5, 0.05  # shares that make a shape a digit, or not one
SEED = 13


def harvest(job: tuple[str, int, int]) -> tuple[np.ndarray, np.ndarray]:
    """(fields uint8 [N,28,28], labels [N]) of the shapes weighed in ``count`` photos of ``style``
    and their twins without the digit."""
    style, count, seed = job
    train = train_digits()
    digits = train[np.random.default_rng([seed, upload_styles.PAPER_STYLES.index(style)]).choice(len(train), count, replace=False)]
    photos = upload_styles.generate(style, digits, seed)
    with ink_left_off():
        twins = upload_styles.generate(style, digits, seed)
    fields, labels = [], []
    for (photo, _), (twin, _) in zip(photos, twins):
        gray, bare = (preprocessing.read_upright(upload, 40_000_000)[0] for upload in (photo, twin))
        digit = digit_where(gray, bare)
        for picture, truth in ((gray, digit), (bare, None)):
            for field, group in weighed_shapes(picture):
                label = shape_label(group, truth)
                if label is not None:
                    fields.append(np.round(field * 255).astype(np.uint8))
                    labels.append(label)
    return np.array(fields, np.uint8).reshape(-1, 28, 28), np.array(labels, np.uint8)


@functools.cache
def train_digits() -> np.ndarray:
    """``x_train``, read once per process (each harvests many chunks)."""
    return training.load_mnist(str(ROOT / "data/mnist.npz"))[0][0]


@contextlib.contextmanager
def ink_left_off():
    """The styles draw as before (the same random draws, frames and placing), but the digit's ink
    is not put on the page."""
    write = upload_styles.write_digit
    upload_styles.write_digit = lambda rgb, *args, **kwargs: write(rgb.copy(), *args, **kwargs)
    try:
        yield
    finally:
        upload_styles.write_digit = write


def digit_where(gray: np.ndarray, bare: np.ndarray) -> np.ndarray:
    """Where the digit is, at the search's resolution (``ANALYSIS_SIDE``): the photo less its twin."""
    differs = (cv2.absdiff(gray, bare) > DIFFERENCE).astype(np.float32)
    small = preprocessing.fit_within(gray, preprocessing.ANALYSIS_SIDE)
    return cv2.resize(differs, small.shape[::-1], interpolation=cv2.INTER_AREA) > 0.15


def weighed_shapes(gray: np.ndarray) -> list[tuple[np.ndarray, np.ndarray]]:
    """(field, pixels at the search's resolution) of every shape the search weighs in a photo, its
    first reading and its second looks, with every shape weighing 1 (``LIKENESS_FLOOR`` = 1)."""
    seen = []
    small_shape = preprocessing.fit_within(gray, preprocessing.ANALYSIS_SIDE).shape

    def recording(candidates, labels, ink, stats, mass, score):
        fields = fields_of(candidates, labels, ink, stats, mass, score)
        if labels.shape == small_shape:  # not the crop a clean picture is read from
            seen.extend((field, preprocessing.group_of(index, labels, stats, mass, score)) for field, index in zip(fields, candidates))
        return fields

    fields_of, floor = preprocessing.candidate_fields, preprocessing.LIKENESS_FLOOR
    preprocessing.candidate_fields, preprocessing.LIKENESS_FLOOR = recording, 1.0
    try:
        digit = preprocessing.to_mnist(gray)
        if digit.second_look is not None:
            digit.second_look()
    finally:
        preprocessing.candidate_fields, preprocessing.LIKENESS_FLOOR = fields_of, floor
    return seen


def shape_label(group: np.ndarray, digit: np.ndarray | None) -> int | None:
    """1 for the digit, 0 for a shape that is not it, None for one in between."""
    if digit is None:
        return 0
    near = cv2.dilate(digit.view(np.uint8), np.ones((5, 5), np.uint8)).view(bool)
    covers = np.count_nonzero(group & digit) / max(np.count_nonzero(digit), 1)
    on_digit = np.count_nonzero(group & near) / max(np.count_nonzero(group), 1)
    if covers >= COVERS and on_digit >= ON_DIGIT:
        return 1
    return 0 if on_digit < OFF_DIGIT else None


def build_network():
    import keras

    return keras.Sequential(
        [
            keras.Input((28, 28, 1)),
            keras.layers.Conv2D(16, 5, strides=likeness.STRIDE, activation="relu", name="conv1"),
            keras.layers.Conv2D(32, 3, strides=likeness.STRIDE, activation="relu", name="conv2"),
            keras.layers.Flatten(),
            keras.layers.Dense(64, activation="relu", name="dense"),
            keras.layers.Dense(1, activation="sigmoid", name="out"),
        ]
    )


def train(fields: np.ndarray, labels: np.ndarray, epochs: int) -> dict[str, np.ndarray]:
    """The network's weights by layer, trained with each class weighing half."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    import keras

    import tensorflow

    keras.utils.set_random_seed(SEED)
    tensorflow.config.experimental.enable_op_determinism()  # the same shapes, the same network
    network = build_network()
    network.compile(optimizer=keras.optimizers.Adam(2e-3), loss="binary_crossentropy")
    share = labels.mean()
    weights = np.where(labels == 1, 0.5 / share, 0.5 / (1 - share))
    network.fit(fields[..., None].astype(np.float32) / 255, labels.astype(np.float32), sample_weight=weights, epochs=epochs, batch_size=128, verbose=0)
    return {f"{layer}_{part}": value for layer in likeness.LAYERS for part, value in zip(("kernel", "bias"), network.get_layer(layer).get_weights())}


def harvest_all(per_style: int) -> tuple[np.ndarray, np.ndarray]:
    """Every style's shapes, in chunks over the machine's cores, without repeats."""
    chunk = 200
    jobs = [(style, min(chunk, per_style - start), SEED + start) for style in upload_styles.PAPER_STYLES for start in range(0, per_style, chunk)]
    with Pool(os.cpu_count()) as pool:
        parts = pool.map(harvest, jobs)
    fields, unique = np.unique(np.concatenate([part[0] for part in parts]), axis=0, return_index=True)
    return fields, np.concatenate([part[1] for part in parts])[unique]


def clean_digits(count: int) -> np.ndarray:
    """``x_train`` digits in the model's form: what a digit looks like with nothing around it."""
    train = train_digits()
    chosen = train[np.random.default_rng(SEED).choice(len(train), count, replace=False)]
    return np.array([np.round(preprocessing.to_mnist(digit).pixels * 255) for digit in chosen], np.uint8)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--per-style", type=int, default=1600, help="photos per photo-of-paper style (each with its twin)")
    parser.add_argument("--clean", type=int, default=4000, help="x_train digits also shown as they are")
    parser.add_argument("--epochs", type=int, default=12)
    parser.add_argument("--shapes", type=Path, help="keep the harvested shapes here, and reuse them if it exists")
    parser.add_argument("--out", type=Path, default=likeness.WEIGHTS)
    args = parser.parse_args(argv)
    if args.shapes and args.shapes.exists():
        with np.load(args.shapes) as kept:
            fields, labels = kept["fields"], kept["labels"]
    else:
        fields, labels = harvest_all(args.per_style)
        if args.shapes:
            np.savez_compressed(args.shapes, fields=fields, labels=labels)
    print(f"{len(labels)} shapes from photos, {int(labels.sum())} of them digits", flush=True)
    fields = np.concatenate([fields, clean_digits(args.clean)])
    labels = np.concatenate([labels, np.ones(args.clean, np.uint8)])
    weights = train(fields, labels, args.epochs)
    np.savez(args.out, **{name: value.astype(np.float16) for name, value in weights.items()})
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
