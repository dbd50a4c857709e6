"""``mnist-flask``: train, evaluate, add and inspect models without starting the server.

Every default comes from the app's own settings (``config.load``), so ``MNIST_FLASK_MODEL_DIR`` and
the other ``MNIST_FLASK_*`` variables mean the same to the command as to the server.
"""

from __future__ import annotations

import csv
import json
import shutil
import sys
import tarfile
import tempfile
from pathlib import Path

import click

from . import config
from .training import MEMBERS, REMNANT_SHARE
from .model import (
    METADATA_FILE,
    ModelNotFound,
    classify_each,
    describe_version,
    list_versions,
    load_classifier,
    read_labels,
    readable_metadata,
    version_dir,
    write_label,
)
from .preprocessing import prepare_upload
from .runtimes import CONVENTIONS, OUTPUT_KINDS, RUNTIMES

IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".gif", ".bmp", ".webp", ".tif", ".tiff"}


def setting(key: str):
    """A default read when the command runs, from the same settings the server reads."""
    return lambda: config.load()[key]


model_dir_option = click.option(
    "--model-dir", type=click.Path(path_type=Path), default=setting("MODEL_DIR"), show_default="MNIST_FLASK_MODEL_DIR"
)
name_option = click.option("--name", default=setting("MODEL_NAME"), show_default="MNIST_FLASK_MODEL_NAME")
data_option = click.option(
    "--data",
    type=click.Path(dir_okay=False),
    default=setting("DATA"),
    callback=lambda context, parameter, value: mnist_data(value, parameter.get_default(context) != value),
    help="a local mnist.npz (Keras layout); default MNIST_FLASK_DATA if the file exists, "
    "else keras.datasets.mnist.load_data(), which downloads it",
)


def mnist_data(path: str | None, given: bool) -> str | None:
    """The digits file, or None for Keras' downloader when the default file is not there."""
    if path and not Path(path).is_file():
        if given:
            raise click.BadParameter(f"{path}: no such file", param_hint="--data")
        return None
    return path


@click.group()
def main():
    """Train, evaluate and list the MNIST models this server serves."""


@main.command()
@data_option
@model_dir_option
@name_option
@click.option("--version", type=int, help="version to write; default: newest + 1")
@click.option("--epochs", type=int, default=60, show_default=True)
@click.option("--seed", type=int, default=1, show_default=True)
@click.option("--limit", type=int, help="train on the first N digits only (quick checks)")
@click.option("--remnants", type=click.FloatRange(0, 1), default=REMNANT_SHARE, show_default=True,
              help="share of the training digits also learnt beside a printed frame, a ruled line or a cut stroke")
@click.option("--members", type=click.IntRange(1, 8), default=MEMBERS, show_default=True,
              help="networks trained from seeds SEED, SEED+1, ... and served as one, their probabilities averaged")
def train(data, model_dir, name, version, epochs, seed, limit, remnants, members):
    """Train on x_train and export a new model version (Keras + LiteRT + metadata)."""
    from .training import train as run_training

    run_training(data, model_dir, name, version, epochs, seed=seed, limit=limit, remnants=remnants, members=members, log=click.echo)


@main.command()
@data_option
@model_dir_option
@name_option
@click.option("--version", type=int, help="default: newest")
@click.option("--backend", type=click.Choice(["auto", *RUNTIMES]), default="auto", show_default=True)
def evaluate(data, model_dir, name, version, backend):
    """Accuracy on x_test through the serving preprocessing and classifier."""
    from .training import accuracy, load_mnist, preprocess_all

    _, (x_test, y_test) = load_mnist(data)
    classifier = load_classifier(model_dir, name, version, backend)
    score = accuracy(classifier.predict(preprocess_all(x_test)), y_test)
    click.echo(f"{classifier.label} ({classifier.backend}): accuracy on {len(x_test)} x_test digits: {score:.4%}")


@main.group()
def models():
    """The model store."""


