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
from .preprocessing import fit_to_field, to_mnist
from .runtimes import litert_runner

VALIDATION_SIZE = 1000  # held out of x_train to watch training; x_test is never seen in training
REMNANT_SHARE = 1.0  # share of the training digits also learnt with a remnant of paper beside them (below)
REMNANT_MARGIN = 12  # room around the 28x28 digit for a frame or line to reach past it
MEMBERS = 2  # networks trained apart (their own seed, remnants and augmentation) whose answers are averaged


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


def with_remnants(images: np.ndarray, seed: int) -> np.ndarray:
    """The training digits again as a photo's preprocessing can leave them: inside a printed box
    from cutting into the digit to half its size off (some sides missing), crossed by a piece of a
    ruled or printed line, or with a stroke cut where such a line was taken out. Each copy goes
    through the recipe's own scaling (:func:`fit_to_field`), so a box shrinks the digit within the
    field as it does when served. What finding the digit cannot remove, the model learns to look
    past."""
    rng = np.random.default_rng(seed)
    drawings = (draw_frame, draw_lines, cut_strokes)
    fields = []
    for image in images:
        canvas, box = on_canvas(image)
        drawings[rng.integers(len(drawings))](canvas, box, rng)
        fields.append(fit_to_field(canvas))
    return np.stack(fields)


def on_canvas(image: np.ndarray) -> tuple[np.ndarray, tuple[int, int, int, int]]:
    """A digit (0..255) as ink (0..1) with ``REMNANT_MARGIN`` of room around it, and its strokes'
    box (x, y, width, height) there, for a remnant to be drawn beside it."""
    import cv2

    canvas = np.pad(image / 255, REMNANT_MARGIN).astype(np.float32)
    return canvas, tuple(int(v) for v in cv2.boundingRect((canvas > 0.2).astype(np.uint8)))


def draw_frame(canvas: np.ndarray, box: tuple[int, int, int, int], rng: np.random.Generator) -> None:
    """A form's box around the digit, from cutting 3 pixels into it to 10 off (half a digit's
    height: a box the digit was written small in), often a side short."""
    import cv2

    x, y, w, h = box
    left, top, right, bottom = x - rng.integers(-3, 11), y - rng.integers(-3, 11), x + w + rng.integers(-3, 11), y + h + rng.integers(-3, 11)
    sides = [((left, top), (right, top)), ((right, top), (right, bottom)), ((right, bottom), (left, bottom)), ((left, bottom), (left, top))]
    keep = np.ones(4, bool) if rng.random() < 0.6 else rng.random(4) < 0.6
    keep[0] |= not keep.any()
    level, thickness = float(rng.uniform(0.35, 1.0)), int(rng.integers(1, 3))
    for (start, end), kept in zip(sides, keep):
        if kept:
            cv2.line(canvas, tuple(map(int, start)), tuple(map(int, end)), level, thickness)


def draw_lines(canvas: np.ndarray, box: tuple[int, int, int, int], rng: np.random.Generator) -> None:
    """One or two ruled lines across the digit, slightly tilted, ending a little past it."""
    import cv2

    x, y, w, h = box
    across = rng.random() < 0.75  # rules run across a page far more often than down it
    length, height, start, origin = (w, h, x, y) if across else (h, w, y, x)
    level, thickness = float(rng.uniform(0.3, 1.0)), int(rng.integers(1, 3))
    spacing = int(rng.integers(7, 15))
    at = origin + int(rng.integers(-2, height + 3))
    for offset in range(0, 1 + int(rng.random() < 0.4) * spacing, spacing):
        first, last = start - int(rng.integers(0, 6)), start + length + int(rng.integers(0, 6))
        tilt = int(rng.integers(-2, 3))
        ends = ((first, at + offset), (last, at + offset + tilt))
        if not across:
            ends = tuple(point[::-1] for point in ends)
        cv2.line(canvas, *ends, level, thickness)


