"""``mnist-flask models add``: a model trained anywhere becomes a served, versioned model.

The source (a file or folder, or an ``http(s)://``, ``gs://`` or ``s3://`` address read with fsspec)
is recognised by its content, converted in this process to what a worker serves without
TensorFlow (Keras and SavedModel -> LiteRT; ONNX is served by ONNX Runtime, LiteRT as it is), and
checked on real digits: its input layout, whether it answers probabilities or logits, and which
pixel convention it was trained with are found out, not asked for. Only a model that reads MNIST
digits reaches the store, and it arrives whole: it is built in a hidden folder and renamed into place.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import os
import platform
import shutil
import tempfile
import uuid
from dataclasses import dataclass
from datetime import datetime, timezone
from importlib import metadata as distributions
from pathlib import Path
from typing import Callable
from urllib.parse import urlsplit

import numpy as np

from .model import METADATA_FILE, RUNTIME_PACKAGES, list_versions
from .runtimes import CONVENTIONS, LAYOUTS, RUNTIMES, Runner, UnsupportedModel, adapter, layout_of, shape_text
from .training import accuracy, load_mnist, preprocess_all

DETECTION_DIGITS = 1000  # x_train digits (their own pixels) that decide the pixel convention and the output kind
MIN_ACCURACY = 0.5  # below this on MNIST's own digits the model is not an MNIST classifier
FORMATS = {
    "keras-h5": "Keras HDF5 (.h5)",
    "keras": "Keras (.keras)",
    "savedmodel": "TensorFlow SavedModel",
    "onnx": "ONNX",
    "tflite": "LiteRT (.tflite)",
}
# The fsspec back-end each remote scheme needs, for the message when it is missing.
REMOTE_PACKAGES = {"gs": "gcsfs", "gcs": "gcsfs", "s3": "s3fs", "s3a": "s3fs", "http": "aiohttp", "https": "aiohttp"}


class ModelRefused(Exception):
    """Why a source cannot be served, in one line for the person who added it."""


@dataclass
class Prepared:
    """A source made servable in the staging folder, and the original model to compare it with."""

    runtime: str
    conversion: str
    original: Callable[[np.ndarray], np.ndarray] | None  # None: the served file is the original
    original_file: str | None
    frameworks: dict


def add_model(
    source: str,
    model_dir: Path,
    name: str,
    version: int | None = None,
    data: str | None = None,
    convention: str | None = None,
    output_kind: str | None = None,
    log: Callable[[str], None] = print,
) -> Path:
    """Store ``source`` as version ``version`` (default: newest + 1) of ``name``; return its folder."""
    model_dir = Path(model_dir)
    version = version or max(list_versions(model_dir, name), default=0) + 1
    target = model_dir / name / str(version)
    if target.exists():
        raise ModelRefused(f"{target} exists already; pass --version to store it under another number")
    with tempfile.TemporaryDirectory(prefix="mnist-flask-add-") as downloads:
        local = fetch(source, Path(downloads))
        found = detect_format(local)
        log(f"format: {FORMATS[found]}, {local.name}")
        staging = model_dir / name / f".incoming-{uuid.uuid4().hex}"
        staging.mkdir(parents=True)
        try:
            metadata = build_version(local, found, staging, data, convention, output_kind, log)
            metadata = {"name": name, "version": version, **metadata}
            metadata["source"] = {"location": describe_location(source), "sha256": sha256_of(local), **metadata["source"]}
            (staging / METADATA_FILE).write_text(json.dumps(metadata, indent=2) + "\n")
            os.rename(staging, target)
        finally:
            shutil.rmtree(staging, ignore_errors=True)
    log(f"stored as {name}:{version} in {model_dir}; `make reload` (Gunicorn HUP) serves it")
    return target


def build_version(local: Path, found: str, staging: Path, data, convention, output_kind, log) -> dict:
    """Convert, inspect and evaluate; everything the metadata says about the model."""
    prepared = PREPARE[found](local, staging)
    make_runner, served_file = RUNTIMES[prepared.runtime]
    runner = load_runner(make_runner, staging / served_file)
    layout = layout_of(runner.input_shape)
    log(f"input: {shape_text(runner.input_shape)} ({layout}), float32; outputs: {shape_text(runner.output_shape)}")
    (x_train, y_train), (x_test, y_test) = load_mnist(data)
    sample, sample_labels = x_train[:DETECTION_DIGITS] / np.float32(255), y_train[:DETECTION_DIGITS]
    kind = output_kind or detect_output_kind(runner, sample)
    log(f"outputs are {kind}{' (softmax applied when served)' if kind == 'logits' else ''}"
        f"{' (as asked)' if output_kind else ''}")
    scores, losses = {}, {}
    for name in CONVENTIONS:
        probabilities = adapter(runner, name, kind)(sample)
        scores[name], losses[name] = accuracy(probabilities, sample_labels), log_loss(probabilities, sample_labels)
    chosen = convention or min(CONVENTIONS, key=lambda name: losses[name])
    log(f"pixel convention: {chosen}, {CONVENTIONS[chosen]} ({'as asked' if convention else 'the most likely'}; "
        f"on {len(sample):,} x_train digits: "
        f"{', '.join(f'{n} {scores[n]:.1%} right, log loss {losses[n]:.3g}' for n in CONVENTIONS)})")
    if scores[chosen] < MIN_ACCURACY:
        raise ModelRefused(
            f"the model reads {scores[chosen]:.1%} of {len(sample):,} MNIST training digits right with pixel convention "
            f"{chosen!r} (best of all: {max(scores.values()):.1%}); it does not look like an MNIST digit classifier"
        )
    evaluation = evaluate(runner, prepared.original, chosen, kind, preprocess_all(x_test), y_test)
    log(f"runtime: {prepared.runtime} ({prepared.conversion})")
    log(f"accuracy on {evaluation['samples']:,} x_test digits through the server's preprocessing: "
        f"{evaluation['accuracy']:.4%} served, {evaluation['original_accuracy']:.4%} original; "
        f"same digit for {evaluation['agreement']:.4%}, probabilities within {evaluation['max_difference']:.2g}")
    return {
        "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "source": {"format": found, "bytes": size_of(local)},
        "runtime": prepared.runtime,
        "files": {"served": served_file, "original": prepared.original_file},
        "conversion": prepared.conversion,
        "input": {
            "shape": list(LAYOUTS[layout]),
            "layout": layout,
            "dtype": "float32",
            "convention": chosen,
            "convention_chosen_by": "option" if convention else "detection",
            "convention_accuracy": {name: round(score, 5) for name, score in scores.items()},
            "convention_log_loss": {name: round(loss, 5) for name, loss in losses.items()},
        },
        "output": {"shape": [10], "kind": kind, "kind_chosen_by": "option" if output_kind else "detection"},
        "evaluation": evaluation,
        "versions": {"python": platform.python_version(), **prepared.frameworks, **installed(prepared.runtime)},
    }  # fmt: skip


def load_runner(make_runner, path: Path) -> Runner:
    try:
        return make_runner(path)
    except UnsupportedModel:
        raise
    except Exception as exc:
        raise ModelRefused(f"the runtime cannot load {path.name}: {one_line(exc)}") from None


def log_loss(probabilities: np.ndarray, labels: np.ndarray) -> float:
    """Mean -log p(true digit): the convention a model was trained in gives it calibrated answers,
    where another scale can keep most argmaxes of a ReLU network but makes it confidently wrong."""
    return float(-np.log(np.clip(probabilities[np.arange(len(labels)), labels], 1e-12, 1.0)).mean())


def detect_output_kind(runner: Runner, sample: np.ndarray) -> str:
    """Probabilities are non-negative rows summing to one whatever the input; anything else is logits."""
    outputs = adapter(runner, "unit", "probabilities")(sample)
    is_distribution = (outputs >= -1e-4).all() and np.allclose(outputs.sum(axis=1), 1.0, atol=1e-3)
    return "probabilities" if is_distribution else "logits"


def evaluate(runner: Runner, original, convention: str, kind: str, fields: np.ndarray, labels: np.ndarray) -> dict:
    """Accuracy of what will be served and of the model as added, and how far they agree."""
    served = adapter(runner, convention, kind)(fields)
    reference = served if original is None else adapter(Runner(original, runner.input_shape, runner.output_shape), convention, kind)(fields)
    return {
        "split": "x_test",
        "samples": int(len(fields)),
        "accuracy": round(accuracy(served, labels), 5),
        "original_accuracy": round(accuracy(reference, labels), 5),
        "agreement": round(float((served.argmax(1) == reference.argmax(1)).mean()), 5),
        "max_difference": round(float(np.abs(served - reference).max()), 6),
    }


def fetch(source: str, into: Path) -> Path:
    """A local path as it is; a remote one (fsspec: http(s), gs, s3, ...) copied into ``into``."""
    if "://" not in source:
        path = Path(source).expanduser()
        if not path.exists():
            raise ModelRefused(f"{source}: no such file or folder")
        return path
    scheme = source.split("://", 1)[0].lower()
    try:
        import fsspec

        filesystem, remote = fsspec.core.url_to_fs(source)
    except ImportError as exc:
        package = REMOTE_PACKAGES.get(scheme, "the fsspec back-end for it")
        raise ModelRefused(f"reading {scheme}:// addresses needs {package}: pip install {package} ({one_line(exc)})") from None
    except ValueError as exc:
        raise ModelRefused(f"{source}: {one_line(exc)}") from None
    local = into / (Path(urlsplit(source).path.rstrip("/")).name or "model")
    try:
        if scheme not in ("http", "https") and filesystem.isdir(remote):
            filesystem.get(remote, str(local), recursive=True)  # a SavedModel folder in a bucket
        else:
            filesystem.get_file(remote, str(local))
    except Exception as exc:
        raise ModelRefused(f"cannot fetch {source}: {one_line(exc)}") from None
    return local


def detect_format(path: Path) -> str:
    """By content, not by name: a text file named ``.h5`` is refused as what it is."""
    if path.is_dir():
        if (path / "saved_model.pb").is_file():
            return "savedmodel"
        raise ModelRefused(f"{path.name}/ is a folder without saved_model.pb, so not a TensorFlow SavedModel")
    with path.open("rb") as stream:
        head = stream.read(16)
    if head.startswith(b"\x89HDF\r\n\x1a\n"):
        return "keras-h5"
    if head.startswith(b"PK\x03\x04"):
        return "keras"
    if head[4:8] == b"TFL3":
        return "tflite"
    if path.suffix.lower() == ".onnx":
        return "onnx"
    raise ModelRefused(
        f"{path.name} is {what_it_looks_like(head)}, not a model file; mnist_flask reads Keras (.h5, .keras), "
        "a SavedModel folder, ONNX (.onnx) and LiteRT (.tflite)"
    )


def what_it_looks_like(head: bytes) -> str:
    if not head:
        return "empty"
    try:
        text = head.decode("utf-8")
    except UnicodeDecodeError:
        return f"binary data starting {head[:8].hex(' ')}"
    return f"text ({text[:12]!r}...)" if text.isprintable() or "\n" in text else f"data starting {head[:8]!r}"


def tensorflow():
    """TensorFlow and Keras, for the conversions that need them, with quiet start-up logs."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    try:
        import keras
        import tensorflow as tf
    except ImportError:
        raise ModelRefused(
            "converting Keras and SavedModel models needs TensorFlow: make install in the checkout "
            "(or pip install -r requirements.txt)"
        ) from None
    return tf, keras