@models.command("list")
@model_dir_option
@name_option
def list_models(model_dir, name):
    """Versions with their metadata and labels, newest last (fields a version lacks are shown as unknown)."""
    try:
        labels = read_labels(model_dir, name)
    except ValueError as exc:
        raise click.ClickException(str(exc)) from None
    for version in list_versions(model_dir, name):
        labelled = ",".join(sorted(label for label, target in labels.items() if target == version))
        about = describe_version(version_dir(model_dir, name, version))
        accuracy = about["accuracy"]
        click.echo(
            f"{name}:{version}  created {about['created']}  format {about['format']}  runtime {about['runtime']}  "
            f"x_test accuracy {f'{accuracy:.2%}' if isinstance(accuracy, (int, float)) else 'unknown'}  "
            f"source {about['source']}"
            + (f"  labels {labelled}" if labelled else "")
        )


@models.command("label")
@click.argument("label")
@click.argument("version", type=int, required=False)
@model_dir_option
@name_option
@click.option("--remove", is_flag=True, help="take the label off (e.g. end a canary) instead")
def label_model(label, version, model_dir, name, remove):
    """Point LABEL (e.g. stable, canary) at VERSION, in the store's labels.json. Servers use it after
    their next reload (make reload: HUP); the version labelled canary gets MNIST_FLASK_CANARY_PERCENT."""
    if (version is None) != remove:
        raise click.UsageError("give a VERSION, or --remove to take the label off")
    try:
        labels = write_label(model_dir, name, label, version)
    except (ModelNotFound, ValueError) as exc:
        raise click.ClickException(str(exc)) from None
    done = f"{label!r} removed" if remove else f"{name}:{version} is now {label!r}"
    click.echo(f"{done}; labels: " + (", ".join(f"{k}={v}" for k, v in sorted(labels.items())) or "none"))


@models.command("show")
@model_dir_option
@name_option
@click.option("--version", type=int, help="default: newest")
def show_model(model_dir, name, version):
    """One version's metadata as JSON."""
    folder = existing_version(model_dir, name, version)
    click.echo(json.dumps({"version": int(folder.name), **readable_metadata(folder)}, indent=2))


def existing_version(model_dir: Path, name: str, version: int | None) -> Path:
    try:
        return version_dir(model_dir, name, version)
    except ModelNotFound as exc:
        raise click.ClickException(str(exc)) from None


@models.command("add")
@click.argument("source")
@model_dir_option
@name_option
@click.option("--version", type=click.IntRange(1, 2**31 - 1), help="store it as this version; default: newest + 1")
@data_option
@click.option("--convention", type=click.Choice(list(CONVENTIONS)),
              help="the pixel convention the model was trained with; default: found out on training digits")
@click.option("--outputs", type=click.Choice(OUTPUT_KINDS), help="default: found out from the model's answers")
def add_model(source, model_dir, name, version, data, convention, outputs):
    """Add a model trained anywhere as a new version: Keras (.h5, .keras), a SavedModel folder, ONNX
    or LiteRT, from a path or an http(s)://, gs:// or s3:// address. It is checked on real digits,
    converted for serving and stored whole, or refused with the reason and nothing stored."""
    from .adding import ModelRefused, add_model as add
    from .runtimes import UnsupportedModel

    try:
        add(source, model_dir, name, version, data, convention, outputs, log=click.echo)
    except (ModelRefused, UnsupportedModel) as refusal:
        raise click.ClickException(f"{source} not added: {refusal}") from None
    except Exception as exc:  # whatever else a foreign model does: one line, never a traceback
        raise click.ClickException(f"{source} not added: {type(exc).__name__}: {' '.join(str(exc).split())[:300]}") from None


