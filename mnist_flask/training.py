"""Train, export and evaluate the digit classifier.

TensorFlow is imported here and in the Keras serving fallback only: a LiteRT worker never loads it.
"""

from __future__ import annotations

import hashlib
import json
import platform
from datetime import datetime, timezone
from pathlib import Path

import numpy as np

from .model import KERAS_FILE, METADATA_FILE, TFLITE_FILE, list_versions
from .preprocessing import prepare_upload, to_mnist
from .runtimes import litert_runner

VALIDATION_SIZE = 1000  # held out of x_train to watch training; x_test is never seen in training
PHOTOS = 3000  # x_train digits also photographed on paper and read back by the serving preprocessing
# The paper styles (bench/upload_styles.py) a training photo is drawn from, the hard ones twice as often.
PHOTO_STYLES = {"notebook": 2, "form_field": 2, "note_on_desk": 2, "hard_shadow": 2, "coloured_paper": 1, "blur_tilt": 1, "near_edge": 1}
PHOTO_CHUNK = 250  # digits per seeded chunk: the same photos whatever the number of processes
PHOTO_SIMILARITY = 0.25  # a photo's crop less like the digit's own MNIST form shows something else


def load_mnist(path: str | None):
    """``(x_train, y_train), (x_test, y_test)`` from a local ``mnist.npz`` or Keras' downloader."""
    if path:
        with np.load(path) as data:
            return (data["x_train"], data["y_train"]), (data["x_test"], data["y_test"])
    import keras

    return keras.datasets.mnist.load_data()


def sha256_of(path: str) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def preprocess_all(images: np.ndarray) -> np.ndarray:
    """The serving recipe applied to a stack of images, so training sees what the server sends."""
    return np.stack([to_mnist(image).pixels for image in images])


def photo_crops(images: np.ndarray, seed: int, processes: int = 2) -> tuple[np.ndarray, np.ndarray]:
    """Each digit written on paper in one of the paper styles, photographed, and read back the way
    the server reads an upload: the crops (28x28) and which of them show the digit.

    Preprocessing finds the digit but cannot remove everything around it: rule and frame remnants
    crossing the strokes, the tip of a shadow or of the note's edge, blur and uneven ink. The model
    learns to ignore them from these crops. A crop counts as showing the digit when one was found
    and it is like the digit's own MNIST form (cosine ``PHOTO_SIMILARITY``); the others (a shadow's
    wedge chosen instead of the digit) would only teach the model to see digits in wedges.

    Rendering a photo costs far more than training on it, so the chunks run in ``processes``
    processes; each chunk has its own seed, so the crops do not depend on how many there are."""
    from concurrent.futures import ProcessPoolExecutor

    chunks = [(images[start : start + PHOTO_CHUNK], (seed, start)) for start in range(0, len(images), PHOTO_CHUNK)]
    if processes > 1 and len(chunks) > 1:
        with ProcessPoolExecutor(processes) as pool:
            crops = list(pool.map(photographed_crops, *zip(*chunks)))
    else:
        crops = [photographed_crops(*chunk) for chunk in chunks]
    crops = np.concatenate(crops)
    clean = preprocess_all(images).reshape(len(images), -1)
    flat = crops.reshape(len(images), -1)
    similarity = (clean * flat).sum(1) / np.maximum(np.linalg.norm(clean, axis=1) * np.linalg.norm(flat, axis=1), 1e-6)
    return crops, similarity >= PHOTO_SIMILARITY


def photographed_crops(images: np.ndarray, seed) -> np.ndarray:
    """The served preprocessing's crops of the digits photographed in randomly chosen paper styles.
    The generator lives beside the benchmarks (bench/upload_styles.py): training runs from the checkout."""
    from bench.upload_styles import STYLES, Draw

    rng = np.random.default_rng(seed)
    names, weights = list(PHOTO_STYLES), np.array(list(PHOTO_STYLES.values()), float)
    styles = rng.choice(names, len(images), p=weights / weights.sum())
    draw = Draw(rng)
    return np.stack([prepare_upload(STYLES[style](image, draw)[0], 10**8).pixels for style, image in zip(styles, images)])