def prepare_keras(local: Path, staging: Path) -> Prepared:
    tf, keras = tensorflow()
    try:
        model = keras.saving.load_model(local, compile=False)
    except Exception as exc:
        raise ModelRefused(f"Keras cannot read {local.name}: {one_line(exc)}") from None
    layout_of((None, *tuple(model.inputs[0].shape)[1:]))  # refuse a CIFAR-shaped model before converting
    original_file = keep_original(local, staging)
    convert(tf.lite.TFLiteConverter.from_keras_model(model), staging)
    return Prepared(
        runtime="litert",
        conversion="TFLiteConverter.from_keras_model, float32 weights",
        original=lambda batch: model.predict(batch, batch_size=1024, verbose=0),
        original_file=original_file,
        frameworks={"tensorflow": tf.__version__, "keras": keras.__version__},
    )


def prepare_savedmodel(local: Path, staging: Path) -> Prepared:
    tf, keras = tensorflow()
    try:
        signature = tf.saved_model.load(str(local)).signatures["serving_default"]
    except KeyError:
        raise ModelRefused(f"{local.name}/ has no serving_default signature to call") from None
    except Exception as exc:
        raise ModelRefused(f"TensorFlow cannot read the SavedModel {local.name}/: {one_line(exc)}") from None
    inputs = signature.structured_input_signature[1]
    if len(inputs) != 1:
        raise ModelRefused(f"the SavedModel takes {len(inputs)} inputs ({', '.join(inputs)}); a digit classifier takes one")
    (input_name, spec), = inputs.items()
    layout_of((None, *tuple(spec.shape)[1:]))
    original_file = keep_original(local, staging)
    convert(tf.lite.TFLiteConverter.from_saved_model(str(local)), staging)

    def original(batch: np.ndarray) -> np.ndarray:
        return np.concatenate([
            next(iter(signature(**{input_name: tf.constant(batch[start : start + 1024])}).values())).numpy()
            for start in range(0, len(batch), 1024)
        ])  # fmt: skip

    return Prepared(
        runtime="litert",
        conversion="TFLiteConverter.from_saved_model, float32 weights",
        original=original,
        original_file=original_file,
        frameworks={"tensorflow": tf.__version__},
    )