@models.command("export")
@model_dir_option
@name_option
@click.option("--version", type=int, help="default: newest")
@click.argument("archive", type=click.Path(dir_okay=False, path_type=Path))
def export_model(model_dir, name, version, archive):
    """Pack one version into a .tar.gz that `models import` takes on another machine."""
    folder = existing_version(model_dir, name, version)
    with tarfile.open(archive, "w:gz") as packed:
        packed.add(folder, arcname=f"{name}/{folder.name}")
    click.echo(f"exported {name}:{folder.name} to {archive}")


@models.command("import")
@model_dir_option
@click.option("--version", type=int, help="store it as this version; default: the version it was exported as")
@click.argument("archive", type=click.Path(exists=True, dir_okay=False, path_type=Path))
def import_model(model_dir, version, archive):
    """Unpack an archive made by `models export` into the store; it is served after the next reload."""
    if not tarfile.is_tarfile(archive):
        raise click.ClickException(
            f"{archive} is not an archive made by `mnist-flask models export`; "
            f"to serve a model file or folder, use: mnist-flask models add {archive}"
        )
    with tempfile.TemporaryDirectory() as staging, tarfile.open(archive) as packed:
        packed.extractall(staging, filter="data")
        found = [path.parent for path in Path(staging).glob(f"*/*/{METADATA_FILE}")]
        if len(found) != 1:
            raise click.ClickException(f"{archive} holds {len(found)} model versions; expected one")
        name, exported = found[0].parent.name, found[0].name
        target = Path(model_dir) / name / str(version or exported)
        if target.exists():
            raise click.ClickException(f"{target} exists already; pass --version to store it under another")
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.move(found[0], target)
    click.echo(f"imported {name}:{target.name} into {model_dir}")


def image_files(paths: tuple[Path, ...]) -> list[Path]:
    """Files as given, and the images found under folders, in a stable order."""
    files = []
    for path in paths:
        if path.is_dir():
            files += sorted(p for p in path.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file())
        else:
            files.append(path)
    return files


@main.command()
@click.argument("paths", nargs=-1, required=True, type=click.Path(exists=True, path_type=Path))
@click.option("--output", "-o", type=click.Path(dir_okay=False, path_type=Path),
              help="a .csv or .jsonl file; default: JSON lines on standard output")
@model_dir_option
@name_option
@click.option("--version", type=int, help="default: newest")
@click.option("--batch-size", type=int, default=64, show_default=True)
@click.option("--max-pixels", type=int, default=config.Defaults.MAX_IMAGE_PIXELS, show_default=True)
def classify(paths, output, model_dir, name, version, batch_size, max_pixels):
    """Classify image files and folders offline, with the server's preprocessing and model."""
    files = image_files(paths)
    classifier = load_classifier(model_dir, name, version)
    rows = []
    with click.progressbar(length=len(files), label="classifying", file=sys.stderr) as progress:
        for start in range(0, len(files), batch_size):
            chunk = files[start : start + batch_size]
            rows += classify_files(classifier, chunk, max_pixels)
            progress.update(len(chunk))
    write_rows(rows, output)


def classify_files(classifier, files: list[Path], max_pixels: int) -> list[dict]:
    answers = classify_each(files, lambda path: prepare_upload(path.read_bytes(), max_pixels), classifier.answers)
    return [{"path": str(path), **answer} for path, answer in zip(files, answers)]


def write_rows(rows: list[dict], output: Path | None) -> None:
    if output is not None and output.suffix == ".csv":
        with output.open("w", newline="") as stream:
            writer = csv.writer(stream)
            writer.writerow(["path", "prediction", "confidence", "digit_found", "error", *[f"p{d}" for d in range(10)]])
            for row in rows:
                writer.writerow([row["path"], row.get("prediction", ""), row.get("confidence", ""),
                                 row.get("digit_found", ""), row.get("error", ""), *row.get("probabilities", [""] * 10)])
        return
    lines = "".join(json.dumps(row) + "\n" for row in rows)
    if output is None:
        click.echo(lines, nl=False)
    else:
        output.write_text(lines)