def with_photos(x: np.ndarray, y: np.ndarray, digits: np.ndarray, labels: np.ndarray, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """The preprocessed digits ``x`` and the crops of ``digits`` photographed that show the digit."""
    if not len(digits):
        return x, y
    crops, shown = photo_crops(digits, seed)
    return np.concatenate([x, crops[shown][..., None]]), np.concatenate([y, labels[shown]])


def build_model():
    """A small CNN: 40k parameters, about 16 µs per digit in LiteRT with 8-bit weights, and on a
    1,000-digit validation split as accurate as a CNN with eight times the compute, while smaller
    float networks lost accuracy (docs/performance.md)."""
    import keras
    from keras import layers

    def conv(filters, padding="same"):
        return [layers.Conv2D(filters, 3, padding=padding, use_bias=False), layers.BatchNormalization(), layers.ReLU()]

    return keras.Sequential(
        [
            keras.Input((28, 28, 1)),
            *conv(16),
            layers.MaxPooling2D(),
            *conv(32),
            layers.MaxPooling2D(),
            *conv(64, padding="valid"),
            layers.Flatten(),
            layers.Dropout(0.3),
            layers.Dense(10, activation="softmax"),
        ],
        name="mnist_cnn",
    )


def augmenter(seed: int):
    """What preprocessing cannot undo: slant, slight rotation, size and stroke width."""
    import keras
    import tensorflow as tf
    from keras import layers

    geometry = keras.Sequential(
        [
            layers.RandomRotation(0.04, fill_mode="constant", seed=seed),
            layers.RandomZoom((-0.12, 0.12), fill_mode="constant", seed=seed + 1),
            layers.RandomTranslation(0.08, 0.08, fill_mode="constant", seed=seed + 2),
        ]
    )
    generator = tf.random.Generator.from_seed(seed)

    def stroke_width(images):
        thicker = tf.nn.max_pool2d(images, 2, 1, "SAME")
        thinner = -tf.nn.max_pool2d(-images, 2, 1, "SAME")
        choice = generator.uniform([tf.shape(images)[0], 1, 1, 1])
        return tf.where(choice < 0.2, thicker, tf.where(choice < 0.3, thinner, images))

    def augment(images, labels):
        images = geometry(images, training=True)
        return tf.clip_by_value(stroke_width(images), 0.0, 1.0), labels

    return augment


def train(
    data: str | None,
    model_dir: Path,
    name: str,
    version: int | None,
    epochs: int,
    seed: int = 1,
    limit: int | None = None,
    photos: int = PHOTOS,
    log=print,
) -> Path:
    """Train on x_train only, export Keras + LiteRT into a new version folder, return it."""
    import keras
    import tensorflow as tf

    keras.utils.set_random_seed(seed)
    (x_train, y_train), (x_test, y_test) = load_mnist(data)
    if limit:
        x_train, y_train = x_train[:limit], y_train[:limit]
    log(f"preprocessing {len(x_train)} training digits")
    x = preprocess_all(x_train)[..., None]
    order = np.random.default_rng(seed).permutation(len(x))
    valid, fit = order[: min(VALIDATION_SIZE, len(x) // 10)], order[min(VALIDATION_SIZE, len(x) // 10) :]
    photographed = fit[:photos]
    valid_photographed = valid[: len(valid) * len(photographed) // max(len(fit), 1)]  # the same share
    log(f"photographing {len(photographed)} training digits and {len(valid_photographed)} validation digits on paper")
    fit_x, fit_y = with_photos(x[fit], y_train[fit], x_train[photographed], y_train[photographed], seed)
    valid_x, valid_y = with_photos(x[valid], y_train[valid], x_train[valid_photographed], y_train[valid_photographed], seed + 1)

    dataset = (
        tf.data.Dataset.from_tensor_slices((fit_x, fit_y))
        .shuffle(len(fit_x), seed=seed)
        .batch(64)
        .map(augmenter(seed), num_parallel_calls=tf.data.AUTOTUNE)
        .prefetch(tf.data.AUTOTUNE)
    )
    model = build_model()
    model.compile(
        optimizer=keras.optimizers.AdamW(keras.optimizers.schedules.CosineDecay(3e-3, epochs * len(dataset))),
        loss="sparse_categorical_crossentropy",
        metrics=["accuracy"],
    )
    model.fit(
        dataset,
        epochs=epochs,
        validation_data=(valid_x, valid_y),
        verbose=2,
    )
    folder = Path(model_dir) / name / str(version or (max(list_versions(model_dir, name), default=0) + 1))
    export(model, folder)
    evaluation = evaluate_export(model, folder, preprocess_all(x_test), y_test)
    metadata = {
        "name": name,
        "version": int(folder.name),
        "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "training_data": {
            "source": str(data) if data else "keras.datasets.mnist.load_data()",
            "sha256": sha256_of(data) if data else None,
            "split": "x_train",
            "samples": int(len(fit_x)),
            "validation_samples": int(len(valid_x)),
        },
        "training": {
            "epochs": epochs,
            "seed": seed,
            "augmentation": f"rotation, zoom, shift, stroke width; {len(fit_x) - len(fit)} of the {len(fit)} digits "
            "also as photos of paper read back by the serving preprocessing (bench/upload_styles.py paper styles)",
        },
        "evaluation": {"split": "x_test", "samples": int(len(x_test)), **evaluation},
        "input": {"shape": [28, 28], "dtype": "float32", "range": [0.0, 1.0], "ink": "bright on black"},
        "output": {"shape": [10], "meaning": "softmax probabilities of the digits 0-9"},
        "files": {"keras": KERAS_FILE, "tflite": TFLITE_FILE},
        "conversion": {"tflite": "TFLiteConverter.from_keras_model, Optimize.DEFAULT (8-bit weights, float input/output)"},
        "versions": {"tensorflow": tf.__version__, "keras": keras.__version__, "python": platform.python_version()},
    }
    (folder / METADATA_FILE).write_text(json.dumps(metadata, indent=2) + "\n")
    log(
        f"version {folder.name}: accuracy on x_test {evaluation['accuracy']:.4%} served (LiteRT), "
        f"{evaluation['keras_accuracy']:.4%} Keras, same digit for {evaluation['litert_keras_agreement']:.4%}; "
        f"written to {folder}"
    )
    return folder


def export(model, folder: Path) -> None:
    """Keras file as the source of truth, and TensorFlow's own LiteRT conversion of it for serving.

    The conversion stores the weights in 8 bits (``Optimize.DEFAULT``, dynamic range): a digit
    takes ~16 µs instead of ~37 µs at the same accuracy; input and output stay float32 and the Keras
    file keeps the exact weights (docs/performance.md).
    """
    import tensorflow as tf

    folder.mkdir(parents=True, exist_ok=True)
    model.save(folder / KERAS_FILE)
    converter = tf.lite.TFLiteConverter.from_keras_model(model)
    converter.optimizations = [tf.lite.Optimize.DEFAULT]
    (folder / TFLITE_FILE).write_bytes(converter.convert())


def evaluate_export(model, folder: Path, fields: np.ndarray, labels: np.ndarray) -> dict:
    """Accuracy of what is served (LiteRT) and of the Keras source, and how often they agree."""
    keras_probabilities = model.predict(fields[..., None], verbose=0)
    litert_probabilities = litert_runner(folder / TFLITE_FILE).run(fields[..., None])
    return {
        "accuracy": round(accuracy(litert_probabilities, labels), 5),
        "keras_accuracy": round(accuracy(keras_probabilities, labels), 5),
        "litert_keras_agreement": round(float((litert_probabilities.argmax(1) == keras_probabilities.argmax(1)).mean()), 5),
        "litert_keras_max_difference": round(float(np.abs(litert_probabilities - keras_probabilities).max()), 5),
    }


def accuracy(probabilities: np.ndarray, labels: np.ndarray) -> float:
    return float((np.argmax(probabilities, axis=1) == labels).mean())