def prepare_tflite(local: Path, staging: Path) -> Prepared:
    """A LiteRT file is served as it is: the original is what runs."""
    shutil.copyfile(local, staging / RUNTIMES["litert"][1])
    return Prepared("litert", "none: served as added", None, None, {})


def prepare_onnx(local: Path, staging: Path) -> Prepared:
    """Served by ONNX Runtime as it is, with any weights kept in external data files (PyTorch's
    exporter writes ``model.onnx.data`` beside the graph) folded into the one served file."""
    try:
        import onnx
    except ImportError:
        raise ModelRefused("adding ONNX models needs the onnx package: make install (or pip install -r requirements.txt)") from None
    try:
        graph = onnx.load(str(local))
        onnx.checker.check_model(graph)
    except Exception as exc:
        raise ModelRefused(f"{local.name} is not a valid ONNX model: {one_line(exc)}") from None
    onnx.save_model(graph, str(staging / RUNTIMES["onnxruntime"][1]), save_as_external_data=False)
    return Prepared("onnxruntime", "none: served as added (external data folded in)", None, None, {"onnx": onnx.__version__})


PREPARE: dict[str, Callable[[Path, Path], Prepared]] = {
    "keras-h5": prepare_keras,
    "keras": prepare_keras,
    "savedmodel": prepare_savedmodel,
    "onnx": prepare_onnx,
    "tflite": prepare_tflite,
}