def cut_strokes(canvas: np.ndarray, box: tuple[int, int, int, int], rng: np.random.Generator) -> None:
    """A gap across the strokes where a thin line through the digit was removed."""
    x, y, w, h = box
    row = y + int(rng.integers(h // 5, max(h // 5 + 1, 4 * h // 5)))
    canvas[row : row + int(rng.integers(1, 3)), x : x + w] = 0


def build_model(name: str):
    """A small CNN (240k parameters, 8-bit when served), since every request pays for the model
    call: wide enough to learn digits beside remnants of paper (:func:`with_remnants`) and keep
    MNIST's own above 99 %, where the 40k-parameter network of model 3 lost 0.3 points
    (docs/performance.md)."""
    import keras
    from keras import layers

    def conv(filters, padding="same"):
        return [layers.Conv2D(filters, 3, padding=padding, use_bias=False), layers.BatchNormalization(), layers.ReLU()]

    return keras.Sequential(
        [
            keras.Input((28, 28, 1)),
            *conv(24),
            layers.MaxPooling2D(),
            *conv(48),
            layers.MaxPooling2D(),
            *conv(64, padding="valid"),
            layers.Flatten(),
            layers.Dropout(0.3),
            layers.Dense(128, use_bias=False),
            layers.BatchNormalization(),
            layers.ReLU(),
            layers.Dropout(0.3),
            layers.Dense(10, activation="softmax"),
        ],
        name=name,
    )


def build_ensemble(networks: list):
    """Networks of :func:`build_model` answering as one: the mean of their probabilities.
    Networks trained apart err on different hard pictures (a digit in a box barely larger than
    it, a shadow's wedge beside it), so the mean is right more often than either; one file and
    one model call serve them, at as many times one network's arithmetic."""
    import keras
    from keras import layers

    if len(networks) == 1:
        return networks[0]
    field = keras.Input((28, 28, 1))
    return keras.Model(field, layers.Average()([network(field) for network in networks]), name="mnist_ensemble")


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
    remnants: float = REMNANT_SHARE,
    members: int = MEMBERS,
    log=print,
) -> Path:
    """Train on x_train only, export Keras + LiteRT into a new version folder, return it."""
    import keras
    import tensorflow as tf

    (x_train, y_train), (x_test, y_test) = load_mnist(data)
    if limit:
        x_train, y_train = x_train[:limit], y_train[:limit]
    log(f"preprocessing {len(x_train)} training digits")
    x = preprocess_all(x_train)[..., None]
    order = np.random.default_rng(seed).permutation(len(x))
    valid, fit = order[: min(VALIDATION_SIZE, len(x) // 10)], order[min(VALIDATION_SIZE, len(x) // 10) :]
    copies = fit[: round(remnants * len(fit))]  # fit is in random order
    y_fit = np.concatenate([y_train[fit], y_train[copies]])
    networks = []
    for member in range(members):
        log(f"member {member + 1} of {members}: drawing remnants beside {len(copies)} copies")
        x_fit = np.concatenate([x[fit], with_remnants(x_train[copies], seed + member)[..., None]]) if len(copies) else x[fit]
        networks.append(fit_member(x_fit, y_fit, (x[valid], y_train[valid]), epochs, seed + member, member_name(member)))
    model = build_ensemble(networks)
    folder = Path(model_dir) / name / str(version or (max(list_versions(model_dir, name), default=0) + 1))
    export(model, folder, members)
    evaluation = evaluate_export(model, folder, preprocess_all(x_test), y_test)
    metadata = {
        "name": name,
        "version": int(folder.name),
        "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "training_data": {
            "source": str(data) if data else "keras.datasets.mnist.load_data()",
            "sha256": sha256_of(data) if data else None,
            "split": "x_train",
            "samples": int(len(fit)),
            "copies_with_remnants": int(len(copies)),
            "validation_samples": int(len(valid)),
        },
        "training": {"epochs": epochs, "seed": seed, "members": members, "augmentation": augmentation(remnants)},
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


def member_name(member: int) -> str:
    """A member's layer name, the same in training and in the export's weight-less twin."""
    return f"mnist_cnn_{member + 1}"


def untrained(members: int) -> list:
    """New networks named as :func:`train` names its members, for an ensemble's weights to fill."""
    return [build_model(member_name(member)) for member in range(members)]


def fit_member(x_fit: np.ndarray, y_fit: np.ndarray, validation: tuple, epochs: int, seed: int, name: str):
    """One network of the ensemble, trained from its own seed."""
    import keras
    import tensorflow as tf

    keras.utils.set_random_seed(seed)
    dataset = (
        tf.data.Dataset.from_tensor_slices((x_fit, y_fit))
        .shuffle(len(x_fit), seed=seed)
        .batch(64)
        .map(augmenter(seed), num_parallel_calls=tf.data.AUTOTUNE)
        .prefetch(tf.data.AUTOTUNE)
    )
    network = build_model(name)
    network.compile(
        optimizer=keras.optimizers.AdamW(keras.optimizers.schedules.CosineDecay(3e-3, epochs * len(dataset))),
        loss="sparse_categorical_crossentropy",
        metrics=["accuracy"],
    )
    network.fit(dataset, epochs=epochs, validation_data=validation, verbose=2)
    return network


def augmentation(remnants: float) -> str:
    """What the training digits went through, as recorded in the metadata."""
    kinds = "rotation, zoom, shift, stroke width"
    return f"{kinds}; a copy of {remnants:.0%} of them beside frames, ruled lines or cut strokes" if remnants else kinds


def export(model, folder: Path, members: int) -> None:
    """Keras file as the source of truth, and TensorFlow's own LiteRT conversion of it for serving.

    The conversion stores the weights in 8 bits (``Optimize.DEFAULT``, dynamic range): a cheaper
    model call at the same accuracy, which the export measures and records; input and output stay
    float32 and the Keras file keeps the exact weights (docs/performance.md), without the
    optimizer's state, which would triple it.
    """
    import tensorflow as tf

    folder.mkdir(parents=True, exist_ok=True)
    weights_only = build_ensemble(untrained(members))  # never compiled, so it has no optimizer to save (a clone keeps it)
    weights_only.set_weights(model.get_weights())
    weights_only.save(folder / KERAS_FILE)
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