def convert(converter, staging: Path) -> None:
    """TensorFlow's own conversion; what it prints about its intermediate export is not the user's concern."""
    try:
        with contextlib.redirect_stdout(io.StringIO()):
            served = converter.convert()
        (staging / RUNTIMES["litert"][1]).write_bytes(served)
    except Exception as exc:
        raise ModelRefused(f"the conversion to LiteRT failed: {one_line(exc)}") from None


def keep_original(local: Path, staging: Path) -> str:
    """The model as added, beside its conversion: the source of truth for a later re-conversion."""
    target = staging / "original" / local.name
    if local.is_dir():
        shutil.copytree(local, target)
    else:
        target.parent.mkdir()
        shutil.copyfile(local, target)
    return str(target.relative_to(staging))


def installed(runtime: str) -> dict:
    package = RUNTIME_PACKAGES[runtime]
    return {package: distributions.version(package)}


def files_of(path: Path) -> list[Path]:
    return sorted(p for p in path.rglob("*") if p.is_file()) if path.is_dir() else [path]


def sha256_of(path: Path) -> str:
    """Of the file, or of a folder's files and their relative names in order."""
    digest = hashlib.sha256()
    for file in files_of(path):
        if path.is_dir():
            digest.update(str(file.relative_to(path)).encode() + b"\0")
        with file.open("rb") as stream:
            for block in iter(lambda: stream.read(1 << 20), b""):
                digest.update(block)
    return digest.hexdigest()


def size_of(path: Path) -> int:
    return sum(file.stat().st_size for file in files_of(path))


def describe_location(source: str) -> str:
    return source if "://" in source else str(Path(source).expanduser().resolve())


def one_line(error: BaseException) -> str:
    text = " ".join(str(error).split()) or type(error).__name__
    return text if len(text) <= 300 else text[:297] + "..."

